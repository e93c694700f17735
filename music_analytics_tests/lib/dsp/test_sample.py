"""The sample DSP report generator: shapes per DSP, exact totals, shared catalogue, drift, files."""

from __future__ import annotations

import json
import zipfile
from datetime import date

import pytest

from music_analytics.lib.dsp.catalog import DSP_KEYS, dsp_by_key
from music_analytics.lib.dsp.report_zip import validate_report_zip
from music_analytics.lib.dsp.sample import generate_dsp_reports, write_report_zip
from music_analytics.lib.dsp.sample_report import build_report

DAY = date(2026, 3, 28)
# The aggregated total and the per-country field that must add up to it, per DSP.
TOTALS = {
    "spotify": ("total_streams", "streams_count"),
    "youtube": ("total_views", "views"),
    "apple_music": ("total_plays", "plays"),
}
SECTIONS = {
    "spotify": {
        "country_stats", "demographics", "aggregated_data", "content_type_stats",
        "geographic_stats", "device_platform_stats", "source_stats", "engagement_stats",
        "timestamp_reliability",
    },
    "youtube": {"country_stats", "aggregated_data", "playback_stats", "geographic_stats"},
    "apple_music": {
        "country_stats", "aggregated_data", "shazam_stats", "demographics", "source_stats"
    },
}  # fmt: skip
COMMON_FIELDS = {
    "id", "data_date", "dsp_name", "track_id", "track_name", "album_id", "album_name", "isrc",
    "created_at", "updated_at",
}  # fmt: skip


@pytest.fixture(scope="module")
def reports() -> dict[str, dict]:
    return {dsp: build_report(dsp, DAY, records=600, seed=7) for dsp in DSP_KEYS}


@pytest.mark.parametrize("dsp", DSP_KEYS)
def test_meta_and_record_shapes(reports, dsp):
    info = dsp_by_key(dsp)
    report = reports[dsp]
    assert report["meta"] == {
        "dsp_id": info.dsp_id,
        "dsp_name": info.name,
        "date": "2026-03-28",
        "total_records": 600,
        "generated_at": "2026-03-29T10:15:30+00:00",
        "generated_by": 42,
    }
    data = report["data"]
    assert len(data) == 600
    assert len({r["track_id"] for r in data}) == 600  # one record per track
    assert len({r["id"] for r in data}) == 600
    for record in data:
        assert set(record) >= COMMON_FIELDS
        assert record["dsp_name"] == info.name
        assert record["data_date"] == "2026-03-28T00:00:00.000000Z"
        assert isinstance(record[info.track_ref_field], str)
        assert len(record["isrc"]) == 12
    # Most records have every section of the spec; drift touches only a few.
    complete = [r for r in data if SECTIONS[dsp] <= set(r)]
    assert len(complete) > 0.9 * len(data)


@pytest.mark.parametrize("dsp", DSP_KEYS)
def test_country_numbers_add_up_to_the_aggregated_total(reports, dsp):
    total_field, country_field = TOTALS[dsp]
    compared = 0
    for record in reports[dsp]["data"]:
        countries, totals = record.get("country_stats"), record.get("aggregated_data")
        if isinstance(countries, dict) and countries and isinstance(totals, dict) and totals:
            assert sum(c[country_field] for c in countries.values()) == totals[total_field]
            compared += 1
    assert compared > 500


def test_streams_are_heavy_tailed(reports):
    streams = sorted(
        (r["aggregated_data"]["total_streams"] for r in reports["spotify"]["data"]
         if isinstance(r.get("aggregated_data"), dict)),
        reverse=True,
    )  # fmt: skip
    top_tenth = sum(streams[: len(streams) // 10])
    assert top_tenth > 0.3 * sum(streams)  # the head dominates, as in a Zipf law
    assert streams[0] > 20 * streams[len(streams) // 2]


def test_catalogue_is_shared_across_dsps(reports):
    def tracks(dsp):
        return {
            r["track_id"]: (r["isrc"], r["track_name"], r["album_id"], r["album_name"])
            for r in reports[dsp]["data"]
        }

    spotify, youtube, apple = tracks("spotify"), tracks("youtube"), tracks("apple_music")
    assert set(spotify) == set(youtube) == set(apple)  # a day's tracks are the same everywhere
    for track_id in spotify:
        assert spotify[track_id] == youtube[track_id] == apple[track_id]


def test_the_drift_of_real_files_is_present():
    data = build_report("spotify", DAY, records=2000, seed=11)["data"]
    spec = SECTIONS["spotify"]
    values = [r.get(s, "missing") for r in data for s in spec]
    assert "missing" in values
    assert None in values
    assert {} in values
    assert [] in values
    assert any(set(r) - spec - COMMON_FIELDS - {"spotify_track_id"} for r in data)  # unknown
    country_counts = [
        c["streams_count"]
        for r in data
        if isinstance(r.get("country_stats"), dict)
        for c in r["country_stats"].values()
    ]
    assert any(isinstance(v, float) for v in country_counts)
    assert any(isinstance(v, int) for v in country_counts)
    assert any("" in r["country_stats"] for r in data if isinstance(r.get("country_stats"), dict))
    genders = [
        r["demographics"].get("genders") for r in data if isinstance(r.get("demographics"), dict)
    ]  # noqa: E501
    assert any(isinstance(g, dict) and "" in g for g in genders)


def test_reproducible_from_the_seed():
    assert build_report("youtube", DAY, records=50, seed=1) == build_report(
        "youtube", DAY, records=50, seed=1
    )
    assert build_report("youtube", DAY, records=50, seed=1) != build_report(
        "youtube", DAY, records=50, seed=2
    )


def test_argument_errors():
    with pytest.raises(ValueError, match="unknown DSP 'deezer'"):
        build_report("deezer", DAY, records=1, seed=1)
    with pytest.raises(ValueError, match="catalog_size 10 is smaller than records 20"):
        build_report("spotify", DAY, records=20, seed=1, catalog_size=10)
    assert build_report("spotify", DAY, records=0, seed=1)["data"] == []


def test_write_report_zip(tmp_path):
    report = build_report("apple_music", DAY, records=30, seed=1)
    path = write_report_zip(tmp_path / "a.zip", report)
    with zipfile.ZipFile(path) as archive:
        [info] = archive.infolist()
        assert info.filename == "analytics-report-2026-03-28.json"
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert json.loads(archive.read(info)) == report
    raw = write_report_zip(tmp_path / "b.zip", b"not json", member_name="x.json")
    with zipfile.ZipFile(raw) as archive:
        assert archive.read("x.json") == b"not json"
    with pytest.raises(ValueError, match="pass member_name"):
        write_report_zip(tmp_path / "c.zip", b"{}")


def test_generate_dsp_reports(tmp_path):
    paths = generate_dsp_reports(tmp_path / "a", start=DAY, days=2, records_per_report=40, seed=5)
    assert [p.name for p in paths] == [
        f"{dsp}-{day}.zip" for day in ("2026-03-28", "2026-03-29") for dsp in DSP_KEYS
    ]
    for path in paths:
        meta = validate_report_zip(path)
        assert path.name == f"{meta.dsp}-{meta.report_date}.zip"
        assert meta.total_records == 40
    again = generate_dsp_reports(tmp_path / "b", start=DAY, days=2, records_per_report=40, seed=5)
    assert [p.read_bytes() for p in paths] == [p.read_bytes() for p in again]
    # A generated file holds what build_report returns for the same arguments.
    with zipfile.ZipFile(paths[0]) as archive:
        written = json.loads(archive.read("analytics-report-2026-03-28.json"))
    assert written == build_report("spotify", DAY, records=40, seed=5)
