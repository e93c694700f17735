"""Loading event files into a real DuckDB file: accounting, lineage, duplicates, bad files."""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest

from music_analytics.lib.core.landing import landing_files
from music_analytics.lib.events.files import EventFileError, load_event_file
from music_analytics_tests.conftest import event, write_lines


@pytest.fixture
def conn(tmp_path: Path):
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as connection:
        yield connection


def counts(conn) -> tuple[int, int]:
    return (
        conn.execute("select count(*) from raw.stream_events").fetchone()[0],
        conn.execute("select count(*) from raw.stream_events_quarantine").fetchone()[0],
    )


def test_loaded_plus_quarantined_equals_non_blank_lines(conn, tmp_path):
    path = write_lines(
        tmp_path / "a.ndjson",
        [event(1), "", event(2), '{"broken', event(3, completed=7), "   ", event(4)],
    )
    result = load_event_file(conn, path)
    assert (result.lines, result.rows_loaded, result.rows_quarantined) == (5, 3, 2)
    assert counts(conn) == (3, 2)
    quarantined = conn.execute(
        "select line_number, line, error_column, source_file from raw.stream_events_quarantine "
        "order by line_number"
    ).fetchall()
    assert [(q[0], q[2]) for q in quarantined] == [(4, "line"), (5, "completed")]
    assert quarantined[0][1] == '{"broken'  # verbatim
    assert quarantined[0][3] == str(path)
    lineage = conn.execute(
        "select stream_id, line_number, source_file, load_id from raw.stream_events order by 2"
    ).fetchall()
    assert [(r[0], r[1]) for r in lineage] == [("stream_1", 1), ("stream_2", 3), ("stream_4", 7)]
    assert {r[3] for r in lineage} == {result.load_id}
    assert result.days_touched == [date(2025, 4, 14)]


def test_line_numbers_hold_across_reader_buffers(conn, tmp_path):
    lines = [event(i) if i % 997 else "not json" for i in range(1, 60_001)]
    lines[30_000] = ""
    result = load_event_file(conn, write_lines(tmp_path / "big.jsonl", lines))
    expected_bad = [i for i in range(1, 60_001) if i % 997 == 0]
    got = [
        r[0]
        for r in conn.execute(
            "select line_number from raw.stream_events_quarantine order by 1"
        ).fetchall()
    ]
    assert got == expected_bad
    assert result.lines == 59_999
    first_ok = conn.execute(
        "select stream_id from raw.stream_events where line_number = 59999"
    ).fetchone()
    assert first_ok == ("stream_59999",)


def test_same_content_under_another_name_or_gzipped_is_skipped(conn, tmp_path):
    original = write_lines(tmp_path / "a.ndjson", [event(i) for i in range(10)])
    assert load_event_file(conn, original).status == "loaded"
    renamed = shutil.copy(original, tmp_path / "renamed.jsonl")
    gzipped = tmp_path / "copy.ndjson.gz"
    gzipped.write_bytes(gzip.compress(original.read_bytes()))
    for copy in (renamed, gzipped, original):
        result = load_event_file(conn, Path(copy))
        assert result.status == "duplicate"
        assert result.duplicate_of == str(original)
    assert counts(conn) == (10, 0)
    assert conn.execute("select count(*) from raw.event_file_loads").fetchone()[0] == 1


def test_gzip_file_loads(conn, tmp_path):
    path = write_lines(tmp_path / "day.ndjson.gz", [event(i) for i in range(5)] + ["{bad"])
    result = load_event_file(conn, path)
    assert (result.rows_loaded, result.rows_quarantined) == (5, 1)


def test_truncated_gzip_fails_naming_the_file_and_writes_nothing(conn, tmp_path):
    good = write_lines(tmp_path / "good.ndjson", [event(1)])
    load_event_file(conn, good)
    data = gzip.compress("".join(json.dumps(event(i)) + "\n" for i in range(2, 2000)).encode())
    broken = tmp_path / "broken.ndjson.gz"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(EventFileError, match="broken.ndjson.gz"):
        load_event_file(conn, broken)
    assert counts(conn) == (1, 0)


def test_a_line_that_is_not_utf8_is_quarantined_and_the_rest_loads(conn, tmp_path):
    path = tmp_path / "latin1.ndjson"
    path.write_bytes(json.dumps(event(1)).encode() + b"\n" + b'{"genre": "caf\xe9"}\n')
    result = load_event_file(conn, path)
    assert (result.rows_loaded, result.rows_quarantined) == (1, 1)
    [(line, error)] = conn.execute(
        "select line, error from raw.stream_events_quarantine"
    ).fetchall()
    assert line == '{"genre": "caf\\xe9"}' and "not UTF-8 (byte 0xe9" in error


def test_missing_file_is_a_clear_error(conn, tmp_path):
    with pytest.raises(EventFileError, match="does not exist"):
        load_event_file(conn, tmp_path / "nope.ndjson")


def test_empty_file_is_recorded_and_skipped_next_time(conn, tmp_path):
    path = tmp_path / "empty.ndjson"
    path.write_text("\n\n")
    assert load_event_file(conn, path).lines == 0
    assert load_event_file(conn, path).status == "duplicate"


def test_list_event_files_picks_only_event_suffixes(tmp_path):
    for name in ("a.ndjson", "b.jsonl", "c.ndjson.gz", "d.jsonl.gz", "e.json", "f.csv", "g.tmp"):
        (tmp_path / name).write_text("")
    names = sorted(p.name for p in landing_files(tmp_path, "events"))
    assert names == ["a.ndjson", "b.jsonl", "c.ndjson.gz", "d.jsonl.gz"]
