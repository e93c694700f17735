"""A real dbt build of the DSP report marts on a tmp DuckDB, checked against the records.

Raw rows are written here the way the loader writes them (one row per record, per country, per
breakdown key); the expected mart rows are computed in Python from the spec's field names.
"""

import copy
import json
from collections import defaultdict
from datetime import date, datetime

import dagster as dg
import duckdb
import pytest

from music_analytics.definitions import build_definitions
from music_analytics.defs.partitions import partition_range_tags
from music_analytics.lib.core.settings import Settings
from music_analytics.lib.core.warehouse import ensure_raw_tables
from music_analytics_tests.conftest import module_home
from music_analytics_tests.spec_records import APPLE, SPOTIFY, YOUTUBE

DAY1, DAY2, DAY3 = date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 3)
MARTS = ("dsp_track_daily", "dsp_track_country_daily", "dsp_breakdown_daily")
ALL_MARTS = (*MARTS, "track_performance_daily")
GRAINS = {
    "dsp_track_daily": ("report_date", "dsp", "track_id"),
    "dsp_track_country_daily": ("report_date", "dsp", "track_id", "country"),
    "dsp_breakdown_daily": ("report_date", "dsp", "track_id", "dimension", "key"),
    "track_performance_daily": ("report_date", "isrc"),
}

TRACK_REF_FIELD = {
    "spotify": "spotify_track_id",
    "youtube": "youtube_video_id",
    "apple_music": "apple_track_id",
}


def variant(record: dict, **changes) -> dict:
    """A deep copy of `record` with top-level fields replaced (None removes the field)."""
    copied = copy.deepcopy(record)
    for name, value in changes.items():
        if value is None:
            copied.pop(name, None)
        else:
            copied[name] = value
    return copied


def spotify_day(total, countries: dict[str, int], **changes) -> dict:
    """The seed's Spotify record with other streams per country and in total."""
    stats = {cc: {"streams_count": n, "completion_rate": 50.0} for cc, n in countries.items()}
    aggregated = {**SPOTIFY["aggregated_data"], "total_streams": total}
    return variant(SPOTIFY, country_stats=stats, aggregated_data=aggregated, **changes)


# Missing, null and empty sections, numbers as strings, a value that is not a number, an isrc
# with spaces, hyphens and lower case
SPARSE_SPOTIFY = {
    "id": 100002,
    "track_id": 6001,
    "track_name": "Sparse",
    "isrc": " us-rc1-25-00001 ",
    "aggregated_data": {"total_streams": "250", "total_skips": None, "total_shares": "n/a"},
    "engagement_stats": [],
    "country_stats": {},
    "demographics": None,
    "device_platform_stats": {"device_types": {"cell phone": "7", "tablet": "many"}},
}
APPLE_WITHOUT_ISRC = variant(
    APPLE,
    id=400312,
    track_id=7001,
    isrc=None,
    country_stats={"US": {"plays": 50, "listeners": 40}},
    aggregated_data={"total_plays": 50.0, "total_listeners": 40},
)

REPORTS: dict[tuple[date, str], list[dict]] = {
    (DAY1, "spotify"): [SPOTIFY, SPARSE_SPOTIFY],
    (DAY1, "youtube"): [YOUTUBE],
    (DAY1, "apple_music"): [APPLE, APPLE_WITHOUT_ISRC],
    # track 5012 twice: the later record (index 2) wins, FR of the first one must vanish
    (DAY2, "spotify"): [
        spotify_day(100, {"US": 60, "FR": 40}),
        spotify_day(
            142.0, {"": 142}, id=100003, track_id=6002, track_name="B-Side", isrc="QZ-ABC-25-00001"
        ),
        spotify_day(200, {"US": 150, "GB": 50}),
    ],
    (DAY2, "youtube"): [variant(YOUTUBE, isrc="usrc12345678")],
    # day 3: Spotify leaves a country out (reconciliation warns); Apple lacks its totals
    (DAY3, "spotify"): [spotify_day(181, {"US": 142, "GB": 38})],
    (DAY3, "apple_music"): [variant(APPLE, aggregated_data=None, shazam_stats={})],
}


def number(record: dict, *path: str) -> float | None:
    """The number at `path` in a record: None when a section or field is missing or not numeric."""
    value = record
    for name in path:
        if not isinstance(value, dict) or name not in value:
            return None
        value = value[name]
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def count(record: dict, *path: str) -> int | None:
    """The number at `path` as a whole count (the marts keep counts as bigint)."""
    value = number(record, *path)
    return None if value is None else round(value)


def breakdown_rows(record: dict) -> list[tuple[str, str, float | None]]:
    """(dimension, key, value) of every section.name object of numbers, as the loader writes."""
    rows = []
    for section, body in record.items():
        if section == "country_stats" or not isinstance(body, dict):
            continue
        for name, values in body.items():
            if isinstance(values, dict):
                rows += [(f"{section}.{name}", k, number(values, k)) for k in values]
    return rows


def insert_reports(conn: duckdb.DuckDBPyConnection, reports) -> None:
    """Write the raw rows of each (day, dsp) report as the loader does, replacing the partition."""
    loaded_at = datetime(2025, 3, 4, 2, 0)
    for (day, dsp), records in reports.items():
        load_id = f"load-{dsp}-{day}"
        for table in ("dsp_report_records", "dsp_report_countries", "dsp_report_breakdowns"):
            conn.execute(f"delete from raw.{table} where dsp = ? and report_date = ?", [dsp, day])
        for index, rec in enumerate(records):
            conn.execute(
                "insert into raw.dsp_report_records values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    dsp, day, index, rec.get("id"), rec["track_id"], rec.get("track_name"),
                    rec.get("album_id"), rec.get("album_name"), rec.get("isrc"),
                    rec.get(TRACK_REF_FIELD[dsp]), json.dumps(rec), load_id, loaded_at,
                ],
            )  # fmt: skip
            for country, stats in (rec.get("country_stats") or {}).items():
                conn.execute(
                    "insert into raw.dsp_report_countries values (?, ?, ?, ?, ?, ?, ?, ?)",
                    [dsp, day, index, rec["track_id"], country, json.dumps(stats), load_id,
                     loaded_at],
                )  # fmt: skip
            for dimension, key, value in breakdown_rows(rec):
                conn.execute(
                    "insert into raw.dsp_report_breakdowns values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [dsp, day, index, rec["track_id"], dimension, key, value, load_id, loaded_at],
                )


# Where each mart measure sits in each DSP's record (the spec); a DSP not listed: NULL.
MEASURES = {
    "streams": {
        "spotify": ("aggregated_data", "total_streams"),
        "youtube": ("aggregated_data", "total_views"),
        "apple_music": ("aggregated_data", "total_plays"),
    },
    "listeners": {"apple_music": ("aggregated_data", "total_listeners")},
    "skips": {"spotify": ("aggregated_data", "total_skips")},
    "saves": {"spotify": ("aggregated_data", "total_saves")},
    "shares": {
        "spotify": ("aggregated_data", "total_shares"),
        "youtube": ("aggregated_data", "shares"),
    },
    "completion_rate": {
        "spotify": ("engagement_stats", "completion_rate"),
        "youtube": ("playback_stats", "avg_view_percentage"),
    },
    "watch_time_minutes": {"youtube": ("aggregated_data", "total_watch_time_minutes")},
    "shazams": {"apple_music": ("shazam_stats", "total_shazams")},
}
NOT_COUNTS = {"completion_rate", "watch_time_minutes"}
COUNTRY_MEASURES = {
    "streams": {"spotify": "streams_count", "youtube": "views", "apple_music": "plays"},
    "completion_rate": {"spotify": "completion_rate", "youtube": "avg_view_percentage"},
    "listeners": {"apple_music": "listeners"},
}


def kept_records(reports) -> dict[tuple, dict]:
    """(day, dsp, track_id) -> record; of a track listed twice in a report, the last one."""
    return {
        (day, dsp, rec["track_id"]): rec for (day, dsp), recs in reports.items() for rec in recs
    }


def canonical_isrc(value: str | None) -> str | None:
    """Trimmed, upper case, without hyphens; None when empty."""
    return (value or "").strip().upper().replace("-", "") or None


def pick(row: dict, *columns: str) -> dict:
    """The named columns of a row."""
    return {c: row[c] for c in columns}


def expected_track_daily(reports) -> dict[tuple, dict]:
    """dsp_track_daily's rows, keyed by grain, read from the records with the spec's names."""
    rows = {}
    for (day, dsp, track_id), rec in kept_records(reports).items():
        row = {
            "isrc": canonical_isrc(rec.get("isrc")),
            "track_name": rec.get("track_name"),
            "album_id": rec.get("album_id"),
            "album_name": rec.get("album_name"),
            "dsp_track_ref": rec.get(TRACK_REF_FIELD[dsp]),
        }
        for column, paths in MEASURES.items():
            read = number if column in NOT_COUNTS else count
            row[column] = read(rec, *paths[dsp]) if dsp in paths else None
        row["countries"] = len(rec.get("country_stats") or {})
        rows[(day, dsp, track_id)] = row
    return rows


def expected_country_daily(reports) -> dict[tuple, dict]:
    """dsp_track_country_daily's rows, keyed by grain."""
    rows = {}
    for (day, dsp, track_id), rec in kept_records(reports).items():
        for country, stats in (rec.get("country_stats") or {}).items():
            rows[(day, dsp, track_id, country)] = {
                column: (number if column == "completion_rate" else count)(stats, fields[dsp])
                if dsp in fields
                else None
                for column, fields in COUNTRY_MEASURES.items()
            }
    return rows


def expected_breakdown_daily(reports) -> dict[tuple, dict]:
    """dsp_breakdown_daily's rows, keyed by grain."""
    return {
        (day, dsp, track_id, dimension, key): {"value": value}
        for (day, dsp, track_id), rec in kept_records(reports).items()
        for dimension, key, value in breakdown_rows(rec)
    }


def expected_track_performance(reports) -> dict[tuple, dict]:
    """track_performance_daily's rows: per day and isrc, the DSPs' known streams added up."""
    streams: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    names: dict[tuple, list] = defaultdict(list)
    for (day, dsp, _), row in expected_track_daily(reports).items():
        if row["isrc"]:
            streams[(day, row["isrc"])][dsp].append(row["streams"])
            names[(day, row["isrc"])].append(row["track_name"])

    def total(values):
        known = [v for v in values if v is not None]
        return sum(known) if known else None

    return {
        grain: {
            "track_name": min(names[grain]),
            "spotify_streams": total(by_dsp.get("spotify", [])),
            "youtube_streams": total(by_dsp.get("youtube", [])),
            "apple_music_streams": total(by_dsp.get("apple_music", [])),
            "total_streams": total([v for values in by_dsp.values() for v in values]),
            "dsps_reporting": len(by_dsp),
        }
        for grain, by_dsp in streams.items()
    }


def read_marts(settings: Settings) -> dict[str, dict[tuple, dict]]:
    """Every row of the DSP marts, keyed by the mart's grain."""
    tables = {}
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        for mart, grain in GRAINS.items():
            cursor = conn.execute(f"select * from marts.{mart}")
            columns = [d[0] for d in cursor.description]
            rows = [dict(zip(columns, values, strict=True)) for values in cursor.fetchall()]
            tables[mart] = {tuple(row.pop(c) for c in grain): row for row in rows}
    return tables


def build_marts(settings: Settings, instance: dg.DagsterInstance, first: date, last: date):
    """Run daily_marts_job (one dbt build with its tests) for the days first..last."""
    job = build_definitions(settings).resolve_job_def("daily_marts_job")
    return job.execute_in_process(instance=instance, tags=partition_range_tags(first, last))


def dsp_check_evaluations(result) -> list:
    """Check evaluations of the DSP models (dbt tests)."""
    names = ("dsp_", "track_performance_daily")
    return [
        e
        for e in result.get_asset_check_evaluations()
        if any(n in e.asset_key.to_user_string() for n in names)
    ]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    with module_home(tmp_path_factory, "dsp_marts") as settings:
        with duckdb.connect(str(settings.warehouse_path)) as conn:
            ensure_raw_tables(conn)
            insert_reports(conn, REPORTS)
        instance = dg.DagsterInstance.ephemeral()
        result = build_marts(settings, instance, DAY1, DAY3)
        yield settings, instance, result, read_marts(settings)


def test_build_passes_every_check_but_warns_on_a_country_mismatch(built):
    _, _, result, _ = built
    assert result.success
    evaluations = dsp_check_evaluations(result)
    checked = {e.asset_key.to_user_string() for e in evaluations}
    assert checked == {
        "staging/stg_dsp__track_records",
        "staging/stg_dsp__country_stats",
        "staging/stg_dsp__breakdowns",
        *(f"marts/{m}" for m in ALL_MARTS),
    }
    failed = [e for e in evaluations if not e.passed]
    # day 3: Spotify's countries add up to 180 of 181 streams; a warning, not a failure
    assert [e.check_name.split("_dsp_")[0] for e in failed] == ["sum_matches_parent"]
    assert failed[0].severity == dg.AssetCheckSeverity.WARN
    assert failed[0].asset_key == dg.AssetKey(["marts", "dsp_track_country_daily"])


def test_track_daily_has_each_dsps_measures_under_one_name(built):
    *_, marts = built
    rows = marts["dsp_track_daily"]
    assert rows == expected_track_daily(REPORTS)
    # the spec's numbers, written out
    measures = ("streams", "listeners", "skips", "saves", "shares", "completion_rate")
    assert pick(rows[(DAY1, "spotify", 5012)], *measures, "shazams", "dsp_track_ref") == {
        "streams": 180,
        "listeners": None,
        "skips": 47,
        "saves": 0,
        "shares": 0,
        "completion_rate": 73.89,
        "shazams": None,
        "dsp_track_ref": "4a7b9c2d1e0f3a5b8c6d7e9f",
    }
    assert pick(rows[(DAY1, "youtube", 5012)], *measures, "watch_time_minutes") == {
        "streams": 1515,
        "listeners": None,
        "skips": None,
        "saves": None,
        "shares": 3,
        "completion_rate": 67.4,
        "watch_time_minutes": 3660.5,
    }
    assert pick(rows[(DAY1, "apple_music", 5012)], *measures, "shazams", "countries") == {
        "streams": 364,
        "listeners": 241,
        "skips": None,
        "saves": None,
        "shares": None,
        "completion_rate": None,
        "shazams": 45,
        "countries": 2,
    }


def test_missing_null_empty_and_non_numeric_values_are_null_never_zero(built):
    *_, marts = built
    sparse = marts["dsp_track_daily"][(DAY1, "spotify", 6001)]
    assert sparse["streams"] == 250  # "250", a numeric string
    assert sparse["skips"] is None  # null
    assert sparse["saves"] is None  # missing field
    assert sparse["shares"] is None  # "n/a"
    assert sparse["completion_rate"] is None  # engagement_stats: []
    assert sparse["countries"] == 0  # country_stats: {}
    assert sparse["isrc"] == "USRC12500001"  # " us-rc1-25-00001 "
    apple = marts["dsp_track_daily"][(DAY3, "apple_music", 5012)]
    assert (apple["streams"], apple["listeners"], apple["shazams"]) == (None, None, None)
    assert marts["dsp_track_daily"][(DAY2, "spotify", 6002)]["streams"] == 142  # 142.0


def test_a_track_listed_twice_in_a_report_keeps_its_last_record(built):
    *_, marts = built
    assert marts["dsp_track_daily"][(DAY2, "spotify", 5012)]["streams"] == 200
    countries = {
        grain[3]: row["streams"]
        for grain, row in marts["dsp_track_country_daily"].items()
        if grain[:3] == (DAY2, "spotify", 5012)
    }
    assert countries == {"US": 150, "GB": 50}


def test_country_rows_match_the_country_stats(built):
    *_, marts = built
    rows = marts["dsp_track_country_daily"]
    assert rows == expected_country_daily(REPORTS)
    assert rows[(DAY1, "youtube", 5012, "BR")] == {
        "streams": 305,
        "completion_rate": 55.8,
        "listeners": None,
    }
    assert rows[(DAY1, "apple_music", 5012, "JP")]["listeners"] == 30
    assert rows[(DAY2, "spotify", 6002, "")]["streams"] == 142  # '' = unknown country, kept


def test_breakdowns_keep_every_key_including_the_unknown_one(built):
    *_, marts = built
    rows = marts["dsp_breakdown_daily"]
    assert rows == expected_breakdown_daily(REPORTS)
    assert rows[(DAY1, "spotify", 5012, "demographics.genders", "")] == {"value": 13.0}
    assert rows[(DAY1, "apple_music", 5012, "shazam_stats.country_shazams", "JP")] == {
        "value": 15.0
    }
    assert rows[(DAY1, "youtube", 5012, "playback_stats.traffic_sources", "SUGGESTED")] == {
        "value": 702.0
    }
    sparse = {k[3:]: v["value"] for k, v in rows.items() if k[:3] == (DAY1, "spotify", 6001)}
    assert sparse == {
        ("device_platform_stats.device_types", "cell phone"): 7.0,
        ("device_platform_stats.device_types", "tablet"): None,
    }


def test_track_performance_adds_up_the_dsps_per_isrc(built):
    *_, marts = built
    rows = marts["track_performance_daily"]
    assert rows == expected_track_performance(REPORTS)
    assert rows[(DAY1, "USRC12345678")] == {
        "track_name": "Summer Breeze",
        "spotify_streams": 180,
        "youtube_streams": 1515,
        "apple_music_streams": 364,
        "total_streams": 180 + 1515 + 364,
        "dsps_reporting": 3,
    }
    # YouTube's lower-case isrc is the same recording; Apple did not report that day
    day2 = rows[(DAY2, "USRC12345678")]
    assert (day2["spotify_streams"], day2["youtube_streams"], day2["apple_music_streams"]) == (
        200,
        1515,
        None,
    )
    assert (day2["total_streams"], day2["dsps_reporting"]) == (1715, 2)
    # Apple reported but without totals: unknown, not zero, and the total is Spotify's alone
    day3 = rows[(DAY3, "USRC12345678")]
    assert (day3["apple_music_streams"], day3["total_streams"], day3["dsps_reporting"]) == (
        None,
        181,
        2,
    )
    # Apple's track 7001 has no isrc: left out
    assert sum(r["apple_music_streams"] or 0 for g, r in rows.items() if g[0] == DAY1) == 364


def test_rerunning_days_gives_identical_rows_and_drops_a_day_reported_empty(built):
    settings, instance, _, before = built
    # day 3's reports are replaced by empty ones (a day can legitimately hold zero records)
    with duckdb.connect(str(settings.warehouse_path)) as conn:
        insert_reports(conn, {(DAY3, "spotify"): [], (DAY3, "apple_music"): []})
    result = build_marts(settings, instance, DAY2, DAY3)
    assert result.success
    after = read_marts(settings)
    for mart in ALL_MARTS:
        assert after[mart] == {g: r for g, r in before[mart].items() if g[0] != DAY3}, mart
    evaluations = dsp_check_evaluations(result)
    assert [e.check_name for e in evaluations if not e.passed] == []
    assert any(e.check_name.startswith("sum_matches_parent") for e in evaluations)
    materialized = {
        (m.materialization.asset_key.to_user_string(), m.materialization.partition)
        for m in result.get_asset_materialization_events()
    }
    assert ("marts/dsp_track_daily", DAY3.isoformat()) in materialized
