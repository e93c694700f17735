"""Safe, incremental reading of the analytics-report ZIPs of the DSP API.

A report is a ZIP with one member, `analytics-report-YYYY-MM-DD.json`, holding
`{"meta": {...}, "data": [records]}` (seed 002 and ../shared/specs/dsp-report-formats.md).
A report can hold 100,000+ records, and a ZIP can come from anywhere (a hand drop in the
landing folder), so:

- the archive is checked before a byte is decompressed (lib/core/zip_safety.py: no path
  components or links, no overlapping entries, the size and ratio caps, and a counted member
  stream since headers can lie), and it must hold exactly one member with the expected name;
- nothing is extracted to disk and the JSON is never held whole: ijson (yajl2_c) reads `meta`
  and then yields `data` one record at a time.

Every problem with a file raises DspReportFileError naming the file, the problem and what to do.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import ijson

from music_analytics.lib.core.zip_safety import (
    DEFAULT_LIMITS,
    CountingReader,
    SafeZip,
    UnsafeZipError,
    ZipLimits,
    open_safe_zip,
)
from music_analytics.lib.dsp.catalog import SUPPORTED_DSP_IDS, dsp_by_id

MEMBER_NAME_RE = re.compile(r"analytics-report-([0-9]{4}-[0-9]{2}-[0-9]{2})\.json")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_HASH_CHUNK = 8 << 20
_REDOWNLOAD = "request the report again from the API (or drop a fresh copy)"


class DspReportFileError(ValueError):
    """A DSP report file cannot be used; the message names the file, the problem and a fix."""


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


def file_sha256(path: Path) -> str:
    """SHA-256 of the file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


_ADVICE = {
    "size": "if the report is genuine, raise the cap (DSP_REPORT_MAX_MB)",
    "ratio": "do not load it unless you trust the sender (the cap is DSP_REPORT_MAX_RATIO)",
}
_UNSAFE = "do not load it; ask the sender for a new file"


def _unsafe(path: Path, exc: UnsafeZipError) -> DspReportFileError:
    """The ZIP-safety verdict as a DspReportFileError, with the advice for this source."""
    return _error(
        path, exc.problem, _ADVICE.get(exc.reason, _UNSAFE if exc.hostile else _REDOWNLOAD)
    )


def _is_report_name(name: str) -> bool:
    match = MEMBER_NAME_RE.fullmatch(name)
    return match is not None and _parse_date(match.group(1)) is not None


@contextmanager
def _archive(path: Path, limits: ZipLimits) -> Iterator[tuple[SafeZip, str, date]]:
    """The checked archive, its one member and the member's date; ZIP-safety errors named."""
    path = Path(path)
    if not path.is_file():
        raise _error(path, f"no such file {path}", "check the path")
    try:
        with open_safe_zip(path, limits, expected_members=_is_report_name) as archive:
            names = archive.names()
            if len(names) != 1:
                listed = ", ".join(repr(n) for n in names[:5])
                raise _error(
                    path,
                    f"expected exactly one member analytics-report-YYYY-MM-DD.json, found "
                    f"{len(names)} ({listed})",
                )
            [member] = names
            if not _is_report_name(member):
                raise _error(
                    path, f"member {member!r} is not named analytics-report-YYYY-MM-DD.json"
                )
            if member not in archive.members():
                raise _error(path, f"member {member!r} is a directory, not the report JSON")
            yield archive, member, date.fromisoformat(MEMBER_NAME_RE.fullmatch(member).group(1))
    except UnsafeZipError as exc:
        raise _unsafe(path, exc) from None


@contextmanager
def _member_stream(archive: SafeZip, member: str, path: Path) -> Iterator[CountingReader]:
    """The member's decompressed bytes behind a counter; JSON errors translated."""
    try:
        with archive.open_member(member) as stream:
            yield stream
    except ijson.JSONError as exc:
        raise _error(path, f"{member} is not valid JSON: {_first_line(exc)}") from None


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


def _scan_head(stream: CountingReader) -> _Head:
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


def _meta_after_data(stream: CountingReader) -> Any:
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
    with _archive(path, limits) as (archive, member, member_date):
        with _member_stream(archive, member, path) as stream:
            head = _scan_head(stream)
        raw = head.meta
        if raw is _MISSING and head.data_event is not None:
            with _member_stream(archive, member, path) as stream:
                raw = _meta_after_data(stream)
    meta = _check_meta(raw, path, member, member_date, expected_dsp_id, expected_date)
    _check_data_type(head, path, member)
    if head.data_event is None and meta.total_records > 0:
        raise _error(
            path,
            f"{member} has no data array but meta.total_records is "
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
    with _archive(path, limits) as (archive, member, _):
        with _member_stream(archive, member, path) as stream:
            head = _scan_head(stream)
        _check_data_type(head, path, member)
        with _member_stream(archive, member, path) as stream:
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
