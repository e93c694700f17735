"""Reading DSP report ZIPs: archive safety, meta, incremental records, every way a file breaks."""

from __future__ import annotations

import json
import zipfile
from datetime import date
from pathlib import Path

import pytest

from music_analytics.lib.core.zip_safety import ZipLimits
from music_analytics.lib.dsp.report_zip import (
    DspReportFileError,
    ReportMeta,
    iter_report_records,
    read_report_meta,
    validate_report_zip,
)
from music_analytics.lib.dsp.sample import write_report_zip
from music_analytics.lib.dsp.sample_report import build_report

DAY = date(2026, 3, 28)
MEMBER = "analytics-report-2026-03-28.json"


def meta(**overrides) -> dict:
    value = {
        "dsp_id": 1,
        "dsp_name": "Spotify",
        "date": "2026-03-28",
        "total_records": 2,
        "generated_at": "2026-03-29T10:15:30+00:00",
        "generated_by": 42,
    }
    value.update(overrides)
    return value


def records(n: int = 2) -> list[dict]:
    return [{"id": 100 + i, "track_id": 5000 + i, "country_stats": {"US": {"streams_count": 142.5}}}
            for i in range(n)]  # fmt: skip


def zip_text(path: Path, text: str | bytes, member: str = MEMBER) -> Path:
    data = text.encode() if isinstance(text, str) else text
    return write_report_zip(path, data, member_name=member)


def expect_error(path: Path, *fragments: str, **kwargs) -> DspReportFileError:
    """validate_report_zip fails naming the file and every fragment."""
    with pytest.raises(DspReportFileError) as caught:
        validate_report_zip(path, **kwargs)
    message = str(caught.value)
    assert path.name in message
    for fragment in fragments:
        assert fragment in message, message
    return caught.value


def test_reads_meta_and_records_incrementally(tmp_path):
    report = build_report("youtube", DAY, records=25, seed=3)
    path = write_report_zip(tmp_path / "youtube.zip", report)
    expected = ReportMeta("youtube", 3, DAY, 25, "2026-03-29T10:15:30+00:00", MEMBER)
    assert read_report_meta(path) == expected
    assert validate_report_zip(path, expected_dsp_id=3, expected_date=DAY) == expected
    got = iter_report_records(path)
    assert next(got) == report["data"][0]  # a generator: one record at a time
    assert [report["data"][0], *got] == report["data"]


def test_numbers_are_int_or_float_never_decimal(tmp_path):
    path = zip_text(tmp_path / "r.zip", json.dumps({"meta": meta(), "data": records()}))
    [first, _] = iter_report_records(path)
    assert type(first["track_id"]) is int
    assert type(first["country_stats"]["US"]["streams_count"]) is float


def test_data_before_meta_still_reads(tmp_path):
    text = json.dumps({"data": records(), "extra": {"x": [1, 2]}, "meta": meta()})
    path = zip_text(tmp_path / "r.zip", text)
    assert read_report_meta(path).total_records == 2
    assert validate_report_zip(path).dsp == "spotify"
    assert len(list(iter_report_records(path))) == 2


def test_empty_reports(tmp_path):
    empty = zip_text(tmp_path / "a.zip", json.dumps({"meta": meta(total_records=0), "data": []}))
    assert validate_report_zip(empty).total_records == 0
    no_data = zip_text(tmp_path / "b.zip", json.dumps({"meta": meta(total_records=0)}))
    assert validate_report_zip(no_data).total_records == 0
    assert list(iter_report_records(no_data)) == []


# --- archive problems (the checks themselves: lib/core/test_zip_safety.py) --------------------


def good_zip(path: Path) -> Path:
    return zip_text(path, json.dumps({"meta": meta(), "data": records()}))


def test_not_a_zip_and_missing_file(tmp_path):
    path = tmp_path / "report.zip"
    path.write_bytes(b"PK\x03\x04 definitely not a zip")
    expect_error(path, "not a readable ZIP file")
    expect_error(tmp_path / "absent.zip", "no such file")


def test_two_members(tmp_path):
    path = tmp_path / "report.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(MEMBER, json.dumps({"meta": meta(), "data": records()}))
        archive.writestr("readme.txt", "hi")
    expect_error(path, "exactly one member", "found 2")


@pytest.mark.parametrize(
    "name",
    [
        "../analytics-report-2026-03-28.json",
        "/analytics-report-2026-03-28.json",
        "reports/analytics-report-2026-03-28.json",
        "..\\analytics-report-2026-03-28.json",
    ],
)
def test_member_with_path_components(tmp_path, name):
    path = zip_text(tmp_path / "report.zip", json.dumps({"meta": meta(), "data": []}), name)
    expect_error(path, "path components")


def test_overlapping_entries_are_refused_as_a_crafted_file(tmp_path):
    path = good_zip(tmp_path / "report.zip")
    raw = bytearray(path.read_bytes())
    central = raw.index(b"PK\x01\x02")
    # The one entry now claims more compressed bytes than lie before the central directory.
    raw[central + 20 : central + 24] = (central + 1).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    expect_error(path, "overlaps the central directory", "ask the sender for a new file")


def test_empty_archive(tmp_path):
    path = tmp_path / "report.zip"
    zipfile.ZipFile(path, "w").close()
    expect_error(path, "no members")


def test_member_with_wrong_name(tmp_path):
    path = zip_text(tmp_path / "report.zip", "{}", "analytics-report-2026-3-28.json")
    expect_error(path, "is not named analytics-report-YYYY-MM-DD.json")
    path = zip_text(tmp_path / "report.zip", "{}", "analytics-report-2026-02-30.json")
    expect_error(path, "is not named")


def test_directory_member(tmp_path):
    path = tmp_path / "report.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo("analytics-report-2026-03-28.json/"), "")
    expect_error(path, "path components")


def bomb(path: Path) -> Path:
    """A valid report padded with 20 MB of spaces: deflates about 1000:1."""
    text = json.dumps({"meta": meta(total_records=0), "data": []})
    return zip_text(path, text[:-1] + " " * (20 << 20) + "}")


def test_zip_bomb_by_ratio(tmp_path):
    path = bomb(tmp_path / "report.zip")
    expect_error(path, "compression ratio", "over the cap of 100:1", "DSP_REPORT_MAX_RATIO")
    # With generous caps it is a valid (empty) report.
    assert validate_report_zip(path, limits=ZipLimits(max_ratio=10_000)).total_records == 0


def test_zip_bomb_by_size(tmp_path):
    path = bomb(tmp_path / "report.zip")
    expect_error(
        path,
        "declares",
        "over the cap of 1000000",
        "raise the cap (DSP_REPORT_MAX_MB)",
        limits=ZipLimits(1_000_000, max_ratio=1e9),
    )


# --- JSON and meta problems ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"meta": {"dsp_id": 1,', "not valid JSON: parse error"),
        ('{"meta": ' + json.dumps(meta()) + ', "data": [{"track_id": 1}, {"trac', "parse error"),
        (json.dumps({"meta": meta(total_records=0), "data": []}) + " trailing", "trailing garbage"),
        ("[1, 2]", "not a JSON object with meta and data"),
        ("", "not valid JSON"),
    ],
)
def test_malformed_json(tmp_path, text, fragment):
    expect_error(zip_text(tmp_path / "report.zip", text), fragment)


@pytest.mark.parametrize(
    ("report", "fragment"),
    [
        ({"data": []}, "no top-level meta object"),
        ({"meta": [1], "data": []}, "meta in analytics-report-2026-03-28.json is a list"),
        ({"meta": meta(dsp_id=2), "data": records()}, "meta.dsp_id is 2, expected one of 1, 3, 4"),
        ({"meta": meta(dsp_id=True), "data": records()}, "meta.dsp_id is True"),
        ({"meta": meta(date="28/03/2026"), "data": records()}, "expected a YYYY-MM-DD date"),
        (
            {"meta": meta(date="2026-03-27"), "data": records()},
            "meta.date 2026-03-27 does not match the date 2026-03-28 of member",
        ),
        ({"meta": meta(total_records=-1), "data": []}, "meta.total_records is -1"),
        ({"meta": meta(total_records="2"), "data": records()}, "meta.total_records is '2'"),
        ({"meta": meta(total_records=3), "data": records()}, "total_records is 3 but data holds 2"),
        ({"meta": meta(total_records=1), "data": records()}, "total_records is 1 but data holds 2"),
        ({"meta": meta()}, "no data array but meta.total_records is 2"),
        (
            {"meta": meta(), "data": {"item": {"track_id": 1}}},
            "data in analytics-report-2026-03-28",
        ),
        ({"meta": meta(total_records=0), "data": "none"}, "is a JSON string, not an array"),
    ],
)
def test_bad_meta_or_data(tmp_path, report, fragment):
    expect_error(zip_text(tmp_path / "report.zip", json.dumps(report)), fragment)


def test_integral_float_meta_numbers_are_accepted(tmp_path):
    path = zip_text(tmp_path / "r.zip", json.dumps({"meta": meta(total_records=2.0, dsp_id=4.0),
                                                    "data": records()}))  # fmt: skip
    assert validate_report_zip(path).dsp == "apple_music"


def test_expected_dsp_and_date(tmp_path):
    path = good_zip(tmp_path / "report.zip")
    expect_error(path, "meta.dsp_id is 1 (Spotify) but 3 (YouTube) was expected", expected_dsp_id=3)
    expect_error(
        path, "the report is for 2026-03-28 but 2026-03-29 was expected",
        expected_date=date(2026, 3, 29),
    )  # fmt: skip
    with pytest.raises(DspReportFileError, match="but 3 \\(YouTube\\) was expected"):
        read_report_meta(path, expected_dsp_id=3)
