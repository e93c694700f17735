"""Track, artist and audio-feature details for the ids that have none yet (raw.spotify_*)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import duckdb

from music_analytics.lib.core.frames import typed_frame
from music_analytics.lib.core.warehouse import RAW_SCHEMA, ensure_raw_tables
from music_analytics.lib.spotify.load import (
    _in_transaction,
    _json_text,
    _now,
)

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
        {"spotify_metadata_rows": typed_frame(columns)},
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
            "duration_ms": ("L", [_int_or_none(t.get("duration_ms")) for t in tracks]),
            "popularity": ("L", [_int_or_none(t.get("popularity")) for t in tracks]),
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
            "popularity": ("L", [_int_or_none(a.get("popularity")) for a in artists]),
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
