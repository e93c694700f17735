"""Client for the DSP analytics-reports API: request a day's report, poll it, download its ZIP.

The API is asynchronous (seed 002): POST creates a report, GET polls it through pending and
processing to completed (with a pre-signed download URL valid 12 h) or failed. `fetch_report`
runs the whole workflow and survives what goes wrong in between: ids of created reports are
remembered in a `PendingReports` store so a crashed or timed-out run resumes them instead of
requesting new ones; 429, 5xx and connection errors are retried with backoff (`api_http`); a 409
(too many active reports) is waited out; an expired download URL is refreshed by polling again
(`api_download`).

The token and pre-signed URLs are secrets: they never reach a log message, an exception message
or chain, or a repr (`api_redaction`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import requests

from music_analytics.lib.core.settings import DSP_API_ACTIVE_REPORT_LIMIT
from music_analytics.lib.dsp.api_download import download_report
from music_analytics.lib.dsp.api_errors import (
    DspApiError,
    DspApiUnavailable,
    DspReportFailed,
    DspReportNotFound,
    ReportContext,
    report_label,
)
from music_analytics.lib.dsp.api_http import ReportsHttp, json_field
from music_analytics.lib.dsp.api_polling import DEFAULT_POLL_DELAYS
from music_analytics.lib.dsp.api_polling import wait_until_done as poll_until_done
from music_analytics.lib.dsp.api_redaction import redact_url
from music_analytics.lib.dsp.api_reports import FetchedReport, FetchOutcome, ReportStatus
from music_analytics.lib.dsp.pending_reports import PendingReports

REPORTS_PATH = "/analytics-reports"

logger = logging.getLogger(__name__)


class DspReportClient:
    """Requests, polls and downloads daily analytics reports; safe to share between threads."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        pending: PendingReports,
        poll_timeout_seconds: float = 1800,
        max_active_reports: int = 10,
        session: requests.Session | None = None,
        sleep: Callable[[float], object] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        poll_delays: Sequence[float] = DEFAULT_POLL_DELAYS,
        max_attempts: int = 5,
        retry_after_cap: float = 120.0,
        conflict_wait_seconds: float = 30.0,
        request_timeout: tuple[float, float] = (10, 120),
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        rng: random.Random | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        base_url = (base_url or "").strip().rstrip("/")
        if not base_url:
            raise ValueError("DSP_API_BASE_URL is empty: set it to e.g. https://host/api/v1")
        if not (token or "").strip():
            raise ValueError("DSP_API_TOKEN is empty: set it to the API's bearer token")
        if not 1 <= max_active_reports <= DSP_API_ACTIVE_REPORT_LIMIT:
            raise ValueError(
                f"max_active_reports={max_active_reports} must be between 1 and "
                f"{DSP_API_ACTIVE_REPORT_LIMIT} (the API's limit of active reports)"
            )
        if not poll_delays or any(d <= 0 for d in poll_delays):
            raise ValueError(f"poll_delays={tuple(poll_delays)!r} must be positive, and not empty")
        if max_attempts < 1:
            raise ValueError(f"max_attempts={max_attempts} must be at least 1")
        if poll_timeout_seconds <= 0:
            raise ValueError(f"poll_timeout_seconds={poll_timeout_seconds} must be positive")
        self.base_url = base_url
        self.pending = pending
        self.poll_timeout_seconds = float(poll_timeout_seconds)
        self.max_active_reports = max_active_reports
        self.poll_delays = tuple(float(d) for d in poll_delays)
        self.conflict_wait_seconds = float(conflict_wait_seconds)
        self.log = log or logger
        self._sleep = sleep
        self._monotonic = monotonic
        self._http = ReportsHttp(
            base_url,
            token.strip(),
            session=session,
            pool_size=max(10, max_active_reports),
            sleep=sleep,
            max_attempts=max_attempts,
            retry_after_cap=retry_after_cap,
            request_timeout=request_timeout,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            rng=rng,
            log=self.log,
        )
        # The in-flight cap: at most this many reports between POST and download at once.
        self._slots = threading.BoundedSemaphore(max_active_reports)

    def __repr__(self) -> str:
        return f"DspReportClient({self.base_url!r}, max_active_reports={self.max_active_reports})"

    def close(self) -> None:
        """Close the HTTP session if the client created it."""
        self._http.close()

    def __enter__(self) -> DspReportClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- API calls -----------------------------------------------------------------------

    def create_report(self, dsp_id: int, day: date) -> ReportStatus:
        """POST a new report for one DSP and day; waits out 409 (too many active reports)."""
        ctx = ReportContext(dsp_id, day)
        body = {"dsp_id": int(dsp_id), "date": day.isoformat()}
        deadline = self._monotonic() + self.poll_timeout_seconds
        while True:
            response = self._http.call("POST", REPORTS_PATH, ctx, json_body=body)
            if response.status_code != 409:
                break
            active = json_field(response, "active_count")
            remaining = deadline - self._monotonic()
            if remaining <= 0:
                raise DspApiUnavailable(
                    f"the API still refuses a new {ctx.label}: {active} reports of this token "
                    f"are active (its limit is {DSP_API_ACTIVE_REPORT_LIMIT}) after waiting "
                    f"{self.poll_timeout_seconds:.0f} s. Other runs or tools using DSP_API_TOKEN "
                    "hold the slots; lower DSP_API_MAX_ACTIVE_REPORTS or try again later.",
                    **ctx.kwargs(),
                )
            wait = min(self.conflict_wait_seconds, remaining)
            self.log.debug(  # handled: waited out, or DspApiUnavailable past the timeout
                "the API refused a new %s: %s reports of this token are active (limit %s); "
                "waiting %.0f s for one to finish",
                ctx.label,
                active,
                DSP_API_ACTIVE_REPORT_LIMIT,
                wait,
            )
            self._sleep(wait)
        if response.status_code not in (200, 201):
            self._http.raise_for_status(response, "POST", ctx)
        report = self._http.parse_report(response, "POST", REPORTS_PATH, ctx)
        self.log.info("requested %s", report_label(report.dsp_id, report.day, report.report_id))
        return report

    def get_report(self, report_id: int) -> ReportStatus:
        """GET a report's current status (and, once completed, a fresh download URL)."""
        return self._get_report(ReportContext(report_id=int(report_id)))

    def _get_report(self, ctx: ReportContext) -> ReportStatus:
        path = f"{REPORTS_PATH}/{ctx.report_id}"
        response = self._http.call("GET", path, ctx)
        if response.status_code != 200:
            self._http.raise_for_status(response, "GET", ctx)
        report = self._http.parse_report(response, "GET", path, ctx)
        if report.report_id != ctx.report_id:
            raise DspApiError(
                f"GET {redact_url(self.base_url + path)} answered report {report.report_id} "
                f"instead of {ctx.report_id}",
                **ctx.kwargs(),
            )
        return report

    def wait_until_done(self, report: ReportStatus) -> ReportStatus:
        """Poll until the report is completed; raises DspReportFailed or DspReportTimeout.

        Polls soon at first and then every minute (`poll_delays`); gives up after
        `poll_timeout_seconds`, leaving the report to a later run.
        """
        return poll_until_done(
            report,
            self._get_report,
            delays=self.poll_delays,
            timeout_seconds=self.poll_timeout_seconds,
            sleep=self._sleep,
            monotonic=self._monotonic,
            log=self.log,
        )

    def download(self, report: ReportStatus, dest: Path) -> Path:
        """Stream the completed report's ZIP to `dest` (atomically); returns `dest`.

        Sends no Authorization header (the URL is pre-signed); an expired URL is refreshed by
        polling the report again, at most twice; 5xx and connection errors are retried.
        """
        return download_report(self._http, report, dest, self._get_report)

    # --- the workflow --------------------------------------------------------------------

    def fetch_report(
        self,
        dsp_id: int,
        day: date,
        dest: Path,
        validate: Callable[[Path], object] | None = None,
    ) -> FetchedReport:
        """Request (or resume), poll, download and validate one DSP's report for one day.

        A report id remembered by `pending` is resumed instead of requesting a new report; the
        id is remembered as soon as the API creates it and forgotten once the file is valid.
        `validate(path)` raises on a bad file: the file is downloaded once more and, if still
        bad, deleted and the report forgotten before the error is re-raised.
        """
        dest = Path(dest)
        with self._slots:
            report = self._resume_or_create(dsp_id, day)
            try:
                report = self.wait_until_done(report)
            except DspReportFailed:
                self.pending.forget(dsp_id, day)
                raise
            path = self.download(report, dest)
        if validate is not None:
            self._validate(report, path, validate)
        self.pending.forget(dsp_id, day)
        return FetchedReport(report.report_id, report.dsp_id, report.day, path, report)

    def _resume_or_create(self, dsp_id: int, day: date) -> ReportStatus:
        report_id = self.pending.get(dsp_id, day)
        if report_id is not None:
            ctx = ReportContext(dsp_id, day, report_id)
            try:
                report = self._get_report(ctx)
            except DspReportNotFound:
                self.log.info("the API no longer knows %s; requesting a new one", ctx.label)
                report = None
            if report is not None and (report.dsp_id, report.day) != (dsp_id, day):
                self.log.info(
                    "remembered %s is really %s; requesting a new one",
                    ctx.label,
                    report_label(report.dsp_id, report.day, report.report_id),
                )
                report = None
            elif report is not None and report.status == "failed":
                self.log.info(
                    "remembered %s had failed (%s); requesting a new one", ctx.label, report.error
                )
                report = None
            if report is not None:
                self.log.info("resuming %s (%s)", ctx.label, report.status)
                return report
            self.pending.forget(dsp_id, day)
        report = self.create_report(dsp_id, day)
        self.pending.remember(dsp_id, day, report.report_id)
        return report

    def _validate(
        self, report: ReportStatus, path: Path, validate: Callable[[Path], object]
    ) -> None:
        label = report_label(report.dsp_id, report.day, report.report_id)
        try:
            validate(path)
            return
        except Exception as exc:
            self.log.info("%s failed validation (%s); downloading it again", label, exc)
        try:
            # Completed reports no longer count as active, so no slot is needed.
            self.download(report, path)
            validate(path)
        except Exception:
            path.unlink(missing_ok=True)
            self.pending.forget(report.dsp_id, report.day)
            self.log.warning("%s failed validation twice; deleted %s", label, path)
            raise

    def fetch_reports(
        self,
        requests: Iterable[tuple[int, date]],
        dest_for: Callable[[int, date], Path],
        validate: Callable[[Path], object] | None = None,
        max_workers: int | None = None,
    ) -> list[FetchOutcome]:
        """`fetch_report` for many (dsp_id, day) pairs at once; one failure stops no other.

        Outcomes come back in the order of `requests`. At most `max_active_reports` reports are
        in flight whatever `max_workers` is.
        """
        wanted = [(int(dsp_id), day) for dsp_id, day in requests]
        if not wanted:
            return []
        workers = min(max_workers or self.max_active_reports, len(wanted))

        def fetch_one(dsp_id: int, day: date) -> FetchedReport:
            return self.fetch_report(dsp_id, day, dest_for(dsp_id, day), validate)

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dsp-report") as pool:
            futures = [pool.submit(fetch_one, dsp_id, day) for dsp_id, day in wanted]
        outcomes = []
        for (dsp_id, day), future in zip(wanted, futures):
            error = future.exception()
            if error is not None and not isinstance(error, Exception):
                raise error  # KeyboardInterrupt and friends stop everything
            if error is not None:
                # the caller reports the outcome's error (refresh: one line per report)
                self.log.info("%s: %s", report_label(dsp_id, day, None), error)
            fetched = None if error is not None else future.result()
            outcomes.append(FetchOutcome(dsp_id, day, fetched, error))
        return outcomes
