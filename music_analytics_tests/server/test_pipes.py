"""Published pipes: parameter parsing (defaults, bounds, types) and results against plain SQL."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import pytest

from music_analytics.server.pipes import (
    PIPES,
    NoDataError,
    PipeParamError,
    parse_params,
    run_pipe,
    scanned,
)
from music_analytics.server.snapshot import MartInfo, MartSnapshot, build_snapshot
from music_analytics.server.top_tracks_pipe import month_split
from music_analytics_tests.rollup_exports import export_rollups

DAYS = [date(2025, 3, d) for d in range(1, 11)]


def fake_snapshot(last_day: date | None = date(2025, 3, 10)) -> MartSnapshot:
    infos = {
        pipe.mart: MartInfo(pipe.mart, "stream_date", DAYS[0], last_day, 100)
        for pipe in PIPES.values()
    }
    for pipe in PIPES.values():  # the rollups a pipe reads, with the columns it reads
        for mart, columns in pipe.reads.items():
            infos[mart] = MartInfo(mart, columns[0], DAYS[0], last_day, 100, columns=columns)
    return MartSnapshot(None, infos, (), 0.0)


def parse(pipe: str, **raw: str) -> dict:
    return parse_params(PIPES[pipe], raw, fake_snapshot())


def param_error(pipe: str, **raw: str) -> PipeParamError:
    with pytest.raises(PipeParamError) as caught:
        parse(pipe, **raw)
    return caught.value


@pytest.mark.parametrize(
    "pipe, days, limit",
    [
        ("top_tracks", 7, 10),
        ("genre_trends", 30, 1000),
        ("user_activity", 30, 1000),
        ("dsp_top_tracks", 7, 10),
        ("track_performance", 7, 10),
        ("listening_history", 30, 1000),
    ],
)
def test_dates_default_to_the_marts_last_days(pipe, days, limit):
    values = parse(pipe)
    assert values["end_date"] == date(2025, 3, 10)
    assert (values["end_date"] - values["start_date"]).days == days - 1
    assert values["limit"] == limit


def test_start_date_defaults_from_a_given_end_date():
    values = parse("top_tracks", end_date="2025-03-05")
    assert (values["start_date"], values["end_date"]) == (date(2025, 2, 27), date(2025, 3, 5))


def test_given_values_are_typed():
    values = parse(
        "top_tracks", start_date="2025-03-02", end_date="2025-03-03", limit="5", genre="pop"
    )
    assert values == {
        "start_date": date(2025, 3, 2),
        "end_date": date(2025, 3, 3),
        "genre": "pop",
        "country": None,
        "limit": 5,
        "start_at": None,  # no time cuts a day
        "end_at": None,
    }
    cut = parse("genre_trends", start_date="2025-03-02 10:00:00", end_date="2025-03-03 23:59:59")
    assert (cut["start_date"], cut["start_at"]) == (date(2025, 3, 2), datetime(2025, 3, 2, 10))
    assert (cut["end_date"], cut["end_at"]) == (date(2025, 3, 3), None)  # the day's last second
    assert parse("listening_history")["granularity"] == "day"
    assert parse("listening_history", granularity="hour")["granularity"] == "hour"
    assert parse("dsp_top_tracks", dsp="youtube")["dsp"] == "youtube"


@pytest.mark.parametrize(
    "pipe, raw, param",
    [
        ("top_tracks", {"limit": "0"}, "limit"),
        ("top_tracks", {"limit": "-1"}, "limit"),
        ("top_tracks", {"limit": "1001"}, "limit"),
        ("genre_trends", {"limit": "10001"}, "limit"),
        ("top_tracks", {"limit": "1.5"}, "limit"),
        ("top_tracks", {"limit": "1e3"}, "limit"),
        ("top_tracks", {"limit": "ten"}, "limit"),
        ("top_tracks", {"limit": ""}, "limit"),
        ("top_tracks", {"limit": "99999999999999999999"}, "limit"),
        ("top_tracks", {"limit": "\uff11"}, "limit"),  # a full-width digit one
        ("top_tracks", {"start_date": "yesterday"}, "start_date"),
        ("top_tracks", {"start_date": "20250301"}, "start_date"),
        ("top_tracks", {"start_date": "2025-W09-1"}, "start_date"),
        ("top_tracks", {"end_date": "2025-02-30"}, "end_date"),
        ("top_tracks", {"end_date": "2025-03-01' OR '1'='1"}, "end_date"),
        ("top_tracks", {"genre": ""}, "genre"),
        ("top_tracks", {"genre": "x" * 201}, "genre"),
        ("top_tracks", {"country": "USA"}, "country"),
        ("top_tracks", {"country": "' OR 1=1 --"}, "country"),
        ("dsp_top_tracks", {"dsp": "tidal"}, "dsp"),
        ("dsp_top_tracks", {"dsp": "Spotify"}, "dsp"),
        ("track_performance", {"isrc": "US-ABC"}, "isrc"),
        ("track_performance", {"isrc": "USABC2500001'--"}, "isrc"),
        ("listening_history", {"granularity": "week"}, "granularity"),
        ("top_tracks", {"dsp": "spotify"}, "dsp"),
        ("top_tracks", {"sql": "select 1"}, "sql"),  # `q` is SQL over the result, `sql` unknown
        ("top_tracks", {"start_date": "2025-03-05", "end_date": "2025-03-04"}, "start_date"),
    ],
)
def test_a_bad_parameter_is_named(pipe, raw, param):
    error = param_error(pipe, **raw)
    assert error.param == param
    assert str(error).startswith(f"parameter '{param}':")


def test_an_unknown_parameter_lists_the_known_ones():
    message = str(param_error("top_tracks", gnere="pop"))
    assert "unknown for pipe top_tracks" in message
    assert "genre" in message and "limit" in message


def test_the_token_parameter_is_allowed():
    assert "token" not in parse("top_tracks", token="abc", limit="3")


def test_bounds_are_inclusive():
    assert parse("top_tracks", limit="1")["limit"] == 1
    assert parse("top_tracks", limit="1000")["limit"] == 1000
    assert parse("top_tracks", limit="+7")["limit"] == 7
    assert parse("top_tracks", start_date="2025-03-04", end_date="2025-03-04")["limit"] == 10


def test_a_mart_without_exports_is_no_data():
    with pytest.raises(NoDataError, match="top_tracks_daily"):
        parse_params(PIPES["top_tracks"], {}, MartSnapshot(None, {}, (), 0.0))
    with pytest.raises(NoDataError):
        parse_params(PIPES["top_tracks"], {}, fake_snapshot(last_day=None))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Ten days of three marts written as the exporter lays them out, the top_tracks rollups
    dbt builds from them, and a snapshot of them."""
    exports = tmp_path_factory.mktemp("pipes") / "exports"
    with duckdb.connect() as conn:
        for n, day in enumerate(DAYS):
            tracks = exports / "top_tracks_daily" / f"stream_date={day}"
            tracks.mkdir(parents=True)
            conn.execute(
                f"""copy (
                    select 'track_' || (i % 13) as track_id, 'artist_' || (i % 5) as artist_id,
                           'album_' || (i % 7) as album_id,
                           -- track_0 carries two genres: pop and k-pop
                           case when i % 13 = 0 then ['pop', 'k-pop'][1 + i % 2]
                                else ['pop', 'rock', 'jazz'][1 + (i % 13) % 3] end as genre,
                           ['US', 'IN', 'BR', 'DE'][1 + i % 4] as country,
                           1 + (i * 7 + {n} * 3) % 17 as stream_count,
                           (i * 7 + {n} * 3) % 17 // 2 as completed_streams,
                           (1 + (i * 7 + {n}) % 17) * 120 as total_duration_seconds
                    from range(52) t(i)
                ) to '{tracks}/data.parquet'"""
            )
            genres = exports / "genre_trends_daily" / f"stream_date={day}"
            genres.mkdir(parents=True)
            conn.execute(
                f"""copy (
                    select genre, country, sum(stream_count) as stream_count
                    from read_parquet('{tracks}/data.parquet') group by all
                ) to '{genres}/data.parquet'"""
            )
            users = exports / "user_activity_daily" / f"stream_date={day}"
            users.mkdir(parents=True)
            conn.execute(
                f"""copy (
                    select 'user_' || i as user_id, 1 + (i + {n}) % 9 as stream_count,
                           (i + {n}) % 5 as completed_streams,
                           (1 + (i + {n}) % 9) * 200.0 as total_listening_seconds
                    from range(20 + {n}) t(i)
                ) to '{users}/data.parquet'"""
            )
    export_rollups(exports, exports.parent / "dbt_home")
    snapshot = build_snapshot(exports, exports.parent / "snapshot.duckdb")
    yield snapshot, exports
    snapshot.conn.close()


def parquet(exports, sql: str, params=()) -> list[tuple]:
    """`sql` over plain read_parquet views of the exports, independent of the snapshot."""
    with duckdb.connect() as conn:
        for mart in ("top_tracks_daily", "genre_trends_daily", "user_activity_daily"):
            conn.execute(
                f"create view {mart} as select * from "
                f"read_parquet('{exports}/{mart}/*/data.parquet', hive_partitioning = true)"
            )
        return conn.execute(sql, list(params)).fetchall()


def run(snapshot, pipe: str, **raw: str):
    values = parse_params(PIPES[pipe], raw, snapshot)
    return run_pipe(PIPES[pipe], values, snapshot), values


def test_a_genre_filter_labels_every_row_with_that_genre(exported):
    snapshot, exports = exported
    for genre in ("pop", "k-pop", "rock"):
        result, _ = run(snapshot, "top_tracks", genre=genre, limit="1000")
        names = [name for name, _ in result.columns]
        labels = {row[names.index("genre")] for row in result.rows}
        assert labels == {genre}, genre
    # without a filter, track_0's streams of both genres count, under one of their names
    every_day = {"start_date": str(DAYS[0]), "end_date": str(DAYS[-1])}
    result, _ = run(snapshot, "top_tracks", limit="1000", **every_day)
    names = [name for name, _ in result.columns]
    [track_0] = [row for row in result.rows if row[names.index("track_id")] == "track_0"]
    [(both,)] = parquet(
        exports, "select sum(stream_count) from top_tracks_daily where track_id = 'track_0'"
    )
    assert track_0[names.index("genre")] in {"pop", "k-pop"}
    assert track_0[names.index("stream_count")] == both


def test_top_tracks_equal_a_plain_sum_over_the_exports(exported):
    snapshot, exports = exported
    result, _ = run(snapshot, "top_tracks", limit="1000")
    names = [name for name, _ in result.columns]
    assert names[:2] == ["rank", "track_id"]
    got = [(r[1], r[names.index("stream_count")]) for r in result.rows]
    expected = parquet(
        exports,
        "select track_id, sum(stream_count) from top_tracks_daily "
        "where stream_date between '2025-03-04' and '2025-03-10' "
        "group by 1 order by 2 desc, 1",
    )
    assert got == expected
    assert [r[0] for r in result.rows] == list(range(1, len(expected) + 1))
    assert result.rows_before_limit == len(expected) == 13


def test_a_limit_cuts_rows_but_not_the_count_before_it(exported):
    snapshot, _ = exported
    result, _ = run(snapshot, "top_tracks", limit="3")
    assert len(result.rows) == 3
    assert result.rows_before_limit == 13


def test_genre_and_country_filters_narrow_the_sums(exported):
    snapshot, exports = exported
    result, _ = run(
        snapshot,
        "top_tracks",
        genre="rock",
        country="IN",
        start_date="2025-03-01",
        end_date="2025-03-02",
    )
    names = [name for name, _ in result.columns]
    assert {r[names.index("genre")] for r in result.rows} == {"rock"}
    got = {r[1]: r[names.index("stream_count")] for r in result.rows}
    expected = dict(
        parquet(
            exports,
            "select track_id, sum(stream_count) from top_tracks_daily where genre = 'rock' "
            "and country = 'IN' and stream_date between '2025-03-01' and '2025-03-02' group by 1",
        )
    )
    assert got == expected and expected


def test_a_filter_value_that_matches_nothing_returns_nothing(exported):
    snapshot, _ = exported
    result, _ = run(snapshot, "top_tracks", genre="' OR 1=1 --")
    assert (result.rows, result.rows_before_limit) == ([], 0)


def test_genre_trends_shares_sum_to_one_per_day(exported):
    snapshot, exports = exported
    result, _ = run(snapshot, "genre_trends", start_date="2025-03-01", end_date="2025-03-10")
    names = [name for name, _ in result.columns]
    assert names == ["stream_date", "genre", "stream_count", "share_of_day_streams"]
    expected = parquet(
        exports,
        "select stream_date, genre, sum(stream_count) from genre_trends_daily "
        "group by 1, 2 order by 1, 2",
    )
    assert [r[:3] for r in result.rows] == expected
    for day in DAYS:
        shares = [r[3] for r in result.rows if r[0] == day]
        assert sum(shares) == pytest.approx(1, abs=0.001)


def test_genre_trends_for_one_genre_keeps_its_share_of_all_genres(exported):
    snapshot, _ = exported
    every, _ = run(snapshot, "genre_trends")
    pop, _ = run(snapshot, "genre_trends", genre="pop")
    assert pop.rows == [r for r in every.rows if r[1] == "pop"]


def test_user_activity_equals_a_plain_count_over_the_exports(exported):
    snapshot, exports = exported
    result, _ = run(snapshot, "user_activity")
    expected = parquet(
        exports,
        "select stream_date, count(*), sum(stream_count) from user_activity_daily "
        "group by 1 order by 1",
    )
    assert [r[:3] for r in result.rows] == expected
    one, _ = run(snapshot, "user_activity", user_id="user_3")
    assert [r[1] for r in one.rows] == [1] * 10


def test_scanned_counts_the_rows_of_the_days_read(exported):
    snapshot, exports = exported
    _, values = run(snapshot, "top_tracks", start_date="2025-03-02", end_date="2025-03-03")
    rows, size = scanned(PIPES["top_tracks"], values, snapshot)
    assert rows == 2 * 52 and size > 0


def test_month_split_covers_every_day_once():
    first = date(2024, 12, 1)
    for offset in range(0, 120, 7):
        for length in (1, 5, 28, 31, 45, 70, 400):
            start = first + timedelta(days=offset)
            end = start + timedelta(days=length - 1)
            months, day_ranges = month_split(start, end)
            covered = [d for a, b in day_ranges for d in _days(a, b)]
            if months is not None:
                assert months[0].day == 1 and months[1].day == 1
                covered += _days(months[0], months[1] - timedelta(days=1))
            assert sorted(covered) == _days(start, end)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


@pytest.fixture(scope="module")
def months_exported(tmp_path_factory):
    """top_tracks_daily over 2025-01-20..2025-05-10 (four month boundaries), its rollups."""
    exports = tmp_path_factory.mktemp("months") / "exports"
    with duckdb.connect() as conn:
        for n, day in enumerate(_days(date(2025, 1, 20), date(2025, 5, 10))):
            folder = exports / "top_tracks_daily" / f"stream_date={day}"
            folder.mkdir(parents=True)
            conn.execute(
                f"""copy (
                    select 'track_' || ((i * 7 + {n}) % 11) as track_id,
                           'artist_' || (i % 3) as artist_id, 'album_' || (i % 4) as album_id,
                           ['pop', 'rock'][1 + ((i * 7 + {n}) % 11) % 2] as genre,
                           ['US', 'IN', 'BR'][1 + (i + {n}) % 3] as country,
                           1 + (i * 5 + {n} * 3) % 13 as stream_count,
                           cast((i + {n}) % 4 as double) as completed_streams,
                           cast((1 + i % 13) * 100 as double) as total_duration_seconds
                    from range(30) t(i)
                ) to '{folder}/data.parquet'"""
            )
    export_rollups(exports, exports.parent / "dbt_home")
    snapshot = build_snapshot(exports, exports.parent / "snapshot.duckdb")
    yield snapshot, exports
    snapshot.conn.close()


@pytest.mark.parametrize(
    "start, end",
    [
        ("2025-01-20", "2025-04-10"),  # whole months inside, days at both ends
        ("2025-02-01", "2025-04-30"),  # whole months only
        ("2025-02-01", "2025-03-31"),  # whole months, but short enough to read as days
        ("2025-01-31", "2025-02-01"),  # a boundary, no whole month
        ("2025-02-10", "2025-02-20"),  # inside one month
        ("2025-03-01", "2025-04-10"),  # a whole month and days after it
    ],
)
@pytest.mark.parametrize(
    "filters", [{}, {"genre": "rock"}, {"country": "IN"}, {"country": "BR", "genre": "pop"}]
)
def test_top_tracks_over_months_equal_the_plain_daily_sums(months_exported, start, end, filters):
    snapshot, exports = months_exported
    result, _ = run(snapshot, "top_tracks", start_date=start, end_date=end, limit="100", **filters)
    names = [name for name, _ in result.columns]
    got = [
        tuple(row[names.index(c)] for c in ("track_id", "stream_count", "completed_streams"))
        + (row[names.index("total_duration_seconds")],)
        for row in result.rows
    ]
    where = "".join(f" and {column} = ?" for column in filters)
    with duckdb.connect() as conn:
        expected = conn.execute(
            f"""select track_id, sum(stream_count), sum(completed_streams),
                       sum(total_duration_seconds)
                from read_parquet('{exports}/top_tracks_daily/*/data.parquet',
                                  hive_partitioning = true)
                where stream_date between ? and ? {where}
                group by 1 order by 2 desc, 1""",
            [start, end, *filters.values()],
        ).fetchall()
    assert got == [tuple(int(v) if isinstance(v, float) else v for v in row) for row in expected]
    assert result.rows_before_limit == len(expected)


def test_a_mart_whose_columns_changed_is_named_and_the_others_still_serve(tmp_path):
    exports = tmp_path / "exports"
    with duckdb.connect() as conn:
        for mart in ("top_tracks_daily", "top_tracks_by_day", "genre_trends_daily"):
            folder = exports / mart / "stream_date=2025-03-01"
            folder.mkdir(parents=True)
            conn.execute(
                "copy (select 'pop' as genre, 'US' as country, 5 as stream_count) "
                f"to '{folder}/data.parquet'"
            )
    snapshot = build_snapshot(exports, tmp_path / "snapshot.duckdb")
    try:
        with pytest.raises(NoDataError, match="top_tracks_by_day do not have the expected columns"):
            parse_params(PIPES["top_tracks"], {}, snapshot)
        result, _ = run(snapshot, "genre_trends")
        assert [r[2] for r in result.rows] == [5]
    finally:
        snapshot.conn.close()


def test_a_time_in_the_window_needs_the_stream_level_fact():
    with pytest.raises(NoDataError, match="fct_streams"):
        parse("top_tracks", start_date="2025-03-02 10:00:00")


def test_top_tracks_arrays_answer_as_its_sql_over_random_windows(months_exported):
    """The arrays (top_tracks_arrays.compute) against the pipe's SQL, the definition, on the
    same snapshot: windows across month boundaries, every filter, limits that cut ties."""
    import random

    from music_analytics.server import top_tracks_arrays
    from music_analytics.server.pipes import run_query

    snapshot, _ = months_exported
    pipe = PIPES["top_tracks"]
    arrays = top_tracks_arrays.load(snapshot)
    assert arrays is not None
    rng = random.Random(5)
    days = _days(date(2025, 1, 15), date(2025, 5, 15))  # a few days outside the data too
    windows = [sorted(rng.sample(days, 2)) for _ in range(150)]
    windows += [(date(1, 1, 1), date(9999, 12, 31)), (date(9999, 12, 31), date(9999, 12, 31))]
    for first, last in windows:
        raw = {
            "start_date": str(first),
            "end_date": str(last),
            "limit": str(rng.choice((1, 3, 50))),
        }
        raw.update(
            rng.choice(
                (
                    {},
                    {"genre": "rock"},
                    {"country": "BR"},
                    {"genre": "pop", "country": "US"},
                    {"genre": "none-such"},
                )
            )
        )
        values = parse_params(pipe, raw, snapshot)
        fast = top_tracks_arrays.compute(values, arrays)
        sql = run_query(snapshot.cursor(), pipe.build(values))
        assert fast.rows == [
            tuple(int(v) if not isinstance(v, str) else v for v in row) for row in sql.rows
        ], raw
        assert fast.rows_before_limit == sql.rows_before_limit, raw


def test_top_tracks_runs_its_sql_where_the_arrays_cannot_hold_the_marts():
    """A NULL in a column the arrays hold, or a snapshot without them: compute gives None,
    and run_pipe runs the SQL."""
    from music_analytics.server import top_tracks_arrays

    with duckdb.connect() as conn:
        assert top_tracks_arrays._fetch(conn, "select 1::bigint as k, null::int as t") is None
        assert top_tracks_arrays._fetch(conn, "select 1::bigint as k, 2::int as t") is not None
    values = parse("top_tracks", start_date="2025-03-01", end_date="2025-03-02")
    assert top_tracks_arrays.compute(values, None) is None
