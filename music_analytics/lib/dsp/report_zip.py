"""Safe, incremental reading of the analytics-report ZIPs of the DSP API.

A report is a ZIP with one member, `analytics-report-YYYY-MM-DD.json`, holding
`{"meta": {...}, "data": [records]}` (seed 002 and ../shared/specs/dsp-report-formats.md).
A report can hold 100,000+ records, and a ZIP can come from anywhere (a hand drop in the
landing folder), so:

- the archive is checked before a byte is decompressed: one regular, unencrypted, stored or
  deflated member with the expected name and no path components, a declared size under the
  cap and a sane compression ratio; and since headers can lie, the member stream is counted
  as it is read;
- nothing is extracted to disk and the JSON is never held whole: ijson (yajl2_c) reads `meta`
  and then yields `data` one record at a time.

Every problem with a file raises DspReportFileError naming the file, the problem and what to do.
"""

from __future__ import annotations

import re
import stat
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import ijson

from music_analytics.lib.dsp.catalog import SUPPORTED_DSP_IDS, dsp_by_id

MEMBER_NAME_RE = re.compile(r"analytics-report-([0-9]{4}-[0-9]{2}-[0-9]{2})\.json")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_HASH_CHUNK = 8 << 20
_READ_CHUNK = 256 << 10
_REDOWNLOAD = "request the report again from the API (or drop a fresh copy)"
# What a broken archive raises while its member is read: zipfile's own errors (bad CRC,
# bad headers), zlib's for a corrupt deflate stream, EOFError for a truncated one.
_ARCHIVE_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError)


class DspReportFileError(ValueError):
    """A DSP report file cannot be used; the message names the file, the problem and a fix."""


@dataclass(frozen=True)
class ZipLimits:
    """Caps that keep a hostile or broken ZIP from exhausting memory or disk (a ZIP bomb)."""

    max_uncompressed_bytes: int = 1024 * 1024 * 1024
    max_ratio: float = 100.0


DEFAULT_LIMITS = ZipLimits()


@dataclass(frozen=True)
class ReportMeta:
    """The checked `meta` of a report; `dsp` is our key (spotify, youtube, apple_music)."""

    dsp: str
    dsp_id: int
    report_date: date
    total_records: int
    generated_at: str | None
    member_name: str


def _error(path: Path, problem: str, action: str = _REDOWNLOAD) -> DspReportFileError:
    return DspReportFileError(f"DSP report {Path(path).name}: {problem}; {action}")


class _CountingReader:
    """A read-only view of the member stream that fails once more bytes come out than allowed.

    zipfile trusts the central directory, and a crafted archive can declare a small size and
    inflate to far more; counting what actually comes out is the last line of defence.
    """

    def __init__(self, stream: Any, limit: int, path: Path, member: str) -> None:
        self._stream = stream
        self._limit = limit
        self._path = path
        self._member = member
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = _READ_CHUNK
        data = self._stream.read(min(size, self._limit - self.bytes_read + 1))
        self.bytes_read += len(data)
        if self.bytes_read > self._limit:
            raise _error(
                self._path,
                f"{self._member} inflates to more than {self._limit} bytes, more than its header "
                "declares or the size cap allows (a ZIP bomb or a corrupt archive)",
                "do not load it; ask the sender for a new file",
            )
        return data


def _check_member(archive: zipfile.ZipFile, path: Path, limits: ZipLimits) -> tuple[Any, date]:
    """The single member and the date in its name, after every check that needs no reading."""
    members = archive.infolist()
    if len(members) != 1:
        names = ", ".join(repr(m.filename) for m in members[:5]) or "none"
        raise _error(
            path,
            f"expected exactly one member analytics-report-YYYY-MM-DD.json, found "
            f"{len(members)} ({names})",
        )
    info = members[0]
    # orig_filename is the name as stored (zipfile cuts `filename` at a NUL byte).
    for name in {info.filename, info.orig_filename}:
        if "/" in name or "\\" in name or ".." in name or "\x00" in name:
            raise _error(
                path,
                f"member name {name!r} has path components; only a bare "
                "analytics-report-YYYY-MM-DD.json is accepted",
                "do not load it; ask the sender for a new file",
            )
    mode = info.external_attr >> 16
    if info.is_dir() or stat.S_ISDIR(mode):
        raise _error(path, f"member {info.filename!r} is a directory, not the report JSON")
    if stat.S_ISLNK(mode):
        raise _error(
            path,
            f"member {info.filename!r} is a symbolic link, not the report JSON",
            "do not load it; ask the sender for a new file",
        )
    match = MEMBER_NAME_RE.fullmatch(info.filename)
    member_date = _parse_date(match.group(1)) if match else None
    if member_date is None:
        raise _error(
            path, f"member {info.filename!r} is not named analytics-report-YYYY-MM-DD.json"
        )
    if info.flag_bits & 0x1:
        raise _error(path, f"member {info.filename!r} is encrypted; reports are never encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise _error(
            path,
            f"member {info.filename!r} uses compression method {info.compress_type}; "
            "only stored (0) and deflated (8) are accepted",
        )
    if info.file_size > limits.max_uncompressed_bytes:
        raise _error(
            path,
            f"member {info.filename!r} declares {info.file_size} uncompressed bytes, over the "
            f"cap of {limits.max_uncompressed_bytes}",
            "if the report is genuine, raise the cap (DSP_REPORT_MAX_MB)",
        )
    ratio = info.file_size / max(info.compress_size, 1)
    if ratio > limits.max_ratio:
        raise _error(
            path,
            f"member {info.filename!r} declares a compression ratio of {ratio:.0f}:1, over the "
            f"cap of {limits.max_ratio:g}:1 (a ZIP bomb?)",
            "do not load it unless you trust the sender (the cap is DSP_REPORT_MAX_RATIO)",
        )
    return info, member_date


@contextmanager
def _archive(path: Path, limits: ZipLimits) -> Iterator[tuple[zipfile.ZipFile, Any, date]]:
    """The open archive, its checked member and the member's date."""
    path = Path(path)
    if not path.is_file():
        raise _error(path, f"no such file {path}", "check the path")
    try:
        archive = zipfile.ZipFile(path)
    except _ARCHIVE_ERRORS as exc:
        raise _error(path, f"not a readable ZIP file ({exc})") from None
    with archive:
        info, member_date = _check_member(archive, path, limits)
        yield archive, info, member_date


@contextmanager
def _member_stream(
    archive: zipfile.ZipFile, info: Any, path: Path, limits: ZipLimits
) -> Iterator[_CountingReader]:
    """The member's decompressed bytes behind a counter; archive and JSON errors translated."""
    limit = min(info.file_size, limits.max_uncompressed_bytes)
    try:
        with archive.open(info) as raw:
            yield _CountingReader(raw, limit, path, info.filename)
    except DspReportFileError:
        raise
    except ijson.JSONError as exc:
        raise _error(path, f"{info.filename} is not valid JSON: {_first_line(exc)}") from None
    except _ARCHIVE_ERRORS as exc:
        raise _error(path, f"the archive is corrupt or truncated ({exc})") from None


def _first_line(exc: Exception) -> str:
    """yajl's message without the excerpt of the file it appends."""
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__


def _parse_date(text: Any) -> date | None:
    if not isinstance(text, str) or not _DATE_RE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _as_int(value: Any) -> int | None:
    """An integer, or an integral float (142.0); None for anything else (bools included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


_MISSING = object()


@dataclass
class _Head:
    """What the start of the document says: meta (if it came before data) and data's type."""

    meta: Any = _MISSING
    data_event: str | None = None  # the first event of `data`: start_array, start_map, string...


def _scan_head(stream: _CountingReader) -> _Head:
    """Parse the top level until both meta and the start of data are seen, or the end.

    Only the parts of the document before `data` starts go through Python events, so this is
    cheap whatever the size of the report; when data comes first, meta is left for a second
    pass (`_meta_after_data`) that skips data inside yajl.
    """
    head = _Head()
    events = ijson.parse(stream, use_float=True)
    first = next(events, None)
    if first is None or first[1] != "start_map":
        raise ijson.JSONError("the document is not a JSON object with meta and data")
    depth = 1
    for _, event, value in events:
        if depth == 1 and event == "map_key":
            if value == "meta" and head.meta is _MISSING:
                head.meta = _build_value(events)
            elif value == "data" and head.data_event is None:
                head.data_event = next(events)[1]
                return head
            continue
        if event in ("start_map", "start_array"):
            depth += 1
        elif event in ("end_map", "end_array"):
            depth -= 1
            if depth == 0:
                return head
    return head


def _build_value(events: Iterator[tuple[str, str, Any]]) -> Any:
    """The next JSON value of a parse-event stream, built into Python objects."""
    builder = ijson.ObjectBuilder()
    depth = 0
    for _, event, value in events:
        builder.event(event, value)
        if event in ("start_map", "start_array"):
            depth += 1
        elif event in ("end_map", "end_array"):
            depth -= 1
        if depth == 0:
            return builder.value
    raise ijson.JSONError("the document ends inside a value")


def _meta_after_data(stream: _CountingReader) -> Any:
    for meta in ijson.items(stream, "meta", use_float=True):
        return meta
    return _MISSING


def _check_meta(
    raw: Any,
    path: Path,
    member: str,
    member_date: date,
    expected_dsp_id: int | None,
    expected_date: date | None,
) -> ReportMeta:
    if raw is _MISSING:
        raise _error(path, f"{member} has no top-level meta object")
    if not isinstance(raw, dict):
        raise _error(path, f"meta in {member} is a {type(raw).__name__}, not an object")
    dsp_id = _as_int(raw.get("dsp_id"))
    if dsp_id not in SUPPORTED_DSP_IDS:
        raise _error(
            path,
            f"meta.dsp_id is {raw.get('dsp_id')!r}, expected one of "
            + ", ".join(str(i) for i in SUPPORTED_DSP_IDS),
        )
    dsp = dsp_by_id(dsp_id)
    report_date = _parse_date(raw.get("date"))
    if report_date is None:
        raise _error(path, f"meta.date is {raw.get('date')!r}, expected a YYYY-MM-DD date")
    if report_date != member_date:
        raise _error(
            path,
            f"meta.date {report_date} does not match the date {member_date} of member {member}",
        )
    total = _as_int(raw.get("total_records"))
    if total is None or total < 0:
        raise _error(
            path,
            f"meta.total_records is {raw.get('total_records')!r}, expected a non-negative integer",
        )
    if expected_dsp_id is not None and dsp_id != expected_dsp_id:
        expected = dsp_by_id(expected_dsp_id).name if expected_dsp_id in SUPPORTED_DSP_IDS else "?"
        raise _error(
            path,
            f"meta.dsp_id is {dsp_id} ({dsp.name}) but {expected_dsp_id} ({expected}) was expected",
            "check which DSP the file belongs to",
        )
    if expected_date is not None and report_date != expected_date:
        raise _error(
            path,
            f"the report is for {report_date} but {expected_date} was expected",
            "check which day the file belongs to",
        )
    generated_at = raw.get("generated_at")
    return ReportMeta(
        dsp=dsp.key,
        dsp_id=dsp_id,
        report_date=report_date,
        total_records=total,
        generated_at=None if generated_at is None else str(generated_at),
        member_name=member,
    )


def _check_data_type(head: _Head, path: Path, member: str) -> None:
    """`data` must be an array when present (missing is an empty report, checked by the caller)."""
    if head.data_event not in (None, "start_array"):
        kind = {"start_map": "object", "null": "null"}.get(head.data_event, head.data_event)
        raise _error(path, f"data in {member} is a JSON {kind}, not an array")


def read_report_meta(
    path: Path,
    *,
    limits: ZipLimits = DEFAULT_LIMITS,
    expected_dsp_id: int | None = None,
    expected_date: date | None = None,
) -> ReportMeta:
    """Check the archive and read only `meta` (and the type of `data`), not the records.

    Cheap when meta comes first, as the API writes it; when data comes first, it is skipped
    inside the parser. Raises DspReportFileError for any problem.
    """
    path = Path(path)
    with _archive(path, limits) as (archive, info, member_date):
        with _member_stream(archive, info, path, limits) as stream:
            head = _scan_head(stream)
        raw = head.meta
        if raw is _MISSING and head.data_event is not None:
            with _member_stream(archive, info, path, limits) as stream:
                raw = _meta_after_data(stream)
    meta = _check_meta(raw, path, info.filename, member_date, expected_dsp_id, expected_date)
    _check_data_type(head, path, info.filename)
    if head.data_event is None and meta.total_records > 0:
        raise _error(
            path,
            f"{info.filename} has no data array but meta.total_records is "
            f"{meta.total_records}: the report is incomplete",
        )
    return meta


def iter_report_records(
    path: Path,
    *,
    limits: ZipLimits = DEFAULT_LIMITS,
) -> Iterator[Any]:
    """Yield the elements of `data` one at a time, straight from the ZIP (nothing on disk).

    Numbers come as int or float. The archive is checked on the first `next()`; reading to the
    end also checks the rest of the JSON and the member's CRC. Raises DspReportFileError.
    """
    path = Path(path)
    with _archive(path, limits) as (archive, info, _):
        with _member_stream(archive, info, path, limits) as stream:
            head = _scan_head(stream)
        _check_data_type(head, path, info.filename)
        with _member_stream(archive, info, path, limits) as stream:
            yield from ijson.items(stream, "data.item", use_float=True)


def validate_report_zip(
    path: Path,
    *,
    limits: ZipLimits = DEFAULT_LIMITS,
    expected_dsp_id: int | None = None,
    expected_date: date | None = None,
) -> ReportMeta:
    """A full pass: archive, meta, every byte of the JSON, and the record count against meta."""
    meta = read_report_meta(
        path, limits=limits, expected_dsp_id=expected_dsp_id, expected_date=expected_date
    )
    count = sum(1 for _ in iter_report_records(path, limits=limits))
    check_record_count(path, meta, count)
    return meta


def check_record_count(path: Path, meta: ReportMeta, count: int) -> None:
    """Raise DspReportFileError when the records read differ from meta.total_records."""
    if count != meta.total_records:
        raise _error(
            path,
            f"meta.total_records is {meta.total_records} but data holds {count} records: the "
            "report is incomplete",
        )
