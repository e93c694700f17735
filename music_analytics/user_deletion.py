"""`music-analytics delete-user USER_ID`: a listener's rows out of raw, the marts and the exports.

0. Event files waiting in the landing folder are loaded first (a `refresh`), so rows of the
   user that arrived before the command are deleted too, not loaded just after it.
1. In one raw transaction (lib/events/datasource_rows.py): the user's events leave
   raw.stream_events, every quarantined line naming the user leaves
   raw.stream_events_quarantine, and the days they were on are marked for rebuild. For the
   Spotify listener (MUSIC_ANALYTICS_SPOTIFY_USER), a second transaction deletes their plays
   (lib/spotify/listener_rows.py).
2. A mart build of those days (`music-analytics refresh`, in-process) rebuilds every mart and
   export of the days, so the marts, the Parquet exports and, once it notices the new exports,
   the server's snapshot no longer hold the user; then every superseded version of an exported
   day (lib/core/export_versions.py, kept for BI readers) is removed at once, since an older
   version may still hold the user's rows.
3. The report: rows removed per raw table, and per mart the user's rows before and after,
   counted where the engine keeps the marts (lib/core/mart_tables.open_marts: the warehouse,
   or under MUSIC_ANALYTICS_ENGINE=spark the Spark marts' Parquet files; the raw Parquet
   layer Spark reads is rewritten from raw by the rebuild's sync).

What still holds the user afterwards is listed in the README ("Deleting a user"): the event
files kept in the landing folder, Dagster's run logs, and backups.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from music_analytics.lib.core.exports import remove_every_superseded_version
from music_analytics.lib.core.landing import file_run_key, landing_files, loaded_keys
from music_analytics.lib.core.mart_tables import open_marts
from music_analytics.lib.core.raw_writer import new_load_id
from music_analytics.lib.core.settings import Settings
from music_analytics.lib.core.warehouse import ensure_raw_tables
from music_analytics.lib.core.warehouse_file import connect_warehouse
from music_analytics.lib.events.datasource_rows import Removal, delete_user_rows
from music_analytics.lib.spotify.listener_rows import delete_listener_rows

# The Spotify listener's own marts: all theirs, so no user_id column.
LISTENER_MARTS = ("marts.listening_history", "marts.listening_sessions")


@dataclass
class UserDeletion:
    """What deleting a user removed: raw rows per table, mart rows per table, days rebuilt."""

    user_id: str
    raw: dict[str, int] = field(default_factory=dict)
    marts: dict[str, int] = field(default_factory=dict)  # the user's rows before the rebuild
    marts_left: dict[str, int] = field(default_factory=dict)  # after it (0 when it worked)
    days: list = field(default_factory=list)
    rebuilt: bool = False
    export_versions_removed: int = 0  # superseded versions of exported days, removed at once

    def lines(self) -> list[str]:
        """The report, one table a line."""
        out = [f"{table}: {rows} row(s) removed" for table, rows in self.raw.items()]
        for table, rows in self.marts.items():
            # a mart gone after the rebuild (a Spark mart left without rows has no files) holds
            # none of the user's rows
            left = self.marts_left.get(table, 0 if self.rebuilt else rows)
            state = "removed" if self.rebuilt else "to remove at the next refresh"
            out.append(f"{table}: {rows - left if self.rebuilt else rows} row(s) {state}")
        out.append(f"days marked for rebuild: {len(self.days)}")
        if self.rebuilt:
            out.append(f"superseded export versions removed: {self.export_versions_removed}")
        return out


def user_tables(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Every mart with a user_id column, on a connection from `open_marts`: the warehouse's
    tables outside raw (DuckDB), or the views over the Spark marts' files (schema marts)."""
    rows = conn.execute(
        "select distinct table_schema || '.' || table_name from information_schema.columns "
        "join information_schema.tables using (table_catalog, table_schema, table_name) "
        "where column_name = 'user_id' and table_schema <> 'raw' "
        "and (table_type = 'BASE TABLE' or (table_type = 'VIEW' and table_schema = 'marts')) "
        "order by 1"
    ).fetchall()
    return [r[0] for r in rows]


def user_rows(
    conn: duckdb.DuckDBPyConnection, user_id: str, *, listener: bool = False
) -> dict[str, int]:
    """The user's rows in each mart with a user_id column; for the Spotify listener, every row
    of the listener's own marts (LISTENER_MARTS, which have no user_id) too."""
    found = {
        table: conn.execute(
            f"select count(*) from {table} where user_id = ?", [user_id]
        ).fetchone()[0]
        for table in user_tables(conn)
    }
    if listener:
        present = {
            f"{schema}.{name}"
            for schema, name in conn.execute(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall()
        }
        for table in LISTENER_MARTS:
            if table in present:
                found[table] = conn.execute(f"select count(*) from {table}").fetchone()[0]
    return found


def _marts(settings: Settings, warehouse: duckdb.DuckDBPyConnection):
    """The marts of the engine that builds them (MUSIC_ANALYTICS_ENGINE), to count rows in."""
    return open_marts(
        warehouse, engine=settings.engine, spark_warehouse=settings.spark_warehouse_dir
    )


def waiting_event_files(settings: Settings) -> list:
    """Event files in the landing folder that no run has loaded yet."""
    folder = settings.events_landing
    loaded = loaded_keys(folder)
    return [p for p in landing_files(folder, "events") if file_run_key(p) not in loaded]


def delete_user(settings: Settings, user_id: str, *, rebuild: bool = True) -> UserDeletion:
    """Delete the user from raw (and, with `rebuild`, from the marts and exports)."""
    if not user_id or len(user_id) > 1000:
        raise ValueError("give the user's id (at most 1000 characters)")
    result = UserDeletion(user_id)
    if rebuild and waiting_event_files(settings):
        from music_analytics.refresh import refresh

        refresh(settings=settings, log_level="WARNING")
    config = {"memory_limit": settings.duckdb_memory_limit} if settings.duckdb_memory_limit else {}
    listener = user_id == settings.spotify_user
    with connect_warehouse(settings.warehouse_path, config=config) as conn:
        ensure_raw_tables(conn)
        with _marts(settings, conn) as marts:
            result.marts = user_rows(marts, user_id, listener=listener)
        operation = f"delete-user-{new_load_id()}"
        removal: Removal = delete_user_rows(conn, user_id, operation)
        result.raw = dict(removal.rows_by_table)
        result.days = list(removal.days)
        if listener:  # the Spotify account's plays are the user's too
            plays = delete_listener_rows(conn, f"{operation}-spotify")
            result.raw.update(plays.rows_by_table)
            result.days = sorted({*result.days, *plays.days})
    if rebuild and result.days:
        from music_analytics.refresh import refresh

        refresh(settings=settings, log_level="WARNING")
        result.rebuilt = True
        result.export_versions_removed = remove_every_superseded_version(settings.exports_dir)
        with (
            connect_warehouse(settings.warehouse_path, read_only=True) as conn,
            _marts(settings, conn) as marts,
        ):
            result.marts_left = user_rows(marts, user_id, listener=listener)
    elif rebuild:
        result.rebuilt = True
        result.marts_left = dict(result.marts)
    return result
