"""Real dbt builds of the marts on a tmp_path DuckDB, checked against independent aggregates."""

import json
import random
import shutil
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from music_analytics.definitions import build_definitions
from music_analytics.defs.partitions import partition_range_tags
from music_analytics.lib.core.exports import connect_bi_database
from music_analytics.refresh import refresh
from music_analytics_tests.conftest import event, module_home, query, write_lines
from music_analytics_tests.lib.core.test_raw_layer import assert_mirrors
from music_analytics_tests.rollup_exports import run_dbt

FIRST, LAST = date(2025, 3, 1), date(2025, 3, 10)
MARTS = (
    "fct_streams",
    "top_tracks_daily",
    "user_activity_daily",
    "genre_trends_daily",
    "top_tracks_by_day",
    "top_tracks_by_country_day",
)
MONTHLY_MARTS = ("top_tracks_by_month", "top_tracks_by_country_month")


def sample_lines(seed: int = 7) -> list:
    rng = random.Random(seed)
    lines: list = []
    for n in range(600):
        day = FIRST + timedelta(days=rng.randrange(10))
        lines.append(
            event(
                n,
                user_id=f"user_{rng.randrange(12)}",
                track_id=f"track_{rng.randrange(8)}",
                genre=rng.choice(["rock", "pop", "jazz"]),
                country=rng.choice(["US", "US", "IN"]),
                stream_start_time=f"{day} {rng.randrange(24):02d}:{rng.randrange(60):02d}:00",
                stream_duration_seconds=rng.randrange(10, 300),
                completed=rng.randrange(2),
            )
        )
    lines[10:10] = ["{broken", "", json.dumps(event(5, completed=3))]
    lines += [lines[40], lines[41]]  # two stream_ids again: they must count once
    # a stream_id sent again with a start on another day is another stream: it counts twice
    other_day = FIRST if day_of(lines[43]) != FIRST else FIRST + timedelta(days=1)
    lines.append({**lines[43], "stream_start_time": f"{other_day} 12:00:00"})
    return lines


def valid_events(lines) -> list[dict]:
    """What the marts must count, computed without the project's code: of the copies of a
    stream_id on one day, the first wins."""
    seen, kept = set(), []
    for line in lines:
        if not isinstance(line, dict) or line["completed"] not in (0, 1):
            continue
        if (day_of(line), line["stream_id"]) not in seen:
            seen.add((day_of(line), line["stream_id"]))
            kept.append(line)
    return kept


def day_of(row) -> date:
    return datetime.strptime(row["stream_start_time"], "%Y-%m-%d %H:%M:%S").date()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    layer = tmp_path_factory.mktemp("raw_layer")  # on here: the marts step syncs it first
    with module_home(
        tmp_path_factory, "marts", MUSIC_ANALYTICS_RAW_LAYER_URI=str(layer)
    ) as settings:
        lines = sample_lines()
        write_lines(settings.events_landing / "march.ndjson", lines)
        instance = dg.DagsterInstance.ephemeral()
        summary = refresh(settings=settings, instance=instance)
        yield settings, instance, summary, valid_events(lines)


def test_refresh_loads_and_builds_all_days_in_one_run(built):
    settings, _, summary, events = built
    # one run; genre_trends_daily's trailing week would date the 7 days after the data, but
    # those have no streams, so no rows to change
    assert summary.ranges_built == [(FIRST, LAST)]
    assert summary.rows_quarantined == 2
    assert summary.rows_loaded == len(events) + 2  # + 2 duplicate copies
    [(facts,)] = query(settings, "select count(*) from marts.fct_streams")
    assert facts == len(events)


@pytest.mark.parametrize("mart", MARTS)
def test_a_multi_day_build_stores_each_mart_in_day_order(built, mart):
    """Stored in day order, a backfill's row groups each hold a few days, so a later build of
    one day reads that day's row groups only (macros/portable.sql, in_day_order). The monthly
    rollups are ordered by month the same way; this data has one month."""
    settings = built[0]
    sql = f"select stream_date from marts.{mart} order by rowid"
    stored = [day for (day,) in query(settings, sql)]
    assert len(set(stored)) > 1
    assert stored == sorted(stored)


def test_the_marts_step_first_brings_the_raw_layer_to_the_raw_tables(built):
    settings, instance, _, _ = built
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        assert_mirrors(conn, Path(settings.raw_layer_uri))
    [run] = instance.get_runs(dg.RunsFilter(job_name="daily_marts_job"), limit=1)
    messages = [r.user_message for r in instance.all_logs(run.run_id)]
    assert any(m.startswith("raw layer: whole layer;") for m in messages)


def test_an_events_load_rebuilds_and_tests_the_models_it_feeds_only(built):
    settings, instance, _, _ = built
    [run] = instance.get_runs(dg.RunsFilter(job_name="daily_marts_job"), limit=1)
    records = instance.all_logs(run.run_id)
    built_keys = {
        r.dagster_event.event_specific_data.materialization.asset_key.to_user_string()
        for r in records
        if r.dagster_event and r.dagster_event.event_type_value == "ASSET_MATERIALIZATION"
    }
    checked = {
        r.dagster_event.event_specific_data.asset_key.to_user_string()
        for r in records
        if r.dagster_event and r.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    assert {f"marts/{mart}" for mart in MARTS} <= built_keys
    # the DSP marts read nothing this load changed
    assert not {key for key in built_keys if "dsp" in key}
    # the Spotify views fct_streams reads are (re)built, but their tests do not run
    assert "staging/stg_spotify__plays" in built_keys
    assert "marts/fct_streams" in checked
    assert not {key for key in checked if "spotify" in key}


def test_top_tracks_equal_the_seed_query_on_the_raw_file(built):
    settings, _, _, events = built
    start, end, genre, country = date(2025, 3, 2), date(2025, 3, 8), "rock", "US"
    expected: dict[str, list] = defaultdict(lambda: [0, 0, 0])
    for row in events:
        if start <= day_of(row) <= end and row["genre"] == genre and row["country"] == country:
            agg = expected[row["track_id"]]
            agg[0] += 1
            agg[1] += row["stream_duration_seconds"]
            agg[2] += row["completed"]
    got = query(
        settings,
        """
        select track_id, sum(stream_count), sum(total_duration_seconds),
               sum(total_duration_seconds) / sum(stream_count), sum(completed_streams)
        from marts.top_tracks_daily
        where stream_date between ? and ? and genre = ? and country = ?
        group by track_id order by 2 desc, 1
    """,
        [start, end, genre, country],
    )
    assert {r[0]: [r[1], r[2], r[4]] for r in got} == dict(expected)
    for _track, count, total, avg, _ in got:
        assert avg == pytest.approx(total / count)


def test_user_activity_matches_the_events(built):
    settings, _, _, events = built
    day, user = date(2025, 3, 4), "user_3"
    mine = [e for e in events if day_of(e) == day and e["user_id"] == user]
    [row] = query(
        settings,
        """
        select stream_count, total_listening_seconds, distinct_tracks, completed_streams,
               completion_rate, top_genre
        from marts.user_activity_daily where stream_date = ? and user_id = ?
    """,
        [day, user],
    )
    genres = Counter(e["genre"] for e in mine)
    top = sorted(genres.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
    completed = sum(e["completed"] for e in mine)
    assert row == (
        len(mine),
        sum(e["stream_duration_seconds"] for e in mine),
        len({e["track_id"] for e in mine}),
        completed,
        pytest.approx(completed / len(mine)),
        top,
    )


def test_genre_trends_trailing_average_and_week_over_week(built):
    settings, _, _, events = built
    counts = Counter((day_of(e), e["genre"], e["country"]) for e in events)
    day, genre, country = date(2025, 3, 9), "pop", "US"
    [(avg7, wow, share)] = query(
        settings,
        """
        select streams_7d_avg, streams_wow_change, share_of_day_streams
        from marts.genre_trends_daily where stream_date = ? and genre = ? and country = ?
    """,
        [day, genre, country],
    )
    window = sum(counts[(day - timedelta(days=i), genre, country)] for i in range(7))
    assert avg7 == pytest.approx(window / 7)
    week_ago = counts[(day - timedelta(days=7), genre, country)]
    today = counts[(day, genre, country)]
    assert wow == (pytest.approx((today - week_ago) / week_ago) if week_ago else None)
    country_total = sum(v for (d, _, c), v in counts.items() if d == day and c == country)
    assert share == pytest.approx(today / country_total)
    # the first days have no week-earlier day
    [(nulls,)] = query(
        settings,
        "select count(*) from marts.genre_trends_daily "
        "where stream_date < '2025-03-08' and streams_wow_change is not null",
    )
    assert nulls == 0


def _day_rows(settings, day):
    return {
        m: sorted(
            query(settings, f"select * from marts.{m} where stream_date = ?", [day]), key=repr
        )
        for m in MARTS
    }


def _month_rows(settings):
    return {m: sorted(query(settings, f"select * from marts.{m}"), key=repr) for m in MONTHLY_MARTS}


def test_rerunning_a_partition_gives_identical_rows_and_passing_checks(built):
    settings, instance, _, _ = built
    day = date(2025, 3, 5)
    before = _day_rows(settings, day)
    other_before = _day_rows(settings, date(2025, 3, 6))
    months_before = _month_rows(settings)  # March re-summed whole from one day's rebuild
    defs = build_definitions(settings)
    result = defs.resolve_job_def("daily_marts_job").execute_in_process(
        instance=instance, tags=partition_range_tags(day, day)
    )
    assert result.success
    assert _day_rows(settings, day) == before
    assert _day_rows(settings, date(2025, 3, 6)) == other_before
    assert _month_rows(settings) == months_before
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) > 20
    assert [e.check_name for e in evaluations if not e.passed] == []
    materialized = {
        (m.asset_key.to_user_string(), m.partition)
        for m in result.get_asset_materialization_events()
        for m in [m.materialization]
    }
    assert ("marts/top_tracks_daily", "2025-03-05") in materialized
    # the second dbt build in this home reused the parse state the first one kept
    [newest] = sorted((settings.home / "dbt" / "target").iterdir())[-1:]
    lines = (newest / "dbt.log").read_text().splitlines()
    logged = {json.loads(line)["info"]["name"] for line in lines}
    assert "PartialParsingEnabled" in logged
    assert "UnableToPartialParse" not in logged


def test_every_built_day_is_exported_and_readable_from_the_bi_database(built):
    settings, _, _, events = built
    exports = settings.exports_dir
    days = sorted(p.name for p in (exports / "top_tracks_daily").iterdir())
    assert days == [f"stream_date={FIRST + timedelta(days=n)}" for n in range(10)]
    with connect_bi_database(str(exports / "bi.duckdb")) as bi:
        [(exported,)] = bi.execute("select sum(stream_count) from top_tracks_daily").fetchall()
        [(facts,)] = bi.execute("select count(*) from fct_streams").fetchall()
    assert exported == facts == len(events)


def _expected_sums(events, period, keys) -> dict:
    """(period of the day, *keys) -> [streams, completed, seconds], from the raw events."""
    sums: dict = defaultdict(lambda: [0, 0, 0])
    for row in events:
        agg = sums[(period(day_of(row)), *(row[k] for k in keys))]
        agg[0] += 1
        agg[1] += row["completed"]
        agg[2] += row["stream_duration_seconds"]
    return dict(sums)


@pytest.mark.parametrize(
    "mart, period, keys",
    [
        ("top_tracks_by_day", lambda d: d, ("track_id", "genre")),
        ("top_tracks_by_country_day", lambda d: d, ("track_id", "genre", "country")),
        ("top_tracks_by_month", lambda d: d.replace(day=1), ("track_id", "genre")),
        (
            "top_tracks_by_country_month",
            lambda d: d.replace(day=1),
            ("track_id", "genre", "country"),
        ),
    ],
)
def test_top_tracks_rollups_equal_the_sums_of_the_events(built, mart, period, keys):
    settings, _, _, events = built
    date_column = "month" if "month" in mart else "stream_date"
    got = query(
        settings,
        f"select {date_column}, {', '.join(keys)}, stream_count, completed_streams, "
        f"total_duration_seconds from marts.{mart}",
    )
    assert {row[: len(keys) + 1]: list(row[len(keys) + 1 :]) for row in got} == _expected_sums(
        events, period, keys
    )
    types = dict(query(settings, f"select column_name, column_type from (describe marts.{mart})"))
    assert (types["stream_count"], types["total_duration_seconds"]) == ("INTEGER", "BIGINT")


def test_monthly_rollups_are_exported_one_file_per_month_start(built):
    settings, _, _, events = built
    exports = settings.exports_dir
    for mart in MONTHLY_MARTS:
        assert [p.name for p in (exports / mart).iterdir()] == ["month=2025-03-01"]
    with connect_bi_database(str(exports / "bi.duckdb")) as bi:
        [(month, streams)] = bi.execute(
            "select month, sum(stream_count) from top_tracks_by_month group by 1"
        ).fetchall()
    assert (month, streams) == (date(2025, 3, 1), len(events))


def test_a_rollup_that_does_not_add_up_fails_its_reconciliation_test(built, tmp_path):
    """dbt's sums_match test on a copy of the warehouse whose monthly rollup lost a stream."""
    settings, _, _, _ = built
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(settings.warehouse_path, home / "warehouse.duckdb")
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        conn.execute(
            "update marts.top_tracks_by_month set stream_count = stream_count - 1 "
            "where track_id = (select min(track_id) from marts.top_tracks_by_month)"
        )
    result = run_dbt(home, "test", "--select", "top_tracks_by_month,test_name:sums_match")
    assert result.returncode != 0
    failed = [line for line in result.stdout.splitlines() if "FAIL" in line]
    assert failed and all("sums_match_top_tracks_by_month" in line for line in failed)


def test_a_builds_tests_read_its_days_only_and_fail_on_a_bad_row_of_one(built, tmp_path):
    """dbt's tests under day_ranges (as Dagster runs them) on a copy of the warehouse whose
    top_tracks_daily holds a row twice on one day: a build of that day fails on it, a build
    of another day does not read it, and a test of every day finds it again."""
    settings, _, _, _ = built
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(settings.warehouse_path, home / "warehouse.duckdb")
    bad_day, good_day = date(2025, 3, 4), date(2025, 3, 7)
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        conn.execute(
            "insert into marts.top_tracks_daily select * from marts.top_tracks_daily "
            "where stream_date = ? limit 1",
            [bad_day],
        )
    select = ("--select", "top_tracks_daily,test_name:unique_combination")

    def failures(*args: str) -> list[str]:
        result = run_dbt(home, "test", *select, *args)
        assert "Done." in result.stdout, result.stdout[-2000:]
        return [line for line in result.stdout.splitlines() if " FAIL " in line]

    def on(day: date) -> tuple[str, str]:
        return ("--vars", json.dumps({"day_ranges": [[str(day), str(day)]]}))

    [failed] = failures(*on(bad_day))
    assert "unique_combination_top_tracks_daily" in failed
    assert failures(*on(good_day)) == []
    assert len(failures()) == 1


def test_a_null_in_a_required_column_fails_the_models_not_null_test(built, tmp_path):
    """dbt's not_null_columns test (one per model, every required column) on a copy of the
    warehouse whose top_tracks_daily lost a track_id on one row: it fails, naming the column."""
    settings, _, _, _ = built
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(settings.warehouse_path, home / "warehouse.duckdb")
    select = ("--select", "top_tracks_daily,test_name:not_null_columns")
    assert run_dbt(home, "test", *select).returncode == 0
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        conn.execute(
            "update marts.top_tracks_daily set track_id = null "
            "where track_id = (select min(track_id) from marts.top_tracks_daily)"
        )
    result = run_dbt(home, "test", *select, "--store-failures")
    assert result.returncode != 0
    [failed] = [line for line in result.stdout.splitlines() if " FAIL " in line]
    assert "not_null_columns_top_tracks_daily" in failed
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        # dbt stores the failing rows under the test's name, shortened with a hash
        [(table,)] = conn.execute(
            "select table_name from duckdb_tables() where schema_name = 'dbt_test__audit' "
            "and table_name like 'not_null_columns_top_tracks_da%'"
        ).fetchall()
        rows = conn.execute(f'select column_name from dbt_test__audit."{table}"').fetchall()
    assert rows == [("track_id",)]
