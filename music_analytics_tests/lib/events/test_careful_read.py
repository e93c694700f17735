"""Odd and hostile event files: the bad line is quarantined with its reason, the rest loads."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from music_analytics.lib.core.crash_points import CRASH_AT
from music_analytics.lib.events.careful_read import RAW_KEPT, careful_copy
from music_analytics.lib.events.file_results import EventFileError
from music_analytics.lib.events.files import load_event_files
from music_analytics_tests.conftest import event

CAP = 4096  # max_line_bytes for these tests


@pytest.fixture
def conn(tmp_path: Path):
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as connection:
        yield connection


def good(n: int) -> bytes:
    return json.dumps(event(n)).encode()


def load(conn, *paths: Path, cap: int = CAP) -> dict:
    return {p.name: o for p, o in load_event_files(conn, list(paths), max_line_bytes=cap)}


def loaded(conn, name: str) -> list[tuple]:
    return conn.execute(
        "select line_number, stream_id from raw.stream_events "
        "where source_file like '%' || ? order by line_number",
        [name],
    ).fetchall()


def quarantined(conn, name: str) -> list[tuple]:
    return conn.execute(
        "select line_number, error_column, error, line from raw.stream_events_quarantine "
        "where source_file like '%' || ? order by line_number",
        [name],
    ).fetchall()


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (b'{"stream_id": "' + b"x" * (CAP + 10) + b'"}', f"longer than {CAP} bytes"),
        (b'{"stream_id": "caf\xe9"}', "not UTF-8 (byte 0xe9"),
        (good(90) + b"\x00" + good(91), "NUL byte"),
    ],
    ids=["too long", "not utf-8", "nul byte"],
)
def test_a_bad_line_is_quarantined_and_its_neighbours_load(conn, tmp_path, bad, reason):
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"\n".join([good(1), good(2), bad, good(4), b"", good(6)]) + b"\n")
    neighbour = tmp_path / "neighbour.ndjson"
    neighbour.write_bytes(good(7) + b"\n")
    outcomes = load(conn, path, neighbour)
    assert outcomes["events.ndjson"].status == "loaded", outcomes
    assert outcomes["events.ndjson"].rows_loaded == 4
    assert outcomes["events.ndjson"].rows_quarantined == 1
    assert outcomes["neighbour.ndjson"].status == "loaded"
    assert loaded(conn, "events.ndjson") == [
        (1, "stream_1"), (2, "stream_2"), (4, "stream_4"), (6, "stream_6"),
    ]  # fmt: skip
    [(number, column, error, raw)] = quarantined(conn, "events.ndjson")
    assert (number, column) == (3, "line") and reason in error
    assert (
        len(raw.encode()) <= RAW_KEPT * 4 and raw[:10] == bad[:10].decode("utf-8", "replace")[:10]
    )
    assert loaded(conn, "neighbour.ndjson") == [(1, "stream_7")]


def test_a_line_over_the_default_cap_is_quarantined_without_holding_it(conn, tmp_path):
    path = tmp_path / "huge.ndjson"
    with path.open("wb") as out:
        out.write(good(1) + b"\n")
        out.write(b'{"stream_id": "' + b"y" * (20 << 20) + b'"}\n')  # 20 MB, over 16 MiB
        out.write(good(3) + b"\n")
    outcomes = load(conn, path, cap=16 << 20)
    assert (outcomes["huge.ndjson"].rows_loaded, outcomes["huge.ndjson"].rows_quarantined) == (2, 1)
    [(number, _, error, raw)] = quarantined(conn, "huge.ndjson")
    assert number == 2 and "longer than 16777216 bytes" in error and len(raw) == RAW_KEPT


def test_a_bom_crlf_and_gzip_members_read_as_plain_lines(conn, tmp_path):
    bom = tmp_path / "bom.ndjson"
    bom.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join([good(1), good(2)]) + b"\r\n")
    members = tmp_path / "members.ndjson.gz"
    members.write_bytes(gzip.compress(good(3) + b"\n") + gzip.compress(good(4) + b"\n"))
    outcomes = load(conn, bom, members)
    assert [(o.rows_loaded, o.rows_quarantined) for o in outcomes.values()] == [(2, 0), (2, 0)]
    assert loaded(conn, "members.ndjson.gz") == [(1, "stream_3"), (2, "stream_4")]


def test_a_json_array_file_loads_element_n_as_line_n(conn, tmp_path):
    path = tmp_path / "array.ndjson"
    rows = [event(1), {"stream_id": "no other field"}, event(3)]
    path.write_text(json.dumps(rows, indent=2))
    outcome = load(conn, path)["array.ndjson"]
    assert (outcome.rows_loaded, outcome.rows_quarantined) == (2, 1)
    assert loaded(conn, "array.ndjson") == [(1, "stream_1"), (3, "stream_3")]
    assert [q[0] for q in quarantined(conn, "array.ndjson")] == [2]


def test_what_even_the_careful_read_cannot_take_is_rejected_with_its_reason(conn, tmp_path):
    truncated = tmp_path / "truncated.ndjson.gz"
    truncated.write_bytes(gzip.compress(good(1) + b"\n" + good(2) + b"\n")[:-12])
    deep = tmp_path / "deep-array.ndjson"
    deep.write_text("[" * 100_000)
    fine = tmp_path / "fine.ndjson"
    fine.write_bytes(good(5) + b"\n")
    outcomes = load(conn, truncated, deep, fine)
    assert isinstance(outcomes["truncated.ndjson.gz"], EventFileError)
    assert "truncated.ndjson.gz" in str(outcomes["truncated.ndjson.gz"])
    assert isinstance(outcomes["deep-array.ndjson"], EventFileError)
    assert "MUSIC_ANALYTICS_JSON_MAX_DEPTH" in str(outcomes["deep-array.ndjson"])
    assert outcomes["fine.ndjson"].status == "loaded"
    count = conn.execute(
        "select count(*) from raw.stream_events where source_file not like '%fine.ndjson'"
    ).fetchone()[0]
    assert count == 0  # nothing of the rejected files


def test_a_broken_array_is_read_as_lines_each_accounted_for(conn, tmp_path):
    path = tmp_path / "broken-array.ndjson"
    path.write_bytes(b"[" + good(1) + b",\n" + good(2) + b"\n")
    outcome = load(conn, path)["broken-array.ndjson"]
    assert (outcome.rows_loaded, outcome.rows_quarantined) == (1, 1)
    assert loaded(conn, "broken-array.ndjson") == [(2, "stream_2")]


def test_the_careful_copy_keeps_line_numbers_and_memory_flat(tmp_path):
    path = tmp_path / "mixed.ndjson"
    path.write_bytes(b"\n".join([good(1), b"\xff\xfe", b"", b"z" * 1000, good(5)]) + b"\n")
    copy = careful_copy(path, tmp_path, max_line_bytes=500)
    assert copy.lines.read_bytes().split(b"\n")[:5] == [good(1), b"", b"", b"", good(5)]
    bad = [json.loads(line) for line in copy.bad.read_text().splitlines()]
    assert [b["line_number"] for b in bad] == [2, 4] and copy.bad_count == 2
    assert bad[0]["line"] == "\\xff\\xfe"


_KILLED_CHILD = """
import sys
from pathlib import Path
import duckdb
from music_analytics.lib.events.files import load_event_files

with duckdb.connect(sys.argv[1]) as conn:
    list(load_event_files(conn, [Path(sys.argv[2])], max_line_bytes=4096))
"""


def test_a_kill_inside_a_careful_files_transaction_loses_and_doubles_nothing(tmp_path):
    """SIGKILL just before the careful file's commit: nothing of it is kept, its temp copy is
    removed by the next run, which loads it once."""
    warehouse, temp = tmp_path / "warehouse.duckdb", tmp_path / "tmp"
    temp.mkdir()
    path = tmp_path / "hostile.ndjson"
    path.write_bytes(b"\n".join([good(1), b'{"genre": "caf\xe9"}', good(3)]) + b"\n")
    env = {**os.environ, CRASH_AT: "raw_load", "TMPDIR": str(temp)}
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_CHILD, str(warehouse), str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert [p.name for p in temp.iterdir()] != []  # the killed reader's copy is left behind
    env.pop(CRASH_AT)
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_CHILD, str(warehouse), str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert list(temp.iterdir()) == []
    with duckdb.connect(str(warehouse)) as conn:
        assert loaded(conn, "hostile.ndjson") == [(1, "stream_1"), (3, "stream_3")]
        assert [q[0] for q in quarantined(conn, "hostile.ndjson")] == [2]
        assert conn.execute("select count(*) from raw.event_file_loads").fetchone() == (1,)
        assert conn.execute(
            "select count(distinct load_id) from raw.pending_rebuilds"
        ).fetchone() == (1,)
