"""Removing rows of the events data source (raw.stream_events): by condition, all, or a user's.

Each removal is one raw transaction (lib/core/raw_writer.py): the rows go, the days they were
on are marked for rebuild in raw.pending_rebuilds, and a row in raw.datasource_operations
records the operation id with the rows removed, all in one commit. So the next mart build
rebuilds exactly those days (the marts, the exports and the server's snapshot then agree), and
a caller killed after the commit can learn from `finished_operation` that it is done.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date

import duckdb

from music_analytics.lib.core.delete_condition import Condition, ConditionError
from music_analytics.lib.core.raw_writer import raw_transaction, utc_now
from music_analytics.lib.core.warehouse import RAW_SCHEMA

EVENTS_TABLE = f"{RAW_SCHEMA}.stream_events"
QUARANTINE_TABLE = f"{RAW_SCHEMA}.stream_events_quarantine"
OPERATIONS_TABLE = f"{RAW_SCHEMA}.datasource_operations"


@dataclass(frozen=True)
class Removal:
    """What one operation removed: rows per table and the days marked for rebuild."""

    operation_id: str
    rows_by_table: dict[str, int] = field(default_factory=dict)
    days: list[date] = field(default_factory=list)
    primary: str = EVENTS_TABLE  # the data source's table, whose rows are `rows_affected`

    @property
    def rows_affected(self) -> int:
        return self.rows_by_table.get(self.primary, 0)


def _condition_failed(exc: duckdb.Error) -> ConditionError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return ConditionError(f"delete_condition cannot be evaluated on the data source: {first}")


def count_matching(conn: duckdb.DuckDBPyConnection, condition: Condition) -> int:
    """How many rows of raw.stream_events the condition selects (a dry run)."""
    try:
        return conn.execute(
            f"select count(*) from {EVENTS_TABLE} where {condition.sql}", condition.params
        ).fetchone()[0]
    except duckdb.Error as exc:
        raise _condition_failed(exc) from None


def finished_operation(conn: duckdb.DuckDBPyConnection, operation_id: str) -> dict | None:
    """The committed record of an operation (rows_affected, days_touched), or None."""
    row = conn.execute(
        f"select rows_affected, days_touched from {OPERATIONS_TABLE} where operation_id = ?",
        [operation_id],
    ).fetchone()
    return None if row is None else {"rows_affected": row[0], "days_touched": row[1]}


def record_operation(
    conn: duckdb.DuckDBPyConnection,
    operation_id: str,
    kind: str,
    datasource: str,
    condition_text: str | None,
    rows_affected: int,
    days: list[date],
) -> None:
    """The operation's row in raw.datasource_operations (inside its transaction)."""
    conn.execute(
        f"insert into {OPERATIONS_TABLE} values (?, ?, ?, ?, ?, ?::date[], ?)",
        [operation_id, kind, datasource, condition_text, rows_affected, sorted(days), utc_now()],
    )


def _remove(
    conn: duckdb.DuckDBPyConnection,
    operation_id: str,
    kind: str,
    where_sql: str,
    params: list,
    *,
    condition_text: str | None,
    quarantine_where: tuple[str, list] | None = None,
) -> Removal:
    rows: dict[str, int] = {}
    with raw_transaction(conn, "events") as write:
        days = [
            d
            for (d,) in conn.execute(
                f"select distinct stream_date from {EVENTS_TABLE} where {where_sql}", params
            ).fetchall()
        ]
        write.touch(days)
        rows[EVENTS_TABLE] = conn.execute(
            f"delete from {EVENTS_TABLE} where {where_sql}", params
        ).fetchone()[0]
        if quarantine_where is not None:
            rows[QUARANTINE_TABLE] = conn.execute(
                f"delete from {QUARANTINE_TABLE} where {quarantine_where[0]}", quarantine_where[1]
            ).fetchone()[0]
        record_operation(
            conn, operation_id, kind, "music_streams", condition_text, rows[EVENTS_TABLE], days
        )
    return Removal(operation_id, rows, sorted(days))


def delete_matching(
    conn: duckdb.DuckDBPyConnection, condition: Condition, operation_id: str
) -> Removal:
    """Delete the rows the checked condition selects, in one transaction with their days."""
    user = user_of(condition)
    try:
        return _remove(
            conn,
            operation_id,
            "delete_data",
            condition.sql,
            condition.params,
            condition_text=condition.text if user is None else redacted_user_condition(user),
            quarantine_where=quarantine_match_sql(user) if user is not None else None,
        )
    except duckdb.Error as exc:
        raise _condition_failed(exc) from None


def truncate_events(conn: duckdb.DuckDBPyConnection, operation_id: str) -> Removal:
    """Delete every row of raw.stream_events (its quarantine stays: it is not the data source's
    rows), marking every day that had rows for rebuild."""
    return _remove(conn, operation_id, "truncate", "true", [], condition_text=None)


def truncate_quarantine(conn: duckdb.DuckDBPyConnection, operation_id: str) -> Removal:
    """Delete every quarantined line (the `music_streams_quarantine` data source, as Tinybird
    names a data source's quarantine). No mart reads it, so no day is marked."""
    with raw_transaction(conn, "events"):
        removed = conn.execute(f"delete from {QUARANTINE_TABLE}").fetchone()[0]
        record_operation(
            conn, operation_id, "truncate", "music_streams_quarantine", None, removed, []
        )
    return Removal(operation_id, {QUARANTINE_TABLE: removed}, [], primary=QUARANTINE_TABLE)


def quarantine_match_sql(user_id: str) -> tuple[str, list]:
    """Quarantined lines that hold `user_id`: as the line's JSON user_id, as the JSON string
    anywhere in the stored text, or as a whole word in it (a broken line is not JSON but
    still names the user; `user_1` does not match `user_10`)."""
    word = "(^|[^A-Za-z0-9_.@-])" + re.escape(user_id) + "($|[^A-Za-z0-9_.@-])"
    return (
        "(try(json_extract_string(line, '$.user_id')) = ? or contains(line, ?) "
        "or regexp_matches(line, ?))",
        [user_id, json.dumps(user_id), word],
    )


def redacted_user_condition(user_id: str) -> str:
    """How a user's deletion is recorded: by a hash of the id, so the record does not keep
    the id it deleted (the same id always gives the same hash, to check a deletion)."""
    return f"user_id = sha256:{hashlib.sha256(user_id.encode()).hexdigest()}"


def user_of(condition: Condition) -> str | None:
    """The user a condition selects when it is exactly `user_id = '<id>'` (a user's deletion
    through the API, which removes the user's quarantined lines too), else None."""
    if condition.sql == '("user_id" = ?)' and len(condition.params) == 1:
        value = condition.params[0]
        return value if isinstance(value, str) else None
    return None


def delete_user_rows(conn: duckdb.DuckDBPyConnection, user_id: str, operation_id: str) -> Removal:
    """Delete the user's events and every quarantined line that names the user."""
    return _remove(
        conn,
        operation_id,
        "delete_user",
        "user_id = ?",
        [user_id],
        condition_text=redacted_user_condition(user_id),
        quarantine_where=quarantine_match_sql(user_id),
    )
