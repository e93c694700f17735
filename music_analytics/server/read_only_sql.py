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


def run_sql(snapshot: MartSnapshot, sql: str, limits: SqlLimits) -> QueryResult:
    """Run one SELECT; rows past max_rows are dropped (rows_before_limit says there were more)."""
    statement = check_select(sql)
    cursor = snapshot.new_cursor()
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
