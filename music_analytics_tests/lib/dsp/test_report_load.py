"""Loading DSP report ZIPs into a real DuckDB file: rows per table, drift, quarantine, replacing
a partition, and a warehouse left exactly as it was by every kind of bad file."""

from __future__ import annotations

import json
import stat
import zipfile
from collections import Counter
from datetime import date
from pathlib import Path

import duckdb
import pytest

from music_analytics.lib.core.raw_writer import file_sha256
from music_analytics.lib.core.zip_safety import ZipLimits
from music_analytics.lib.dsp import report_load as dsp_report_load
from music_analytics.lib.dsp.catalog import DSP_KEYS
from music_analytics.lib.dsp.report_load import load_report_zip
from music_analytics.lib.dsp.report_zip import DspReportFileError
from music_analytics.lib.dsp.sample import write_report_zip
from music_analytics.lib.dsp.sample_report import build_report
from music_analytics_tests.spec_records import SPOTIFY

DAY = date(2026, 3, 28)
MEMBER = "analytics-report-2026-03-28.json"
TABLES = (
    "dsp_report_loads",
    "dsp_report_records",
    "dsp_report_countries",
    "dsp_report_breakdowns",
    "dsp_report_quarantine",
)

SEED_RECORD = SPOTIFY  # the Spotify record of the analytics-reports seed, verbatim


@pytest.fixture
def conn(tmp_path: Path):
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as connection:
        yield connection


def report_of(data: list, *, dsp_id: int = 1, **meta) -> dict:
    return {
        "meta": {"dsp_id": dsp_id, "date": "2026-03-28", "total_records": len(data), **meta},
        "data": data,
    }


def rows(conn, sql: str) -> list[tuple]:
    return conn.execute(sql).fetchall()


def snapshot(conn) -> dict[str, list[tuple]]:
    return {t: rows(conn, f"select * from raw.{t} order by all") for t in TABLES}


def expected_breakdowns(data: list[dict]) -> Counter:
    """The generic breakdown rule, written out independently of the loader."""
    expected: Counter = Counter()
    for index, record in enumerate(data):
        for section, content in record.items():
            if section in ("country_stats", "aggregated_data") or not isinstance(content, dict):
                continue
            for sub, values in content.items():
                if not isinstance(values, dict):
                    continue
                for key, value in values.items():
                    if isinstance(value, dict | list):
                        continue
                    number = None
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        number = float(value)
                    expected[(index, f"{section}.{sub}", key, number)] += 1
    return expected


# --- what lands where -----------------------------------------------------------------------


@pytest.mark.parametrize("dsp", DSP_KEYS)
def test_sample_report_loads_every_row(conn, tmp_path, dsp):
    report = build_report(dsp, DAY, records=150, seed=3)
    path = write_report_zip(tmp_path / f"{dsp}.zip", report)
    result = load_report_zip(conn, path, source="landing", batch_records=40)
    data = report["data"]
    countries = [
        (i, country, stats)
        for i, r in enumerate(data)
        if isinstance(r.get("country_stats"), dict)
        for country, stats in r["country_stats"].items()
    ]
    breakdowns = expected_breakdowns(data)
    assert (result.dsp, result.report_date, result.total_records) == (dsp, DAY, 150)
    assert (result.records_loaded, result.records_quarantined) == (150, 0)
    assert result.country_rows == len(countries)
    assert result.breakdown_rows == sum(breakdowns.values())
    assert result.replaced_rows == 0
    got = rows(conn, "select record_index, track_id, record from raw.dsp_report_records order by 1")
    assert [(i, r["track_id"], r) for i, r in enumerate(data)] == [
        (i, t, json.loads(text)) for i, t, text in got
    ]
    got = rows(conn, "select record_index, country, stats from raw.dsp_report_countries")
    assert sorted((i, c, json.loads(s)) for i, c, s in got) == sorted(
        countries, key=lambda row: row[:2]
    )
    got = rows(conn, "select record_index, dimension, key, value from raw.dsp_report_breakdowns")
    assert Counter(got) == breakdowns
    assert rows(conn, "select distinct dsp, report_date, load_id from raw.dsp_report_records") == [
        (dsp, DAY, result.load_id)
    ]


def test_the_seed_record(conn, tmp_path):
    path = write_report_zip(tmp_path / "seed.zip", report_of([SEED_RECORD], dsp_name="Spotify"))
    result = load_report_zip(conn, path, source="api", report_id=6)
    assert (result.records_loaded, result.country_rows, result.breakdown_rows) == (1, 2, 39)
    [record] = rows(
        conn,
        "select record_index, record_id, track_id, track_name, album_id, album_name, isrc, "
        "dsp_track_ref, record from raw.dsp_report_records",
    )
    assert record[:8] == (
        0, 100001, 5012, "Summer Breeze", 1830, "Coastal Dreams", "USRC12345678",
        "4a7b9c2d1e0f3a5b8c6d7e9f",
    )  # fmt: skip
    assert json.loads(record[8]) == SEED_RECORD
    countries = rows(conn, "select country, stats from raw.dsp_report_countries order by 1")
    assert [(c, json.loads(s)) for c, s in countries] == [
        ("GB", SEED_RECORD["country_stats"]["GB"]),
        ("US", SEED_RECORD["country_stats"]["US"]),
    ]
    breakdowns = rows(
        conn, "select dimension, key, value from raw.dsp_report_breakdowns order by all"
    )
    by_dimension: dict[str, dict[str, float]] = {}
    for dimension, key, value in breakdowns:
        by_dimension.setdefault(dimension, {})[key] = value
    assert by_dimension["demographics.genders"] == {"": 13.0, "female": 88.0, "male": 79.0}
    assert by_dimension["demographics.products"] == {
        "": 140.0,
        "duo-master": 12.0,
        "family-sub": 28.0,
    }  # noqa: E501
    assert by_dimension["demographics.access_levels"] == {"free": 56.0, "premium": 124.0}
    assert by_dimension["source_stats.source_uris"] == {"spotify:playlist:37i9dQZF1DX...": 42.0}
    assert sorted(by_dimension) == [
        "demographics.access_levels",
        "demographics.age_groups",
        "demographics.genders",
        "demographics.products",
        "device_platform_stats.device_types",
        "device_platform_stats.operating_systems",
        "device_platform_stats.repeat_usage",
        "device_platform_stats.shuffle_usage",
        "geographic_stats.connection_countries",
        "geographic_stats.geohashes",
        "geographic_stats.regions",
        "geographic_stats.reporting_countries",
        "source_stats.source_uris",
        "source_stats.sources",
    ]  # fmt: skip  (nothing for subscription_types [], totals or scalar stats)
    [load] = rows(
        conn,
        "select dsp, report_date, dsp_id, report_id, source, archive_path, content_sha256, "
        "total_records, records_loaded, records_quarantined, country_rows, breakdown_rows "
        "from raw.dsp_report_loads",
    )
    assert load == ("spotify", DAY, 1, 6, "api", str(path), file_sha256(path), 1, 1, 0, 2, 39)
    assert result.content_sha256 == file_sha256(path)


def test_schema_drift_loads_and_keeps_the_record(conn, tmp_path):
    drifted = {
        "id": 1.5,  # not integral: NULL
        "track_id": "5012",
        "track_name": 1999,
        "album_id": 1830.0,
        "isrc": None,
        "spotify_track_id": 4711,
        "data_date": None,  # unknown, not wrong
        "country_stats": [],
        "demographics": {
            "genders": {"female": 1.5, "male": "12", "x": "abc", "b": True, "n": None,
                        "nested": {"a": 1}, "list": [1], "": 142.0},
            "age_groups": None,
            "products": {},
            "subscription_types": [],
        },
        "geographic_stats": None,
        "source_stats": {},
        "device_platform_stats": [],
        "aggregated_data": {"by_hour": {"00": 5}},
        "mood_stats": {"moods": {"happy": 3}, "score": 5},  # a section nobody announced
        "label_code": "LC-1",
    }  # fmt: skip
    also = {"track_id": 5013.0, "country_stats": {"": {"streams_count": 3}, "US": None}}
    path = write_report_zip(tmp_path / "d.zip", report_of([drifted, also]))
    result = load_report_zip(conn, path, source="landing")
    assert (result.records_loaded, result.records_quarantined) == (2, 0)
    got = rows(
        conn,
        "select record_id, track_id, track_name, album_id, isrc, dsp_track_ref, record "
        "from raw.dsp_report_records order by record_index",
    )
    assert [row[:6] for row in got] == [
        (None, 5012, "1999", 1830, None, "4711"),
        (None, 5013, None, None, None, None),
    ]
    assert [json.loads(row[6]) for row in got] == [drifted, also]
    assert rows(conn, "select country, stats from raw.dsp_report_countries order by 1") == [
        ("", '{"streams_count":3}'),
        ("US", "null"),
    ]
    breakdowns = rows(
        conn, "select dimension, key, value from raw.dsp_report_breakdowns order by all"
    )
    assert breakdowns == [
        ("demographics.genders", "", 142.0),
        ("demographics.genders", "b", None),
        ("demographics.genders", "female", 1.5),
        ("demographics.genders", "male", 12.0),
        ("demographics.genders", "n", None),
        ("demographics.genders", "x", None),
        ("mood_stats.moods", "happy", 3.0),
    ]


def test_quarantine(conn, tmp_path):
    data = [
        {"track_id": 1, "data_date": "2026-03-28T00:00:00.000000Z"},
        {"track_name": "no id"},
        {"track_id": "abc"},
        {"track_id": True},
        {"track_id": 5012.5},
        {"track_id": 2, "data_date": "2026-03-27T00:00:00.000000Z"},
        {"track_id": 3, "data_date": "2026-03-28"},
        7,
    ]
    path = write_report_zip(tmp_path / "q.zip", report_of(data))
    result = load_report_zip(conn, path, source="landing", batch_records=2)
    assert (result.total_records, result.records_loaded, result.records_quarantined) == (8, 2, 6)
    assert rows(conn, "select record_index, track_id from raw.dsp_report_records order by 1") == [
        (0, 1),
        (6, 3),
    ]
    quarantined = rows(
        conn, "select record_index, record, error from raw.dsp_report_quarantine order by 1"
    )
    assert [(i, json.loads(r), e) for i, r, e in quarantined] == [
        (1, data[1], "track_id is missing"),
        (2, data[2], 'track_id is "abc", not an integer'),
        (3, data[3], "track_id is true, not an integer"),
        (4, data[4], "track_id is 5012.5, not an integer"),
        (
            5,
            data[5],
            'data_date is "2026-03-27T00:00:00.000000Z", not on the report date 2026-03-28',
        ),
        (7, 7, "the record is a JSON number, not an object"),
    ]


# --- replacing a partition ------------------------------------------------------------------


def partition_rows(conn) -> int:
    return sum(conn.execute(f"select count(*) from raw.{t}").fetchone()[0] for t in TABLES[1:])


def test_reloading_the_same_zip_replaces_the_partition(conn, tmp_path):
    path = write_report_zip(tmp_path / "s.zip", build_report("spotify", DAY, records=60, seed=1))
    first = load_report_zip(conn, path, source="landing")
    before = partition_rows(conn)
    second = load_report_zip(conn, path, source="landing")
    assert second.replaced_rows == before == partition_rows(conn)
    assert second.load_id > first.load_id  # time-ordered
    assert rows(conn, "select distinct load_id from raw.dsp_report_breakdowns") == [
        (second.load_id,)
    ]
    assert rows(conn, "select load_id from raw.dsp_report_loads order by 1") == [
        (first.load_id,),
        (second.load_id,),
    ]


def test_a_different_report_replaces_the_partition_only(conn, tmp_path):
    other_day = build_report("spotify", date(2026, 3, 27), records=20, seed=1)
    other_dsp = build_report("youtube", DAY, records=20, seed=1)
    load_report_zip(conn, write_report_zip(tmp_path / "a.zip", other_day), source="landing")
    load_report_zip(conn, write_report_zip(tmp_path / "b.zip", other_dsp), source="landing")
    old = build_report("spotify", DAY, records=50, seed=1)
    load_report_zip(conn, write_report_zip(tmp_path / "c.zip", old), source="landing")
    new = build_report("spotify", DAY, records=30, seed=2, catalog_size=30)
    result = load_report_zip(conn, write_report_zip(tmp_path / "d.zip", new), source="landing")
    assert result.records_loaded == 30
    counts = rows(
        conn,
        "select dsp, report_date, count(*), list(track_id order by record_index) "
        "from raw.dsp_report_records group by all order by all",
    )
    assert counts == [
        ("spotify", date(2026, 3, 27), 20, [r["track_id"] for r in other_day["data"]]),
        ("spotify", DAY, 30, [r["track_id"] for r in new["data"]]),
        ("youtube", DAY, 20, [r["track_id"] for r in other_dsp["data"]]),
    ]


def test_an_empty_report_empties_the_partition(conn, tmp_path):
    full = build_report("spotify", DAY, records=10, seed=1)
    load_report_zip(conn, write_report_zip(tmp_path / "a.zip", full), source="landing")
    result = load_report_zip(
        conn, write_report_zip(tmp_path / "b.zip", report_of([])), source="landing"
    )
    assert (result.total_records, result.records_loaded) == (0, 0)
    assert result.replaced_rows > 10
    assert partition_rows(conn) == 0


# --- bad files leave the warehouse exactly as it was ---------------------------------------


def zip_bytes(path: Path, text: str, member: str = MEMBER) -> Path:
    return write_report_zip(path, text.encode(), member_name=member)


def truncated(path: Path, good: Path) -> Path:
    path.write_bytes(good.read_bytes()[:-200])
    return path


def two_members(path: Path, good: Path) -> Path:
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(path, "w") as archive:
        archive.writestr(MEMBER, source.read(MEMBER))
        archive.writestr("analytics-report-2026-03-29.json", source.read(MEMBER))
    return path


def traversal(path: Path, good: Path) -> Path:
    with zipfile.ZipFile(good) as source:
        return write_report_zip(path, source.read(MEMBER), member_name="../" + MEMBER)


def symlink(path: Path, good: Path) -> Path:
    info = zipfile.ZipInfo(MEMBER)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(info, "/etc/passwd")
    return path


def bomb(path: Path, good: Path) -> Path:
    text = json.dumps(report_of([]))
    return zip_bytes(path, text[:-1] + " " * (20 << 20) + "}")


def short_total(path: Path, good: Path) -> Path:
    report = build_report("spotify", DAY, records=25, seed=9)
    report["meta"]["total_records"] = 24
    return write_report_zip(path, report)


def date_mismatch(path: Path, good: Path) -> Path:
    report = build_report("spotify", DAY, records=5, seed=9)
    return write_report_zip(path, report, member_name="analytics-report-2026-03-29.json")


def malformed_json(path: Path, good: Path) -> Path:
    text = json.dumps(build_report("spotify", DAY, records=25, seed=9))
    return zip_bytes(path, text[:-3] + "oops")


def crc_error(path: Path, good: Path) -> Path:
    text = json.dumps(build_report("spotify", DAY, records=25, seed=9))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(MEMBER, text)
    raw = bytearray(path.read_bytes())
    at = raw.rindex(b'"track_id": ') + len(b'"track_id": ')
    raw[at] = ord("9") if raw[at] != ord("9") else ord("8")
    path.write_bytes(bytes(raw))
    return path


def wrong_dsp(path: Path, good: Path) -> Path:
    return good  # loaded with expected_dsp_id=3 below


@pytest.mark.parametrize(
    ("make_bad", "fragment"),
    [
        (truncated, "not a readable ZIP file"),
        (two_members, "exactly one member"),
        (traversal, "path components"),
        (symlink, "symbolic link"),
        (bomb, "compression ratio"),
        (short_total, "meta.total_records is 24 but data holds 25"),
        (date_mismatch, "does not match the date 2026-03-29 of member"),
        (malformed_json, "not valid JSON"),
        (crc_error, "Bad CRC-32"),
        (wrong_dsp, "but 3 (YouTube) was expected"),
    ],
)
def test_a_bad_file_leaves_the_warehouse_unchanged(conn, tmp_path, make_bad, fragment):
    good = write_report_zip(tmp_path / "good.zip", build_report("spotify", DAY, records=20, seed=1))
    load_report_zip(conn, good, source="landing")
    before = snapshot(conn)
    bad = make_bad(tmp_path / "bad.zip", good)
    with pytest.raises(DspReportFileError) as caught:
        load_report_zip(
            conn,
            bad,
            source="landing",
            batch_records=4,  # several batches are inserted before the late failures
            expected_dsp_id=3 if make_bad is wrong_dsp else None,
        )
    assert fragment in str(caught.value)
    assert bad.name in str(caught.value)
    assert snapshot(conn) == before
    # The connection is usable (no transaction left open) and the good file still loads.
    assert load_report_zip(conn, good, source="landing").records_loaded == 20


def test_a_database_error_mid_load_rolls_back(conn, tmp_path, monkeypatch):
    good = write_report_zip(
        tmp_path / "good.zip", build_report("apple_music", DAY, records=20, seed=1)
    )  # noqa: E501
    load_report_zip(conn, good, source="landing")
    before = snapshot(conn)
    flush = dsp_report_load._flush
    calls = []

    def failing_flush(*args):
        calls.append(1)
        if len(calls) == 3:
            raise duckdb.IOException("disk full")
        flush(*args)

    monkeypatch.setattr(dsp_report_load, "_flush", failing_flush)
    other = write_report_zip(
        tmp_path / "o.zip", build_report("apple_music", DAY, records=20, seed=2)
    )  # noqa: E501
    with pytest.raises(duckdb.IOException, match="disk full"):
        load_report_zip(conn, other, source="landing", batch_records=5)
    assert snapshot(conn) == before


def test_limits_are_passed_through(conn, tmp_path):
    path = write_report_zip(tmp_path / "s.zip", build_report("spotify", DAY, records=20, seed=1))
    with pytest.raises(DspReportFileError, match="over the cap of 1000"):
        load_report_zip(conn, path, source="landing", limits=ZipLimits(max_uncompressed_bytes=1000))
    assert rows(conn, "select count(*) from duckdb_tables() where schema_name = 'raw'") == [(0,)]
