"""Reading a listener's Spotify privacy export (streaming history), files or the ZIP Spotify mails.

Spotify's export shapes and the play they give are in history_shapes.py, the parsing of rows
(and their quarantine) in history_rows.py; this module reads files and ZIPs and lists the
landing folder. A file that cannot be read at all (not JSON, not an array, an unsafe ZIP)
raises SpotifyHistoryError naming the file and, for a ZIP, the member.

ZIPs are streamed, never extracted, through lib/core/zip_safety.py: member names with
absolute paths or `..`, symbolic links, duplicate names, overlapping entries, an empty archive,
encrypted or oddly compressed history members, and members over the size or compression-ratio
caps (SPOTIFY_EXPORT_LIMITS) are refused before a byte is inflated, and the inflated bytes are
counted as they are read since headers can lie. Members that are not streaming history
(PDFs, READMEs, the other JSON files of an account-data export, directories) are ignored, but
a ZIP without any streaming-history member is refused: it is not an export this reads.

Every file and member is streamed through the bounded JSON reader (lib/core/json_reader.py):
a row nested deeper than MUSIC_ANALYTICS_JSON_MAX_DEPTH, or larger than its record or string
caps, rejects the file with a reason naming the row and the limit, and the parser never holds
more than one row. The parsed rows are handed to a sink in batches when one is given (the
import stages them in DuckDB, history_load.py), else kept in the HistoryFile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import ijson

from music_analytics.lib.core.json_reader import (
    DEFAULT_JSON_LIMITS,
    LIMIT_ACTION,
    BoundedJsonStream,
    JsonLimitError,
    JsonLimits,
    iter_array_items,
    json_error_text,
)
from music_analytics.lib.core.zip_safety import (
    SPOTIFY_EXPORT_LIMITS,
    UnsafeZipError,
    ZipLimits,
    open_safe_zip,
)
from music_analytics.lib.spotify.history_rows import parse_history_rows
from music_analytics.lib.spotify.history_shapes import (
    FIX_FILE,
    HistoryFile,
    history_error,
    is_history_file_name,
)

Sink = Callable[[HistoryFile], object]
_FIX_UNSAFE = "do not load it; use the ZIP exactly as Spotify mailed it"
_END = object()
_FIRST_BYTE_TYPE = {ord("{"): "object", ord('"'): "string", ord("t"): "boolean",
                    ord("f"): "boolean", ord("n"): "null"}  # fmt: skip
_NO_HISTORY = (
    "holds no streaming-history file (Streaming_History_Audio_*.json, endsong_*.json or "
    "StreamingHistory*.json)"
)
_FIX_NO_HISTORY = (
    "drop the export Spotify mailed (the 'Extended streaming history' or 'Account data' ZIP)"
)


def _parse_stream(
    raw: IO[bytes],
    *,
    name: str,
    source_file: str,
    member: str | None,
    json_limits: JsonLimits,
    sink: Sink | None,
) -> HistoryFile:
    """Stream one file's array of rows into plays and quarantined rows (handed to `sink` in
    batches, when given)."""
    stream = BoundedJsonStream(raw, json_limits, records_depth=1)
    try:
        result = parse_history_rows(
            _rows(stream, source_file, member),
            name=name,
            source_file=source_file,
            member=member,
            sink=sink,
        )
    except JsonLimitError as exc:
        raise history_error(source_file, member, exc.problem, LIMIT_ACTION) from None
    except ijson.JSONError as exc:
        raise history_error(
            source_file, member, f"not valid JSON ({json_error_text(exc)})"
        ) from None
    result.content_sha256 = stream.digest.hexdigest()
    return result


def _rows(stream: BoundedJsonStream, source_file: str, member: str | None) -> Iterator[Any]:
    """The elements of the top-level array; a document that is not an array is refused."""
    items = iter_array_items(stream)
    first = next(items, _END)
    if stream.first_byte != ord("["):
        kind = _FIRST_BYTE_TYPE.get(stream.first_byte, "number")
        raise history_error(
            source_file, member, f"the JSON is a {kind}, expected an array of plays"
        )
    if first is not _END:
        yield first
        yield from items


def _read_zip(
    path: Path, limits: ZipLimits, json_limits: JsonLimits, sink: Sink | None
) -> list[HistoryFile]:
    """One HistoryFile per history member, each streamed behind ZIP safety's counter."""
    source = str(path)
    files = []
    try:
        with open_safe_zip(
            path, limits, expected_members=is_history_file_name, allow_folders=True
        ) as archive:
            if not archive.members():
                raise history_error(source, None, _NO_HISTORY, _FIX_NO_HISTORY)
            for name in archive.members():
                with archive.open_member(name) as stream:
                    files.append(
                        _parse_stream(
                            stream,
                            name=name,
                            source_file=source,
                            member=name,
                            json_limits=json_limits,
                            sink=sink,
                        )
                    )
    except UnsafeZipError as exc:
        action = _FIX_UNSAFE if exc.hostile else FIX_FILE
        raise history_error(source, None, exc.problem, action) from None
    return files


def read_history_file(
    path: Path,
    *,
    limits: ZipLimits = SPOTIFY_EXPORT_LIMITS,
    json_limits: JsonLimits = DEFAULT_JSON_LIMITS,
    sink: Sink | None = None,
) -> list[HistoryFile]:
    """Parse a history .json file (one HistoryFile) or a Spotify export ZIP (one per member).

    Non-history members of a ZIP are ignored; a ZIP without a history member is an error.
    Raises SpotifyHistoryError naming the file (and member) when it cannot be read at all.
    With a `sink` (history_load.HistoryStaging.add), each file's rows are handed to it in
    batches as they are parsed, and the HistoryFiles returned hold only their counts: memory
    stays flat whatever the export's size.
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise history_error(source, None, "no such file", "check the path")
    suffix = path.suffix.lower()
    if suffix == ".zip":
        return _read_zip(path, limits, json_limits, sink)
    if suffix != ".json":
        raise history_error(
            source, None, "not a .json or .zip file", "drop the export's files or ZIP"
        )
    size = path.stat().st_size
    if size > limits.member_cap:
        raise history_error(source, None, f"{size} bytes, over the cap of {limits.member_cap}")
    try:
        with path.open("rb") as stream:
            return [
                _parse_stream(
                    stream,
                    name=path.name,
                    source_file=source,
                    member=None,
                    json_limits=json_limits,
                    sink=sink,
                )
            ]
    except OSError as exc:
        raise history_error(source, None, f"cannot be read ({exc})", "check the file") from None
