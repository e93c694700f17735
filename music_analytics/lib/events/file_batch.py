"""Many event files read by DuckDB in one statement, then committed together, a load each.

`judge_batch` has DuckDB's CSV reader read a list of files (plain or gzip) into a temp table in
one statement, each line one VARCHAR value (blank ones NULL) with its file (`filename = true`),
and `event_validation_sql` judge all of them in one pass on every core into a second temp
table, so a line is judged the same way whatever brought it.

Line numbers come from rowids: with `preserve_insertion_order` (DuckDB's default, which the
read makes sure of) the reader inserts the files in list order and each file's lines in file
order, so a file holds one contiguous run of rowids and its line n is rowid `first + n - 1`
(music_analytics_tests/lib/events/test_file_batch.py checks this on many files, gzip and
blank lines included). The judged rows keep the rowid as their number.

`commit_files` then copies each file's run of rows into the raw tables as its own load, all of
them in one `raw_transaction`; the judged rows sit in rowid order too (insertion order again),
so each copy reads only the row groups of its file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from music_analytics.lib.core.raw_writer import RawWrite, raw_transaction
from music_analytics.lib.core.warehouse import RAW_SCHEMA
from music_analytics.lib.events.file_results import EventFileError, FileLoadResult
from music_analytics.lib.events.known_files import FileDigest, loaded_content
from music_analytics.lib.events.validation import VALID_COLUMNS, event_validation_sql

MAX_LINE_BYTES = 16 << 20  # MUSIC_ANALYTICS_EVENT_MAX_LINE_KB's default
_LINES = "event_batch_lines"  # temp: the batch's lines as read, with their file
_JUDGED = "event_batch_judged"  # temp: every non-blank line judged, numbered by rowid
_LOADS = "event_batch_loads"  # temp, while files commit: each file's span and load id


@dataclass(frozen=True)
class PendingFile:
    """A file to load: its path, its stat before reading, and its content digest; for a file
    read carefully (careful_read.py), the copy DuckDB reads instead and its bad lines."""

    path: Path
    stat: os.stat_result
    digest: FileDigest
    read_from: Path | None = None
    bad_lines: Path | None = None

    @property
    def source(self) -> Path:
        return self.read_from or self.path


Span = tuple[int, int]  # a file's first and last row number in the batch


def _read_lines_sql(paths: list[Path], max_line_bytes: int) -> str:
    """DuckDB's CSV reader over files, one VARCHAR value per physical line (blank ones NULL)
    and the file it came from.

    A NUL delimiter and no quoting keep each line whole. DuckDB drops a UTF-8 BOM and CRLF
    line ends and reads gzip (members one after another too) by each name's suffix; in
    strict mode it fails the statement on a line holding a NUL byte (a second column), on
    mixed line ends, on a line over `max_line_bytes` and on one that is not UTF-8: such a file
    is then read carefully (careful_read.py).
    """
    quoted = ", ".join("'" + str(path).replace("'", "''") + "'" for path in paths)
    return (
        f"read_csv([{quoted}], columns = {{'line': 'VARCHAR'}}, delim = chr(0), quote = '', "
        "escape = '', header = false, auto_detect = false, strict_mode = true, "
        f"max_line_size = {max_line_bytes}, buffer_size = {4 * max_line_bytes}, "
        "filename = true)"
    )


@contextmanager
def _insertion_order_kept(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """`preserve_insertion_order` on for the block (line numbers rest on it), as it was after."""
    before = conn.execute("select current_setting('preserve_insertion_order')").fetchone()[0]
    if not before:
        conn.execute("set preserve_insertion_order = true")
    try:
        yield
    finally:
        if not before:
            conn.execute("set preserve_insertion_order = false")


def judge_batch(
    conn: duckdb.DuckDBPyConnection,
    files: list[PendingFile],
    max_line_bytes: int = MAX_LINE_BYTES,
) -> tuple[dict[str, Span], set[str]]:
    """Read and judge `files` into the batch's temp table; returns each file's span of row
    numbers by path (no span: the file has no line), and the paths of the files to read
    carefully instead (a JSON array: careful_read.py). Raises duckdb.Error when a file cannot
    be read fast (then read carefully); nothing is kept then.

    Run outside a transaction: rows of a table created inside one get transaction-local rowids.
    """
    names = {str(f.source): str(f.path) for f in files}
    try:
        with _insertion_order_kept(conn):
            conn.execute(
                f"create or replace temp table {_LINES} as select filename, line "
                f"from {_read_lines_sql([f.source for f in files], max_line_bytes)}"
            )
            found = conn.execute(
                f"""select filename, min(rowid), max(rowid),
                       starts_with(ltrim(arg_min(line, rowid) filter (
                           where line is not null and trim(line) <> '')), '['),
                       count(*), coalesce(sum(strlen(line)), 0)
                from {_LINES} group by filename"""
            ).fetchall()
            spans = {name: (first, last) for name, first, last, *_ in found}
            careful = {names.get(name, name) for name, _, _, care, *_ in found if care}
            read = {names.get(name, name): (rows, size) for name, *_, rows, size in found}
            careful |= {
                str(f.path) for f in files if _lost_bytes(f, *read.get(str(f.path), (0, 0)))
            }
            numbered = f"(select rowid as line_number, line from {_LINES})"
            conn.execute(
                f"create or replace temp table {_JUDGED} as "
                "select line_number, case when error is not null then line end as line, "
                f"error_column, error, {', '.join(VALID_COLUMNS)} "
                f"from ({event_validation_sql(numbered)})"
            )
    except BaseException:
        drop_batch(conn)
        raise
    finally:
        conn.execute(f"drop table if exists {_LINES}")
    if not set(spans) <= set(names):  # DuckDB named a file otherwise than it was given
        drop_batch(conn)
        raise RuntimeError(f"DuckDB read files it was not given: {sorted(set(spans) - set(names))}")
    return {names[name]: span for name, span in spans.items()}, careful


def _lost_bytes(file: PendingFile, rows: int, line_bytes: int) -> bool:
    """Whether DuckDB's read left out bytes of the file: besides its lines' bytes, a file has
    only line ends (one or two a line), a BOM and blanks. DuckDB can drop a line longer than
    its buffer without an error; such a file is read carefully instead."""
    if file.read_from is not None:
        return False  # a careful copy: what is left out was quarantined already
    return file.digest.size - line_bytes > 2 * rows + 3


def drop_batch(conn: duckdb.DuckDBPyConnection) -> None:
    """Drop the batch's temp tables (they hold every line of the batch)."""
    conn.execute(f"drop table if exists {_LINES}")
    conn.execute(f"drop table if exists {_JUDGED}")


def commit_files(
    conn: duckdb.DuckDBPyConnection,
    files: list[tuple[PendingFile, Span | None]],
    *,
    loaded_at: datetime | None = None,
) -> list[FileLoadResult]:
    """Files of the judged batch (each with its span) in one raw transaction, each its own
    load: its load id, its valid rows, its quarantined lines, its load record and its days in
    the rebuild ledger. A file whose content loaded meanwhile (another process) is a
    `duplicate`. One commit and one insert per table for the lot (per file, they were a fifth
    of a year's backfill); a file's rows land whole or not at all.

    Raises EventFileError when the write fails, naming the file when it is one; nothing of
    any of them is kept then (the caller commits them one by one to find the one).
    """
    named = (
        str(files[0][0].path) if len(files) == 1 else f"{len(files)} files from {files[0][0].path}"
    )
    results: dict[str, FileLoadResult] = {}
    with raw_transaction(
        conn,
        "events",
        loaded_at=loaded_at,
        wrap_error=lambda exc: EventFileError(f"cannot load event file {named}: {exc}"),
    ) as write:
        known = loaded_content(conn, [file.digest.sha256 for file, _ in files])
        loads = []
        for file, span in files:
            sha = file.digest.sha256
            if sha in known:
                results[str(file.path)] = FileLoadResult(
                    str(file.path), "duplicate", sha, duplicate_of=known[sha]
                )
            else:
                load = write if not loads else write.another_load()
                loads.append((load, file, span))
        if loads:
            results |= {r.source_file: r for r in _insert_files(conn, loads)}
    return [results[str(file.path)] for file, _ in files]


def _insert_files(conn, loads: list[tuple[RawWrite, PendingFile, Span | None]]):
    """The inserts of the files inside their transaction: one statement per raw table for all
    of them (a statement per file cost twice as much), each row given its file's lineage
    through the files' spans; their FileLoadResults."""
    conn.execute(
        f"create or replace temp table {_LOADS} (load_id varchar, source_file varchar, "
        "first_line bigint, last_line bigint)"
    )
    spans = [[w.load_id, str(f.path), *span] for w, f, span in loads if span is not None]
    if spans:
        conn.executemany(f"insert into {_LOADS} values (?, ?, ?, ?)", spans)
    rows = f"from {_JUDGED} j join {_LOADS} l on j.line_number between l.first_line and l.last_line"
    line_number = "j.line_number - (l.first_line - 1)"
    loaded_at = loads[0][0].loaded_at
    conn.execute(
        f"insert into {RAW_SCHEMA}.stream_events "
        f"select {', '.join('j.' + c for c in VALID_COLUMNS)}, l.source_file, {line_number}, "
        f"l.load_id, ? {rows} where j.error is null",
        [loaded_at],
    )
    conn.execute(
        f"insert into {RAW_SCHEMA}.stream_events_quarantine "
        f"select l.source_file, {line_number}, j.line, j.error_column, j.error, l.load_id, ? "
        f"{rows} where j.error is not null",
        [loaded_at],
    )
    counted = {
        load_id: (loaded, quarantined, days)
        for load_id, loaded, quarantined, days in conn.execute(
            "select l.load_id, count(*) filter (where j.error is null), "
            "count(*) filter (where j.error is not null), coalesce(list(distinct j.stream_date "
            f"order by j.stream_date) filter (where j.error is null), []) {rows} group by 1"
        ).fetchall()
    }
    conn.execute(f"drop table {_LOADS}")
    results = []
    for write, file, _ in loads:
        rows_loaded, rows_quarantined, days = counted.get(write.load_id, (0, 0, []))
        lineage = [str(file.path), write.load_id, write.loaded_at]
        if file.bad_lines is not None and file.bad_lines.stat().st_size:
            bad = "'" + str(file.bad_lines).replace("'", "''") + "'"
            rows_quarantined += conn.execute(
                f"insert into {RAW_SCHEMA}.stream_events_quarantine "
                "select ?, line_number, line, 'line', error, ?, ? from read_json("
                f"{bad}, format = 'newline_delimited', columns = "
                "{'line_number': 'BIGINT', 'line': 'VARCHAR', 'error': 'VARCHAR'})",
                lineage,
            ).fetchone()[0]
        lines = rows_loaded + rows_quarantined
        conn.execute(
            f"insert into {RAW_SCHEMA}.event_file_loads values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                write.load_id,
                str(file.path),
                file.digest.sha256,
                file.stat.st_size,
                file.stat.st_mtime_ns,
                lines,
                rows_loaded,
                rows_quarantined,
                days,
                write.loaded_at,
            ],
        )
        write.touch(days)
        results.append(
            FileLoadResult(
                source_file=str(file.path),
                status="loaded",
                content_sha256=file.digest.sha256,
                load_id=write.load_id,
                lines=lines,
                rows_loaded=rows_loaded,
                rows_quarantined=rows_quarantined,
                days_touched=list(days),
            )
        )
    return results
