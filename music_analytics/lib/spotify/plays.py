"""Recently-played items of the Spotify Web API as values, with their UTC times."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class RecentPlay:
    """One item of GET /me/player/recently-played; `raw` is the item as the API sent it."""

    played_at: datetime  # UTC
    track_id: str
    track_name: str | None
    duration_ms: int | None
    artist_ids: tuple[str, ...]
    artist_names: tuple[str, ...]
    album_id: str | None
    album_name: str | None
    album_release_date: str | None
    isrc: str | None
    context_type: str | None
    context_uri: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def played_at_ms(self) -> int:
        """played_at as Unix milliseconds, the unit of the API's cursors."""
        return _to_ms(self.played_at)

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> RecentPlay:
        """Parse one item; raises ValueError naming the missing field."""
        track = item.get("track") or {}
        track_id = track.get("id")
        if not track_id:
            raise ValueError("item has no track.id (a local file?)")
        played_at = item.get("played_at")
        if not isinstance(played_at, str):
            raise ValueError(f"track {track_id}: played_at is {played_at!r}")
        album = track.get("album") or {}
        artists = [a for a in track.get("artists") or [] if isinstance(a, Mapping)]
        context = item.get("context") or {}
        return cls(
            played_at=parse_played_at(played_at),
            track_id=track_id,
            track_name=track.get("name"),
            duration_ms=track.get("duration_ms"),
            artist_ids=tuple(a.get("id") or "" for a in artists),
            artist_names=tuple(a.get("name") or "" for a in artists),
            album_id=album.get("id"),
            album_name=album.get("name"),
            album_release_date=album.get("release_date"),
            isrc=(track.get("external_ids") or {}).get("isrc"),
            context_type=context.get("type"),
            context_uri=context.get("uri"),
            raw=item,
        )


@dataclass(frozen=True)
class RecentPage:
    """One poll's plays (newest first), the cursor to keep, and whether the page was full.

    A full page (50 plays, all newer than the cursor) means older plays may have fallen out of the
    API's 50-play window since the last poll: the caller flags a possible gap.
    """

    plays: list[RecentPlay]
    cursor_after_ms: int | None
    full_page: bool


def parse_played_at(value: str) -> datetime:
    """`2026-11-23T12:00:00.123Z` (milliseconds optional) as an aware UTC datetime."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _to_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)
