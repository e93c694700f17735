"""Polling a DSP report until the API has built it: short first waits, then every minute."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator, Sequence

from music_analytics.lib.dsp.api_errors import DspReportFailed, DspReportTimeout, ReportContext
from music_analytics.lib.dsp.api_reports import ACTIVE_STATUSES, ReportStatus

# Short first polls (most reports finish within 5-20 s), backing off to the documented minute.
DEFAULT_POLL_DELAYS: tuple[float, ...] = (2, 3, 5, 8, 13, 21, 34, 55, 60)


def poll_delays(delays: Sequence[float]) -> Iterator[float]:
    """The delays in order, then the last one for ever."""
    return itertools.chain(delays, itertools.repeat(delays[-1]))


def wait_until_done(
    report: ReportStatus,
    get_report: Callable[[ReportContext], ReportStatus],
    *,
    delays: Sequence[float],
    timeout_seconds: float,
    sleep: Callable[[float], object],
    monotonic: Callable[[], float],
    log: logging.Logger,
) -> ReportStatus:
    """Poll with `get_report` until the report is completed; raises DspReportFailed or
    DspReportTimeout (after `timeout_seconds`, leaving the report to a later run)."""
    ctx = ReportContext(report.dsp_id, report.day, report.report_id)
    deadline = monotonic() + timeout_seconds
    waits = poll_delays(delays)
    while True:
        if report.status == "completed":
            log.info("%s is completed (%s records)", ctx.label, report.total_records)
            return report
        if report.status == "failed":
            raise DspReportFailed(
                f"{ctx.label} failed on the API side: {report.error or 'no reason given'}. "
                "The next run requests a new report.",
                **ctx.kwargs(),
            )
        if report.status not in ACTIVE_STATUSES:
            log.warning("%s has unknown status %r; polling on", ctx.label, report.status)
        remaining = deadline - monotonic()
        if remaining <= 0:
            raise DspReportTimeout(
                f"{ctx.label} is still {report.status} after {timeout_seconds:.0f} "
                f"s (DSP_API_POLL_TIMEOUT_SECONDS). Its id {report.report_id} is remembered, "
                "so the next run resumes it instead of requesting a new one.",
                **ctx.kwargs(),
            )
        sleep(min(next(waits), remaining))
        report = get_report(ctx)
        log.debug("%s is %s", ctx.label, report.status)
