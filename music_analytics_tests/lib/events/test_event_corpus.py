"""A generated corpus of odd event lines, each in a file beside a good line: every case is
loaded as documented or quarantined with a reason naming what is wrong, and the good line
beside it always loads. Memory stays bounded on a hostile file (a subprocess under an
address-space limit)."""

from __future__ import annotations

import json
import subprocess
import sys

import duckdb
import pytest

from music_analytics.lib.events.files import load_event_files
from music_analytics_tests.conftest import event


def with_field(**fields) -> bytes:
    row = event(500)
    row.update(fields)
    return json.dumps(row).encode()


def raw_field(name: str, raw: str) -> bytes:
    """An event whose field `name` is the raw JSON text `raw` (what json.dumps cannot write)."""
    row = event(500)
    row[name] = "__RAW__"
    return json.dumps(row).replace('"__RAW__"', raw).encode()


# (case, line, None if it loads, else a piece of the quarantine reason)
CASES = [
    ("wrong type: number id", with_field(stream_id=7), "expected a string for stream_id"),
    ("wrong type: string duration", with_field(stream_duration_seconds="240"), "whole number"),
    ("wrong type: list country", with_field(country=["US"]), "expected a string for country"),
    ("huge number", raw_field("stream_duration_seconds", "1e999"), "not a finite number"),
    ("huge integer", raw_field("stream_duration_seconds", str(2**70)), "too large"),
    # DuckDB's JSON reader takes NaN and Infinity; the check names them
    ("NaN", raw_field("stream_duration_seconds", "NaN"), "not a finite number"),
    ("Infinity", raw_field("stream_duration_seconds", "-Infinity"), "not a finite number"),
    ("not an object", b"[1, 2, 3]", "expected a JSON object"),
    ("time with Z", with_field(stream_start_time="2025-04-14T10:00:00Z"), None),
    ("time with offset", with_field(stream_start_time="2025-04-14T12:00:00+02:00"), None),
    ("time with fraction", with_field(stream_start_time="2025-04-14T10:00:00.250Z"), None),
    ("time before 1970", with_field(stream_start_time="1969-12-31 23:59:59"), "before 1970"),
    ("time after 2100", with_field(stream_start_time="2150-01-01 00:00:00"), "after 2099"),
    ("time without zone", with_field(stream_start_time="2025-04-14 10:00"), "unparseable"),
    ("completed 2", with_field(completed=2), "completed must be 0 or 1"),
    ("negative duration", with_field(stream_duration_seconds=-1), "negative"),
    ("empty genre", with_field(genre=""), "empty string"),
    ("missing field", json.dumps({"stream_id": "x"}).encode(), "missing required field"),
]


@pytest.mark.parametrize(("case", "line", "reason"), CASES, ids=[c[0] for c in CASES])
def test_each_odd_line_loads_or_is_quarantined_with_its_reason(tmp_path, case, line, reason):
    path = tmp_path / "corpus.ndjson"
    path.write_bytes(json.dumps(event(1)).encode() + b"\n" + line + b"\n")
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        [(_, outcome)] = load_event_files(conn, [path])
        loaded = conn.execute("select line_number from raw.stream_events order by 1").fetchall()
        quarantined = conn.execute(
            "select line_number, error from raw.stream_events_quarantine"
        ).fetchall()
    assert outcome.status == "loaded", (case, outcome)
    if reason is None:
        assert loaded == [(1,), (2,)] and quarantined == [], case
    else:
        assert loaded == [(1,)], case  # the good line beside it loads
        [(number, error)] = quarantined
        assert number == 2 and reason in error, (case, error)


def test_a_key_given_twice_is_read_one_way_every_time(tmp_path):
    """Duplicate keys: DuckDB's JSON reader keeps one of them; the row loads, and the same
    file always gives the same row."""
    line = json.dumps(event(1))[:-1] + ', "genre": "twice"}'
    path = tmp_path / "dup.ndjson"
    path.write_text(line + "\n")
    genres = []
    for attempt in range(2):
        with duckdb.connect(str(tmp_path / f"w{attempt}.duckdb")) as conn:
            list(load_event_files(conn, [path]))
            genres += conn.execute("select genre from raw.stream_events").fetchall()
    assert len(genres) == 2 and genres[0] == genres[1]


_CHILD = """
import resource, sys, duckdb
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[3]), int(sys.argv[3])))
from music_analytics.lib.events.files import load_event_files
with duckdb.connect(sys.argv[2], config={"memory_limit": "128MB", "threads": 1}) as conn:
    [(_, outcome)] = load_event_files(conn, [Path(sys.argv[1])], max_line_bytes=1 << 20)
    print(outcome.rows_loaded, outcome.rows_quarantined)
"""


def test_a_hostile_file_loads_under_an_address_space_limit(tmp_path):
    """Long lines, not UTF-8, NUL bytes and good lines mixed, about 120 MB: the careful read
    keeps memory flat (the limit is far below what holding the file would take)."""
    path = tmp_path / "hostile.ndjson"
    good = json.dumps(event(1)).encode() + b"\n"
    with path.open("wb") as out:
        for _ in range(40):
            out.write(good)
            out.write(b'{"stream_id": "' + b"x" * (3 << 20) + b'"}\n')  # over the 1 MiB cap
            out.write(b'{"genre": "caf\xe9"}\n')
            out.write(good[:20] + b"\x00" + good[20:])
    limit = 1500 << 20  # the interpreter, DuckDB and the stack need about 1 GB of address space
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), str(tmp_path / "w.duckdb"), str(limit)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["40", "120"]
    assert path.stat().st_size > 100 << 20
