"""The Spotify client's failure policy, instead of spotipy's urllib3 retries, which would sleep
through a Retry-After of an hour:

- 429 with Retry-After up to `retry_after_cap` is slept and retried; a longer one raises
  `SpotifyRateLimited` at once, saying when to try again; a `QUOTA_EXCEEDED` body raises
  `SpotifyQuotaExceeded`.
- 5xx and connection errors are retried with jittered backoff, then raise `SpotifyUnavailable`.
- `invalid_grant` (refresh token revoked, or expired: Spotify expires them six months after
  authorization) raises `SpotifyAuthError`, telling the user to run `music-analytics spotify-auth`.
- A 401 (access token expired early) refreshes the token once and retries.

What is handled (retried here, or a status the caller handles) is not logged as an error:
spotipy's own ERROR line for it is lowered to DEBUG (http_error_log.py), and a retry is INFO.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TypeVar

import requests
from spotipy.exceptions import SpotifyException, SpotifyOauthError

from music_analytics.lib.spotify.errors import (
    SpotifyApiError,
    SpotifyQuotaExceeded,
    SpotifyRateLimited,
    SpotifyUnavailable,
    oauth_error,
)
from music_analytics.lib.spotify.http_error_log import holding_http_errors, release_http_errors
from music_analytics.lib.spotify.redaction import redact

T = TypeVar("T")


@dataclass
class _Attempts:
    """One call's failures so far, and whether its token was refreshed already."""

    failures: int = 0
    refreshed: bool = False


class SpotifyCallPolicy:
    """Runs spotipy calls: one token refresh on 401, 429 and 5xx retried with backoff."""

    def __init__(
        self,
        *,
        refresh_token: Callable[[], None],
        log: logging.Logger | logging.LoggerAdapter,
        retry_after_cap: float = 60.0,
        max_attempts: int = 4,
        sleep: Callable[[float], object] = time.sleep,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self.refresh_token = refresh_token
        self.log = log
        self.retry_after_cap = float(retry_after_cap)
        self.max_attempts = max_attempts
        self._sleep = sleep
        self.backoff_base = float(backoff_base)
        self.backoff_cap = float(backoff_cap)
        self._rng = rng or random.Random()

    def run(self, label: str, fn: Callable[[], T], *, handled_statuses: Collection[int] = ()) -> T:
        """Run one spotipy call under our 401/429/5xx policy.

        `handled_statuses`: the HTTP statuses the caller handles when they come out as
        SpotifyApiError (a fallback, a known refusal); spotipy's ERROR line for them, as for
        every failure retried here, is logged at DEBUG (http_error_log.py).
        """
        attempts = _Attempts()
        while True:
            held: list[logging.LogRecord] = []
            try:
                with holding_http_errors(held):
                    return fn()
            except Exception as exc:  # judged below: retried, or raised as our error
                failure = exc
            try:
                wait = self._after_failure(label, failure, attempts)
            except SpotifyApiError as error:
                release_http_errors(held, handled=error.http_status in handled_statuses)
                raise
            except BaseException:
                release_http_errors(held, handled=False)
                raise
            release_http_errors(held, handled=True)
            if wait:
                self._sleep(wait)

    def _after_failure(self, label: str, exc: Exception, attempts: _Attempts) -> float:
        """The wait before retrying after `exc` (0: at once), or raise the error to report."""
        if isinstance(exc, SpotifyOauthError):
            error = oauth_error(exc, f"refreshing the access token for {label}")
            if not isinstance(error, SpotifyUnavailable):
                raise error from None
            detail, retry_after = str(error), None
        elif isinstance(exc, SpotifyException):
            status = exc.http_status
            if status == 401 and not attempts.refreshed:
                attempts.refreshed = True
                self.log.info("%s: access token expired (HTTP 401); refreshing it", label)
                self.refresh_token()
                return 0.0
            if status == 429:
                self._check_rate_limit(label, exc, attempts.failures)
                retry_after = _retry_after(exc.headers)
                detail = f"HTTP 429, Retry-After {retry_after}"
            elif isinstance(status, int) and status >= 500:
                detail, retry_after = f"HTTP {status}", None
            else:
                raise SpotifyApiError(
                    f"{label} failed: HTTP {status}: {_spotify_message(exc)}",
                    http_status=status,
                ) from None
        elif isinstance(exc, requests.RequestException):
            detail, retry_after = f"{type(exc).__name__}: {redact(str(exc))}", None
        else:
            raise exc
        attempts.failures += 1
        if attempts.failures >= self.max_attempts:
            raise SpotifyUnavailable(
                f"{label} failed {attempts.failures} times, last with {detail}; try again later"
            ) from None
        wait = retry_after if retry_after is not None else self._backoff(attempts.failures)
        # Handled (the call is retried): INFO, not a warning; running out raises the error.
        self.log.info("%s: %s; retrying in %.1f s", label, detail, wait)
        return wait

    def _check_rate_limit(self, label: str, exc: SpotifyException, failures: int) -> None:
        """Raise for a 429 we should not wait out here (quota, long Retry-After, too many)."""
        retry_after = _retry_after(exc.headers)
        text = f"{exc.msg or ''} {exc.reason or ''}"
        if "QUOTA_EXCEEDED" in text.upper():
            raise SpotifyQuotaExceeded(
                f"{label}: Spotify says this app's request quota is exhausted (HTTP 429 "
                f"QUOTA_EXCEEDED){_when(retry_after)}. Retrying soon will not help; the next "
                "scheduled poll tries again. Nothing polled before this is lost.",
                retry_after_seconds=retry_after,
                http_status=429,
            )
        if retry_after is not None and retry_after > self.retry_after_cap:
            raise SpotifyRateLimited(
                f"{label}: Spotify rate-limited this app (HTTP 429) and asks to retry"
                f"{_when(retry_after)}, longer than the {self.retry_after_cap:.0f} s we wait "
                "inside a run. Nothing polled before this is lost.",
                retry_after_seconds=retry_after,
                http_status=429,
            )
        if failures + 1 >= self.max_attempts:
            raise SpotifyRateLimited(
                f"{label}: Spotify rate-limited this app (HTTP 429) {failures + 1} times in a "
                f"row; try again{_when(retry_after) or ' in a few minutes'}",
                retry_after_seconds=retry_after,
                http_status=429,
            )

    def _backoff(self, failures: int) -> float:
        delay = min(self.backoff_cap, self.backoff_base * 2 ** (failures - 1))
        return delay * self._rng.uniform(0.5, 1.0)


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Retry-After in seconds (delta-seconds or HTTP-date), or None if absent or unreadable."""
    raw = (headers or {}).get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _when(retry_after: float | None) -> str:
    """E.g. ` in 3600 s (at 14:05 UTC)`; empty without a Retry-After."""
    if retry_after is None:
        return ""
    at = datetime.now(UTC) + timedelta(seconds=retry_after)
    return f" in {retry_after:.0f} s (at {at:%H:%M} UTC)"


def _spotify_message(exc: SpotifyException) -> str:
    message = str(exc.msg or "").strip().replace("\n", " ")
    return message[:300] or "no message"
