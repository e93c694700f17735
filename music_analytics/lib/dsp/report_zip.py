"""Safe, incremental reading of the analytics-report ZIPs of the DSP API.

A report is a ZIP with one member, `analytics-report-YYYY-MM-DD.json`, holding
`{"meta": {...}, "data": [records]}` (seed 002 and ../shared/specs/dsp-report-formats.md).
A report can hold 100,000+ records, and a ZIP can come from anywhere (a hand drop in the
landing folder), so:

- the archive is checked before a byte is decompressed (lib/core/zip_safety.py: no path
  components or links, no overlapping entries, the size and ratio caps, and a counted member
  stream since headers can lie), and it must hold exactly one member with the expected name;
- nothing is extracted to disk and the JSON is never held whole: ijson (yajl2_c) reads `meta`
  and then yields `data` one record at a time (meta's checks: report_meta.py), behind the
  bounded JSON reader (lib/core/json_reader.py): nesting depth, string and record sizes are
  capped (MUSIC_ANALYTICS_JSON_MAX_*) before the parser sees the bytes, so memory stays flat
  whatever the member holds.

Every problem with a file raises DspReportFileError naming the file, the problem and what to do.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

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
    DEFAULT_LIMITS,
    SafeZip,
    UnsafeZipError,
    ZipLimits,
    open_safe_zip,
)
from music_analytics.lib.dsp.report_meta import (
    MISSING,
    REDOWNLOAD,
    DspReportFileError,
    ReportMeta,
    check_data_type,
    check_meta,
    meta_after_data,
    parse_date,
    report_error,
    scan_head,
)

MEMBER_NAME_RE = re.compile(r"analytics-report-([0-9]{4}-[0-9]{2}-[0-9]{2})\.json")


_ADVICE = {
    "size": "if the report is genuine, raise the cap (DSP_REPORT_MAX_MB)",
    "ratio": "do not load it unless you trust the sender (the cap is DSP_REPORT_MAX_RATIO)",
}
_UNSAFE = "do not load it; ask the sender for a new file"


def _unsafe(path: Path, exc: UnsafeZipError) -> DspReportFileError:
    """The ZIP-safety verdict as a DspReportFileError, with the advice for this source."""
    return report_error(
        path, exc.problem, _ADVICE.get(exc.reason, _UNSAFE if exc.hostile else REDOWNLOAD)
    )


def _is_report_name(name: str) -> bool:
    match = MEMBER_NAME_RE.fullmatch(name)
    return match is not None and parse_date(match.group(1)) is not None


@contextmanager
def _archive(path: Path, limits: ZipLimits) -> Iterator[tuple[SafeZip, str, date]]:
    """The checked archive, its one member and the member's date; ZIP-safety errors named."""
    path = Path(path)
    if not path.is_file():
        raise report_error(path, f"no such file {path}", "check the path")
    try:
        with open_safe_zip(path, limits, expected_members=_is_report_name) as archive:
            names = archive.names()
            if len(names) != 1:
                listed = ", ".join(repr(n) for n in names[:5])
                raise report_error(
                    path,
                    f"expected exactly one member analytics-report-YYYY-MM-DD.json, found "
                    f"{len(names)} ({listed})",
                )
            [member] = names
            if not _is_report_name(member):
                raise report_error(
                    path, f"member {member!r} is not named analytics-report-YYYY-MM-DD.json"
                )
            if member not in archive.members():
                raise report_error(path, f"member {member!r} is a directory, not the report JSON")
            yield archive, member, date.fromisoformat(MEMBER_NAME_RE.fullmatch(member).group(1))
    except UnsafeZipError as exc:
        raise _unsafe(path, exc) from None


@contextmanager
def _member_stream(
    archive: SafeZip, member: str, path: Path, json_limits: JsonLimits
) -> Iterator[BoundedJsonStream]:
    """The member's decompressed bytes behind ZIP safety's counter and the bounded JSON
    reader (records are the elements of `data`, at depth 2); JSON errors translated."""
    try:
        with archive.open_member(member) as stream:
            yield BoundedJsonStream(stream, json_limits, records_depth=2, records_key="data")
    except JsonLimitError as exc:
        raise report_error(path, f"in {member}, {exc.problem}", LIMIT_ACTION) from None
    except ijson.JSONError as exc:
        raise report_error(path, f"{member} is not valid JSON: {json_error_text(exc)}") from None


def read_report_meta(
    path: Path,
    *,
    limits: ZipLimits = DEFAULT_LIMITS,
    json_limits: JsonLimits = DEFAULT_JSON_LIMITS,
    expected_dsp_id: int | None = None,
    expected_date: date | None = None,
) -> ReportMeta:
    """Check the archive and read only `meta` (and the type of `data`), not the records.

    Cheap when meta comes first, as the API writes it; when data comes first, it is skipped
    inside the parser. Raises DspReportFileError for any problem.
    """
    path = Path(path)
    with _archive(path, limits) as (archive, member, member_date):
        with _member_stream(archive, member, path, json_limits) as stream:
            head = scan_head(stream)
        raw = head.meta
        if raw is MISSING and head.data_event is not None:
            with _member_stream(archive, member, path, json_limits) as stream:
                raw = meta_after_data(stream)
    meta = check_meta(raw, path, member, member_date, expected_dsp_id, expected_date)
    check_data_type(head, path, member)
    if head.data_event is None and meta.total_records > 0:
        raise report_error(
            path,
            f"{member} has no data array but meta.total_records is "
            f"{meta.total_records}: the report is incomplete",
        )
    return meta


def iter_report_records(
    path: Path,
    *,
    limits: ZipLimits = DEFAULT_LIMITS,
    json_limits: JsonLimits = DEFAULT_JSON_LIMITS,
) -> Iterator[Any]:
    """Yield the elements of `data` one at a time, straight from the ZIP (nothing on disk).

    Numbers come as int or float. The archive is checked on the first `next()`; reading to the
    end also checks the rest of the JSON and the member's CRC. Raises DspReportFileError.
    """
    path = Path(path)
    with _archive(path, limits) as (archive, member, _):
        with _member_stream(archive, member, path, json_limits) as stream:
            head = scan_head(stream)
        check_data_type(head, path, member)
        with _member_stream(archive, member, path, json_limits) as stream:
            yield from iter_array_items(stream, "data.item")


def validate_report_zip(
    path: Path,
    *,
    limits: ZipLimits = DEFAULT_LIMITS,
    json_limits: JsonLimits = DEFAULT_JSON_LIMITS,
    expected_dsp_id: int | None = None,
    expected_date: date | None = None,
) -> ReportMeta:
    """A full pass: archive, meta, every byte of the JSON, and the record count against meta."""
    meta = read_report_meta(
        path,
        limits=limits,
        json_limits=json_limits,
        expected_dsp_id=expected_dsp_id,
        expected_date=expected_date,
    )
    count = sum(1 for _ in iter_report_records(path, limits=limits, json_limits=json_limits))
    check_record_count(path, meta, count)
    return meta


def check_record_count(path: Path, meta: ReportMeta, count: int) -> None:
    """Raise DspReportFileError when the records read differ from meta.total_records."""
    if count != meta.total_records:
        raise report_error(
            path,
            f"meta.total_records is {meta.total_records} but data holds {count} records: the "
            "report is incomplete",
        )
