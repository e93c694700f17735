"""Many event files read by DuckDB in one statement, then committed one file at a time.

`judge_batch` has DuckDB's CSV reader read a list of files (plain or gzip) into a temp table in
one statement, each line one VARCHAR value (blank ones NULL) with its file (`filename = true`),
and `event_validation_sql` judge all of them in one pass on every core into a second temp
table, so a line is judged the same way whatever brought it.

Line numbers come from rowids: with `preserve_insertion_order` (DuckDB's default, which the
read makes sure of) the reader inserts the files in list order and each file's lines in file
order, so a file holds one contiguous run of rowids and its line n is rowid `first + n - 1`
(music_analytics_tests/lib/events/test_file_batch.py checks this on many files, gzip and
blank lines included). The judged rows keep the rowid as their number.

`commit_file` then copies one file's run of rows into the raw tables in its own
`raw_transaction`; the judged rows sit in rowid order too (insertion order again), so each copy
reads only the row groups of its file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from music_analytics.lib.core.raw_writer import raw_transaction
from music_analytics.lib.core.warehouse import RAW_SCHEMA
from music_analytics.lib.events.file_results import EventFileError, FileLoadResult
from music_analytics.lib.events.known_files import FileDigest, loaded_content
from music_analytics.lib.events.validation import VALID_COLUMNS, event_validation_sql

MAX_LINE_BYTES = 16 << 20  # MUSIC_ANALYTICS_EVENT_MAX_LINE_KB's default
_LINES = "event_batch_lines"  # temp: the batch's lines as read, with their file
_JUDGED = "event_batch_judged"  # temp: every non-blank line judged, numbered by rowid


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


class _Duplicate(Exception):  # noqa: N818 - ends a load's transaction, never escapes
    def __init__(self, of: str):
        super().__init__(of)
        self.of = of


def commit_file(
    conn: duckdb.DuckDBPyConnection,
    file: PendingFile,
    span: Span | None,
    *,
    loaded_at: datetime | None = None,
) -> FileLoadResult:
    """One file of the judged batch as one raw transaction: its valid rows, its quarantined
    lines, its load record and its days in the rebuild ledger. A file whose content loaded
    meanwhile (another file of the same content, another process) is a `duplicate`.

    Raises EventFileError naming the file when the write fails; nothing of it is kept then.
    """
    path, sha = file.path, file.digest.sha256
    try:
        with raw_transaction(
            conn,
            "events",
            loaded_at=loaded_at,
            wrap_error=lambda exc: EventFileError(f"cannot load event file {path}: {exc}"),
        ) as write:
            previous = loaded_content(conn, [sha]).get(sha)
            if previous is not None:
                raise _Duplicate(previous)
            return _insert_file(conn, write, file, span)
    except _Duplicate as duplicate:
        return FileLoadResult(str(path), "duplicate", sha, duplicate_of=duplicate.of)


def _insert_file(conn, write, file: PendingFile, span: Span | None) -> FileLoadResult:
    """The inserts of one file inside its transaction."""
    rows_loaded = rows_quarantined = 0
    days = []
    lineage = [str(file.path), write.load_id, write.loaded_at]
    if span is not None:
        first, last = span
        rows = f"from {_JUDGED} where line_number between {first} and {last}"
        line_number = f"line_number - {first - 1}"
        rows_loaded = conn.execute(
            f"insert into {RAW_SCHEMA}.stream_events "
            f"select {', '.join(VALID_COLUMNS)}, ?, {line_number}, ?, ? "
            f"{rows} and error is null",
            lineage,
        ).fetchone()[0]
        rows_quarantined = conn.execute(
            f"insert into {RAW_SCHEMA}.stream_events_quarantine "
            f"select ?, {line_number}, line, error_column, error, ?, ? "
            f"{rows} and error is not null",
            lineage,
        ).fetchone()[0]
        days = conn.execute(
            "select coalesce(list(distinct stream_date order by stream_date), []) "
            f"{rows} and error is null"
        ).fetchone()[0]
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
    return FileLoadResult(
        source_file=str(file.path),
        status="loaded",
        content_sha256=file.digest.sha256,
        load_id=write.load_id,
        lines=lines,
        rows_loaded=rows_loaded,
        rows_quarantined=rows_quarantined,
        days_touched=list(days),
    )
