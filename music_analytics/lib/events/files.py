"""Loading NDJSON stream-event files into the raw layer, with quarantine and lineage.

`load_event_files` takes any number of files (a day's drop, a year's backfill):

1. a file unchanged since it loaded (path, size, mtime_ns) is skipped without being opened;
   the others are hashed on threads (known_files.py), and one whose content loaded under any
   name is skipped without being read into DuckDB;
2. the rest are read by DuckDB in batches of up to BATCH_BYTES (decompressed), one statement
   per batch, and every line is judged inside the engine (file_batch.py);
3. each batch's files then commit in one raw transaction, each as its own load: either all
   of a file's valid rows, its quarantined lines, its load record and its days in the rebuild
   ledger land, or nothing of it does (one insert per raw table and one commit per batch:
   per file, they took the year's 365 files from 60 s to 90 s). A crash between two batches
   keeps the first; the next run skips its files and loads the rest. A batch whose write
   fails commits file by file, so only the file that cannot be written is rejected.

A file the fast read cannot take whole (a line over the length cap, one not UTF-8, a NUL byte,
a JSON array) is read line by line instead (careful_read.py): its bad lines are quarantined
with their reasons and the rest loads. A file that even that cannot read is reported with its
reason and never keeps the others of its batch from loading. Python only orchestrates the
fast read; no row passes through it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import duckdb

from music_analytics.lib.core.warehouse import ensure_raw_tables
from music_analytics.lib.events.careful_read import careful_copy
from music_analytics.lib.events.file_batch import (
    MAX_LINE_BYTES,
    PendingFile,
    commit_files,
    drop_batch,
    judge_batch,
)
from music_analytics.lib.events.file_results import EventFileError, FileLoadResult
from music_analytics.lib.events.known_files import (
    digests_ahead,
    loaded_content,
    loaded_unchanged,
)

__all__ = [
    "BATCH_BYTES",
    "EventFileError",
    "FileLoadResult",
    "load_event_file",
    "load_event_files",
]

# Decompressed bytes DuckDB reads in one statement. The batch's lines and their judgement sit
# in temp tables until its files commit (spilled to disk past DuckDB's memory_limit), so this
# bounds the load's memory whatever the number of files; a larger file is a batch of its own.
BATCH_BYTES = 256 << 20

Outcome = tuple[Path, FileLoadResult | EventFileError]


def load_event_file(
    conn: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    loaded_at: datetime | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> FileLoadResult:
    """Load one event file (see `load_event_files`); raises EventFileError naming the file
    when it cannot be loaded, and nothing is written then."""
    [(_, outcome)] = load_event_files(
        conn, [Path(path)], loaded_at=loaded_at, max_line_bytes=max_line_bytes
    )
    if isinstance(outcome, EventFileError):
        raise outcome
    return outcome


def load_event_files(
    conn: duckdb.DuckDBPyConnection,
    paths: Iterable[Path],
    *,
    loaded_at: datetime | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Iterator[Outcome]:
    """Load event files: valid rows to raw.stream_events, the other lines to the quarantine.

    Yields `(path, outcome)` for each file as it is settled: a FileLoadResult (`loaded`, or
    `duplicate` with `duplicate_of` when its content loaded before) or the EventFileError
    naming the file and why it cannot be loaded (nothing of it is written then). Skipped files
    come first, then each batch's files in the order given. A file is committed before it is
    yielded, so stopping the iteration keeps every file yielded so far.
    """
    paths = [Path(p) for p in paths]
    ensure_raw_tables(conn)
    stats: dict[Path, os.stat_result] = {}
    for path in paths:
        if path.is_file():
            stats.setdefault(path, path.stat())
        else:
            yield path, EventFileError(f"event file {path} does not exist")
    unchanged = loaded_unchanged(conn, stats)
    to_hash = []
    for path in paths:
        if path in unchanged:
            yield path, _duplicate(path, unchanged[path], of=str(path))
        elif path in stats:
            to_hash.append(path)
    with _checkpoints_per_batch(conn):
        yield from _load_new(conn, to_hash, stats, loaded_at, max_line_bytes)


@contextmanager
def _checkpoints_per_batch(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """DuckDB checkpoints its WAL at the first commit past `checkpoint_threshold` (16 MiB by
    default): every two or three files of a day, each time rewriting the tables' last row
    groups. While files load, the threshold is one batch (so about one checkpoint a batch, and
    uncheckpointed rows stay bounded); it is put back after. The setting is the database's, so
    another connection of this process writing meanwhile checkpoints less often too."""
    before = conn.execute("select current_setting('checkpoint_threshold')").fetchone()[0]
    conn.execute(f"set checkpoint_threshold = '{BATCH_BYTES >> 20} MiB'")
    try:
        yield
    finally:
        conn.execute(f"set checkpoint_threshold = '{before}'")


def _duplicate(path: Path, sha: str, *, of: str) -> FileLoadResult:
    return FileLoadResult(str(path), "duplicate", sha, duplicate_of=of)


def _load_new(conn, paths: list[Path], stats, loaded_at, max_line_bytes) -> Iterator[Outcome]:
    """Hash the files, then load them batch by batch (BATCH_BYTES)."""
    batch: list[PendingFile] = []
    with closing(digests_ahead(paths)) as digests:
        for path, digest in digests:
            if isinstance(digest, EventFileError):
                yield path, digest
                continue
            # Two files of the same content never share a batch: the second is judged after
            # the first committed, as a duplicate of it.
            if batch and (
                sum(f.digest.size for f in batch) + digest.size > BATCH_BYTES
                or digest.sha256 in {f.digest.sha256 for f in batch}
            ):
                yield from _load_batch(conn, batch, loaded_at, max_line_bytes)
                batch = []
            batch.append(PendingFile(path, stats[path], digest))
    if batch:
        yield from _load_batch(conn, batch, loaded_at, max_line_bytes)


def _load_batch(
    conn, batch: list[PendingFile], loaded_at, max_line_bytes: int
) -> Iterator[Outcome]:
    """Skip the batch's files whose content loaded before; read and commit the others."""
    known = loaded_content(conn, [f.digest.sha256 for f in batch])
    fresh = []
    for file in batch:
        sha = file.digest.sha256
        if sha in known:
            yield file.path, _duplicate(file.path, sha, of=known[sha])
        else:
            fresh.append(file)
    yield from _read_and_commit(conn, fresh, loaded_at, max_line_bytes)


def _read_and_commit(
    conn, files: list[PendingFile], loaded_at, max_line_bytes: int
) -> Iterator[Outcome]:
    """Read the files in one statement and commit each; when the statement fails, each half is
    tried on its own, down to the one file that cannot be read fast, which is read carefully
    (careful_read.py), as is a file the read flags (a NUL byte, a JSON array)."""
    if not files:
        return
    try:
        spans, careful = judge_batch(conn, files, max_line_bytes)
    except duckdb.Error as exc:
        if len(files) == 1:
            yield files[0].path, _read_carefully(conn, files[0], loaded_at, max_line_bytes, exc)
            return
        half = len(files) // 2
        yield from _read_and_commit(conn, files[:half], loaded_at, max_line_bytes)
        yield from _read_and_commit(conn, files[half:], loaded_at, max_line_bytes)
        return
    try:
        ready = [(f, spans.get(str(f.path))) for f in files if str(f.path) not in careful]
        yield from _commit(conn, ready, loaded_at)
    finally:
        drop_batch(conn)
    for file in files:
        if str(file.path) in careful:
            yield file.path, _read_carefully(conn, file, loaded_at, max_line_bytes, None)


def _commit(conn, ready: list, loaded_at) -> Iterator[Outcome]:
    """The judged files in one transaction; when it fails, each in its own, so only the file
    that cannot be written is rejected."""
    if not ready:
        return
    try:
        results = commit_files(conn, ready, loaded_at=loaded_at)
    except EventFileError as error:
        if len(ready) == 1:
            yield ready[0][0].path, error
            return
        for one in ready:
            yield from _commit(conn, [one], loaded_at)
        return
    for (file, _), result in zip(ready, results, strict=True):
        yield file.path, result


_CAREFUL_PREFIX = "music-analytics-careful-"  # + the pid of the process reading


def _remove_stale_copies() -> None:
    """Careful copies left in the temp folder by a process that was killed while reading."""
    for folder in Path(tempfile.gettempdir()).glob(f"{_CAREFUL_PREFIX}*"):
        pid = folder.name.removeprefix(_CAREFUL_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_carefully(
    conn, file: PendingFile, loaded_at, max_line_bytes: int, fast_error: duckdb.Error | None
) -> FileLoadResult | EventFileError:
    """Load one file through its careful copy (in a temp folder, removed after); the error
    naming the file and why when even that cannot read it."""
    _remove_stale_copies()
    with tempfile.TemporaryDirectory(prefix=f"{_CAREFUL_PREFIX}{os.getpid()}-") as folder:
        try:
            copy = careful_copy(file.path, Path(folder), max_line_bytes=max_line_bytes)
        except EventFileError as error:
            error.__cause__ = fast_error
            return error
        pending = replace(file, read_from=copy.lines, bad_lines=copy.bad)
        try:
            spans, _ = judge_batch(conn, [pending], max_line_bytes)
        except duckdb.Error as exc:
            error = EventFileError(f"cannot read event file {file.path}: {exc}")
            error.__cause__ = exc
            return error
        try:
            [result] = commit_files(
                conn, [(pending, spans.get(str(file.path)))], loaded_at=loaded_at
            )
            return result
        except EventFileError as error:
            return error
        finally:
            drop_batch(conn)
