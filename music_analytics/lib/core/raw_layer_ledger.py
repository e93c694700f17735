"""The raw Parquet layer's bookkeeping in the warehouse: which days changed, which files exist.

- raw.raw_layer_pending: the (source, day)s whose raw rows changed since the layer's last sync.
  Every raw transaction adds its days here in the commit of its rows (lib/core/raw_writer.py),
  beside the rebuild ledger; the sync clears the entries it read once their files are right.
  It is a ledger of its own because the mart build clears raw.pending_rebuilds on its own
  schedule (and only for the models it selected).
- raw.raw_layer_files: the files the sync wrote, per root, with their row counts. The sync
  compares it with `count(*)` of the raw tables to find files to write, rewrite or remove
  without listing or opening the layer's files.

The DuckDB tables stay the source of truth: the files are derived from them, and whatever the
layer holds after a crash the next sync converges it to the committed rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb

PENDING_TABLE = "raw.raw_layer_pending"
FILES_TABLE = "raw.raw_layer_files"
ROOTS_TABLE = "raw.raw_layer_roots"

RAW_LAYER_LEDGER_DDL = (
    "create sequence if not exists raw.raw_layer_pending_seq",
    f"""
    create table if not exists {PENDING_TABLE} (
        entry_id bigint not null default nextval('raw.raw_layer_pending_seq'),
        source varchar not null,                -- events | dsp | spotify
        day date not null,                      -- a partition day whose rows changed
        recorded_at timestamp not null
    )
    """,
    f"""
    create table if not exists {FILES_TABLE} (
        root varchar not null,                  -- the layer's root (secrets redacted)
        table_name varchar not null,
        day date not null,
        file_key varchar not null,              -- <file_key>.parquet in date=<day>/
        row_count bigint not null,
        written_at timestamp not null
    )
    """,
    # A root is here once a whole sync wrote it; until then a sync of it is a whole one.
    f"""
    create table if not exists {ROOTS_TABLE} (
        root varchar not null,
        synced_all_at timestamp not null
    )
    """,
)


@dataclass(frozen=True)
class LayerChanges:
    """The queued days of each source, as of entry `up_to`."""

    days_by_source: dict[str, frozenset[date]] = field(default_factory=dict)
    up_to: int = 0


def record_layer_days(
    conn: duckdb.DuckDBPyConnection, source: str, days: Iterable[date], recorded_at: datetime
) -> None:
    """Queue `days` of `source` for the layer (call inside the load's transaction)."""
    days = sorted(set(days))
    if days:
        conn.execute(
            f"insert into {PENDING_TABLE} (source, day, recorded_at) "
            "select ?, unnest(?::date[]), ?",
            [source, days, recorded_at],
        )


def read_layer_changes(conn: duckdb.DuckDBPyConnection) -> LayerChanges:
    """Every queued day per source, and the newest entry read."""
    rows = conn.execute(
        f"select source, list(distinct day), max(entry_id) from {PENDING_TABLE} group by source"
    ).fetchall()
    if not rows:
        return LayerChanges()
    return LayerChanges({s: frozenset(d) for s, d, _ in rows}, max(row[2] for row in rows))


def clear_layer_changes(conn: duckdb.DuckDBPyConnection, up_to: int | None = None) -> int:
    """Remove the queued entries up to `up_to` (all when None); the number removed."""
    if up_to is None:
        return conn.execute(f"delete from {PENDING_TABLE}").fetchone()[0]
    return conn.execute(f"delete from {PENDING_TABLE} where entry_id <= ?", [up_to]).fetchone()[0]


def files_written(
    conn: duckdb.DuckDBPyConnection, root: str, table: str, days: Iterable[date] | None
) -> dict[tuple[date, str], int]:
    """(day, file_key) -> row count of the files written under `root` for `table` (on `days`,
    or every day when None)."""
    sql = f"select day, file_key, row_count from {FILES_TABLE} where root = ? and table_name = ?"
    params: list = [root, table]
    if days is not None:
        sql += " and day in (select unnest(?::date[]))"
        params.append(sorted(days))
    return {(day, key): rows for day, key, rows in conn.execute(sql, params).fetchall()}


def note_files(
    conn: duckdb.DuckDBPyConnection,
    root: str,
    table: str,
    notes: Iterable[tuple[date, str, int | None]],
    at: datetime,
) -> None:
    """Record, in one commit, that each (day, file_key) file now holds its row count (None: it
    was removed). Called after the files changed: a crash in between leaves files the ledger
    does not know, which the next sync of their day rewrites or removes."""
    notes = list(notes)
    if not notes:
        return
    conn.execute("begin transaction")
    for day, key, rows in notes:
        conn.execute(
            f"delete from {FILES_TABLE} "
            "where root = ? and table_name = ? and day = ? and file_key = ?",
            [root, table, day, key],
        )
        if rows is not None:
            conn.execute(
                f"insert into {FILES_TABLE} values (?, ?, ?, ?, ?, ?)",
                [root, table, day, key, rows, at],
            )
    conn.execute("commit")


def is_synced_root(conn: duckdb.DuckDBPyConnection, root: str) -> bool:
    """Whether a whole sync wrote `root` (and no switch-off forgot it since)."""
    return bool(
        conn.execute(f"select count(*) from {ROOTS_TABLE} where root = ?", [root]).fetchone()[0]
    )


def note_synced_root(conn: duckdb.DuckDBPyConnection, root: str, at: datetime) -> None:
    """Record that a whole sync of `root` has finished."""
    conn.execute("begin transaction")
    conn.execute(f"delete from {ROOTS_TABLE} where root = ?", [root])
    conn.execute(f"insert into {ROOTS_TABLE} values (?, ?)", [root, at])
    conn.execute("commit")


def forget_layer(conn: duckdb.DuckDBPyConnection) -> None:
    """The layer is switched off: forget every root, its files and the queue, so switching it on
    again starts with a whole sync (changes made meanwhile are not queued)."""
    conn.execute("begin transaction")
    for table in (PENDING_TABLE, FILES_TABLE, ROOTS_TABLE):
        conn.execute(f"delete from {table}")
    conn.execute("commit")
