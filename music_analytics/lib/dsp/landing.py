"""Report ZIPs dropped into landing/dsp/: which partition each one loads into, or why not."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from music_analytics.lib.core.json_reader import DEFAULT_JSON_LIMITS, JsonLimits
from music_analytics.lib.core.landing import reject_file
from music_analytics.lib.dsp.report_zip import DspReportFileError, ZipLimits, read_report_meta


@dataclass(frozen=True)
class LandedReport:
    """A dropped ZIP and the (day, dsp) its meta names."""

    path: Path
    day: date
    dsp: str


def sort_landed_reports(
    paths: list[Path],
    limits: ZipLimits,
    first: date,
    last: date,
    json_limits: JsonLimits = DEFAULT_JSON_LIMITS,
) -> tuple[list[LandedReport], list[str]]:
    """Read each ZIP's meta: the reports to load, and the reasons of those moved to rejected/
    (unreadable, or dated outside the partitions first..last)."""
    reports, rejected = [], []
    for path in paths:
        try:
            meta = read_report_meta(path, limits=limits, json_limits=json_limits)
        except DspReportFileError as exc:
            reject_file(path, str(exc))
            rejected.append(str(exc))
            continue
        if not first <= meta.report_date <= last:
            reason = (
                f"{path.name}: report date {meta.report_date} is outside the partitions "
                f"{first}..{last}: set MUSIC_ANALYTICS_START_DATE={meta.report_date} (or "
                "earlier) and drop the file again"
            )
            reject_file(path, reason)
            rejected.append(reason)
            continue
        reports.append(LandedReport(path, meta.report_date, meta.dsp))
    return reports, rejected
