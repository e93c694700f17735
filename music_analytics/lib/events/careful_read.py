"""The slow, careful reading of one event file DuckDB's fast read could not take whole.

The batch read (file_batch.py) gives up on a whole file for one line over the length cap or
one line that is not UTF-8, keeps only the part before a NUL byte, and reads a JSON array
file as lines that are not events. Such a file is read here instead, line by line in Python,
with memory bounded by the cap:

- a line longer than `max_line_bytes`, one that is not UTF-8, or one holding a NUL byte is
  quarantined with its reason and the first `RAW_KEPT` bytes of it (undecodable bytes shown
  as `\\xNN`); the file's other lines load;
- a UTF-8 byte-order mark and CRLF line ends are dropped, gzip members one after another are
  read as one stream (Python's gzip does);
- a file whose first byte (after blanks) is `[` and that parses as a JSON array of events is
  read by the bounded JSON reader: element n is line n (one that does not parse is read as
  lines; one with an element past a JSON limit is refused with that reason).

The result is a copy of the file in `folder` holding the good lines, each bad one left blank
so the line numbers stay those of the original, and the bad lines themselves in a second
NDJSON file, which the loader inserts into the quarantine in the file's own transaction.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import ijson

from music_analytics.lib.core.json_reader import (
    DEFAULT_JSON_LIMITS,
    BoundedJsonStream,
    JsonLimitError,
    JsonLimits,
    iter_array_lines,
    json_line,
)
from music_analytics.lib.events.file_results import EventFileError

RAW_KEPT = 1024  # bytes of a bad line kept in the quarantine
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class CarefulCopy:
    lines: Path  # the good lines, bad ones blank: line n of the original is line n here
    bad: Path  # NDJSON: {"line_number", "line", "error"} of each bad line
    bad_count: int


def _open(path: Path) -> IO[bytes]:
    with path.open("rb") as probe:
        magic = probe.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else path.open("rb")


def _shown(raw: bytes) -> str:
    return raw[:RAW_KEPT].decode("utf-8", "backslashreplace")


def _problem(line: bytes) -> str | None:
    """Why a line (without its end) cannot be an event's text, or None."""
    nul = line.find(b"\x00")
    if nul >= 0:
        return f"the line holds a NUL byte (at byte {nul + 1})"
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"the line is not UTF-8 (byte 0x{line[exc.start]:02x} at byte {exc.start + 1})"
    return None


def careful_copy(
    path: Path,
    folder: Path,
    *,
    max_line_bytes: int,
    json_limits: JsonLimits = DEFAULT_JSON_LIMITS,
) -> CarefulCopy:
    """Read `path` as described above into `folder`; EventFileError naming the file when even
    this cannot read it (a truncated or corrupt gzip, a JSON array past a JSON limit)."""
    lines_path, bad_path = folder / f"{path.name}.lines.ndjson", folder / f"{path.name}.bad.ndjson"
    try:
        with _open(path) as source, lines_path.open("wb") as out, bad_path.open("wb") as bad:
            head = source.peek(64)[:64] if hasattr(source, "peek") else b""
            if head.removeprefix(_BOM).lstrip()[:1] == b"[" and _copy_array(
                source, out, path, json_limits
            ):
                return CarefulCopy(lines_path, bad_path, 0)
        with _open(path) as source, lines_path.open("wb") as out, bad_path.open("wb") as bad:
            count = _copy_lines(source, out, bad, max_line_bytes)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise EventFileError(f"cannot read event file {path}: {exc}") from None
    return CarefulCopy(lines_path, bad_path, count)


def _copy_lines(source: IO[bytes], out: IO[bytes], bad: IO[bytes], max_line_bytes: int) -> int:
    """The line mode; returns the number of bad lines."""
    number = bad_count = 0
    while True:
        chunk = source.readline(max_line_bytes + 2)  # the line, its \r\n, and one byte more
        if not chunk:
            return bad_count
        number += 1
        problem = None
        if not chunk.endswith(b"\n") and len(chunk) > max_line_bytes:
            size = len(chunk)
            while chunk and not chunk.endswith(b"\n"):  # skip the rest, never holding it
                more = source.readline(1 << 20)
                size += len(more)
                if not more or more.endswith(b"\n"):
                    break
            problem = (
                f"the line is longer than {max_line_bytes} bytes "
                "(the limit is MUSIC_ANALYTICS_EVENT_MAX_LINE_KB)"
            )
            line = chunk
        else:
            line = chunk.rstrip(b"\n").removesuffix(b"\r")
            if number == 1:
                line = line.removeprefix(_BOM)
            problem = _problem(line)
        if problem is None:
            out.write(line + b"\n")
            continue
        bad_count += 1
        out.write(b"\n")
        record = {"line_number": number, "line": _shown(line), "error": problem}
        bad.write(json_line(record).encode() + b"\n")


def _copy_array(source: IO[bytes], out: IO[bytes], path: Path, limits: JsonLimits) -> bool:
    """The JSON-array mode: element n becomes line n (the loader judges each like a line).
    False when the file is not a JSON array after all (its lines are then read as lines, each
    quarantined or loaded on its own); EventFileError when an element is past a JSON limit."""
    stream = BoundedJsonStream(source, limits, records_depth=1)
    try:
        for line in iter_array_lines(stream):
            out.write(line.encode() + b"\n")
    except JsonLimitError as exc:
        raise EventFileError(f"event file {path} is a JSON array, but {exc.problem}") from None
    except ijson.JSONError:
        out.seek(0)
        out.truncate()
        return False
    return True
