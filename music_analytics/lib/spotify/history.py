"""Reading a listener's Spotify privacy export (streaming history), files or the ZIP Spotify mails.

Spotify's export shapes and the play they give are in history_shapes.py, the parsing of rows
(and their quarantine) in history_rows.py; this module reads files and ZIPs and lists the
landing folder. A file that cannot be read at all (not JSON, not an array, an unsafe ZIP)
raises SpotifyHistoryError naming the file and, for a ZIP, the member.

ZIPs are read in memory, never extracted, through lib/core/zip_safety.py: member names with
absolute paths or `..`, symbolic links, duplicate names, overlapping entries, an empty archive,
encrypted or oddly compressed history members, and members over the size or compression-ratio
caps (SPOTIFY_EXPORT_LIMITS) are refused before a byte is inflated, and the inflated bytes are
counted as they are read since headers can lie. Members that are not streaming history
(PDFs, READMEs, the other JSON files of an account-data export, directories) are ignored, but
a ZIP without any streaming-history member is refused: it is not an export this reads.

Memory: one export file is at most tens of MB (Spotify splits the history into files of about
12 MB), so each file or member is read whole and parsed with `json.loads`; only one is held
at a time while reading, plus the plays parsed from it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from music_analytics.lib.core.zip_safety import (
    SPOTIFY_EXPORT_LIMITS,
    UnsafeZipError,
    ZipLimits,
    open_safe_zip,
)
from music_analytics.lib.spotify.history_rows import json_type, parse_history_rows
from music_analytics.lib.spotify.history_shapes import (
    FIX_FILE,
    HistoryFile,
    history_error,
    is_history_file_name,
)

_FIX_UNSAFE = "do not load it; use the ZIP exactly as Spotify mailed it"
_NO_HISTORY = (
    "holds no streaming-history file (Streaming_History_Audio_*.json, endsong_*.json or "
    "StreamingHistory*.json)"
)
_FIX_NO_HISTORY = (
    "drop the export Spotify mailed (the 'Extended streaming history' or 'Account data' ZIP)"
)


def _decode(data: bytes, source_file: str, member: str | None) -> list[Any]:
    try:
        rows = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise history_error(source_file, member, f"not valid JSON ({exc})") from None
    if not isinstance(rows, list):
        raise history_error(
            source_file, member, f"the JSON is a {json_type(rows)}, expected an array of plays"
        )
    return rows


def _parse_bytes(data: bytes, *, name: str, source_file: str, member: str | None) -> HistoryFile:
    rows = _decode(data, source_file, member)
    result = parse_history_rows(rows, name=name, source_file=source_file, member=member)
    result.content_sha256 = hashlib.sha256(data).hexdigest()
    return result


def _read_zip(path: Path, limits: ZipLimits) -> list[HistoryFile]:
    """One HistoryFile per history member, each read whole behind ZIP safety's counter."""
    source = str(path)
    try:
        with open_safe_zip(
            path, limits, expected_members=is_history_file_name, allow_folders=True
        ) as archive:
            if not archive.members():
                raise history_error(source, None, _NO_HISTORY, _FIX_NO_HISTORY)
            return [
                _parse_bytes(archive.read_member(name), name=name, source_file=source, member=name)
                for name in archive.members()
            ]
    except UnsafeZipError as exc:
        action = _FIX_UNSAFE if exc.hostile else FIX_FILE
        raise history_error(source, None, exc.problem, action) from None


def read_history_file(
    path: Path, *, limits: ZipLimits = SPOTIFY_EXPORT_LIMITS
) -> list[HistoryFile]:
    """Parse a history .json file (one HistoryFile) or a Spotify export ZIP (one per member).

    Non-history members of a ZIP are ignored; a ZIP without a history member is an error.
    Raises SpotifyHistoryError naming the file (and member) when it cannot be read at all.
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise history_error(source, None, "no such file", "check the path")
    suffix = path.suffix.lower()
    if suffix == ".zip":
        return _read_zip(path, limits)
    if suffix != ".json":
        raise history_error(
            source, None, "not a .json or .zip file", "drop the export's files or ZIP"
        )
    size = path.stat().st_size
    if size > limits.member_cap:
        raise history_error(source, None, f"{size} bytes, over the cap of {limits.member_cap}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise history_error(source, None, f"cannot be read ({exc})", "check the file") from None
    return [_parse_bytes(data, name=path.name, source_file=source, member=None)]
