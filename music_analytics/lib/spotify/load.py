"""Writing Spotify plays and metadata into the raw layer.

Three inputs land here, each in its own tables (see lib/warehouse.py):

- a page of recently-played (`record_poll`): each play is stored once, keyed on
  (played_at, track_id), however the polls overlap; a poll that brings nothing new writes
  nothing, so an idle account costs one request and no write;
- one file of the privacy export (`import_history_file`, in history_load.py): a file whose
  bytes were imported before adds nothing, and a play already imported from another file
  is not stored twice (`play_key`);
- track, artist and audio-feature details fetched for ids that have none yet (`save_*`, in
  metadata_load.py).

This module holds the polls, the results and the helpers the other two share.

Each call is one transaction: everything it writes lands, or nothing does. The objects come
from lib/spotify/plays.py and lib/spotify/history_shapes.py and are read by attribute only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import duckdb

from music_analytics.lib.core.frames import typed_frame
from music_analytics.lib.core.raw_writer import RawWrite, raw_transaction, utc_now
from music_analytics.lib.core.warehouse import RAW_SCHEMA, ensure_raw_tables

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
_EPOCH = datetime(1970, 1, 1)


class SpotifyLoadError(RuntimeError):
    """Plays or metadata could not be stored; the message names the input and the cause."""


@dataclass(frozen=True)
class PollResult:
    """What storing one recently-played page did.

    `poll_id` is None when nothing new arrived (nothing was written; `cursor_after_ms` is then
    the cursor that was sent). `full_page` flags a likely gap: a full page whose plays are all
    newer than the cursor sent, and at least one of them new.
    """

    poll_id: str | None
    plays_returned: int
    plays_new: int
    full_page: bool
    cursor_after_ms: int | None
    days_touched: list[date] = field(default_factory=list)
    new_track_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HistoryImportResult:
    """What importing one export file (one ZIP member) did; `status` is `loaded` or
    `duplicate` (its content was imported before: nothing written, `load_id` None).

    `plays_loaded` counts every row stored, of any kind; of them, `music_plays` reach the
    music marts, `episodes` (podcast episodes, video podcasts, audiobook chapters) the
    listener's episodes, and `excluded` (kind unknown: a row naming nothing) no mart."""

    load_id: str | None
    source_file: str
    member: str | None
    status: str
    plays_loaded: int = 0
    music_plays: int = 0
    episodes: int = 0
    excluded: int = 0
    plays_already_loaded: int = 0
    rows_quarantined: int = 0
    days_touched: list[date] = field(default_factory=list)
    new_track_ids: list[str] = field(default_factory=list)


# --- helpers -----------------------------------------------------------------------------------


_now = utc_now


def _naive_utc(value: Any) -> datetime | None:
    """A UTC timestamp without tzinfo (what the TIMESTAMP columns hold).

    Accepts an aware datetime (converted to UTC), a naive one (taken as UTC), epoch seconds or
    milliseconds (told apart by size), an ISO-8601 string, or None.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if abs(value) >= 1e11 else value
        return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        return _naive_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    raise TypeError(f"not a timestamp: {value!r}")


def _epoch_ms(value: datetime) -> int:
    """Milliseconds since the epoch of a naive-UTC datetime."""
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _json_text(value: Any) -> str:
    """The JSON text of an API item (a dict, or text already)."""
    if value is None:
        return "null"
    if isinstance(value, str | bytes):
        return value.decode() if isinstance(value, bytes) else value
    return _dumps(value)


def _in_transaction(
    conn: duckdb.DuckDBPyConnection,
    what: str,
    work: Callable[[RawWrite], Any],
    frames: dict[str, pd.DataFrame] | None = None,
    *,
    loaded_at: datetime | None = None,
) -> Any:
    """Run `work` in one raw transaction (lib/core/raw_writer: the days it touches go to the
    rebuild ledger in the same commit), with `frames` visible to it as views by their names
    (dropped after the commit or rollback); a DuckDB error becomes SpotifyLoadError naming
    `what`, and nothing is written."""
    frames = frames or {}
    for name, frame in frames.items():
        conn.register(name, frame)
    try:
        with raw_transaction(
            conn,
            "spotify",
            loaded_at=loaded_at,
            wrap_error=lambda exc: SpotifyLoadError(f"cannot store {what}: {exc}"),
        ) as write:
            return work(write)
    finally:
        for name in frames:
            conn.unregister(name)


# --- recently-played polls ---------------------------------------------------------------------


def last_cursor(conn: duckdb.DuckDBPyConnection) -> int | None:
    """The `after` cursor (epoch ms) for the next poll: the newest poll's cursor, else the
    newest stored play's played_at, else None (first poll)."""
    ensure_raw_tables(conn)
    row = conn.execute(
        f"select cursor_after_ms from {RAW_SCHEMA}.spotify_polls "
        "where cursor_after_ms is not null order by poll_id desc limit 1"
    ).fetchone()
    if row is not None:
        return int(row[0])
    newest = conn.execute(f"select max(played_at) from {RAW_SCHEMA}.spotify_plays").fetchone()[0]
    return _epoch_ms(newest) if newest is not None else None


# Where a RecentPlay keeps the API's item, verbatim (the first of these it has).
_ITEM_ATTRIBUTES = ("item", "raw", "raw_item", "item_json")


def _play_row(play: Any) -> tuple:
    item = next(
        (getattr(play, name) for name in _ITEM_ATTRIBUTES if getattr(play, name, None) is not None),
        None,
    )
    return (
        _naive_utc(play.played_at),
        play.track_id,
        getattr(play, "track_name", None),
        getattr(play, "duration_ms", None),
        list(getattr(play, "artist_ids", None) or []),
        list(getattr(play, "artist_names", None) or []),
        getattr(play, "album_id", None),
        getattr(play, "album_name", None),
        getattr(play, "album_release_date", None),
        getattr(play, "isrc", None),
        getattr(play, "context_type", None),
        getattr(play, "context_uri", None),
        _json_text(item),
    )


_PLAY_COLUMNS = (
    ("played_at", "t"),
    ("track_id", "s"),
    ("track_name", "s"),
    ("duration_ms", "L"),
    ("artist_ids", "a"),
    ("artist_names", "a"),
    ("album_id", "s"),
    ("album_name", "s"),
    ("album_release_date", "s"),
    ("isrc", "s"),
    ("context_type", "s"),
    ("context_uri", "s"),
    ("item", "s"),
)


def record_poll(conn: duckdb.DuckDBPyConnection, page: Any, *, after_ms: int | None) -> PollResult:
    """Store a recently-played page (a `RecentPage`) polled with cursor `after_ms`.

    Plays already in raw.spotify_plays (same played_at and track id) are skipped; when none is
    new, nothing is written at all and the cursor stays `after_ms`. Otherwise the new plays
    and a raw.spotify_polls row (with the cursor for next time: the page's, else its newest
    play) are one transaction.
    """
    ensure_raw_tables(conn)
    plays = list(page.plays)
    rows: dict[tuple[datetime, str], tuple] = {}
    for play in plays:
        if not getattr(play, "track_id", None):
            continue  # a local file or an unavailable item: no key to store it under
        row = _play_row(play)
        rows.setdefault((row[0], row[1]), row)
    if not rows:
        return PollResult(None, len(plays), 0, False, after_ms)
    played_ms = [_epoch_ms(key[0]) for key in rows]
    full_page = bool(getattr(page, "full_page", False)) and (
        after_ms is None or all(ms > after_ms for ms in played_ms)
    )
    # The page's cursor, else its newest play; never behind the cursor sent.
    page_cursor = getattr(page, "cursor_after_ms", None)
    cursor = max(page_cursor if page_cursor is not None else max(played_ms), after_ms or 0)
    page_rows = list(rows.values())
    frame = typed_frame(
        {
            name: (kind, [row[i] for row in page_rows])
            for i, (name, kind) in enumerate(_PLAY_COLUMNS)
        }
    )
    listed = ", ".join(name for name, _ in _PLAY_COLUMNS)

    def work(write: RawWrite) -> tuple[str, int, list[date], list[str]]:
        poll_id, polled_at = write.load_id, write.loaded_at
        # Inside the transaction, so that a concurrent poll cannot slip a play in between.
        new = conn.execute(
            f"insert into {RAW_SCHEMA}.spotify_plays ({listed}, poll_id, loaded_at) "
            f"select {listed}, ?, ? from spotify_poll_rows as p where not exists (select 1 "
            f"from {RAW_SCHEMA}.spotify_plays as s "
            "where s.played_at = p.played_at and s.track_id = p.track_id)",
            [poll_id, polled_at],
        ).fetchone()[0]
        if not new:
            return poll_id, 0, [], []  # nothing inserted: the commit writes nothing
        conn.execute(
            f"insert into {RAW_SCHEMA}.spotify_polls (poll_id, polled_at, after_ms, "
            "cursor_after_ms, plays_returned, plays_new, full_page) values (?, ?, ?, ?, ?, ?, ?)",
            [poll_id, polled_at, after_ms, cursor, len(plays), new, full_page],
        )
        days = conn.execute(
            "select coalesce(list(distinct cast(played_at as date) order by "
            f"cast(played_at as date)), []) from {RAW_SCHEMA}.spotify_plays where poll_id = ?",
            [poll_id],
        ).fetchone()[0]
        tracks = conn.execute(
            f"select distinct track_id from {RAW_SCHEMA}.spotify_plays where poll_id = ? and "
            f"track_id not in (select track_id from {RAW_SCHEMA}.spotify_tracks) order by track_id",
            [poll_id],
        ).fetchall()
        write.touch(days)
        return poll_id, new, list(days), [row[0] for row in tracks]

    poll_id, new, days, tracks = _in_transaction(
        conn,
        f"recently-played poll (after={after_ms})",
        work,
        {"spotify_poll_rows": frame},
    )
    if not new:
        return PollResult(None, len(plays), 0, False, after_ms)
    return PollResult(
        poll_id=poll_id,
        plays_returned=len(plays),
        plays_new=new,
        full_page=full_page,
        cursor_after_ms=cursor,
        days_touched=days,
        new_track_ids=tracks,
    )
