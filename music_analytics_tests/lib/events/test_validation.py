"""The SQL validator, line by line, on an in-memory DuckDB."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb
import pytest

from music_analytics.lib.events.validation import event_validation_sql
from music_analytics_tests.conftest import event


def judge(*lines: str) -> list[dict]:
    conn = duckdb.connect()
    conn.execute("create table lines (line_number bigint, line varchar)")
    conn.executemany("insert into lines values (?, ?)", list(enumerate(lines, start=1)))
    cursor = conn.execute(event_validation_sql("lines") + " order by line_number")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def test_valid_line_is_typed():
    [row] = judge(json.dumps(event(3)))
    assert row["error"] is None and row["error_column"] is None
    assert row["stream_id"] == "stream_3"
    assert row["stream_start_time"] == datetime(2025, 4, 14, 3, 3, 2)
    assert str(row["stream_date"]) == "2025-04-14"
    assert row["stream_duration_seconds"] == 103
    assert row["completed"] == 1


def test_iso_time_with_offset_is_converted_to_utc():
    [row] = judge(json.dumps(event(1, stream_start_time="2025-04-14T00:30:00+02:00")))
    assert row["error"] is None
    assert row["stream_start_time"] == datetime(2025, 4, 13, 22, 30, 0)
    assert str(row["stream_date"]) == "2025-04-13"


def test_iso_time_with_z_and_escaped_strings():
    [row] = judge(json.dumps(event(1, stream_start_time="2025-04-14T10:00:00Z", genre='r\u00e9"b')))
    assert row["error"] is None
    assert row["stream_start_time"] == datetime(2025, 4, 14, 10, 0, 0)
    assert row["genre"] == 'ré"b'


def test_extra_fields_and_boolean_completed_are_accepted():
    [row] = judge(json.dumps(event(2, completed=True, extra={"nested": [1, 2]}, other="x")))
    assert row["error"] is None and row["completed"] == 1


def test_blank_lines_are_skipped():
    rows = judge("", "   ", json.dumps(event(1)))
    assert [r["line_number"] for r in rows] == [3]


@pytest.mark.parametrize(
    ("line", "column", "message"),
    [
        ('{"stream_id": "s1", bad', "line", "malformed JSON"),
        ("[1, 2]", "line", "expected a JSON object"),
        ('"just a string"', "line", "expected a JSON object"),
        (
            json.dumps({k: v for k, v in event(1).items() if k != "user_id"}),
            "user_id",
            "missing required field user_id",
        ),
        (json.dumps(event(1, track_id=None)), "track_id", "missing required field track_id"),
        (
            json.dumps(event(1, user_id=408)),
            "user_id",
            "expected a string for user_id, got a number",
        ),
        (json.dumps(event(1, stream_id="")), "stream_id", "stream_id is an empty string"),
        (
            json.dumps(event(1, stream_start_time="yesterday")),
            "stream_start_time",
            "unparseable stream_start_time",
        ),
        (
            json.dumps(event(1, stream_start_time="2025-02-30 10:00:00")),
            "stream_start_time",
            "unparseable stream_start_time",
        ),
        (
            json.dumps(event(1, stream_start_time="2025-04-14")),
            "stream_start_time",
            "unparseable stream_start_time",
        ),
        (
            json.dumps(event(1, stream_duration_seconds="148")),
            "stream_duration_seconds",
            "expected a whole number for stream_duration_seconds, got a string",
        ),
        (
            json.dumps(event(1, stream_duration_seconds=-5)),
            "stream_duration_seconds",
            "negative stream_duration_seconds",
        ),
        (
            json.dumps(event(1, stream_duration_seconds=1.5)),
            "stream_duration_seconds",
            "not a whole number",
        ),
        (json.dumps(event(1, completed=2)), "completed", "completed must be 0 or 1, got 2"),
        (json.dumps(event(1, completed="yes")), "completed", "completed must be 0 or 1"),
        (
            json.dumps(event(1, country=["US"])),
            "country",
            "expected a string for country, got an array",
        ),
    ],
)
def test_invalid_lines_name_the_column_and_reason(line, column, message):
    [row] = judge(line)
    assert row["error_column"] == column
    assert message in row["error"]


def test_first_failing_column_is_reported():
    [row] = judge(json.dumps(event(1, user_id=None, completed=5)))
    assert row["error_column"] == "user_id"
