"""Loading NDJSON stream-event files into the raw layer, with quarantine and lineage.

DuckDB reads the file (plain or gzip) and `event_validation_sql` judges every line inside the
engine; Python only orchestrates. One file is one transaction: either all of its valid rows,
its quarantined lines and its load record land, or nothing does.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb

from music_analytics.lib.core.raw_writer import file_sha256, raw_transaction
from music_analytics.lib.core.warehouse import RAW_SCHEMA, ensure_raw_tables
from music_analytics.lib.events.validation import VALID_COLUMNS, event_validation_sql

_MAX_LINE_BYTES = 16 << 20


class EventFileError(RuntimeError):
    """An event file could not be loaded; the message names the file and the cause."""


@dataclass(frozen=True)
class FileLoadResult:
    """What loading one file did; `status` is `loaded` or `duplicate` (skipped)."""

    source_file: str
    status: str
    content_sha256: str
    load_id: str | None = None
    lines: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    days_touched: list[date] = field(default_factory=list)
    duplicate_of: str | None = None


def content_sha256(path: Path) -> str:
    """SHA-256 of the file's decompressed content, so a renamed or re-gzipped copy matches."""
    try:
        return file_sha256(path, decompress_gzip=True)
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise EventFileError(f"cannot read event file {path}: {exc}") from exc


def _read_lines_sql(path: Path) -> str:
    """DuckDB's CSV reader over a file, one VARCHAR value per physical line (blank ones as NULL).

    A NUL delimiter and no quoting keep each line whole; gzip is detected from the name.
    """
    quoted = str(path).replace("'", "''")
    return (
        f"read_csv('{quoted}', columns = {{'line': 'VARCHAR'}}, delim = chr(0), quote = '', "
        "escape = '', header = false, auto_detect = false, strict_mode = false, "
        f"max_line_size = {_MAX_LINE_BYTES}, buffer_size = {4 * _MAX_LINE_BYTES})"
    )


# The file's lines, numbered: the temp table keeps the reader's order, so rowid + 1 is the line
# number, and the validation over it runs on every core (a row_number() window would not).
_NUMBERED_LINES = "(select rowid + 1 as line_number, line from file_lines)"


def _already_loaded(conn: duckdb.DuckDBPyConnection, sha: str) -> str | None:
    row = conn.execute(
        f"select source_file from {RAW_SCHEMA}.event_file_loads where content_sha256 = ?", [sha]
    ).fetchone()
    return row[0] if row else None


def _hash_in_background(path: Path) -> Future[str]:
    """Hash while DuckDB parses: hashlib and gzip release the GIL, so the two overlap."""
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="event-file-sha")
    future = executor.submit(content_sha256, path)
    executor.shutdown(wait=False)
    return future


def load_event_file(
    conn: duckdb.DuckDBPyConnection, path: Path, *, loaded_at: datetime | None = None
) -> FileLoadResult:
    """Load one event file: valid rows to raw.stream_events, the rest to the quarantine.

    A file whose decompressed content was loaded before (under any name) is skipped. Raises
    EventFileError naming the file when it cannot be read; nothing is written then.

    DuckDB reads the file's lines into a temp table (spilled to disk past the memory limit);
    a first pass inserts the valid rows, a second judges only the lines it did not load and
    quarantines them with the reason. A file is one raw transaction (rows, load record and
    the days it touched in the rebuild ledger); its content hash is checked inside it,
    computed on a second thread while DuckDB works.
    """
    path = Path(path)
    if not path.is_file():
        raise EventFileError(f"event file {path} does not exist")
    stat = path.stat()
    sha_future = _hash_in_background(path)
    ensure_raw_tables(conn)
    try:
        # Outside the transaction: rows of a table created inside one get transaction-local
        # rowids, which would not start at 0.
        conn.execute(
            f"create or replace temp table file_lines as select line from {_read_lines_sql(path)}"
        )
    except duckdb.Error as exc:
        raise EventFileError(f"cannot read event file {path}: {exc}") from exc
    try:
        with raw_transaction(
            conn,
            "events",
            loaded_at=loaded_at,
            wrap_error=lambda exc: EventFileError(f"cannot load event file {path}: {exc}"),
        ) as write:
            return _insert_file(conn, write, path, stat, sha_future)
    except _Duplicate as duplicate:
        return FileLoadResult(str(path), "duplicate", duplicate.sha, duplicate_of=duplicate.of)
    finally:
        conn.execute("drop table if exists file_lines")


class _Duplicate(Exception):  # noqa: N818 - ends a load's transaction, never escapes
    def __init__(self, sha: str, of: str):
        super().__init__(of)
        self.sha, self.of = sha, of


def _insert_file(conn, write, path: Path, stat, sha_future) -> FileLoadResult:
    """The inserts of one file inside its transaction; raises Rollback for a duplicate."""
    lineage = [str(path), write.load_id, write.loaded_at]
    rows_loaded = conn.execute(
        f"insert into {RAW_SCHEMA}.stream_events "
        f"select {', '.join(VALID_COLUMNS)}, ?, line_number, ?, ? "
        f"from ({event_validation_sql(_NUMBERED_LINES)}) where error is null",
        lineage,
    ).fetchone()[0]
    # Second pass over the few lines the first did not load: judge them again for the reason.
    unloaded = (
        f"(select * from {_NUMBERED_LINES} where line_number not in "
        f"(select line_number from {RAW_SCHEMA}.stream_events where load_id = '{write.load_id}'))"
    )
    rows_quarantined = conn.execute(
        f"insert into {RAW_SCHEMA}.stream_events_quarantine "
        "select ?, line_number, line, error_column, error, ?, ? "
        f"from ({event_validation_sql(unloaded)}) where error is not null",
        lineage,
    ).fetchone()[0]
    days = conn.execute(
        f"select coalesce(list(distinct stream_date order by stream_date), []) "
        f"from {RAW_SCHEMA}.stream_events where load_id = ?",
        [write.load_id],
    ).fetchone()[0]
    sha = sha_future.result()
    previous = _already_loaded(conn, sha)
    if previous is not None:
        raise _Duplicate(sha, previous)
    lines = rows_loaded + rows_quarantined
    conn.execute(
        f"insert into {RAW_SCHEMA}.event_file_loads values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            write.load_id,
            str(path),
            sha,
            stat.st_size,
            stat.st_mtime_ns,
            lines,
            rows_loaded,
            rows_quarantined,
            days,
            write.loaded_at,
        ],
    )
    write.touch(days)
    return FileLoadResult(
        source_file=str(path),
        status="loaded",
        content_sha256=sha,
        load_id=write.load_id,
        lines=lines,
        rows_loaded=rows_loaded,
        rows_quarantined=rows_quarantined,
        days_touched=list(days),
    )
