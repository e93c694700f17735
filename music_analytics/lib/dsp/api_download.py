"""Downloading a completed DSP report's ZIP from its pre-signed URL, refreshing expired URLs."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests
from requests.auth import AuthBase

from music_analytics.lib.dsp.api_errors import DspDownloadError, ReportContext
from music_analytics.lib.dsp.api_http import USER_AGENT, ReportsHttp, retry_after_seconds
from music_analytics.lib.dsp.api_redaction import redact_url
from music_analytics.lib.dsp.api_reports import ReportStatus

_DOWNLOAD_CHUNK = 1 << 20
_MAX_URL_REFRESHES = 2


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


def download_report(
    http: ReportsHttp,
    report: ReportStatus,
    dest: Path,
    refresh: Callable[[ReportContext], ReportStatus],
) -> Path:
    """Stream the completed report's ZIP to `dest` (atomically); returns `dest`.

    Sends no Authorization header (the URL is pre-signed). A 403 from storage means the URL
    expired: `refresh` polls the report again for a fresh one, at most twice. 5xx and
    connection errors are retried with backoff.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    ctx = ReportContext(report.dsp_id, report.day, report.report_id)
    refreshes = failures = 0
    while True:
        if report.download_url:
            attempt = _download_once(http, report.download_url, dest)
        else:
            attempt = _DownloadAttempt("expired", "the API gave no download_url")
        if attempt.outcome == "ok":
            http.log.info("downloaded %s to %s (%d bytes)", ctx.label, dest, dest.stat().st_size)
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
            http.log.info(
                "download URL of %s was refused (%s); asking the API for a fresh one",
                ctx.label,
                attempt.detail,
            )
            report = refresh(ctx)
            if report.status != "completed":
                raise DspDownloadError(
                    f"could not download {ctx.label}: refreshing its URL found it "
                    f"{report.status}, not completed",
                    **ctx.kwargs(),
                )
            continue
        failures += 1
        if failures >= http.max_attempts:
            raise DspDownloadError(
                f"could not download {ctx.label} from {where} after {failures} attempts: "
                f"{attempt.detail}",
                **ctx.kwargs(),
            )
        wait = http.retry_wait(failures - 1, attempt.retry_after)
        http.log.debug(  # handled: retried, or DspDownloadError after the last attempt
            "downloading %s failed (%s); retrying in %.1f s", ctx.label, attempt.detail, wait
        )
        http.sleep(wait)


def _download_once(http: ReportsHttp, url: str, dest: Path) -> _DownloadAttempt:
    """One streamed GET of a pre-signed URL into a temp file beside `dest`."""
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    status: int | None = None
    retry_after: float | None = None
    problem: str | None = None
    try:
        with os.fdopen(fd, "wb") as handle:
            try:
                with http.session.get(
                    url,
                    stream=True,
                    auth=_NoAuth(),
                    headers={"User-Agent": USER_AGENT},
                    timeout=http.request_timeout,
                ) as response:
                    status = response.status_code
                    retry_after = retry_after_seconds(response)
                    if status == 200:
                        for chunk in response.iter_content(chunk_size=_DOWNLOAD_CHUNK):
                            handle.write(chunk)
            except requests.RequestException as exc:
                # The exception's text holds the signed URL: keep only a redacted copy.
                problem = f"{type(exc).__name__}: {http.redact(str(exc))}"
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
