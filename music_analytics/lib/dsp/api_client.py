"""Client for the DSP analytics-reports API: request a day's report, poll it, download its ZIP.

The API is asynchronous (seed 002): POST creates a report, GET polls it through pending and
processing to completed (with a pre-signed download URL valid 12 h) or failed. `fetch_report`
runs the whole workflow and survives what goes wrong in between: ids of created reports are
remembered in a `PendingReports` store so a crashed or timed-out run resumes them instead of
requesting new ones; 429, 5xx and connection errors are retried with backoff; a 409 (too many
active reports) is waited out; an expired download URL is refreshed by polling again.

The token and pre-signed URLs are secrets: they never reach a log message, an exception message
or chain, or a repr. urllib3 logs request lines with the full URL at DEBUG, so importing this
module installs a filter that strips query strings from those records.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from music_analytics.lib.core.log_redaction import install_redaction
from music_analytics.lib.core.settings import DSP_API_ACTIVE_REPORT_LIMIT
from music_analytics.lib.dsp.catalog import SUPPORTED_DSP_IDS, dsp_by_id
from music_analytics.lib.dsp.pending_reports import PendingReports

# Short first polls (most reports finish within 5-20 s), backing off to the documented minute.
DEFAULT_POLL_DELAYS: tuple[float, ...] = (2, 3, 5, 8, 13, 21, 34, 55, 60)
REPORTS_PATH = "/analytics-reports"
ACTIVE_STATUSES = frozenset({"pending", "processing"})
_DOWNLOAD_CHUNK = 1 << 20
_MAX_URL_REFRESHES = 2
_USER_AGENT = "music-analytics dsp_api_client"
_QUERY = re.compile(r"\?[^\s'\"<>)]*")

logger = logging.getLogger(__name__)


# --- secrets -------------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """The URL without its query string (where pre-signed URLs keep their signature) or userinfo."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _redact_text(text: str, *secrets: str) -> str:
    """Text (e.g. a requests exception's message) without query strings or the given secrets."""
    text = _QUERY.sub("?[redacted]", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


# urllib3 logs full URLs: connectionpool (request lines, retries) and util.retry (increments).
_URL_LOGGING_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry")


def install_log_redaction() -> None:
    """Strip query strings (pre-signed URLs' signatures) from urllib3's log records."""
    install_redaction(_URL_LOGGING_LOGGERS, _redact_text)


install_log_redaction()


# --- errors --------------------------------------------------------------------------------


def _dsp_label(dsp_id: int | None) -> str:
    if dsp_id is None:
        return "DSP"
    try:
        return f"{dsp_by_id(dsp_id).name} (dsp_id {dsp_id})"
    except ValueError:
        return f"dsp_id {dsp_id}"


def _report_label(dsp_id: int | None, day: date | None, report_id: int | None) -> str:
    """E.g. `Spotify (dsp_id 1) report 6 for 2026-03-28`."""
    text = _dsp_label(dsp_id) + " report"
    if report_id is not None:
        text += f" {report_id}"
    if day is not None:
        text += f" for {day.isoformat()}"
    return text


class DspApiError(Exception):
    """An analytics-reports API call failed; the message names the DSP, date and report id.

    `retryable` says whether running again later may succeed (outages, timeouts) or whether a
    person must fix something first (token, DSP list).
    """

    default_retryable = False

    def __init__(
        self,
        message: str,
        *,
        dsp_id: int | None = None,
        day: date | None = None,
        report_id: int | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.dsp_id = dsp_id
        self.day = day
        self.report_id = report_id
        self.retryable = self.default_retryable if retryable is None else retryable


class DspReportFailed(DspApiError):
    """The API reports status `failed`; the message carries its `error` text."""

    default_retryable = True  # the next run requests a new report


class DspUnsupportedDsp(DspApiError):
    """The API does not export this DSP (422); the message lists the DSPs it does."""


class DspAuthError(DspApiError):
    """The API refused the token (401/403): DSP_API_TOKEN is wrong or lacks access."""


class DspReportNotFound(DspApiError):
    """The API does not know the report id (404), e.g. a remembered id it has since deleted."""


class DspReportTimeout(DspApiError):
    """The report is still pending/processing at the poll timeout; its id stays remembered."""

    default_retryable = True


class DspDownloadError(DspApiError):
    """The ZIP could not be downloaded after retries and URL refreshes."""

    default_retryable = True


class DspApiUnavailable(DspApiError):
    """5xx, connection errors, 429 or 409 went on past the retries; try again later."""

    default_retryable = True


# --- values --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportStatus:
    """One report as the API describes it (`data` of POST/GET); the URL is kept out of repr."""

    report_id: int
    dsp_id: int
    day: date
    status: str  # pending, processing, completed or failed
    total_records: int | None = None
    file_size_bytes: int | None = None
    error: str | None = None
    download_url: str | None = field(default=None, repr=False)

    @property
    def is_active(self) -> bool:
        """Pending or processing: counts against the API's active-report limit."""
        return self.status in ACTIVE_STATUSES

    @classmethod
    def from_api(
        cls, data: Any, *, dsp_id: int | None = None, day: date | None = None
    ) -> ReportStatus:
        """Parse a response's `data` object; `dsp_id`/`day` fill in fields the API omits.

        Raises ValueError, naming the field, when the object lacks `id` or `status` or holds
        values of the wrong type.
        """
        if not isinstance(data, Mapping):
            raise ValueError("`data` is not an object")
        raw_dsp, raw_day = data.get("dsp_id", dsp_id), data.get("date")
        parsed_day = date.fromisoformat(raw_day[:10]) if isinstance(raw_day, str) else day
        status = data.get("status")
        if not isinstance(status, str) or not status:
            raise ValueError(f"`status` is {status!r}, expected a string")
        return cls(
            report_id=_positive_int(data.get("id"), "id"),
            dsp_id=_positive_int(raw_dsp, "dsp_id"),
            day=_need(parsed_day, "date"),
            status=status,
            total_records=_optional_int(data.get("total_records"), "total_records"),
            file_size_bytes=_optional_int(data.get("file_size_bytes"), "file_size_bytes"),
            error=None if data.get("error") is None else str(data["error"]),
            download_url=data.get("download_url") or None,
        )


def _need(value: Any, name: str) -> Any:
    if value is None:
        raise ValueError(f"`{name}` is missing")
    return value


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"`{name}` is {value!r}, expected a positive whole number")
    return value


def _optional_int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"`{name}` is {value!r}, expected a whole number or null")
    return value


@dataclass(frozen=True)
class FetchedReport:
    """A downloaded (and, if asked, validated) report ZIP."""

    report_id: int
    dsp_id: int
    day: date
    path: Path
    status: ReportStatus


@dataclass(frozen=True)
class FetchOutcome:
    """What `fetch_reports` did for one (dsp_id, day): the fetched report or the error."""

    dsp_id: int
    day: date
    fetched: FetchedReport | None
    error: Exception | None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class _Ctx:
    """Who a request is for, so errors can name the DSP, day and report."""

    dsp_id: int | None = None
    day: date | None = None
    report_id: int | None = None

    def kwargs(self) -> dict[str, Any]:
        return {"dsp_id": self.dsp_id, "day": self.day, "report_id": self.report_id}

    @property
    def label(self) -> str:
        return _report_label(self.dsp_id, self.day, self.report_id)


class _NoAuth(AuthBase):
    """Sends no Authorization header: pre-signed URLs must not get the token (or ~/.netrc's)."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.pop("Authorization", None)
        return request


@dataclass
class _DownloadAttempt:
    outcome: str  # ok, expired, retry or fatal
    detail: str = ""
    retry_after: float | None = None


# --- the client ----------------------------------------------------------------------------


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
        self._token = token.strip()
        self.pending = pending
        self.poll_timeout_seconds = float(poll_timeout_seconds)
        self.max_active_reports = max_active_reports
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_maxsize=max(10, max_active_reports))
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        self._session = session
        self._sleep = sleep
        self._monotonic = monotonic
        self.poll_delays = tuple(float(d) for d in poll_delays)
        self.max_attempts = max_attempts
        self.retry_after_cap = float(retry_after_cap)
        self.conflict_wait_seconds = float(conflict_wait_seconds)
        self.request_timeout = request_timeout
        self.backoff_base = float(backoff_base)
        self.backoff_cap = float(backoff_cap)
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self.log = log or logger
        self._slots = threading.BoundedSemaphore(max_active_reports)

    def __repr__(self) -> str:
        return f"DspReportClient({self.base_url!r}, max_active_reports={self.max_active_reports})"

    def close(self) -> None:
        """Close the HTTP session if the client created it."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> DspReportClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- API calls -----------------------------------------------------------------------

    def create_report(self, dsp_id: int, day: date) -> ReportStatus:
        """POST a new report for one DSP and day; waits out 409 (too many active reports)."""
        ctx = _Ctx(dsp_id, day)
        body = {"dsp_id": int(dsp_id), "date": day.isoformat()}
        deadline = self._monotonic() + self.poll_timeout_seconds
        while True:
            response = self._api("POST", REPORTS_PATH, ctx, json_body=body)
            if response.status_code != 409:
                break
            active = _json_field(response, "active_count")
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
            self.log.warning(
                "the API refused a new %s: %s reports of this token are active (limit %s); "
                "waiting %.0f s for one to finish",
                ctx.label,
                active,
                DSP_API_ACTIVE_REPORT_LIMIT,
                wait,
            )
            self._sleep(wait)
        if response.status_code not in (200, 201):
            self._raise_for_status(response, "POST", ctx)
        report = self._parse(response, "POST", REPORTS_PATH, ctx)
        self.log.info("requested %s", _report_label(report.dsp_id, report.day, report.report_id))
        return report

    def get_report(self, report_id: int) -> ReportStatus:
        """GET a report's current status (and, once completed, a fresh download URL)."""
        return self._get_report(_Ctx(report_id=int(report_id)))

    def _get_report(self, ctx: _Ctx) -> ReportStatus:
        path = f"{REPORTS_PATH}/{ctx.report_id}"
        response = self._api("GET", path, ctx)
        if response.status_code != 200:
            self._raise_for_status(response, "GET", ctx)
        report = self._parse(response, "GET", path, ctx)
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
        ctx = _Ctx(report.dsp_id, report.day, report.report_id)
        deadline = self._monotonic() + self.poll_timeout_seconds
        delays = self._poll_delays()
        while True:
            if report.status == "completed":
                self.log.info("%s is completed (%s records)", ctx.label, report.total_records)
                return report
            if report.status == "failed":
                raise DspReportFailed(
                    f"{ctx.label} failed on the API side: {report.error or 'no reason given'}. "
                    "The next run requests a new report.",
                    **ctx.kwargs(),
                )
            if report.status not in ACTIVE_STATUSES:
                self.log.warning("%s has unknown status %r; polling on", ctx.label, report.status)
            remaining = deadline - self._monotonic()
            if remaining <= 0:
                raise DspReportTimeout(
                    f"{ctx.label} is still {report.status} after {self.poll_timeout_seconds:.0f} "
                    f"s (DSP_API_POLL_TIMEOUT_SECONDS). Its id {report.report_id} is remembered, "
                    "so the next run resumes it instead of requesting a new one.",
                    **ctx.kwargs(),
                )
            self._sleep(min(next(delays), remaining))
            report = self._get_report(ctx)
            self.log.debug("%s is %s", ctx.label, report.status)

    def download(self, report: ReportStatus, dest: Path) -> Path:
        """Stream the completed report's ZIP to `dest` (atomically); returns `dest`.

        Sends no Authorization header (the URL is pre-signed). A 403 from storage means the URL
        expired: the report is polled again for a fresh one, at most twice. 5xx and connection
        errors are retried with backoff.
        """
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        ctx = _Ctx(report.dsp_id, report.day, report.report_id)
        refreshes = failures = 0
        while True:
            if report.download_url:
                attempt = self._download_once(report.download_url, dest)
            else:
                attempt = _DownloadAttempt("expired", "the API gave no download_url")
            if attempt.outcome == "ok":
                self.log.info(
                    "downloaded %s to %s (%d bytes)", ctx.label, dest, dest.stat().st_size
                )
                return dest
            where = redact_url(report.download_url) if report.download_url else "storage"
            if attempt.outcome == "fatal":
                raise DspDownloadError(
                    f"could not download {ctx.label} from {where}: {attempt.detail}",
                    retryable=False,
                    **ctx.kwargs(),
                )
            if attempt.outcome == "expired":
                if refreshes >= _MAX_URL_REFRESHES:
                    raise DspDownloadError(
                        f"could not download {ctx.label} from {where}: {attempt.detail}, even "
                        f"after asking the API for a fresh URL {refreshes} times",
                        **ctx.kwargs(),
                    )
                refreshes += 1
                self.log.info(
                    "download URL of %s was refused (%s); asking the API for a fresh one",
                    ctx.label,
                    attempt.detail,
                )
                report = self._get_report(ctx)
                if report.status != "completed":
                    raise DspDownloadError(
                        f"could not download {ctx.label}: refreshing its URL found it "
                        f"{report.status}, not completed",
                        **ctx.kwargs(),
                    )
                continue
            failures += 1
            if failures >= self.max_attempts:
                raise DspDownloadError(
                    f"could not download {ctx.label} from {where} after {failures} attempts: "
                    f"{attempt.detail}",
                    **ctx.kwargs(),
                )
            wait = self._retry_wait(failures - 1, attempt.retry_after)
            self.log.warning(
                "downloading %s failed (%s); retrying in %.1f s", ctx.label, attempt.detail, wait
            )
            self._sleep(wait)

    def _download_once(self, url: str, dest: Path) -> _DownloadAttempt:
        """One streamed GET of a pre-signed URL into a temp file beside `dest`."""
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        tmp = Path(tmp_name)
        status: int | None = None
        retry_after: float | None = None
        problem: str | None = None
        try:
            with os.fdopen(fd, "wb") as handle:
                try:
                    with self._session.get(
                        url,
                        stream=True,
                        auth=_NoAuth(),
                        headers={"User-Agent": _USER_AGENT},
                        timeout=self.request_timeout,
                    ) as response:
                        status = response.status_code
                        retry_after = _retry_after_seconds(response)
                        if status == 200:
                            for chunk in response.iter_content(chunk_size=_DOWNLOAD_CHUNK):
                                handle.write(chunk)
                except requests.RequestException as exc:
                    # The exception's text holds the signed URL: keep only a redacted copy.
                    problem = f"{type(exc).__name__}: {_redact_text(str(exc), self._token)}"
                if problem is None and status == 200:
                    handle.flush()
                    os.fsync(handle.fileno())
            if problem is None and status == 200:
                os.replace(tmp, dest)
                return _DownloadAttempt("ok")
        finally:
            tmp.unlink(missing_ok=True)
        if problem is not None:
            return _DownloadAttempt("retry", problem)
        detail = f"storage answered HTTP {status}"
        if status == 403:
            return _DownloadAttempt("expired", detail)
        if status == 429 or (status is not None and status >= 500):
            return _DownloadAttempt("retry", detail, retry_after)
        return _DownloadAttempt("fatal", detail)

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
            ctx = _Ctx(dsp_id, day, report_id)
            try:
                report = self._get_report(ctx)
            except DspReportNotFound:
                self.log.warning("the API no longer knows %s; requesting a new one", ctx.label)
                report = None
            if report is not None and (report.dsp_id, report.day) != (dsp_id, day):
                self.log.warning(
                    "remembered %s is really %s; requesting a new one",
                    ctx.label,
                    _report_label(report.dsp_id, report.day, report.report_id),
                )
                report = None
            elif report is not None and report.status == "failed":
                self.log.warning(
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
        label = _report_label(report.dsp_id, report.day, report.report_id)
        try:
            validate(path)
            return
        except Exception as exc:
            self.log.warning("%s failed validation (%s); downloading it again", label, exc)
        try:
            # Completed reports no longer count as active, so no slot is needed.
            self.download(report, path)
            validate(path)
        except Exception:
            path.unlink(missing_ok=True)
            self.pending.forget(report.dsp_id, report.day)
            self.log.error("%s failed validation twice; deleted %s", label, path)
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
                self.log.error("%s: %s", _report_label(dsp_id, day, None), error)
            fetched = None if error is not None else future.result()
            outcomes.append(FetchOutcome(dsp_id, day, fetched, error))
        return outcomes

    # --- plumbing ------------------------------------------------------------------------

    def _poll_delays(self) -> Iterator[float]:
        return itertools.chain(self.poll_delays, itertools.repeat(self.poll_delays[-1]))

    def _backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff for the `attempt`-th retry (0-based)."""
        with self._rng_lock:
            return self._rng.uniform(0, min(self.backoff_cap, self.backoff_base * 2**attempt))

    def _retry_wait(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap)
        return self._backoff(attempt)

    def _api(self, method: str, path: str, ctx: _Ctx, json_body: Any = None) -> requests.Response:
        """One API call, retrying 429, 5xx and connection errors; returns any other response."""
        url = self.base_url + path
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/json",
            "User-Agent": _USER_AGENT,
        }
        if json_body is not None:
            headers["Content-Type"] = "application/json"
        data = json.dumps(json_body) if json_body is not None else None
        for attempt in range(self.max_attempts):
            retry_after = None
            try:
                response = self._session.request(
                    method, url, headers=headers, data=data, timeout=self.request_timeout
                )
                problem = None
            except requests.RequestException as exc:
                response = None
                problem = f"{type(exc).__name__}: {_redact_text(str(exc), self._token)}"
            if response is not None:
                if response.status_code == 429 or response.status_code >= 500:
                    problem = f"HTTP {response.status_code}"
                    retry_after = _retry_after_seconds(response)
                    response.close()
                else:
                    return response
            if attempt + 1 >= self.max_attempts:
                break
            wait = self._retry_wait(attempt, retry_after)
            self.log.warning(
                "%s %s for %s failed (%s); retry %d of %d in %.1f s",
                method,
                redact_url(url),
                ctx.label,
                problem,
                attempt + 1,
                self.max_attempts - 1,
                wait,
            )
            self._sleep(wait)
        raise DspApiUnavailable(
            f"the analytics-reports API is unavailable: {method} {redact_url(url)} for "
            f"{ctx.label} failed {self.max_attempts} times (last: {problem}). Try again later.",
            **ctx.kwargs(),
        )

    def _raise_for_status(self, response: requests.Response, method: str, ctx: _Ctx) -> None:
        status = response.status_code
        endpoint = f"{method} {redact_url(response.url or self.base_url)}"
        reason = _redact_text(str(_json_field(response, "error") or response.reason), self._token)
        if status in (401, 403):
            raise DspAuthError(
                f"the analytics-reports API refused the token (HTTP {status}: {reason}) on "
                f"{endpoint} for {ctx.label}: DSP_API_TOKEN is wrong, expired or lacks access "
                "to analytics reports. Set a valid token and run again.",
                **ctx.kwargs(),
            )
        if status == 404:
            raise DspReportNotFound(
                f"the API does not know {ctx.label} (HTTP 404 on {endpoint})", **ctx.kwargs()
            )
        if status == 422:
            listed = _json_field(response, "supported_dsp_ids")
            ids = listed if isinstance(listed, list) and listed else list(SUPPORTED_DSP_IDS)
            supported = ", ".join(_dsp_label(i) if isinstance(i, int) else repr(i) for i in ids)
            raise DspUnsupportedDsp(
                f"the API does not export {_dsp_label(ctx.dsp_id)} (HTTP 422: {reason}); it "
                f"supports {supported}. Remove it from MUSIC_ANALYTICS_DSPS.",
                **ctx.kwargs(),
            )
        raise DspApiError(
            f"{endpoint} for {ctx.label} answered HTTP {status}: {reason}", **ctx.kwargs()
        )

    def _parse(
        self, response: requests.Response, method: str, path: str, ctx: _Ctx
    ) -> ReportStatus:
        try:
            payload = response.json()
            if not isinstance(payload, Mapping) or "data" not in payload:
                raise ValueError("the body has no `data` object")
            return ReportStatus.from_api(payload["data"], dsp_id=ctx.dsp_id, day=ctx.day)
        except ValueError as exc:  # JSONDecodeError is a ValueError
            problem = _redact_text(str(exc), self._token)
        raise DspApiError(
            f"{method} {redact_url(self.base_url + path)} for {ctx.label} answered HTTP "
            f"{response.status_code} with a body that is not a report: {problem}",
            **ctx.kwargs(),
        )


def _json_field(response: requests.Response, name: str) -> Any:
    """A top-level field of a JSON error body, or None when the body is not such JSON."""
    try:
        payload = response.json()
    except ValueError:
        return None
    return payload.get(name) if isinstance(payload, Mapping) else None


def _retry_after_seconds(response: requests.Response) -> float | None:
    """Retry-After in seconds, or None when absent or not a number of seconds."""
    raw = response.headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None
