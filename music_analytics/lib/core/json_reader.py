"""One bounded reader for every JSON input (DSP reports, Spotify exports, event bodies).

ijson (yajl2_c) streams a document, but it bounds nothing by itself: its prefixed events hold a
prefix per open level, so memory grows with the square of the nesting depth (an 80 KB file of
40,000 `[` took 3.9 GB), a string or number is buffered whole however long, and a record is
built whole however large. `BoundedJsonStream` sits between the bytes and ijson and checks
every chunk before the parser sees it, vectorised with numpy (no Python step per byte or per
event), so what ijson ever holds is bounded by the limits:

- `max_depth`: no value nests deeper than this many arrays or objects;
- `max_string_bytes`: no string, key or bare number/literal is longer (its raw bytes);
- `max_record_bytes`: no value at the records' level is larger: a record of the records array
  (at `records_depth`: 1 for a top-level array; 2, with `records_key="data"`, for
  `{"meta": {...}, "data": [...]}`), every member of a container at that level, and, with a
  `records_key`, every other value of the top-level object (meta) as a whole.

A breach raises JsonLimitError, whose `problem` names the record (its 1-based number in the
records array, or the byte offset outside it) and the limit with the setting that raises it;
callers prefix the file. Everything else about the JSON (syntax, NaN, numbers out of range) is
ijson's to reject. A key given twice keeps its last value, as in Python's json.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import ijson
import numpy as np

CHUNK_BYTES = 256 * 1024

_QUOTE, _BACKSLASH, _COMMA, _OPEN_ARRAY = 34, 92, 44, 91


def _table(chars: str) -> np.ndarray:
    table = np.zeros(256, dtype=bool)
    table[[ord(ch) for ch in chars]] = True
    return table


# The bytes the checks look at (positions only, not every byte); between two of them, outside
# a string, is a bare token: a number or true/false/null, with a colon and whitespace.
_SPECIAL = _table('"[]{},')
_BLANK = _table(" \t\r\n")
_OPENERS = _table("[{")
_CLOSERS = _table("]}")
_BOUNDARY = _table("[]{},")
_KEY_WINDOW = 96
_KEY_BEFORE = re.compile(rb'"([^"\\]{1,64})"\s*:\s*\Z')


@dataclass(frozen=True)
class JsonLimits:
    """The caps of the bounded reader (settings MUSIC_ANALYTICS_JSON_MAX_*)."""

    max_depth: int = 64
    max_record_bytes: int = 1024 * 1024
    max_string_bytes: int = 64 * 1024


DEFAULT_JSON_LIMITS = JsonLimits()
_SETTING = {
    "depth": "MUSIC_ANALYTICS_JSON_MAX_DEPTH",
    "record": "MUSIC_ANALYTICS_JSON_MAX_RECORD_KB",
    "string": "MUSIC_ANALYTICS_JSON_MAX_STRING_KB",
}


LIMIT_ACTION = "if the file is genuine, raise that limit; otherwise ask the sender for a new file"


class JsonLimitError(ValueError):
    """The JSON breaks one of the reader's limits; `problem` says where and which."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class BoundedJsonStream:
    """A binary stream that passes on JSON bytes only once they are within the limits.

    Read it with ijson like the stream it wraps. `digest` is the SHA-256 of the bytes read so
    far (the whole document once the parser reached its end).
    """

    def __init__(
        self,
        raw: IO[bytes],
        limits: JsonLimits = DEFAULT_JSON_LIMITS,
        *,
        records_depth: int = 1,
        records_key: str | None = None,
    ) -> None:
        self._raw = raw
        self._limits = limits
        self._level = records_depth
        self._records_key = records_key
        self.digest = hashlib.sha256()
        self.first_byte: int | None = None  # the document's first non-whitespace byte
        self._offset = 0  # bytes checked so far
        self._depth = 0
        self._in_string = False
        self._backslashes = 0  # the run of backslashes that ended the previous chunk
        self._string_start = -1  # offset of the open string's quote
        self._last_special = -1  # offset of the last special byte
        self._last_boundary = 0  # offset of the last boundary at the records' level
        self._record_open = False  # whether that boundary opened a record
        self._container = 0  # the byte that opened the container at the records' level
        self._container_key: str | None = None  # the key that container is the value of
        self._tail = b""  # the end of the previous chunk, where a key may start
        self._side_start = -1  # offset of the open container beside the records (meta), if any
        self._records = 0  # commas seen in that container since it opened

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(CHUNK_BYTES if size is None or size < 0 else size)
        if data:
            if self.first_byte is None and data.strip():
                self.first_byte = data.strip()[0]
            self._check(data)
            self.digest.update(data)
            self._offset += len(data)
        return data

    def readable(self) -> bool:
        return True

    # --- the checks: on the positions `p` of the special bytes `c` of a chunk ---------------

    def _check(self, data: bytes) -> None:
        a = np.frombuffer(data, dtype=np.uint8)
        p = np.flatnonzero(_SPECIAL[a])
        c = a[p]
        quotes = c == _QUOTE
        if b"\\" in data or self._backslashes:
            quotes &= ~self._escaped(a)[p]
        in_string = np.logical_xor.accumulate(quotes)  # inside a string after each byte
        if self._in_string:
            in_string = ~in_string
        outside = ~in_string & ~quotes
        opens = outside & _OPENERS[c]
        delta = opens.view(np.int8) - (outside & _CLOSERS[c]).view(np.int8)
        after = np.cumsum(delta, dtype=np.int32) + self._depth
        before = after - delta
        chunk = _Chunk(data, len(a), p, c, outside, opens, before)
        too_deep = after > self._limits.max_depth
        if too_deep.any():
            where = int(p[np.argmax(too_deep)])
            self._fail(chunk, where, f"nests deeper than {self._limits.max_depth} levels", "depth")
        self._check_strings(chunk, quotes)
        self._check_bare(chunk, in_string)
        self._check_records(chunk, before, after)
        self._check_side_values(chunk, before, after)
        self._track_container(chunk, after)
        if len(p):
            self._depth = int(after[-1])
            self._in_string = bool(in_string[-1])

    def _escaped(self, a: np.ndarray) -> np.ndarray:
        """True for a byte preceded by an odd run of backslashes (an escaped quote)."""
        idx = np.arange(len(a))
        last_other = np.maximum.accumulate(np.where(a == _BACKSLASH, -1, idx))
        run = idx - last_other  # the run of backslashes ending at each byte
        run = np.where(last_other < 0, run + self._backslashes, run)
        before = np.empty(len(a), dtype=run.dtype)
        before[0] = self._backslashes
        before[1:] = run[:-1]
        self._backslashes = int(run[-1])
        return (before & 1).astype(bool)

    def _check_strings(self, chunk: _Chunk, quotes: np.ndarray) -> None:
        cap = self._limits.max_string_bytes
        positions = chunk.p[np.flatnonzero(quotes)]  # quotes alternate: open, close, open...
        if self._in_string:
            starts = np.concatenate(([self._string_start - self._offset], positions[1::2]))
            ends = positions[0::2]
        else:
            starts, ends = positions[0::2], positions[1::2]
        lengths = ends - starts[: len(ends)] - 1
        if len(lengths) and lengths.max() > cap:
            where = max(int(starts[int(np.argmax(lengths > cap))]), 0)
            self._fail(chunk, where, self._string_text(), "string")
        if len(starts) > len(ends):  # a string still open at the end of the chunk
            start = int(starts[-1])
            if chunk.size - start - 1 > cap:
                self._fail(chunk, max(start, 0), self._string_text(), "string")
            self._string_start = self._offset + start

    def _string_text(self) -> str:
        return f"holds a string longer than {self._limits.max_string_bytes} bytes"

    def _check_bare(self, chunk: _Chunk, in_string: np.ndarray) -> None:
        """A number or literal: the run between two special bytes or whitespace outside a
        string (yajl buffers a number whole).

        Whitespace is not among the special bytes (it is most of them in indented JSON), so a
        run found too long between special bytes is measured again with whitespace as a
        break: only then is it refused.
        """
        cap = self._limits.max_string_bytes
        long_at = self._long_bare(self._last_special, chunk.p, ~in_string, chunk.size)
        if long_at is not None:
            blanks = np.flatnonzero(_BLANK[np.frombuffer(chunk.data, dtype=np.uint8)])
            if len(blanks):
                # whitespace inherits the string state of the special byte before it
                states = np.concatenate(([not self._in_string], ~in_string))
                outside = states[np.searchsorted(chunk.p, blanks, side="right")]
                order = np.argsort(np.concatenate((chunk.p, blanks)), kind="stable")
                edges = np.concatenate((chunk.p, blanks))[order]
                flags = np.concatenate((~in_string, outside))[order]
                long_at = self._long_bare(self._last_special, edges, flags, chunk.size)
        if long_at is not None:
            self._fail(
                chunk, long_at, f"holds a number or literal longer than {cap} bytes", "string"
            )
        last = max(chunk.data.rfind(b) for b in (b" ", b"\n", b"\t", b"\r"))
        if len(chunk.p) or last >= 0:
            self._last_special = self._offset + max(int(chunk.p[-1]) if len(chunk.p) else -1, last)

    def _long_bare(
        self, last: int, edges: np.ndarray, outside: np.ndarray, size: int
    ) -> int | None:
        """The chunk byte where a run longer than the cap starts between `edges` (positions
        after which the text is `outside` a string or not), or None."""
        points = np.concatenate(([last - self._offset], edges, [size]))
        bare = np.concatenate(([not self._in_string], outside))
        long = (np.diff(points) - 1 > self._limits.max_string_bytes) & bare
        if not long.any():
            return None
        return max(int(points[int(np.argmax(long))]) + 1, 0)

    def _check_records(self, chunk: _Chunk, before: np.ndarray, after: np.ndarray) -> None:
        """The size of every container at the records' level: from its opener (the boundary
        that goes deeper than the level) to the next boundary at the level. Whitespace around
        records costs the parser nothing and is not counted; scalars have the string cap."""
        cap = self._limits.max_record_bytes
        at_level = chunk.outside & _BOUNDARY[chunk.c] & (np.minimum(before, after) <= self._level)
        positions = chunk.p[at_level]
        edges = np.concatenate(([self._last_boundary - self._offset], positions, [chunk.size]))
        opened = np.concatenate(([self._record_open], after[at_level] > self._level))
        long = (np.diff(edges) > cap) & opened
        if long.any():
            where = max(int(edges[int(np.argmax(long))]) + 1, 0)
            self._fail(chunk, min(where, chunk.size - 1), f"is larger than {cap} bytes", "record")
        if len(positions):
            self._last_boundary = self._offset + int(positions[-1])
            self._record_open = bool(opened[-1])

    def _container_at(self, chunk: _Chunk, upto: int) -> tuple[int, str | None, int]:
        """The container open at the records' level before chunk byte `upto`: the byte that
        opened it, the key it is the value of (None in an array) and the commas it has seen."""
        mask = chunk.p < upto
        entering = np.flatnonzero(mask & chunk.opens & (chunk.before + 1 == self._level))
        commas = np.flatnonzero(
            mask & chunk.outside & (chunk.c == _COMMA) & (chunk.before == self._level)
        )
        if len(entering):
            last = entering[-1]
            position = int(chunk.p[last])
            return int(chunk.c[last]), self._key_before(chunk, position), int((commas > last).sum())
        return self._container, self._container_key, self._records + len(commas)

    def _key_before(self, chunk: _Chunk, position: int) -> str | None:
        """The key whose value starts at chunk byte `position`, or None (an array element)."""
        key = _KEY_BEFORE.search((self._tail + chunk.data[:position])[-_KEY_WINDOW:])
        return key.group(1).decode("utf-8", "replace") if key else None

    def _check_side_values(self, chunk: _Chunk, before: np.ndarray, after: np.ndarray) -> None:
        """With `records_key`, the other containers at the records' level (meta) are built
        whole by their reader: each is capped at max_record_bytes as a record is."""
        if self._records_key is None:
            return
        cap = self._limits.max_record_bytes
        opening = chunk.opens & (after == self._level)
        closing = chunk.outside & _CLOSERS[chunk.c] & (before == self._level)
        for k in np.flatnonzero(opening | closing):  # two per report: meta and data
            position = int(chunk.p[k])
            if opening[k]:
                side = self._key_before(chunk, position) != self._records_key
                self._side_start = self._offset + position if side else -1
                continue
            if self._side_start >= 0 and self._offset + position - self._side_start > cap:
                self._fail(chunk, position, f"is larger than {cap} bytes", "record")
            self._side_start = -1
        if self._side_start >= 0 and self._offset + chunk.size - self._side_start > cap:
            self._fail(chunk, chunk.size - 1, f"is larger than {cap} bytes", "record")

    def _track_container(self, chunk: _Chunk, after: np.ndarray) -> None:
        self._container, self._container_key, self._records = self._container_at(chunk, chunk.size)
        self._tail = (self._tail + chunk.data[-_KEY_WINDOW:])[-_KEY_WINDOW:]

    def _fail(self, chunk: _Chunk, where: int, what: str, limit: str) -> None:
        """Raise JsonLimitError for the value at byte `where` of this chunk."""
        container, key, records = self._container_at(chunk, where)
        k = int(np.searchsorted(chunk.p, where))
        depth = int(chunk.before[k]) if k < len(chunk.p) else self._depth
        offset = self._offset + where
        inside = depth >= self._level and container == _OPEN_ARRAY
        if inside and key == self._records_key:
            place = f"record {records + 1}"
        elif key is not None and depth >= self._level:
            place = f"{key} (at byte {offset})"
        else:
            place = f"the value at byte {offset}"
        raise JsonLimitError(f"{place} {what} (the limit is {_SETTING[limit]})")


@dataclass
class _Chunk:
    """The special bytes of one chunk: positions, bytes, outside strings, openers, depth."""

    data: bytes
    size: int
    p: np.ndarray
    c: np.ndarray
    outside: np.ndarray
    opens: np.ndarray
    before: np.ndarray


def iter_array_items(stream: BoundedJsonStream, prefix: str = "item") -> Iterator[Any]:
    """The elements of the array at `prefix` ("item": the top-level array), one at a time.

    Numbers come as int or float (use_float), so no Decimal reaches the callers.
    """
    yield from ijson.items(stream, prefix, use_float=True, buf_size=CHUNK_BYTES)


# One value as one line of JSON text (non-ASCII kept as is): how an element of a JSON array
# becomes an NDJSON line, for the events endpoint and the careful read of event files.
json_line = json.JSONEncoder(ensure_ascii=False).encode


def iter_array_lines(stream: BoundedJsonStream) -> Iterator[str]:
    """The elements of the top-level array, each as one line of JSON text."""
    for item in iter_array_items(stream):
        yield json_line(item)


def json_error_text(exc: Exception) -> str:
    """A JSON error's first line, without the excerpt of the document yajl appends."""
    if isinstance(exc, JsonLimitError):
        return exc.problem
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__
