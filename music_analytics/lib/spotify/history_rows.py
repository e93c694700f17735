"""Parsing the decoded rows of one streaming-history file into plays and quarantined rows.

A row that cannot be a play (not an object, no or a bad end time, one before Spotify was
founded or in the future, a missing or negative `ms_played`, a field of the wrong type) is
quarantined with the field and value that failed; the rest of the file still loads. A file
whose shape cannot be told raises SpotifyHistoryError.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import chain
from pathlib import PurePosixPath
from typing import Any

from music_analytics.lib.spotify.history_shapes import (
    PERSONAL_FIELDS,
    HistoryFile,
    HistoryPlay,
    QuarantinedRow,
    detect_shape,
    history_error,
)

_TS_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})?"
)
_END_TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}")
_TRACK_URI_RE = re.compile(r"spotify:track:([0-9A-Za-z]+)")
_FIRST_PLAY = datetime(2006, 4, 23, tzinfo=UTC)  # Spotify was founded on this day
_EPOCH_MS_THRESHOLD = 100_000_000_000  # larger epoch values are milliseconds (year 5138 in s)

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


class _RowError(ValueError):
    """A row that must be quarantined; the message names the field and the value."""


def _is_account_podcast_name(name: str) -> bool:
    return (
        PurePosixPath(name.replace("\\", "/")).name.lower().startswith("streaminghistory_podcast")
    )


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
    ended = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return _plausible("ts", value, ended)


def _plausible(key: str, value: str, ended: datetime) -> datetime:
    """A play's end time between Spotify's founding and a day from now, else quarantined."""
    if ended < _FIRST_PLAY:
        raise _RowError(f"field {key} is {value!r}, before Spotify existed ({_FIRST_PLAY:%Y})")
    if ended > datetime.now(UTC) + timedelta(days=1):
        raise _RowError(f"field {key} is {value!r}, in the future")
    return ended


def _end_time(row: dict) -> datetime:
    if row.get("endTime") is None:
        raise _RowError("field endTime is missing")
    value = row["endTime"]
    if not isinstance(value, str) or not _END_TIME_RE.fullmatch(value):
        raise _RowError(f"field endTime is {value!r}, expected UTC like 2023-01-31 23:59")
    try:
        ended = datetime.strptime(value, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    except ValueError:
        raise _RowError(f"field endTime is {value!r}, not a valid date and time") from None
    return _plausible("endTime", value, ended)


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


def _kind(values: dict[str, Any]) -> str:
    """What was played, from the row's URIs first, then its names; never from the file name
    (Spotify's Video files hold music plays as well as video-podcast episodes).

    A `spotify:track:` URI is music, an episode URI a podcast episode (video podcasts
    included), an audiobook or chapter URI an audiobook; without URIs, audiobook and episode
    names are checked before track names so that a chapter row that also carries a track name
    is not counted as music. A row naming nothing is `unknown`: stored, reaching no mart, and
    counted as excluded.
    """
    track_uri = values.get("track_uri") or ""
    if values.get("audiobook_chapter_uri") or values.get("audiobook_uri"):
        return "audiobook"
    if values.get("episode_uri"):
        return "podcast"
    if track_uri.startswith("spotify:track:"):
        return "music"
    if any(values.get(k) for k in _AUDIOBOOK_FIELDS):
        return "audiobook"
    if values.get("episode_name") or values.get("show_name"):
        return "podcast"
    if track_uri or values.get("track_name"):
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


def _extended_values(row: dict) -> dict[str, Any]:
    values: dict[str, Any] = dict(_EMPTY_PLAY)
    values["ended_at"] = _ts(row)
    values["ms_played"] = _ms_played(row, "ms_played")
    for key, name in _EXTENDED_TEXT.items():
        values[name] = _text(row, key)
    for key in _EXTENDED_BOOL:
        values[key] = _flag(row, key)
    values["offline_timestamp"] = _offline_timestamp(row)
    values["track_id"] = _track_id(values["track_uri"])
    values["kind"] = _kind(values)
    values["ended_at_precision_seconds"] = 1
    return values


def _account_values(row: dict, podcast_file: bool) -> dict[str, Any]:
    values: dict[str, Any] = dict(_EMPTY_PLAY)
    values["ended_at"] = _end_time(row)
    values["ms_played"] = _ms_played(row, "msPlayed")
    for key, name in _ACCOUNT_TEXT.items():
        values[name] = _text(row, key)
    # Account data has no URIs; a podcast file's rows are episodes even without their names.
    kind = _kind(values)
    values["kind"] = "podcast" if podcast_file and kind in ("music", "unknown") else kind
    values["ended_at_precision_seconds"] = 60
    return values


def _row_json(row: Any) -> str:
    if isinstance(row, dict):
        row = {k: v for k, v in row.items() if k not in PERSONAL_FIELDS}
    return json.dumps(row, ensure_ascii=False, default=str)


_SHAPE_LOOKAHEAD = 1000  # rows held back at most while looking for one that tells the shape


def _shape_row(rows: Iterator[Any]) -> tuple[dict, list[Any]]:
    """The first row with `ts` or `endTime` (or {}) and the rows read to find it."""
    held: list[Any] = []
    for row in rows:
        held.append(row)
        if isinstance(row, dict) and {"ts", "endTime"} & row.keys():
            return row, held
        if len(held) >= _SHAPE_LOOKAHEAD:
            break
    return {}, held


SINK_BATCH_ROWS = 20_000  # rows parsed before they are handed to a sink


def parse_history_rows(
    rows: Iterable[Any],
    *,
    name: str,
    source_file: str,
    member: str | None = None,
    sink: Callable[[HistoryFile], object] | None = None,
) -> HistoryFile:
    """Parse the rows of one history file (a list, or a stream of them) into plays and
    quarantined rows.

    `name` is the file's (or member's) name, used for the shape when no row among the first
    thousand tells it, and for the rows of an account-data podcast file. Raises
    SpotifyHistoryError when the shape cannot be told. With a `sink`, the parsed rows are
    handed to it every SINK_BATCH_ROWS rows and at the end (`HistoryFile.hand_over`), so a
    file's rows are never all held at once.
    """
    rows = iter(rows)
    first, held = _shape_row(rows)
    shape = detect_shape(name, first)
    if shape is None:
        raise history_error(
            source_file,
            member,
            "not a Spotify streaming history: the name is none of Spotify's and no row has "
            "`ts` or `endTime`",
            "drop only Streaming_History_*, endsong_* or StreamingHistory* files",
        )
    result = HistoryFile(source_file=source_file, member=member, shape=shape)
    podcast_file = _is_account_podcast_name(name)
    for number, row in enumerate(chain(held, rows), start=1):
        try:
            if not isinstance(row, dict):
                raise _RowError(f"row is a JSON {json_type(row)}, expected an object")
            if shape == "account_data":
                values = _account_values(row, podcast_file)
            else:
                values = _extended_values(row)
        except _RowError as exc:
            result.quarantined.append(
                QuarantinedRow(source_file, member, number, _row_json(row), str(exc))
            )
        else:
            result.plays.append(
                HistoryPlay(
                    **values,
                    shape=shape,
                    source_file=source_file,
                    member=member,
                    row_number=number,
                )
            )
        if sink is not None and len(result.plays) + len(result.quarantined) >= SINK_BATCH_ROWS:
            result.hand_over(sink)
    if sink is not None:
        result.hand_over(sink)
    return result


def json_type(value: Any) -> str:
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
