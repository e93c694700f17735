"""`/v0/sql`: one SELECT over the marts, with a row limit and a time limit.

The snapshot it runs on is already read-only with file access limited to the exports and its
configuration locked (see mart_snapshot); this module adds that the text must be exactly one
SELECT (DuckDB's own parser decides, not a regular expression), that at most `max_rows` rows
come back, and that a query still running after `timeout` seconds is interrupted.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import duckdb

from music_analytics.server.pipe_specs import QueryResult, result_columns
from music_analytics.server.snapshot import MartSnapshot
from music_analytics.server.sql_clauses import over_rows

MAX_SQL_CHARS = 20_000


class SqlRejected(ValueError):
    """The SQL is not one read-only SELECT, or failed; the message says why."""


class SqlTimeout(TimeoutError):
    pass


@dataclass(frozen=True)
class SqlLimits:
    max_rows: int = 10_000
    timeout: float = 10.0


def check_select(sql: str) -> str:
    """The statement's text (without a trailing `;`) if `sql` is exactly one SELECT;
    SqlRejected otherwise."""
    if not sql or not sql.strip():
        raise SqlRejected("parameter 'q': give a SELECT statement")
    if len(sql) > MAX_SQL_CHARS:
        raise SqlRejected(f"parameter 'q': longer than {MAX_SQL_CHARS} characters")
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise SqlRejected(f"parameter 'q': {_first_line(exc)}") from None
    if len(statements) != 1:
        raise SqlRejected(f"parameter 'q': expected one statement, got {len(statements)}")
    if statements[0].type != duckdb.StatementType.SELECT:
        raise SqlRejected(f"parameter 'q': only SELECT is allowed, got {statements[0].type.name}")
    return _without_trailing_semicolons(statements[0].query)


def _without_trailing_semicolons(text: str) -> str:
    """The statement without the `;` (and comments) after its last token, so it can be
    wrapped in a subquery; DuckDB's tokenizer tells a `;` from one inside a string or comment."""
    tokens = duckdb.tokenize(text)
    end = len(text)
    for start, kind in reversed(tokens):
        if kind == duckdb.token_type.comment or text[start : start + 1] == ";":
            end = start
            continue
        break
    return text[:end].rstrip()


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:300]


def _pipe_only_cursor() -> duckdb.DuckDBPyConnection:
    """An empty in-memory database that reads no file: for SQL that may see only `_`."""
    conn = duckdb.connect(":memory:")
    for setting in (
        "threads = 1",
        "memory_limit = '256MB'",
        "enable_external_access = false",
        "autoinstall_known_extensions = false",
        "autoload_known_extensions = false",
        "lock_configuration = true",
    ):
        conn.execute(f"set {setting}")
    return conn


def run_sql(
    snapshot: MartSnapshot | None,
    sql: str,
    limits: SqlLimits,
    pipe_result: QueryResult | None = None,
) -> QueryResult:
    """Run one SELECT; rows past max_rows are dropped (rows_before_limit says there were more).

    With `pipe_result`, the query reads those rows as the table `_` (sql_clauses.over_rows):
    beside the marts of `snapshot`, or, with no snapshot, alone in an empty database (a pipe's
    `q=`, which a token that reads only that pipe may send).
    """
    statement = check_select(sql)
    cursor = snapshot.new_cursor() if snapshot is not None else _pipe_only_cursor()
    if pipe_result is not None:
        statement = over_rows(cursor, statement, pipe_result)
    timer = threading.Timer(limits.timeout, cursor.interrupt)
    timer.start()
    try:
        # The limit goes into the query, so a huge result is never built, only its first rows.
        cursor.execute(f"select * from (\n{statement}\n) limit {limits.max_rows + 1}")
        columns = result_columns(cursor.description or [])
        rows = cursor.fetchmany(limits.max_rows + 1)
    except duckdb.InterruptException:
        raise SqlTimeout(
            f"the query ran longer than {limits.timeout:g} s and was stopped"
        ) from None
    except duckdb.Error as exc:
        if not timer.is_alive():
            raise SqlTimeout(
                f"the query ran longer than {limits.timeout:g} s and was stopped"
            ) from None
        raise SqlRejected(_first_line(exc)) from None
    finally:
        timer.cancel()
        cursor.close()
    return QueryResult(columns, rows[: limits.max_rows], len(rows))


def sql_scanned(snapshot: MartSnapshot, sql: str) -> tuple[int, int]:
    """Rows and bytes of the marts the query names: what it may read (an upper bound)."""
    try:
        names = snapshot.cursor().get_table_names(sql, qualified=False)
    except duckdb.Error:
        return 0, 0
    infos = [snapshot.marts[n] for n in names if n in snapshot.marts]
    return sum(i.rows for i in infos), sum(i.total_bytes for i in infos)
