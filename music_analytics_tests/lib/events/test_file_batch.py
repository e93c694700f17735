"""Many event files in one call: skipped before reading, read and committed in batches, each
file whole or not at all."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from music_analytics.lib.core.crash_points import CRASH_AT
from music_analytics.lib.events import files
from music_analytics.lib.events.files import EventFileError, load_event_files
from music_analytics_tests.conftest import event, write_lines


@pytest.fixture
def conn(tmp_path: Path):
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as connection:
        yield connection


def outcomes(conn, paths) -> dict[str, object]:
    return {path.name: outcome for path, outcome in load_event_files(conn, paths)}


def statuses(conn, paths) -> dict[str, str]:
    return {
        name: "error" if isinstance(o, EventFileError) else o.status
        for name, o in outcomes(conn, paths).items()
    }


def numbered_file(path: Path, index: int, lines: int, *, trailing_newline: bool = True) -> Path:
    """A file whose line n is an event `f<index>_l<n>`, with blank, whitespace-only and invalid
    lines among them (their numbers are known too)."""
    text = []
    for n in range(1, lines + 1):
        if n % 11 == 0:
            text.append("")
        elif n % 13 == 0:
            text.append("   ")
        elif n % 17 == 0:
            text.append(f'{{"not an event": "f{index}_l{n}"}}')
        else:
            text.append(json.dumps(event(n, stream_id=f"f{index}_l{n}")))
    data = "\n".join(text) + ("\n" if trailing_newline and text else "")
    path.write_bytes(gzip.compress(data.encode()) if path.name.endswith(".gz") else data.encode())
    return path


def many_files(folder: Path) -> dict[Path, int]:
    """Files of every shape that matters to line numbering: empty, one line, no final newline,
    gzip, larger than one reader buffer; path -> its number of lines."""
    folder.mkdir(exist_ok=True)
    sizes = [0, 1, 40, 5, 30_000, 17, 2_000, 1, 90_000, 300, 12, 3, 2, 45_000, 700, 4]
    made = {}
    for index, size in enumerate(sizes):
        name = f"day-{index:02}.ndjson" + (".gz" if index % 3 == 1 else "")
        made[numbered_file(folder / name, index, size, trailing_newline=index % 4 != 2)] = size
    return made


def expected_lines(size: int) -> tuple[list[int], list[int]]:
    """(numbers of valid lines, numbers of quarantined lines) of a numbered file."""
    numbers = [n for n in range(1, size + 1) if n % 11 and n % 13]
    return [n for n in numbers if n % 17], [n for n in numbers if n % 17 == 0]


@pytest.mark.parametrize("batch_bytes", [files.BATCH_BYTES, 200_000], ids=["one", "several"])
def test_line_numbers_are_exact_per_file_in_a_batch(conn, tmp_path, monkeypatch, batch_bytes):
    monkeypatch.setattr(files, "BATCH_BYTES", batch_bytes)
    conn.execute("set threads = 8")  # more readers than files in flight: order must still hold
    made = many_files(tmp_path / "in")
    results = outcomes(conn, list(made))
    for path, size in made.items():
        valid, bad = expected_lines(size)
        result = results[path.name]
        assert (result.status, result.rows_loaded, result.rows_quarantined) == (
            "loaded",
            len(valid),
            len(bad),
        ), path.name
        rows = conn.execute(
            "select line_number, stream_id, load_id from raw.stream_events "
            "where source_file = ? order by line_number",
            [str(path)],
        ).fetchall()
        index = int(path.name[4:6])
        assert [(r[0], r[1]) for r in rows] == [(n, f"f{index}_l{n}") for n in valid]
        assert {r[2] for r in rows} <= {result.load_id}
        quarantined = conn.execute(
            "select line_number, line from raw.stream_events_quarantine "
            "where source_file = ? order by line_number",
            [str(path)],
        ).fetchall()
        assert quarantined == [(n, f'{{"not an event": "f{index}_l{n}"}}') for n in bad]
    loads = conn.execute(
        "select count(*), sum(lines), count(distinct load_id) from raw.event_file_loads"
    ).fetchone()
    assert loads == (
        len(made),
        sum(len(v) + len(b) for v, b in map(expected_lines, made.values())),
        len(made),
    )
    assert conn.execute("select count(*) from duckdb_tables() where temporary").fetchone() == (0,)


def duckdb_opened(conn) -> set[str]:
    """Names of the files DuckDB opened since logging was enabled."""
    rows = conn.execute(
        "select message from duckdb_logs where type = 'FileSystem' and message like '%\"OPEN\"%'"
    ).fetchall()
    return {Path(json.loads(m)["path"]).name for (m,) in rows}


def test_loaded_files_are_skipped_before_duckdb_reads_them(conn, tmp_path):
    a = write_lines(tmp_path / "a.ndjson", [event(i) for i in range(10)])
    b = write_lines(tmp_path / "b.ndjson.gz", [event(i) for i in range(10, 15)])
    assert statuses(conn, [a, b]) == {"a.ndjson": "loaded", "b.ndjson.gz": "loaded"}
    copy_of_a = Path(shutil.copy(a, tmp_path / "copy-of-a.jsonl"))
    new = write_lines(tmp_path / "new.ndjson", [event(99)])
    conn.execute("call enable_logging('FileSystem')")
    results = outcomes(conn, [a, b, copy_of_a, new])
    assert {n: r.status for n, r in results.items()} == {
        "a.ndjson": "duplicate",
        "b.ndjson.gz": "duplicate",
        "copy-of-a.jsonl": "duplicate",
        "new.ndjson": "loaded",
    }
    assert results["copy-of-a.jsonl"].duplicate_of == str(a)
    assert results["b.ndjson.gz"].duplicate_of == str(b)
    assert duckdb_opened(conn) & {"a.ndjson", "b.ndjson.gz", "copy-of-a.jsonl", "new.ndjson"} == {
        "new.ndjson"
    }
    assert conn.execute("select count(*) from raw.stream_events").fetchone() == (16,)


def test_an_unchanged_file_is_not_even_hashed(conn, tmp_path):
    """Path, size and mtime_ns as recorded: the file is trusted without opening it (so a
    rewrite that keeps all three, which only a deliberate touch does, would go unseen)."""
    path = write_lines(tmp_path / "a.ndjson", [event(1), event(2)])
    [(_, first)] = load_event_files(conn, [path])
    stat = path.stat()
    path.write_bytes(b"x" * stat.st_size)  # other content, same size...
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # ...and the same mtime
    [(_, again)] = load_event_files(conn, [path])
    assert (again.status, again.content_sha256) == ("duplicate", first.content_sha256)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # touched: hashed and read
    [(_, touched)] = load_event_files(conn, [path])
    assert (touched.status, touched.rows_quarantined) == ("loaded", 1)


def test_same_content_twice_in_one_call_loads_once(conn, tmp_path):
    a = write_lines(tmp_path / "a.ndjson", [event(i) for i in range(5)])
    gz = tmp_path / "a-again.ndjson.gz"
    gz.write_bytes(gzip.compress(a.read_bytes()))
    results = list(load_event_files(conn, [a, gz, a]))
    assert [(p.name, r.status) for p, r in results] == [
        ("a.ndjson", "loaded"),
        ("a-again.ndjson.gz", "duplicate"),
        ("a.ndjson", "duplicate"),
    ]
    assert {r.duplicate_of for _, r in results[1:]} == {str(a)}
    assert conn.execute("select count(*) from raw.stream_events").fetchone() == (5,)


def test_a_bad_file_is_rejected_alone_and_the_rest_of_its_batch_loads(conn, tmp_path):
    good = [
        write_lines(tmp_path / f"good-{i}.ndjson", [event(10 * i + j) for j in range(3)])
        for i in range(5)
    ]
    latin1 = tmp_path / "latin1.ndjson"  # hashes fine; DuckDB refuses it, the careful read not
    latin1.write_bytes(json.dumps(event(1)).encode() + b"\n" + b'{"genre": "caf\xe9"}\n')
    data = gzip.compress("".join(json.dumps(event(i)) + "\n" for i in range(2000)).encode())
    truncated = tmp_path / "truncated.ndjson.gz"
    truncated.write_bytes(data[: len(data) // 2])
    not_gzip = tmp_path / "plain-text.ndjson.gz"
    not_gzip.write_text(json.dumps(event(3)) + "\n")
    paths = [good[0], latin1, good[1], good[2], truncated, good[3], not_gzip, good[4]]
    results = outcomes(conn, paths)
    for bad in (truncated, not_gzip):
        error = results[bad.name]
        assert isinstance(error, EventFileError) and str(bad) in str(error), bad.name
    # the line that is not UTF-8 is quarantined, its neighbour loads
    assert (results["latin1.ndjson"].rows_loaded, results["latin1.ndjson"].rows_quarantined) == (
        1,
        1,
    )
    assert [results[g.name].status for g in good] == ["loaded"] * 5
    assert conn.execute(
        "select count(*), count(distinct source_file) from raw.stream_events"
    ).fetchone() == (16, 6)
    assert conn.execute("select count(*) from raw.event_file_loads").fetchone() == (6,)
    assert conn.execute("select count(*) from duckdb_tables() where temporary").fetchone() == (0,)


def test_a_missing_file_is_reported_and_the_others_load(conn, tmp_path):
    good = write_lines(tmp_path / "good.ndjson", [event(1)])
    results = outcomes(conn, [tmp_path / "gone.ndjson", good])
    assert "does not exist" in str(results["gone.ndjson"])
    assert results["good.ndjson"].status == "loaded"


CHILD = """
import os, signal, sys
from pathlib import Path
import duckdb
from music_analytics.lib.events import files

files.BATCH_BYTES = int(sys.argv[2])
if sys.argv[3] == "at-once":
    os.environ["{crash_at}"] = "raw_load"
conn = duckdb.connect(sys.argv[1])
paths = [Path(p) for p in sys.argv[4:]]
for path, result in files.load_event_files(conn, paths):
    print(path.name, result.status, flush=True)
    # the next batch is killed inside its transaction, just before its commit
    os.environ["{crash_at}"] = "raw_load"
"""


def _killed_load(warehouse: Path, paths: list[Path], batch_bytes: int, when: str):
    env = {k: v for k, v in os.environ.items() if k != CRASH_AT}
    killed = subprocess.run(
        [sys.executable, "-c", CHILD.replace("{crash_at}", CRASH_AT), str(warehouse)]
        + [str(batch_bytes), when]
        + [str(p) for p in paths],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    return killed.stdout.split()


def _day_files(tmp_path: Path) -> list[Path]:
    return [
        write_lines(tmp_path / f"day-{i}.ndjson", [event(100 * i + j) for j in range(50)])
        for i in range(4)
    ]


def test_a_kill_inside_a_batch_keeps_none_of_its_files_and_the_next_run_loads_them_once(
    tmp_path,
):
    """The batch's four files commit together: killed before that commit, none is kept (no
    file half-loaded), and the next run loads each once."""
    warehouse, paths = tmp_path / "warehouse.duckdb", _day_files(tmp_path)
    assert _killed_load(warehouse, paths, files.BATCH_BYTES, "at-once") == []
    with duckdb.connect(str(warehouse)) as conn:
        assert conn.execute("select count(*) from raw.stream_events").fetchone() == (0,)
        assert conn.execute("select count(*) from raw.pending_rebuilds").fetchone() == (0,)
        assert set(statuses(conn, paths).values()) == {"loaded"}
        assert conn.execute(
            "select count(*), count(distinct (source_file, line_number)), count(distinct load_id)"
            " from raw.stream_events"
        ).fetchone() == (200, 200, 4)
        assert conn.execute(
            "select count(distinct load_id), count(distinct day) from raw.pending_rebuilds"
        ).fetchone() == (4, 1)


def test_a_kill_between_two_batches_keeps_the_first_and_the_next_run_loads_the_rest(tmp_path):
    warehouse, paths = tmp_path / "warehouse.duckdb", _day_files(tmp_path)
    # a batch a file
    assert _killed_load(warehouse, paths, 1, "after-one") == ["day-0.ndjson", "loaded"]
    with duckdb.connect(str(warehouse)) as conn:
        assert conn.execute(
            "select count(*), min(source_file) from raw.stream_events"
        ).fetchone() == (50, str(paths[0]))
        assert statuses(conn, paths) == {
            "day-0.ndjson": "duplicate",
            "day-1.ndjson": "loaded",
            "day-2.ndjson": "loaded",
            "day-3.ndjson": "loaded",
        }
        assert conn.execute(
            "select count(*), count(distinct (source_file, line_number)) from raw.stream_events"
        ).fetchone() == (200, 200)
        assert conn.execute(
            "select count(distinct load_id) from raw.pending_rebuilds"
        ).fetchone() == (4,)


def test_a_file_whose_write_fails_is_rejected_alone_and_its_batch_commits(
    conn, tmp_path, monkeypatch
):
    """The batch's transaction fails on one file's insert (here a DuckDB error injected for
    it): the batch is committed again file by file, and only that file is rejected."""
    from music_analytics.lib.events import file_batch

    paths = [
        write_lines(tmp_path / f"day-{i}.ndjson", [event(10 * i + j) for j in range(3)])
        for i in range(4)
    ]
    insert = file_batch._insert_files

    def failing(conn, loads):
        if any(file.path.name == "day-2.ndjson" for _, file, _ in loads):
            conn.execute("select error('disk full, say')")
        return insert(conn, loads)

    monkeypatch.setattr(file_batch, "_insert_files", failing)
    results = outcomes(conn, paths)
    error = results["day-2.ndjson"]
    assert isinstance(error, EventFileError)
    assert str(paths[2]) in str(error) and "disk full, say" in str(error)
    assert [results[f"day-{i}.ndjson"].status for i in (0, 1, 3)] == ["loaded"] * 3
    assert conn.execute(
        "select count(*), count(distinct load_id) from raw.stream_events"
    ).fetchone() == (9, 3)
    assert conn.execute("select count(*) from raw.event_file_loads").fetchone() == (3,)
