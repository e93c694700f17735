"""The document inside a DSP report ZIP: its `meta` checked, its head scanned cheaply.

`{"meta": {...}, "data": [records]}`, read through the bounded JSON reader
(lib/core/json_reader.py, which caps nesting, strings and records before ijson sees a byte):
scan_head parses the top level only until meta and the start of data are seen (data is left
to the caller to stream), check_meta turns meta into a ReportMeta. Problems raise
DspReportFileError naming the file, the problem and what to do.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any

import ijson

from music_analytics.lib.dsp.catalog import SUPPORTED_DSP_IDS, dsp_by_id

_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
REDOWNLOAD = "request the report again from the API (or drop a fresh copy)"


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


def report_error(path: Path, problem: str, action: str = REDOWNLOAD) -> DspReportFileError:
    """The DspReportFileError for a problem with `path`, with what to do about it."""
    return DspReportFileError(f"DSP report {Path(path).name}: {problem}; {action}")


def parse_date(text: Any) -> date | None:
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


MISSING = object()


@dataclass
class ReportHead:
    """What the start of the document says: meta (if it came before data) and data's type."""

    meta: Any = MISSING
    data_event: str | None = None  # the first event of `data`: start_array, start_map, string...


def scan_head(stream: IO[bytes]) -> ReportHead:
    """Parse the top level until both meta and the start of data are seen, or the end.

    Only the parts of the document before `data` starts go through Python events, so this is
    cheap whatever the size of the report; when data comes first, meta is left for a second
    pass (`meta_after_data`) that skips data inside yajl.
    """
    head = ReportHead()
    events = ijson.parse(stream, use_float=True)
    first = next(events, None)
    if first is None or first[1] != "start_map":
        raise ijson.JSONError("the document is not a JSON object with meta and data")
    depth = 1
    for _, event, value in events:
        if depth == 1 and event == "map_key":
            if value == "meta" and head.meta is MISSING:
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


def meta_after_data(stream: IO[bytes]) -> Any:
    for meta in ijson.items(stream, "meta", use_float=True):
        return meta
    return MISSING


def check_meta(
    raw: Any,
    path: Path,
    member: str,
    member_date: date,
    expected_dsp_id: int | None,
    expected_date: date | None,
) -> ReportMeta:
    if raw is MISSING:
        raise report_error(path, f"{member} has no top-level meta object")
    if not isinstance(raw, dict):
        raise report_error(path, f"meta in {member} is a {type(raw).__name__}, not an object")
    dsp_id = _as_int(raw.get("dsp_id"))
    if dsp_id not in SUPPORTED_DSP_IDS:
        raise report_error(
            path,
            f"meta.dsp_id is {raw.get('dsp_id')!r}, expected one of "
            + ", ".join(str(i) for i in SUPPORTED_DSP_IDS),
        )
    dsp = dsp_by_id(dsp_id)
    report_date = parse_date(raw.get("date"))
    if report_date is None:
        raise report_error(path, f"meta.date is {raw.get('date')!r}, expected a YYYY-MM-DD date")
    if report_date != member_date:
        raise report_error(
            path,
            f"meta.date {report_date} does not match the date {member_date} of member {member}",
        )
    total = _as_int(raw.get("total_records"))
    if total is None or total < 0:
        raise report_error(
            path,
            f"meta.total_records is {raw.get('total_records')!r}, expected a non-negative integer",
        )
    if expected_dsp_id is not None and dsp_id != expected_dsp_id:
        expected = dsp_by_id(expected_dsp_id).name if expected_dsp_id in SUPPORTED_DSP_IDS else "?"
        raise report_error(
            path,
            f"meta.dsp_id is {dsp_id} ({dsp.name}) but {expected_dsp_id} ({expected}) was expected",
            "check which DSP the file belongs to",
        )
    if expected_date is not None and report_date != expected_date:
        raise report_error(
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


def check_data_type(head: ReportHead, path: Path, member: str) -> None:
    """`data` must be an array when present (missing is an empty report, checked by the caller)."""
    if head.data_event not in (None, "start_array"):
        kind = {"start_map": "object", "null": "null"}.get(head.data_event, head.data_event)
        raise report_error(path, f"data in {member} is a JSON {kind}, not an array")
