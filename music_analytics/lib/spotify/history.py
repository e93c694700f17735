"""Reading a listener's Spotify privacy export (streaming history), files or the ZIP Spotify mails.

Spotify's export comes in three shapes (https://support.spotify.com/article/understanding-my-data/):

- **extended** streaming history, `Streaming_History_Audio_YYYY[-YYYY]_N.json` (and
  `Streaming_History_Video_YYYY[-YYYY]_N.json` for video podcasts): a JSON array of plays, one
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

A row that cannot be a play (not an object, no or a bad end time, a missing or negative
`ms_played`, a field of the wrong type) is quarantined with the field and value that failed;
the rest of the file still loads. A file that cannot be read at all (not JSON, not an array,
an unsafe ZIP) raises SpotifyHistoryError naming the file and, for a ZIP, the member.

ZIPs are read in memory, never extracted: member names with absolute paths or `..`,
symbolic links, encrypted or oddly compressed history members, and members over the size or
compression-ratio caps are refused before a byte is inflated, and the inflated bytes are
counted as they are read since headers can lie. Members that are not streaming history
(PDFs, READMEs, the other JSON files of an account-data export, directories) are ignored.

Memory: one export file is at most tens of MB (Spotify splits the history into files of about
12 MB), so each file or member is read whole and parsed with `json.loads`; only one is held
at a time while reading, plus the plays parsed from it.
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

SHAPES = ("extended", "endsong", "account_data")
KINDS = ("music", "podcast", "audiobook", "video", "unknown")
# Fields of a personal nature that are dropped on reading (and from quarantined rows).
PERSONAL_FIELDS = frozenset({"ip_addr", "ip_addr_decrypted", "username", "user_agent_decrypted"})

_EXTENDED_NAME_RE = re.compile(
    r"Streaming_History_(Audio|Video)_[0-9]{4}(-[0-9]{4})?(_[0-9]+)?\.json", re.IGNORECASE
)
_ENDSONG_NAME_RE = re.compile(r"endsong(_[0-9]+)?\.json", re.IGNORECASE)
_ACCOUNT_NAME_RE = re.compile(
    r"StreamingHistory(_(music|podcast|video))?_?[0-9]*\.json", re.IGNORECASE
)
_TS_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})?"
)
_END_TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}")
_TRACK_URI_RE = re.compile(r"spotify:track:([0-9A-Za-z]+)")
_EPOCH_MS_THRESHOLD = 100_000_000_000  # larger epoch values are milliseconds (year 5138 in s)
_READ_CHUNK = 1 << 20
_ARCHIVE_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError)
_FIX_FILE = "request a new export from Spotify (Account > Privacy) or drop an intact copy"
_FIX_UNSAFE = "do not load it; use the ZIP exactly as Spotify mailed it"

# Optional string fields of the extended and endsong shapes: row key -> HistoryPlay field.
_EXTENDED_TEXT = {
    "platform": "platform",
    "conn_country": "conn_country",
    "master_metadata_track_name": "track_name",
    "master_metadata_album_artist_name": "artist_name",
    "master_metadata_album_album_name": "album_name",
    "spotify_track_uri": "track_uri",
    "episode_name": "episode_name",
    "episode_show_name": "show_name",
    "spotify_episode_uri": "episode_uri",
    "audiobook_title": "audiobook_title",
    "audiobook_uri": "audiobook_uri",
    "audiobook_chapter_uri": "audiobook_chapter_uri",
    "audiobook_chapter_title": "audiobook_chapter_title",
    "reason_start": "reason_start",
    "reason_end": "reason_end",
}
_EXTENDED_BOOL = ("shuffle", "skipped", "offline", "incognito_mode")
_AUDIOBOOK_FIELDS = (
    "audiobook_title",
    "audiobook_uri",
    "audiobook_chapter_uri",
    "audiobook_chapter_title",
)
_ACCOUNT_TEXT = {
    "artistName": "artist_name",
    "trackName": "track_name",
    "podcastName": "show_name",
    "episodeName": "episode_name",
}


class SpotifyHistoryError(ValueError):
    """A streaming-history file or ZIP cannot be read at all; the message names file and member."""


@dataclass(frozen=True)
class HistoryZipLimits:
    """Caps that keep a hostile or broken ZIP (a ZIP bomb) from exhausting memory."""

    max_member_bytes: int = 256 << 20
    max_total_bytes: int = 2 << 30
    max_ratio: float = 100.0
    max_members: int = 10_000


DEFAULT_ZIP_LIMITS = HistoryZipLimits()


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
    again, loose or inside another ZIP, is recognised.
    """

    source_file: str
    member: str | None
    shape: str
    plays: list[HistoryPlay] = field(default_factory=list)
    quarantined: list[QuarantinedRow] = field(default_factory=list)
    content_sha256: str = ""


class _RowError(ValueError):
    """A row that must be quarantined; the message names the field and the value."""


def _fail(
    source: str, member: str | None, problem: str, action: str = _FIX_FILE
) -> SpotifyHistoryError:
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


def _is_video_name(name: str) -> bool:
    return PurePosixPath(name.replace("\\", "/")).name.lower().startswith("streaming_history_video")


def _is_account_podcast_name(name: str) -> bool:
    return (
        PurePosixPath(name.replace("\\", "/")).name.lower().startswith("streaminghistory_podcast")
    )


# ---------------------------------------------------------------------------- row parsing


def _text(row: dict, key: str) -> str | None:
    value = row.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _RowError(f"field {key} is {value!r}, expected a string or null")


def _flag(row: dict, key: str) -> bool | None:
    value = row.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise _RowError(f"field {key} is {value!r}, expected true, false or null")


def _ms_played(row: dict, key: str) -> int:
    if key not in row or row[key] is None:
        raise _RowError(f"field {key} is missing")
    value = row[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _RowError(f"field {key} is {value!r}, expected a non-negative integer")
    if isinstance(value, float) and not value.is_integer():
        raise _RowError(f"field {key} is {value!r}, expected a non-negative integer")
    if value < 0:
        raise _RowError(f"field {key} is {value!r}, expected a non-negative integer")
    return int(value)


def _ts(row: dict) -> datetime:
    if row.get("ts") is None:
        raise _RowError("field ts is missing")
    value = row["ts"]
    if not isinstance(value, str) or not _TS_RE.fullmatch(value):
        raise _RowError(f"field ts is {value!r}, expected an ISO time like 2024-03-01T12:34:56Z")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _RowError(f"field ts is {value!r}, not a valid date and time") from None
    # Spotify writes UTC with a Z; a time without a zone is taken as UTC too.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _end_time(row: dict) -> datetime:
    if row.get("endTime") is None:
        raise _RowError("field endTime is missing")
    value = row["endTime"]
    if not isinstance(value, str) or not _END_TIME_RE.fullmatch(value):
        raise _RowError(f"field endTime is {value!r}, expected UTC like 2023-01-31 23:59")
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    except ValueError:
        raise _RowError(f"field endTime is {value!r}, not a valid date and time") from None


def _offline_timestamp(row: dict) -> datetime | None:
    """Epoch seconds or milliseconds (told apart by size); 0 and null mean unknown."""
    value = row.get("offline_timestamp")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _RowError(
            f"field offline_timestamp is {value!r}, expected epoch seconds or milliseconds"
        )
    if value == 0:
        return None
    seconds = value / 1000 if value >= _EPOCH_MS_THRESHOLD else value
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise _RowError(f"field offline_timestamp is {value!r}, out of range") from None


def _track_id(uri: str | None) -> str | None:
    match = _TRACK_URI_RE.fullmatch(uri) if uri else None
    return match.group(1) if match else None


def _kind(values: dict[str, Any], video_file: bool) -> str:
    """Audiobook, podcast or music from the fields set; video for a Video file; else unknown.

    Audiobook and episode fields are checked before track fields so that a chapter row that
    also carries a track name is not counted as music.
    """
    if video_file:
        return "video"
    if any(values.get(k) for k in _AUDIOBOOK_FIELDS):
        return "audiobook"
    if any(values.get(k) for k in ("episode_name", "show_name", "episode_uri")):
        return "podcast"
    if values.get("track_uri") or values.get("track_name"):
        return "music"
    return "unknown"


_EMPTY_PLAY = dict.fromkeys(
    [
        "track_uri", "track_id", "track_name", "artist_name", "album_name", "episode_name",
        "show_name", "episode_uri", "audiobook_title", "audiobook_uri", "audiobook_chapter_uri",
        "audiobook_chapter_title", "platform", "conn_country", "reason_start", "reason_end",
        "shuffle", "skipped", "offline", "offline_timestamp", "incognito_mode",
    ]
)  # fmt: skip


def _extended_values(row: dict, video_file: bool) -> dict[str, Any]:
    values: dict[str, Any] = dict(_EMPTY_PLAY)
    values["ended_at"] = _ts(row)
    values["ms_played"] = _ms_played(row, "ms_played")
    for key, name in _EXTENDED_TEXT.items():
        values[name] = _text(row, key)
    for key in _EXTENDED_BOOL:
        values[key] = _flag(row, key)
    values["offline_timestamp"] = _offline_timestamp(row)
    values["track_id"] = _track_id(values["track_uri"])
    values["kind"] = _kind(values, video_file)
    values["ended_at_precision_seconds"] = 1
    return values


def _account_values(row: dict, podcast_file: bool) -> dict[str, Any]:
    values: dict[str, Any] = dict(_EMPTY_PLAY)
    values["ended_at"] = _end_time(row)
    values["ms_played"] = _ms_played(row, "msPlayed")
    for key, name in _ACCOUNT_TEXT.items():
        values[name] = _text(row, key)
    values["kind"] = "podcast" if podcast_file else _kind(values, False)
    values["ended_at_precision_seconds"] = 60
    return values


def _row_json(row: Any) -> str:
    if isinstance(row, dict):
        row = {k: v for k, v in row.items() if k not in PERSONAL_FIELDS}
    return json.dumps(row, ensure_ascii=False, default=str)


def parse_history_rows(
    rows: list[Any], *, name: str, source_file: str, member: str | None = None
) -> HistoryFile:
    """Parse the decoded array of one history file into plays and quarantined rows.

    `name` is the file's (or member's) name, used for the shape and the video/podcast kind.
    Raises SpotifyHistoryError when the shape cannot be told.
    """
    first = next((r for r in rows if isinstance(r, dict) and ({"ts", "endTime"} & r.keys())), {})
    shape = detect_shape(name, first)
    if shape is None:
        raise _fail(
            source_file,
            member,
            "not a Spotify streaming history: the name is none of Spotify's and no row has "
            "`ts` or `endTime`",
            "drop only Streaming_History_*, endsong_* or StreamingHistory* files",
        )
    result = HistoryFile(source_file=source_file, member=member, shape=shape)
    video_file = _is_video_name(name)
    podcast_file = _is_account_podcast_name(name)
    for number, row in enumerate(rows, start=1):
        try:
            if not isinstance(row, dict):
                raise _RowError(f"row is a JSON {_json_type(row)}, expected an object")
            if shape == "account_data":
                values = _account_values(row, podcast_file)
            else:
                values = _extended_values(row, video_file)
        except _RowError as exc:
            result.quarantined.append(
                QuarantinedRow(source_file, member, number, _row_json(row), str(exc))
            )
            continue
        result.plays.append(
            HistoryPlay(
                **values, shape=shape, source_file=source_file, member=member, row_number=number
            )
        )
    return result


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "boolean",
        str: "string",
        list: "array",
        dict: "object",
        int: "number",
        float: "number",
    }.get(type(value), type(value).__name__)


def _decode(data: bytes, source_file: str, member: str | None) -> list[Any]:
    try:
        rows = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _fail(source_file, member, f"not valid JSON ({exc})") from None
    if not isinstance(rows, list):
        raise _fail(
            source_file, member, f"the JSON is a {_json_type(rows)}, expected an array of plays"
        )
    return rows


def _parse_bytes(data: bytes, *, name: str, source_file: str, member: str | None) -> HistoryFile:
    rows = _decode(data, source_file, member)
    result = parse_history_rows(rows, name=name, source_file=source_file, member=member)
    result.content_sha256 = hashlib.sha256(data).hexdigest()
    return result


# ---------------------------------------------------------------------------- ZIPs


def _unsafe_name(name: str) -> bool:
    if "\x00" in name or "\\" in name or name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return True
    return ".." in PurePosixPath(name).parts


def _check_archive(
    archive: zipfile.ZipFile, source: str, limits: HistoryZipLimits
) -> list[zipfile.ZipInfo]:
    """The history members, after every check that needs no inflating."""
    members = archive.infolist()
    if len(members) > limits.max_members:
        raise _fail(source, None, f"{len(members)} members, over the cap of {limits.max_members}")
    history: list[zipfile.ZipInfo] = []
    total = 0
    for info in members:
        # orig_filename is the name as stored (zipfile cuts `filename` at a NUL byte).
        for name in {info.filename, info.orig_filename}:
            if _unsafe_name(name):
                raise _fail(
                    source, name, "member name is an absolute path or climbs out with `..`",
                    _FIX_UNSAFE,
                )  # fmt: skip
        if stat.S_ISLNK(info.external_attr >> 16):
            raise _fail(source, info.filename, "member is a symbolic link", _FIX_UNSAFE)
        if info.is_dir() or not is_history_file_name(info.filename):
            continue
        if info.flag_bits & 0x1:
            raise _fail(source, info.filename, "member is encrypted; Spotify never encrypts")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _fail(
                source,
                info.filename,
                f"compression method {info.compress_type}; only stored and deflated are read",
            )
        if info.file_size > limits.max_member_bytes:
            raise _fail(
                source,
                info.filename,
                f"declares {info.file_size} bytes, over the cap of {limits.max_member_bytes}",
                _FIX_UNSAFE,
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > limits.max_ratio:
            raise _fail(
                source,
                info.filename,
                f"compression ratio {ratio:.0f}:1, over the cap of {limits.max_ratio:g}:1 "
                "(a ZIP bomb?)",
                _FIX_UNSAFE,
            )
        total += info.file_size
        if total > limits.max_total_bytes:
            raise _fail(
                source,
                None,
                f"history members declare over {limits.max_total_bytes} bytes in all",
                _FIX_UNSAFE,
            )
        history.append(info)
    return history


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, source: str, limits: HistoryZipLimits
) -> bytes:
    """The member's bytes, counted as they are inflated: headers can lie about the size."""
    limit = min(info.file_size, limits.max_member_bytes)
    chunks: list[bytes] = []
    count = 0
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(min(_READ_CHUNK, limit - count + 1)):
                count += len(chunk)
                if count > limit:
                    raise _fail(
                        source,
                        info.filename,
                        f"inflates to more than {limit} bytes, more than its header declares "
                        "or the cap allows (a ZIP bomb or a corrupt archive)",
                        _FIX_UNSAFE,
                    )
                chunks.append(chunk)
    except _ARCHIVE_ERRORS as exc:
        raise _fail(source, info.filename, f"the archive is corrupt or truncated ({exc})") from None
    return b"".join(chunks)


def _read_zip(path: Path, limits: HistoryZipLimits) -> list[HistoryFile]:
    source = str(path)
    try:
        archive = zipfile.ZipFile(path)
    except _ARCHIVE_ERRORS as exc:
        raise _fail(source, None, f"not a readable ZIP file ({exc})") from None
    with archive:
        members = _check_archive(archive, source, limits)
        return [
            _parse_bytes(
                _read_member(archive, info, source, limits),
                name=info.filename,
                source_file=source,
                member=info.filename,
            )
            for info in members
        ]


def read_history_file(
    path: Path, *, limits: HistoryZipLimits = DEFAULT_ZIP_LIMITS
) -> list[HistoryFile]:
    """Parse a history .json file (one HistoryFile) or a Spotify export ZIP (one per member).

    Non-history members of a ZIP are ignored, so a ZIP without any gives []. Raises
    SpotifyHistoryError naming the file (and member) when it cannot be read at all.
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise _fail(source, None, "no such file", "check the path")
    suffix = path.suffix.lower()
    if suffix == ".zip":
        return _read_zip(path, limits)
    if suffix != ".json":
        raise _fail(source, None, "not a .json or .zip file", "drop the export's files or ZIP")
    size = path.stat().st_size
    if size > limits.max_member_bytes:
        raise _fail(source, None, f"{size} bytes, over the cap of {limits.max_member_bytes}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _fail(source, None, f"cannot be read ({exc})", "check the file") from None
    return [_parse_bytes(data, name=path.name, source_file=source, member=None)]


# ---------------------------------------------------------------------------- keys and landing


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
        what = [play.kind if play.kind != "video" else "podcast", *names]
    parts = json.dumps([stamp, what, play.ms_played], ensure_ascii=False)
    return hashlib.sha256(parts.encode()).hexdigest()
