"""Importing one file of Spotify's privacy export into raw.spotify_history (and its quarantine).

A file whose bytes were imported before adds nothing, and a play already imported from another
file (a re-packaged export) is not stored twice (`play_key`). One raw transaction per file:
its rows, its raw.spotify_history_files row and the days it touched in the rebuild ledger.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import duckdb

from music_analytics.lib.core.frames import typed_frame
from music_analytics.lib.core.raw_writer import RawWrite
from music_analytics.lib.core.warehouse import RAW_SCHEMA, ensure_raw_tables
from music_analytics.lib.spotify.load import (
    HistoryImportResult,
    SpotifyLoadError,
    _in_transaction,
    _json_text,
    _naive_utc,
)

# --- streaming-history import ------------------------------------------------------------------


def _play_key(play: Any) -> str:
    """The export play's identity across files (lib/spotify_history.play_key)."""
    from music_analytics.lib.spotify.history_shapes import play_key

    return play_key(play)


_HISTORY_COLUMNS = (
    ("ended_at", "t"),
    ("ended_at_precision_seconds", "L"),
    ("ms_played", "L"),
    ("kind", "s"),
    ("track_uri", "s"),
    ("track_id", "s"),
    ("track_name", "s"),
    ("artist_name", "s"),
    ("album_name", "s"),
    ("episode_name", "s"),
    ("show_name", "s"),
    ("episode_uri", "s"),
    ("audiobook_title", "s"),
    ("audiobook_uri", "s"),
    ("audiobook_chapter_uri", "s"),
    ("audiobook_chapter_title", "s"),
    ("platform", "s"),
    ("conn_country", "s"),
    ("reason_start", "s"),
    ("reason_end", "s"),
    ("shuffle", "b"),
    ("skipped", "b"),
    ("offline", "b"),
    ("offline_timestamp", "t"),
    ("incognito_mode", "b"),
    ("shape", "s"),
    ("play_key", "s"),
    ("source_file", "s"),
    ("member", "s"),
    ("row_number", "L"),
)
_TIMESTAMPS = {"ended_at", "offline_timestamp"}


def _history_frame(plays: Sequence[Any], history_file: Any, stage: int) -> pd.DataFrame:
    """The plays as columns, tagged with their file's stage number; a play without its own
    shape/source/member takes the file's."""
    columns: dict[str, tuple[str, list[Any]]] = {"stage": ("L", [stage] * len(plays))}
    defaults = {
        "shape": getattr(history_file, "shape", None),
        "source_file": str(history_file.source_file),
        "member": getattr(history_file, "member", None),
        "ended_at_precision_seconds": 1,
    }
    for name, kind in _HISTORY_COLUMNS:
        if name == "play_key":
            values = [_play_key(play) for play in plays]
        elif name in _TIMESTAMPS:
            values = [_naive_utc(getattr(play, name, None)) for play in plays]
        else:
            default = defaults.get(name)
            values = [getattr(play, name, None) for play in plays]
            if default is not None:
                values = [default if v is None else v for v in values]
            if name == "source_file":
                values = [str(v) for v in values]
        columns[name] = (kind, values)
    return typed_frame(columns)


def _quarantine_frame(quarantined: Sequence[Any], history_file: Any, stage: int) -> pd.DataFrame:
    source_file, member = str(history_file.source_file), getattr(history_file, "member", None)
    return typed_frame(
        {
            "stage": ("L", [stage] * len(quarantined)),
            "source_file": ("s", [str(q.source_file or source_file) for q in quarantined]),
            "member": ("s", [getattr(q, "member", None) or member for q in quarantined]),
            "row_number": ("L", [q.row_number for q in quarantined]),
            "row_json": ("s", [_json_text(q.row_json) for q in quarantined]),
            "error": ("s", [str(q.error) for q in quarantined]),
        }
    )


_STAGED_PLAYS = "spotify_history_staged"  # temp tables of a HistoryStaging
# DuckDB's memory while a staging is open: past it the temp tables, and the import's
# de-duplication of a file's plays, spill to disk, so an export's size does not set the peak.
STAGING_MEMORY_LIMIT = "128MB"
_STAGED_QUARANTINE = "spotify_history_quarantine_staged"


class HistoryStaging:
    """Parsed rows of export files, staged in DuckDB temp tables until their import.

    `add` is the reader's sink (history.read_history_file): each batch of a file's rows goes
    to the temp tables, tagged with the file's stage number, so Python holds one batch at a
    time, and DuckDB's memory is capped at STAGING_MEMORY_LIMIT while the staging is open
    (the temp tables spill to disk past it; the cap is the database's, put back by `close`).
    `discard` drops what a file that turned out unreadable staged; `close` drops the tables.
    Temp tables vanish with the connection, so a process killed mid-file leaves nothing.
    """

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn
        self._stages: dict[int, int] = {}  # id(HistoryFile) -> stage number
        self._memory_limit = conn.execute("select current_setting('memory_limit')").fetchone()[0]
        conn.execute(f"set memory_limit = '{STAGING_MEMORY_LIMIT}'")
        conn.execute(f"drop table if exists {_STAGED_PLAYS}")
        conn.execute(f"drop table if exists {_STAGED_QUARANTINE}")
        conn.execute(
            f"create temp table {_STAGED_PLAYS} as select 0::bigint as stage, "
            f"{', '.join(name for name, _ in _HISTORY_COLUMNS)} "
            f"from {RAW_SCHEMA}.spotify_history limit 0"
        )
        conn.execute(
            f"create temp table {_STAGED_QUARANTINE} as select 0::bigint as stage, source_file, "
            f"member, row_number, row_json, error from {RAW_SCHEMA}.spotify_history_quarantine "
            "limit 0"
        )

    def stage_of(self, history_file: Any) -> int:
        return self._stages.setdefault(id(history_file), len(self._stages))

    def add(self, history_file: Any) -> None:
        """Stage the rows the file holds now (its plays and quarantined rows)."""
        stage = self.stage_of(history_file)
        for table, frame in (
            (_STAGED_PLAYS, _history_frame(history_file.plays, history_file, stage)),
            (_STAGED_QUARANTINE, _quarantine_frame(history_file.quarantined, history_file, stage)),
        ):
            if len(frame):
                self.conn.register("history_batch", frame)
                try:
                    self.conn.execute(f"insert into {table} by name select * from history_batch")
                finally:
                    self.conn.unregister("history_batch")

    def discard(self) -> None:
        """Forget everything staged (a file that failed half-way)."""
        self.conn.execute(f"delete from {_STAGED_PLAYS}")
        self.conn.execute(f"delete from {_STAGED_QUARANTINE}")
        self._stages.clear()

    def close(self) -> None:
        self.conn.execute(f"drop table if exists {_STAGED_PLAYS}")
        self.conn.execute(f"drop table if exists {_STAGED_QUARANTINE}")
        self.conn.execute(f"set memory_limit = '{self._memory_limit}'")


def import_history_file(
    conn: duckdb.DuckDBPyConnection,
    history_file: Any,
    *,
    now: datetime | None = None,
    staging: HistoryStaging | None = None,
) -> HistoryImportResult:
    """Import one export file (a `HistoryFile`: one JSON file or one ZIP member).

    Its rows come from `staging` when the reader handed them there (`read_history_file(...,
    sink=staging.add)`), else from the HistoryFile itself (staged here first).
    One transaction: a file whose content_sha256 is in raw.spotify_history_files is a
    `duplicate` and writes nothing; otherwise its plays whose play_key is not stored yet
    (the rest count as `plays_already_loaded`, as do repeats within the file), its quarantined
    rows and its raw.spotify_history_files row are written. `days_touched` are the UTC days on
    which the new plays started (ended_at - ms_played).
    """
    ensure_raw_tables(conn)
    source_file = str(history_file.source_file)
    member = getattr(history_file, "member", None)
    name = f"{source_file}!{member}" if member else source_file
    sha = history_file.content_sha256
    if not sha:
        raise SpotifyLoadError(f"cannot import Spotify export file {name}: no content hash")
    own = staging is None
    if staging is None:
        staging = HistoryStaging(conn)
        staging.add(history_file)
    try:
        return _import_staged(conn, history_file, staging, name, now)
    finally:
        if own:
            staging.close()


def _import_staged(
    conn: duckdb.DuckDBPyConnection,
    history_file: Any,
    staging: HistoryStaging,
    name: str,
    now: datetime | None,
) -> HistoryImportResult:
    source_file = str(history_file.source_file)
    member = getattr(history_file, "member", None)
    sha = history_file.content_sha256
    stage = staging.stage_of(history_file)
    play_count = getattr(history_file, "play_count", None)
    plays_total = len(history_file.plays) if play_count is None else play_count
    quarantined_count = getattr(history_file, "quarantined_count", None)
    if quarantined_count is None:
        quarantined_count = len(history_file.quarantined)
    listed = ", ".join(name for name, _ in _HISTORY_COLUMNS)

    def work(write: RawWrite) -> HistoryImportResult:
        load_id, loaded_at = write.load_id, write.loaded_at
        seen = conn.execute(
            f"select load_id from {RAW_SCHEMA}.spotify_history_files where content_sha256 = ?",
            [sha],
        ).fetchone()
        if seen is not None:
            return HistoryImportResult(None, source_file, member, "duplicate")
        loaded = 0
        if plays_total:
            # New keys only, and each key once (the first row of the file wins).
            loaded = conn.execute(
                f"insert into {RAW_SCHEMA}.spotify_history ({listed}, load_id, loaded_at) "
                f"select {listed}, ?, ? from {_STAGED_PLAYS} where stage = ? "
                f"and play_key not in (select play_key from {RAW_SCHEMA}.spotify_history) "
                "qualify row_number() over (partition by play_key order by row_number) = 1",
                [load_id, loaded_at, stage],
            ).fetchone()[0]
        if quarantined_count:
            conn.execute(
                f"insert into {RAW_SCHEMA}.spotify_history_quarantine (source_file, member, "
                "row_number, row_json, error, load_id, loaded_at) "
                "select source_file, member, row_number, row_json, error, ?, ? "
                f"from {_STAGED_QUARANTINE} where stage = ?",
                [load_id, loaded_at, stage],
            )
        conn.execute(
            f"insert into {RAW_SCHEMA}.spotify_history_files (load_id, source_file, member, "
            "content_sha256, shape, plays_loaded, plays_already_loaded, rows_quarantined, "
            "loaded_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                load_id,
                source_file,
                member,
                sha,
                getattr(history_file, "shape", None) or "unknown",
                loaded,
                plays_total - loaded,
                quarantined_count,
                loaded_at,
            ],
        )
        days = conn.execute(
            "select coalesce(list(distinct day order by day), []) from (select "
            "cast(ended_at - to_milliseconds(ms_played) as date) as day "
            f"from {RAW_SCHEMA}.spotify_history where load_id = ?)",
            [load_id],
        ).fetchone()[0]
        kinds = dict(
            conn.execute(
                f"select kind, count(*) from {RAW_SCHEMA}.spotify_history where load_id = ? "
                "group by kind",
                [load_id],
            ).fetchall()
        )
        new_tracks = conn.execute(
            f"select distinct track_id from {RAW_SCHEMA}.spotify_history "
            "where load_id = ? and kind = 'music' and track_id is not null and track_id not in "
            f"(select track_id from {RAW_SCHEMA}.spotify_tracks) order by track_id",
            [load_id],
        ).fetchall()
        write.touch(days)
        return HistoryImportResult(
            load_id=load_id,
            source_file=source_file,
            member=member,
            status="loaded",
            plays_loaded=loaded,
            music_plays=kinds.get("music", 0),
            episodes=kinds.get("podcast", 0) + kinds.get("audiobook", 0),
            excluded=loaded - sum(kinds.get(k, 0) for k in ("music", "podcast", "audiobook")),
            plays_already_loaded=plays_total - loaded,
            rows_quarantined=quarantined_count,
            days_touched=list(days),
            new_track_ids=[row[0] for row in new_tracks],
        )

    loaded_at = _naive_utc(now) if now is not None else None
    return _in_transaction(conn, f"Spotify export file {name}", work, loaded_at=loaded_at)
