"""One call to the DSP analytics-reports API: bearer auth, retries with backoff, error mapping."""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import requests
from requests.adapters import HTTPAdapter

from music_analytics.lib.dsp.api_errors import (
    DspApiError,
    DspApiUnavailable,
    DspAuthError,
    DspReportNotFound,
    DspUnsupportedDsp,
    ReportContext,
    dsp_label,
)
from music_analytics.lib.dsp.api_redaction import redact_text, redact_url
from music_analytics.lib.dsp.api_reports import ReportStatus
from music_analytics.lib.dsp.catalog import SUPPORTED_DSP_IDS

USER_AGENT = "music-analytics dsp_api_client"


class ReportsHttp:
    """The API's HTTP side, shared by the client's threads: the session, the token, retries.

    The token never leaves this object except in the Authorization header of API calls.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        session: requests.Session | None,
        pool_size: int,
        sleep: Callable[[float], object],
        max_attempts: int,
        retry_after_cap: float,
        request_timeout: tuple[float, float],
        backoff_base: float,
        backoff_cap: float,
        rng: random.Random | None,
        log: logging.Logger,
    ) -> None:
        self.base_url = base_url
        self._token = token
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_maxsize=pool_size)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        self.session = session
        self.sleep = sleep
        self.max_attempts = max_attempts
        self.retry_after_cap = float(retry_after_cap)
        self.request_timeout = request_timeout
        self.backoff_base = float(backoff_base)
        self.backoff_cap = float(backoff_cap)
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self.log = log

    def close(self) -> None:
        """Close the HTTP session if this object created it."""
        if self._owns_session:
            self.session.close()

    def redact(self, text: str) -> str:
        """`text` without query strings or the token, fit for a log line or an error."""
        return redact_text(text, self._token)

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff for the `attempt`-th retry (0-based)."""
        with self._rng_lock:
            return self._rng.uniform(0, min(self.backoff_cap, self.backoff_base * 2**attempt))

    def retry_wait(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before retry `attempt`: the server's Retry-After (capped), else backoff."""
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap)
        return self.backoff(attempt)

    def call(
        self, method: str, path: str, ctx: ReportContext, json_body: Any = None
    ) -> requests.Response:
        """One API call, retrying 429, 5xx and connection errors; returns any other response."""
        url = self.base_url + path
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if json_body is not None:
            headers["Content-Type"] = "application/json"
        data = json.dumps(json_body) if json_body is not None else None
        for attempt in range(self.max_attempts):
            retry_after = None
            try:
                response = self.session.request(
                    method, url, headers=headers, data=data, timeout=self.request_timeout
                )
                problem = None
            except requests.RequestException as exc:
                response = None
                problem = f"{type(exc).__name__}: {self.redact(str(exc))}"
            if response is not None:
                if response.status_code == 429 or response.status_code >= 500:
                    problem = f"HTTP {response.status_code}"
                    retry_after = retry_after_seconds(response)
                    response.close()
                else:
                    return response
            if attempt + 1 >= self.max_attempts:
                break
            wait = self.retry_wait(attempt, retry_after)
            self.log.debug(  # handled: retried, or DspApiUnavailable after the last attempt
                "%s %s for %s failed (%s); retry %d of %d in %.1f s",
                method,
                redact_url(url),
                ctx.label,
                problem,
                attempt + 1,
                self.max_attempts - 1,
                wait,
            )
            self.sleep(wait)
        raise DspApiUnavailable(
            f"the analytics-reports API is unavailable: {method} {redact_url(url)} for "
            f"{ctx.label} failed {self.max_attempts} times (last: {problem}). Try again later.",
            **ctx.kwargs(),
        )

    def raise_for_status(
        self, response: requests.Response, method: str, ctx: ReportContext
    ) -> NoReturn:
        """Raise the DspApiError that an unexpected status means, naming endpoint and report."""
        status = response.status_code
        endpoint = f"{method} {redact_url(response.url or self.base_url)}"
        reason = self.redact(str(json_field(response, "error") or response.reason))
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
            listed = json_field(response, "supported_dsp_ids")
            ids = listed if isinstance(listed, list) and listed else list(SUPPORTED_DSP_IDS)
            supported = ", ".join(dsp_label(i) if isinstance(i, int) else repr(i) for i in ids)
            raise DspUnsupportedDsp(
                f"the API does not export {dsp_label(ctx.dsp_id)} (HTTP 422: {reason}); it "
                f"supports {supported}. Remove it from MUSIC_ANALYTICS_DSPS.",
                **ctx.kwargs(),
            )
        raise DspApiError(
            f"{endpoint} for {ctx.label} answered HTTP {status}: {reason}", **ctx.kwargs()
        )

    def parse_report(
        self, response: requests.Response, method: str, path: str, ctx: ReportContext
    ) -> ReportStatus:
        """The report in a response's `data`; a DspApiError naming the endpoint if it has none."""
        try:
            payload = response.json()
            if not isinstance(payload, Mapping) or "data" not in payload:
                raise ValueError("the body has no `data` object")
            return ReportStatus.from_api(payload["data"], dsp_id=ctx.dsp_id, day=ctx.day)
        except ValueError as exc:  # JSONDecodeError is a ValueError
            problem = self.redact(str(exc))
        raise DspApiError(
            f"{method} {redact_url(self.base_url + path)} for {ctx.label} answered HTTP "
            f"{response.status_code} with a body that is not a report: {problem}",
            **ctx.kwargs(),
        )


def json_field(response: requests.Response, name: str) -> Any:
    """A top-level field of a JSON error body, or None when the body is not such JSON."""
    try:
        payload = response.json()
    except ValueError:
        return None
    return payload.get(name) if isinstance(payload, Mapping) else None


def retry_after_seconds(response: requests.Response) -> float | None:
    """Retry-After in seconds, or None when absent or not a number of seconds."""
    raw = response.headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None
