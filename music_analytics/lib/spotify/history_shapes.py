"""The shapes of Spotify's streaming-history export and the typed play read from them.

Spotify's export comes in three shapes (https://support.spotify.com/article/understanding-my-data/):

- **extended** streaming history, `Streaming_History_Audio_YYYY[-YYYY]_N.json` (and
  `Streaming_History_Video_YYYY[-YYYY]_N.json`, video podcasts and music videos, each row's
  kind told by its URIs, not by the file's name): a JSON array of plays, one
  object each: `ts` (the END of the play, ISO 8601 UTC, "2024-03-01T12:34:56Z"), `platform`,
  `ms_played`, `conn_country`, `ip_addr`, `master_metadata_track_name`,
  `master_metadata_album_artist_name`, `master_metadata_album_album_name`, `spotify_track_uri`,
  `episode_name`, `episode_show_name`, `spotify_episode_uri`, `audiobook_title`,
  `audiobook_uri`, `audiobook_chapter_uri`, `audiobook_chapter_title`, `reason_start`,
  `reason_end`, `shuffle`, `skipped`, `offline`, `offline_timestamp` (epoch seconds or
  milliseconds, 0 when unknown) and `incognito_mode`. Mailed as `my_spotify_data.zip` holding
  `Spotify Extended Streaming History/…json` and a `ReadMeFirst_…pdf`.
- **endsong**, the older extended shape `endsong_N.json`: the same plays plus `username` and
  `user_agent_decrypted` (and `ip_addr_decrypted` for `ip_addr`), without the audiobook fields.
- **account_data**, the one-year history in the "Account data" export:
  `StreamingHistoryN.json` (music and podcasts mixed, indistinguishable: its rows are read as
  music) and, since 2023,
  `StreamingHistory_music_N.json` / `StreamingHistory_podcast_N.json`: arrays of
  `{"endTime": "2023-01-31 23:59", "artistName", "trackName", "msPlayed"}` (podcast files have
  `podcastName` and `episodeName`), end times in UTC to the minute, no URIs.

Personal data that the marts do not need is dropped on reading and kept nowhere, not even in
the quarantine: `ip_addr`, `ip_addr_decrypted`, `username`, `user_agent_decrypted`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

SHAPES = ("extended", "endsong", "account_data")
# What a row played (history_rows._kind): music reaches fct_streams and the listener's marts,
# podcast (video podcasts included) and audiobook stg_spotify__history_episodes and
# listening_history; unknown (a row that names nothing) is stored and counted as excluded.
KINDS = ("music", "podcast", "audiobook", "unknown")
# Fields of a personal nature that are dropped on reading (and from quarantined rows).
PERSONAL_FIELDS = frozenset({"ip_addr", "ip_addr_decrypted", "username", "user_agent_decrypted"})

_EXTENDED_NAME_RE = re.compile(
    r"Streaming_History_(Audio|Video)_[0-9]{4}(-[0-9]{4})?(_[0-9]+)?\.json", re.IGNORECASE
)
_ENDSONG_NAME_RE = re.compile(r"endsong(_[0-9]+)?\.json", re.IGNORECASE)
_ACCOUNT_NAME_RE = re.compile(
    r"StreamingHistory(_(music|podcast|video))?_?[0-9]*\.json", re.IGNORECASE
)
FIX_FILE = "request a new export from Spotify (Account > Privacy) or drop an intact copy"


class SpotifyHistoryError(ValueError):
    """A streaming-history file or ZIP cannot be read at all; the message names file and member."""


@dataclass(frozen=True)
class HistoryPlay:
    """One play of the streaming history, checked and typed; personal fields are not kept.

    `ended_at` is when the play ENDED, in UTC, to `ended_at_precision_seconds` (1 for the
    extended and endsong shapes, 60 for account data). `row_number` is 1-based in its array.
    """

    ended_at: datetime
    ms_played: int
    kind: str
    track_uri: str | None
    track_id: str | None
    track_name: str | None
    artist_name: str | None
    album_name: str | None
    episode_name: str | None
    show_name: str | None
    episode_uri: str | None
    audiobook_title: str | None
    audiobook_uri: str | None
    audiobook_chapter_uri: str | None
    audiobook_chapter_title: str | None
    platform: str | None
    conn_country: str | None
    reason_start: str | None
    reason_end: str | None
    shuffle: bool | None
    skipped: bool | None
    offline: bool | None
    offline_timestamp: datetime | None
    incognito_mode: bool | None
    shape: str
    source_file: str
    member: str | None
    row_number: int
    ended_at_precision_seconds: int


@dataclass(frozen=True)
class QuarantinedRow:
    """A row that is not a usable play: the row as JSON (personal fields removed) and why."""

    source_file: str
    member: str | None
    row_number: int
    row_json: str
    error: str


@dataclass
class HistoryFile:
    """One history file (or ZIP member): its shape, plays, quarantined rows and content hash.

    `content_sha256` is the hash of the file's (member's) bytes, so the same file imported
    again, loose or inside another ZIP, is recognised. Read with a sink (history.py), the
    parsed rows are handed over in batches: `plays` and `quarantined` then hold only the rows
    not handed over yet, and `plays_handed`/`quarantined_handed` count the others.
    """

    source_file: str
    member: str | None
    shape: str
    plays: list[HistoryPlay] = field(default_factory=list)
    quarantined: list[QuarantinedRow] = field(default_factory=list)
    content_sha256: str = ""
    plays_handed: int = 0
    quarantined_handed: int = 0

    @property
    def play_count(self) -> int:
        return self.plays_handed + len(self.plays)

    @property
    def quarantined_count(self) -> int:
        return self.quarantined_handed + len(self.quarantined)

    def hand_over(self, sink: Callable[[HistoryFile], object]) -> None:
        """Give the rows held to `sink` (which stores them), then forget them."""
        sink(self)
        self.plays_handed += len(self.plays)
        self.quarantined_handed += len(self.quarantined)
        self.plays.clear()
        self.quarantined.clear()


def history_error(
    source: str, member: str | None, problem: str, action: str = FIX_FILE
) -> SpotifyHistoryError:
    """A SpotifyHistoryError naming the file and, for a ZIP, the member."""
    where = f"Spotify history {source}" + (f", member {member!r}" if member else "")
    return SpotifyHistoryError(f"{where}: {problem}; {action}")


def history_name_shape(name: str) -> str | None:
    """The shape a file name says (extended, endsong, account_data), or None for other names."""
    base = PurePosixPath(name.replace("\\", "/")).name
    if _EXTENDED_NAME_RE.fullmatch(base):
        return "extended"
    if _ENDSONG_NAME_RE.fullmatch(base):
        return "endsong"
    if _ACCOUNT_NAME_RE.fullmatch(base):
        return "account_data"
    return None


def is_history_file_name(name: str) -> bool:
    """True for the names Spotify gives streaming-history files (any of the three shapes)."""
    return history_name_shape(name) is not None


def detect_shape(name: str, first_row: dict) -> str | None:
    """The export shape of a file, from its name and its first row; None when neither tells.

    The row's keys decide between the account-data shape (`endTime`) and the extended ones
    (`ts`); between extended and endsong the name decides, else `username` or
    `user_agent_decrypted` in the row (only endsong files have them).
    """
    by_name = history_name_shape(name)
    row = first_row if isinstance(first_row, dict) else {}
    if "endTime" in row:
        return "account_data"
    if "ts" in row:
        if by_name in ("extended", "endsong"):
            return by_name
        return "endsong" if {"username", "user_agent_decrypted"} & row.keys() else "extended"
    return by_name


def play_key(play: HistoryPlay) -> str:
    """A stable dedup key of a play: end time at its precision, what was played, ms_played.

    What was played is the track, episode or chapter URI when the row has one, else the kind
    and names. The same play in two files of the same shape (an export re-requested later,
    the old endsong and the new extended file) gets the same key; matching account-data
    rows (minute precision, no URIs) to extended ones needs a tolerance and is not done here.
    Returns a SHA-256 hex digest.
    """
    precision = play.ended_at_precision_seconds
    ended = play.ended_at.astimezone(UTC)
    if precision >= 60:
        stamp = ended.strftime("%Y-%m-%dT%H:%MZ")
    else:
        stamp = ended.strftime("%Y-%m-%dT%H:%M:%SZ")
    uri = play.track_uri or play.episode_uri or play.audiobook_chapter_uri or play.audiobook_uri
    if uri:
        what: list[Any] = [uri]
    else:
        names = (
            play.track_name,
            play.artist_name,
            play.episode_name,
            play.show_name,
            play.audiobook_title,
            play.audiobook_chapter_title,
        )
        what = [play.kind, *names]
    parts = json.dumps([stamp, what, play.ms_played], ensure_ascii=False)
    return hashlib.sha256(parts.encode()).hexdigest()
