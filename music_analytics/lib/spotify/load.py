"""Writing Spotify plays and metadata into the raw layer.

Three inputs land here, each in its own tables (see lib/warehouse.py):

- a page of recently-played (`record_poll`): each play is stored once, keyed on
  (played_at, track_id), however the polls overlap; a poll that brings nothing new writes
  nothing, so an idle account costs one request and no write;
- one file of the privacy export (`import_history_file`): a file whose bytes were imported
  before adds nothing, and a play already imported from another file (a re-packaged export)
  is not stored twice (`play_key`);
- track, artist and audio-feature details fetched for ids that have none yet (`save_*`).

Each call is one transaction: everything it writes lands, or nothing does. The objects come
from lib/spotify/plays.py and lib/spotify/history_shapes.py and are read by attribute only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from music_analytics.lib.core.raw_writer import RawWrite, raw_transaction, utc_now
from music_analytics.lib.core.warehouse import RAW_SCHEMA, ensure_raw_tables

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
_EPOCH = datetime(1970, 1, 1)
_NAT = np.datetime64("NaT", "us")


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
    `duplicate` (its content was imported before: nothing written, `load_id` None)."""

    load_id: str | None
    source_file: str
    member: str | None
    status: str
    plays_loaded: int = 0
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


def _frame(columns: dict[str, tuple[str, list[Any]]]) -> pd.DataFrame:
    """Columns as a DataFrame with explicit dtypes, so that DuckDB does not have to guess from
    a sample: s text (objects), l bigint (nullable), b boolean (nullable), t timestamp,
    a text list (objects)."""
    makers: dict[str, Callable[[list[Any]], Any]] = {
        "s": lambda values: pd.Series(values, dtype=object),
        "a": lambda values: pd.Series(values, dtype=object),
        "l": lambda values: pd.array(values, dtype="Int64"),
        "b": lambda values: pd.array(values, dtype="boolean"),
        "t": lambda values: np.array(
            [_NAT if v is None else v for v in values], dtype="datetime64[us]"
        ),
    }
    return pd.DataFrame({name: makers[kind](values) for name, (kind, values) in columns.items()})


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
    ("duration_ms", "l"),
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
    frame = _frame(
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


# --- streaming-history import ------------------------------------------------------------------


def _play_key(play: Any) -> str:
    """The export play's identity across files (lib/spotify_history.play_key)."""
    from music_analytics.lib.spotify.history_shapes import play_key

    return play_key(play)


_HISTORY_COLUMNS = (
    ("ended_at", "t"),
    ("ended_at_precision_seconds", "l"),
    ("ms_played", "l"),
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
    ("row_number", "l"),
)
_TIMESTAMPS = {"ended_at", "offline_timestamp"}


def _history_frame(plays: Sequence[Any], history_file: Any) -> pd.DataFrame:
    """The file's plays as columns; a play without its own shape/source/member takes the
    file's."""
    columns: dict[str, tuple[str, list[Any]]] = {}
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
    return _frame(columns)


def import_history_file(
    conn: duckdb.DuckDBPyConnection, history_file: Any, *, now: datetime | None = None
) -> HistoryImportResult:
    """Import one export file (a `HistoryFile`: one JSON file or one ZIP member).

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
    plays = list(history_file.plays)
    quarantined = list(history_file.quarantined)
    history_rows = _history_frame(plays, history_file)
    quarantine_rows = _frame(
        {
            "source_file": ("s", [str(q.source_file or source_file) for q in quarantined]),
            "member": ("s", [getattr(q, "member", None) or member for q in quarantined]),
            "row_number": ("l", [q.row_number for q in quarantined]),
            "row_json": ("s", [_json_text(q.row_json) for q in quarantined]),
            "error": ("s", [str(q.error) for q in quarantined]),
        }
    )
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
        if plays:
            # New keys only, and each key once (the first row of the file wins).
            loaded = conn.execute(
                f"insert into {RAW_SCHEMA}.spotify_history ({listed}, load_id, loaded_at) "
                f"select {listed}, ?, ? from spotify_history_rows "
                f"where play_key not in (select play_key from {RAW_SCHEMA}.spotify_history) "
                "qualify row_number() over (partition by play_key order by row_number) = 1",
                [load_id, loaded_at],
            ).fetchone()[0]
        if quarantined:
            conn.execute(
                f"insert into {RAW_SCHEMA}.spotify_history_quarantine (source_file, member, "
                "row_number, row_json, error, load_id, loaded_at) "
                "select source_file, member, row_number, row_json, error, ?, ? "
                "from spotify_history_quarantine_rows",
                [load_id, loaded_at],
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
                len(plays) - loaded,
                len(quarantined),
                loaded_at,
            ],
        )
        days = conn.execute(
            "select coalesce(list(distinct day order by day), []) from (select "
            "cast(ended_at - to_milliseconds(ms_played) as date) as day "
            f"from {RAW_SCHEMA}.spotify_history where load_id = ?)",
            [load_id],
        ).fetchone()[0]
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
            plays_already_loaded=len(plays) - loaded,
            rows_quarantined=len(quarantined),
            days_touched=list(days),
            new_track_ids=[row[0] for row in new_tracks],
        )

    frames = {
        "spotify_history_rows": history_rows,
        "spotify_history_quarantine_rows": quarantine_rows,
    }
    loaded_at = _naive_utc(now) if now is not None else None
    return _in_transaction(conn, f"Spotify export file {name}", work, frames, loaded_at=loaded_at)


# --- metadata ----------------------------------------------------------------------------------

# Every track id played, from the polls and the export's music rows.
_PLAYED_TRACKS = (
    f"select track_id, played_at as last_played from {RAW_SCHEMA}.spotify_plays "
    f"union all select track_id, ended_at from {RAW_SCHEMA}.spotify_history "
    "where kind = 'music' and track_id is not null"
)


def tracks_missing_metadata(conn: duckdb.DuckDBPyConnection, limit: int | None = None) -> list[str]:
    """Track ids played (polls or export music rows) without a raw.spotify_tracks row, the most
    recently played first; at most `limit`."""
    ensure_raw_tables(conn)
    sql = (
        f"select track_id from ({_PLAYED_TRACKS}) "
        f"where track_id not in (select track_id from {RAW_SCHEMA}.spotify_tracks) "
        "group by track_id order by max(last_played) desc, track_id"
    )
    if limit is not None:
        sql += f" limit {max(int(limit), 0)}"
    return [row[0] for row in conn.execute(sql).fetchall()]


def artists_missing_metadata(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Artist ids of raw.spotify_tracks without a raw.spotify_artists row, sorted."""
    ensure_raw_tables(conn)
    rows = conn.execute(
        f"select distinct artist_id from (select unnest(artist_ids) as artist_id "
        f"from {RAW_SCHEMA}.spotify_tracks) where artist_id is not null and artist_id not in "
        f"(select artist_id from {RAW_SCHEMA}.spotify_artists) order by artist_id"
    ).fetchall()
    return [row[0] for row in rows]


def tracks_missing_audio_features(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Track ids known (played, or with metadata) without a raw.spotify_audio_features row,
    the most recently played first."""
    ensure_raw_tables(conn)
    rows = conn.execute(
        f"select track_id from ({_PLAYED_TRACKS} union all "
        f"select track_id, null from {RAW_SCHEMA}.spotify_tracks) "
        f"where track_id not in (select track_id from {RAW_SCHEMA}.spotify_audio_features) "
        "group by track_id order by max(last_played) desc nulls last, track_id"
    ).fetchall()
    return [row[0] for row in rows]


def _by_id(items: Iterable[Any]) -> dict[str, dict]:
    """API objects by id, the last one winning; None (an id Spotify did not know) is skipped."""
    return {item["id"]: item for item in items if isinstance(item, dict) and item.get("id")}


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _upsert(
    conn: duckdb.DuckDBPyConnection, table: str, what: str, columns: dict[str, tuple[str, list]]
) -> int:
    rows = len(next(iter(columns.values()))[1])
    if not rows:
        return 0
    listed = ", ".join(columns)
    _in_transaction(
        conn,
        what,
        lambda write: conn.execute(
            f"insert or replace into {RAW_SCHEMA}.{table} ({listed}) "
            f"select {listed} from spotify_metadata_rows"
        ),
        {"spotify_metadata_rows": _frame(columns)},
    )
    return rows


def save_tracks(conn: duckdb.DuckDBPyConnection, items: list[dict]) -> int:
    """Insert or replace raw.spotify_tracks rows from Spotify track objects; the rows written."""
    ensure_raw_tables(conn)
    tracks = list(_by_id(items).values())
    albums = [t.get("album") if isinstance(t.get("album"), dict) else {} for t in tracks]
    fetched_at = _now()
    return _upsert(
        conn,
        "spotify_tracks",
        f"{len(tracks)} Spotify track(s)",
        {
            "track_id": ("s", [t["id"] for t in tracks]),
            "track_name": ("s", [t.get("name") for t in tracks]),
            "duration_ms": ("l", [_int_or_none(t.get("duration_ms")) for t in tracks]),
            "popularity": ("l", [_int_or_none(t.get("popularity")) for t in tracks]),
            "album_id": ("s", [a.get("id") for a in albums]),
            "album_name": ("s", [a.get("name") for a in albums]),
            "album_release_date": ("s", [a.get("release_date") for a in albums]),
            "isrc": ("s", [(t.get("external_ids") or {}).get("isrc") for t in tracks]),
            "artist_ids": (
                "a",
                [[a["id"] for a in t.get("artists") or [] if a and a.get("id")] for t in tracks],
            ),
            "item": ("s", [_json_text(t) for t in tracks]),
            "fetched_at": ("t", [fetched_at] * len(tracks)),
        },
    )


def save_artists(conn: duckdb.DuckDBPyConnection, items: list[dict]) -> int:
    """Insert or replace raw.spotify_artists rows from Spotify artist objects; the rows
    written."""
    ensure_raw_tables(conn)
    artists = list(_by_id(items).values())
    fetched_at = _now()
    return _upsert(
        conn,
        "spotify_artists",
        f"{len(artists)} Spotify artist(s)",
        {
            "artist_id": ("s", [a["id"] for a in artists]),
            "artist_name": ("s", [a.get("name") for a in artists]),
            "genres": ("a", [[str(g) for g in a.get("genres") or []] for a in artists]),
            "popularity": ("l", [_int_or_none(a.get("popularity")) for a in artists]),
            "item": ("s", [_json_text(a) for a in artists]),
            "fetched_at": ("t", [fetched_at] * len(artists)),
        },
    )


def save_audio_features(
    conn: duckdb.DuckDBPyConnection, track_ids: Sequence[str], features: dict[str, dict] | None
) -> int:
    """Insert or replace raw.spotify_audio_features rows for `track_ids`; the rows written.

    `features` None (the API refused, 403 for new apps) or a track missing from it records the
    track as unavailable, so that it is not asked for again.
    """
    ensure_raw_tables(conn)
    ids = list(dict.fromkeys(i for i in track_ids if i))
    found = [(features or {}).get(i) for i in ids]
    fetched_at = _now()
    return _upsert(
        conn,
        "spotify_audio_features",
        f"audio features of {len(ids)} Spotify track(s)",
        {
            "track_id": ("s", ids),
            "available": ("b", [bool(f) for f in found]),
            "features": ("s", [_json_text(f) if f else None for f in found]),
            "fetched_at": ("t", [fetched_at] * len(ids)),
        },
    )
