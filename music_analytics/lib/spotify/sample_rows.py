"""A simulated play as a row of Spotify's extended (or older endsong) streaming history."""

from __future__ import annotations

from datetime import datetime
from random import Random
from typing import Any

from music_analytics.lib.spotify.sample_listener import Play

_NEW_PLATFORMS = {"android": "android", "ios": "ios", "windows": "windows", "osx": "osx",
                  "web_player": "web_player"}  # fmt: skip
_OLD_PLATFORMS = {
    "android": "Android OS 12 API 31 (Google, Pixel 6)",
    "ios": "iOS 16.1.1 (iPhone14,5)",
    "windows": "Windows 10 (10.0.19045; x64; AppX)",
    "osx": "OS X 12.6.1 [arm 2]",
    "web_player": "WebPlayer (websocket RFC6455)",
}


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _offline_ts(play: Play, rng: Random, milliseconds: bool) -> int:
    """Epoch of the play's start as the client logged it (ms in old files); 0 rarely."""
    if rng.random() < 0.03:
        return 0
    seconds = int(play.started_at.timestamp())
    return seconds * 1000 + play.started_at.microsecond // 1000 if milliseconds else seconds


def extended_row(play: Play, rng: Random, *, endsong: bool, username: str) -> dict[str, Any]:
    """The play's row in an extended export, or with `endsong` in the older endsong files."""
    item = play.item
    track = item if play.kind == "music" else None
    episode = item if play.kind in ("podcast", "video") else None
    chapter = item if play.kind == "audiobook" else None
    row: dict[str, Any] = {"ts": _ts(play.ended_at)}
    if endsong:
        row["username"] = username
    row["platform"] = (_OLD_PLATFORMS if endsong else _NEW_PLATFORMS)[play.platform]
    row["ms_played"] = play.ms_played
    row["conn_country"] = play.country
    if endsong:
        row["ip_addr_decrypted"] = play.ip
        row["user_agent_decrypted"] = "unknown"
    else:
        row["ip_addr"] = play.ip
    row.update(
        {
            "master_metadata_track_name": track.name if track else None,
            "master_metadata_album_artist_name": track.artist if track else None,
            "master_metadata_album_album_name": track.album if track else None,
            "spotify_track_uri": track.uri if track else None,
            "episode_name": episode.name if episode else None,
            "episode_show_name": episode.show if episode else None,
            "spotify_episode_uri": episode.uri if episode else None,
        }
    )
    if not endsong:
        row.update(
            {
                "audiobook_title": chapter[0] if chapter else None,
                "audiobook_uri": chapter[1] if chapter else None,
                "audiobook_chapter_uri": chapter[2] if chapter else None,
                "audiobook_chapter_title": chapter[3] if chapter else None,
            }
        )
    row.update(
        {
            "reason_start": play.reason_start,
            "reason_end": play.reason_end,
            "shuffle": play.shuffle,
            # Old files often have no skip flag for plays that were not skipped.
            "skipped": play.skipped if not endsong or play.skipped else None,
            "offline": play.offline,
            "offline_timestamp": _offline_ts(play, rng, endsong),
            "incognito_mode": play.incognito,
        }
    )
    return row
