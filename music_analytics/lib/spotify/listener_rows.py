"""Removing the Spotify listener's plays from raw: what `delete-user` does for the listener.

The Spotify side has one listener, `MUSIC_ANALYTICS_SPOTIFY_USER` (the account whose plays are
polled and whose export is imported): every row of raw.spotify_plays, raw.spotify_history and
raw.spotify_history_quarantine is theirs. One raw transaction deletes them all, marks every day
they were on (a play's start day and its end day) for rebuild, and records the operation in
raw.datasource_operations, as an events deletion does (lib/events/datasource_rows.py).

Kept: the poll cursor (raw.spotify_polls), so the next poll does not fetch the deleted plays
again, and the ledger of imported export files (raw.spotify_history_files: names and hashes,
no plays), so a re-import of an export already imported adds nothing; the catalogue's track
and artist metadata, which is not the listener's.
"""

from __future__ import annotations

import duckdb

from music_analytics.lib.core.raw_writer import raw_transaction
from music_analytics.lib.core.warehouse import RAW_SCHEMA
from music_analytics.lib.events.datasource_rows import Removal, record_operation

# Each table with the days its rows are on (start and end of the play).
LISTENER_TABLES: dict[str, tuple[str, ...]] = {
    f"{RAW_SCHEMA}.spotify_plays": (
        "cast(played_at as date)",
        "cast(played_at - to_milliseconds(coalesce(duration_ms, 0)) as date)",
    ),
    f"{RAW_SCHEMA}.spotify_history": (
        "cast(ended_at as date)",
        "cast(ended_at - to_milliseconds(ms_played) as date)",
    ),
    f"{RAW_SCHEMA}.spotify_history_quarantine": (),
}


def delete_listener_rows(conn: duckdb.DuckDBPyConnection, operation_id: str) -> Removal:
    """Delete every play of the Spotify listener, in one transaction with their days."""
    rows: dict[str, int] = {}
    days: set = set()
    with raw_transaction(conn, "spotify") as write:
        for table, day_columns in LISTENER_TABLES.items():
            for column in day_columns:
                days |= {
                    d for (d,) in conn.execute(f"select distinct {column} from {table}").fetchall()
                }
            rows[table] = conn.execute(f"delete from {table}").fetchone()[0]
        write.touch(days)
        record_operation(
            conn,
            operation_id,
            "delete_user",
            "spotify",
            "the Spotify listener",
            sum(rows.values()),
            sorted(days),
        )
    return Removal(operation_id, rows, sorted(days))
