"""Spotify Web API client for a listener's own plays: recently played, track/artist metadata.

Built on spotipy (`spotipy.Spotify` with a `SpotifyOAuth` that refreshes the access token from a
stored refresh token), with our own failure policy instead of spotipy's urllib3 retries, which
would sleep through a Retry-After of an hour:

- 429 with Retry-After up to `retry_after_cap` is slept and retried; a longer one raises
  `SpotifyRateLimited` at once, saying when to try again; a `QUOTA_EXCEEDED` body raises
  `SpotifyQuotaExceeded`.
- 5xx and connection errors are retried with jittered backoff, then raise `SpotifyUnavailable`.
- `invalid_grant` (refresh token revoked, or expired: Spotify expires them six months after
  authorization) raises `SpotifyAuthError`, telling the user to run `music-analytics spotify-auth`.
- A 401 (access token expired early) refreshes the token once and retries.

Spotify removed the batch endpoints `GET /tracks` and `GET /artists` for development-mode apps in
February 2026, and audio features for new apps in November 2024: batch calls fall back to one id
at a time on 403/404, and `audio_features` returns None on 403.

Secrets (client secret, refresh and access tokens, authorization codes) never reach a log line or
an exception message: spotipy logs request headers and token-request bodies at DEBUG, so this
module installs a redacting filter on spotipy's and urllib3's loggers.
"""

from __future__ import annotations

import logging
import random
import re
import secrets
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests
import spotipy
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.exceptions import SpotifyException, SpotifyOauthError
from spotipy.oauth2 import SpotifyOAuth

from music_analytics.lib.core.log_redaction import install_redaction

DEFAULT_API_BASE_URL = "https://api.spotify.com/v1/"
DEFAULT_ACCOUNTS_BASE_URL = "https://accounts.spotify.com"
DEFAULT_SCOPES: tuple[str, ...] = ("user-read-recently-played",)
RECENTLY_PLAYED_LIMIT = 50  # the API's maximum page, and how far back it remembers
BATCH_SIZE = 50  # ids per GET /tracks or /artists
AUDIO_FEATURES_BATCH_SIZE = 100
AUTH_COMMAND = "music-analytics spotify-auth"
_PLACEHOLDER_REDIRECT = "http://127.0.0.1:8888/callback"  # spotipy insists on one; never used

logger = logging.getLogger(__name__)
T = TypeVar("T")


# --- secrets -------------------------------------------------------------------------------

_SECRET_PATTERNS = (
    (re.compile(r"\b(Basic|Bearer)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [redacted]"),
    (
        re.compile(
            r"""(['"]?(?:refresh_token|access_token|client_secret|code)['"]?\s*[:=]\s*['"]?)"""
            r"""[^'"\s,&}]+"""
        ),
        r"\1[redacted]",
    ),
)
_known_secrets: set[str] = set()
_known_secrets_lock = threading.Lock()


def _remember_secret(*values: str | None) -> None:
    with _known_secrets_lock:
        _known_secrets.update(v for v in values if v and len(v) >= 4)


def redact(text: str) -> str:
    """Text without Authorization header values, token-like fields or any secret seen here."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    with _known_secrets_lock:
        known = sorted(_known_secrets, key=len, reverse=True)
    for secret in known:
        text = text.replace(secret, "[redacted]")
    return text


_REDACTED_LOGGERS = ("spotipy.client", "spotipy.oauth2", "urllib3.connectionpool", __name__)


def install_log_redaction() -> None:
    """Redact secrets from spotipy's (it logs headers), urllib3's and this module's records."""
    install_redaction(_REDACTED_LOGGERS, redact)


install_log_redaction()


# --- errors --------------------------------------------------------------------------------


class SpotifyApiError(Exception):
    """A Spotify call failed. `retryable`: whether running again later may succeed."""

    default_retryable = False

    def __init__(
        self,
        message: str,
        *,
        retryable: bool | None = None,
        retry_after_seconds: float | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(redact(message))
        self.retryable = self.default_retryable if retryable is None else retryable
        self.retry_after_seconds = retry_after_seconds
        self.http_status = http_status


class SpotifyAuthError(SpotifyApiError):
    """The accounts service refused our credentials (revoked/expired refresh token, bad client)."""


class SpotifyRateLimited(SpotifyApiError):
    """429 with a Retry-After beyond the cap (or too many 429s): try again after the wait."""

    default_retryable = True


class SpotifyQuotaExceeded(SpotifyApiError):
    """429 with QUOTA_EXCEEDED: the app's quota is used up; retrying soon will not help."""


class SpotifyUnavailable(SpotifyApiError):
    """5xx or connection errors went on past the retries; try again later."""

    default_retryable = True


# --- values --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecentPlay:
    """One item of GET /me/player/recently-played; `raw` is the item as the API sent it."""

    played_at: datetime  # UTC
    track_id: str
    track_name: str | None
    duration_ms: int | None
    artist_ids: tuple[str, ...]
    artist_names: tuple[str, ...]
    album_id: str | None
    album_name: str | None
    album_release_date: str | None
    isrc: str | None
    context_type: str | None
    context_uri: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def played_at_ms(self) -> int:
        """played_at as Unix milliseconds, the unit of the API's cursors."""
        return _to_ms(self.played_at)

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> RecentPlay:
        """Parse one item; raises ValueError naming the missing field."""
        track = item.get("track") or {}
        track_id = track.get("id")
        if not track_id:
            raise ValueError("item has no track.id (a local file?)")
        played_at = item.get("played_at")
        if not isinstance(played_at, str):
            raise ValueError(f"track {track_id}: played_at is {played_at!r}")
        album = track.get("album") or {}
        artists = [a for a in track.get("artists") or [] if isinstance(a, Mapping)]
        context = item.get("context") or {}
        return cls(
            played_at=parse_played_at(played_at),
            track_id=track_id,
            track_name=track.get("name"),
            duration_ms=track.get("duration_ms"),
            artist_ids=tuple(a.get("id") or "" for a in artists),
            artist_names=tuple(a.get("name") or "" for a in artists),
            album_id=album.get("id"),
            album_name=album.get("name"),
            album_release_date=album.get("release_date"),
            isrc=(track.get("external_ids") or {}).get("isrc"),
            context_type=context.get("type"),
            context_uri=context.get("uri"),
            raw=item,
        )


@dataclass(frozen=True)
class RecentPage:
    """One poll's plays (newest first), the cursor to keep, and whether the page was full.

    A full page (50 plays, all newer than the cursor) means older plays may have fallen out of the
    API's 50-play window since the last poll: the caller flags a possible gap.
    """

    plays: list[RecentPlay]
    cursor_after_ms: int | None
    full_page: bool


def parse_played_at(value: str) -> datetime:
    """`2026-11-23T12:00:00.123Z` (milliseconds optional) as an aware UTC datetime."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _to_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


# --- auth ----------------------------------------------------------------------------------


class _RefreshTokenAuth(SpotifyOAuth):
    """spotipy's SpotifyOAuth, fed a stored refresh token: no browser, no cache file, and the
    token URL under a configurable accounts base URL."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        accounts_base_url: str,
        session: requests.Session,
        timeout: float,
    ) -> None:
        super().__init__(
            client_id=client_id,
            client_secret=client_secret,
            redirect_uri=_PLACEHOLDER_REDIRECT,
            scope=None,
            requests_session=session,
            requests_timeout=timeout,
            open_browser=False,
            cache_handler=MemoryCacheHandler(),
        )
        self.OAUTH_TOKEN_URL = _token_url(accounts_base_url)
        self.OAUTH_AUTHORIZE_URL = _authorize_url(accounts_base_url)
        self._refresh_token = refresh_token
        self._lock = threading.Lock()
        self.refreshes = 0

    def get_access_token(self, code=None, as_dict=False, check_cache=True):  # noqa: ANN001
        """The cached access token, refreshed from the refresh token when (nearly) expired."""
        with self._lock:
            info = self.cache_handler.get_cached_token()
            if not info or self.is_token_expired(info):
                info = self.refresh_access_token(self._refresh_token)
                self.refreshes += 1
                _remember_secret(info.get("access_token"))
                new_refresh = info.get("refresh_token")
                if new_refresh and new_refresh != self._refresh_token:
                    _remember_secret(new_refresh)  # Spotify may rotate it
                    self._refresh_token = new_refresh
            return info if as_dict else info["access_token"]

    def invalidate(self) -> None:
        """Forget the access token (the API said it expired): the next call refreshes."""
        with self._lock:
            self.cache_handler.save_token_to_cache(None)

    def _handle_oauth_error(self, http_error: requests.HTTPError) -> None:
        # spotipy's SpotifyOauthError drops the status; keep it for the retry policy.
        try:
            super()._handle_oauth_error(http_error)
        except SpotifyOauthError as exc:
            exc.http_status = http_error.response.status_code
            raise


def _token_url(accounts_base_url: str) -> str:
    return accounts_base_url.rstrip("/") + "/api/token"


def _authorize_url(accounts_base_url: str) -> str:
    return accounts_base_url.rstrip("/") + "/authorize"


def _auth_error(exc: SpotifyOauthError, doing: str) -> SpotifyApiError:
    """Our error for a failed token request (refresh or code exchange)."""
    status = getattr(exc, "http_status", None)
    error = (exc.error or "").strip() if isinstance(exc.error, str) else ""
    description = exc.error_description or ""
    if error == "invalid_grant":
        return SpotifyAuthError(
            f"Spotify refused the refresh token while {doing} (invalid_grant: "
            f"{description or 'no description'}): it was revoked, or it expired (Spotify expires "
            f"refresh tokens six months after authorization). Run `{AUTH_COMMAND}` again and "
            "store the new SPOTIFY_REFRESH_TOKEN.",
            http_status=status,
        )
    if error in ("invalid_client", "unauthorized_client") or status == 401:
        return SpotifyAuthError(
            f"Spotify refused the app credentials while {doing} ({error or status}: "
            f"{description or 'no description'}): check SPOTIFY_CLIENT_ID and "
            "SPOTIFY_CLIENT_SECRET against the app's settings on developer.spotify.com.",
            http_status=status,
        )
    if status is not None and (status >= 500 or status == 429):
        return SpotifyUnavailable(
            f"the Spotify accounts service answered HTTP {status} while {doing}",
            http_status=status,
        )
    return SpotifyApiError(
        f"Spotify's accounts service failed while {doing}: HTTP {status}, "
        f"{error[:200] or 'no error code'}: {description or 'no description'}",
        http_status=status,
    )


# --- the client ----------------------------------------------------------------------------


class SpotifyPlaysClient:
    """Recently played tracks and their metadata for one authorized Spotify account."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        *,
        api_base_url: str = DEFAULT_API_BASE_URL,
        accounts_base_url: str = DEFAULT_ACCOUNTS_BASE_URL,
        retry_after_cap: float = 60.0,
        max_attempts: int = 4,
        sleep: Callable[[float], object] = time.sleep,
        log: logging.Logger | logging.LoggerAdapter | None = None,
        requests_timeout: float = 30.0,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        for name, value in (
            ("SPOTIFY_CLIENT_ID", client_id),
            ("SPOTIFY_CLIENT_SECRET", client_secret),
            ("SPOTIFY_REFRESH_TOKEN", refresh_token),
        ):
            if not (value or "").strip():
                hint = f" (run `{AUTH_COMMAND}`)" if name == "SPOTIFY_REFRESH_TOKEN" else ""
                raise ValueError(f"{name} is empty: set it{hint}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts={max_attempts} must be at least 1")
        if retry_after_cap < 0:
            raise ValueError(f"retry_after_cap={retry_after_cap} must not be negative")
        _remember_secret(client_secret.strip(), refresh_token.strip())
        self.api_base_url = api_base_url.rstrip("/") + "/"
        self.accounts_base_url = accounts_base_url.rstrip("/")
        self.retry_after_cap = float(retry_after_cap)
        self.max_attempts = max_attempts
        self._sleep = sleep
        self.log = log or logger
        self.backoff_base = float(backoff_base)
        self.backoff_cap = float(backoff_cap)
        self._rng = rng or random.Random()
        # A plain session: no urllib3 Retry, so a 429 or 5xx reaches us with its headers.
        # (spotipy's own session with retries=0 turns them into a bare "Max Retries" 429.)
        self._session = requests.Session()
        self._auth = _RefreshTokenAuth(
            client_id.strip(),
            client_secret.strip(),
            refresh_token.strip(),
            self.accounts_base_url,
            self._session,
            requests_timeout,
        )
        self._sp = spotipy.Spotify(
            auth_manager=self._auth,
            requests_session=self._session,
            retries=0,
            status_retries=0,
            requests_timeout=requests_timeout,
        )
        self._sp.prefix = self.api_base_url
        self._batch_unavailable: set[str] = set()  # "tracks"/"artists" once batch GET failed

    def __repr__(self) -> str:
        return f"SpotifyPlaysClient(api_base_url={self.api_base_url!r})"

    @property
    def token_refreshes(self) -> int:
        """How many times this client refreshed its access token."""
        return self._auth.refreshes

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()

    def __enter__(self) -> SpotifyPlaysClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- endpoints -----------------------------------------------------------------------

    def recently_played(self, after_ms: int | None) -> RecentPage:
        """One request for the plays after `after_ms` (exclusive; None: the newest 50).

        The cursor to store is `cursors.after` of the answer, else the newest play's time, else
        `after_ms` unchanged (nothing new). Items without a track id (local files) are skipped.
        """
        label = "GET me/player/recently-played" + (f" after {after_ms}" if after_ms else "")
        result = self._call(
            label,
            lambda: self._sp.current_user_recently_played(
                limit=RECENTLY_PLAYED_LIMIT, after=after_ms
            ),
        )
        items = list((result or {}).get("items") or [])
        plays: list[RecentPlay] = []
        for item in items:
            try:
                plays.append(RecentPlay.from_item(item))
            except ValueError as exc:
                self.log.info("skipping a recently-played item: %s", exc)
        cursor = _cursor_after((result or {}).get("cursors"))
        if cursor is None and plays:
            cursor = max(p.played_at_ms for p in plays)
        if cursor is None:
            cursor = after_ms
        full_page = len(items) >= RECENTLY_PLAYED_LIMIT
        if full_page:
            self.log.warning(
                "recently-played returned a full page of %d plays after %s: older plays may "
                "have been missed",
                len(items),
                after_ms,
            )
        return RecentPage(plays=plays, cursor_after_ms=cursor, full_page=full_page)

    def tracks(self, ids: Iterable[str]) -> list[dict[str, Any]]:
        """Track objects for `ids` (unknown ids are left out), in batches while they work."""
        return self._catalog("tracks", ids, self._sp.tracks, self._sp.track)

    def artists(self, ids: Iterable[str]) -> list[dict[str, Any]]:
        """Artist objects for `ids` (unknown ids are left out), in batches while they work."""
        return self._catalog("artists", ids, self._sp.artists, self._sp.artist)

    def audio_features(self, ids: Iterable[str]) -> dict[str, dict[str, Any]] | None:
        """Audio features by track id, or None when Spotify refuses them (403 for new apps)."""
        wanted = _unique(ids)
        features: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), AUDIO_FEATURES_BATCH_SIZE):
            chunk = wanted[start : start + AUDIO_FEATURES_BATCH_SIZE]
            try:
                result = self._call(
                    f"GET audio-features for {len(chunk)} tracks",
                    lambda chunk=chunk: _quietly(self._sp.audio_features, chunk),
                )
            except SpotifyApiError as exc:
                if exc.http_status == 403:
                    self.log.info(
                        "audio features are unavailable to this Spotify app (HTTP 403; Spotify "
                        "removed them for new apps in November 2024); recording them as missing"
                    )
                    return None
                raise
            for item in result or []:
                if isinstance(item, Mapping) and item.get("id"):
                    features[item["id"]] = dict(item)
        return features

    # --- internals -----------------------------------------------------------------------

    def _catalog(
        self,
        kind: str,
        ids: Iterable[str],
        batch: Callable[[list[str]], Any],
        single: Callable[[str], Any],
    ) -> list[dict[str, Any]]:
        wanted = _unique(ids)
        found: list[dict[str, Any]] = []
        start = 0
        while kind not in self._batch_unavailable and start < len(wanted):
            chunk = wanted[start : start + BATCH_SIZE]
            try:
                result = self._call(
                    f"GET {kind} for {len(chunk)} ids", lambda chunk=chunk: batch(chunk)
                )
            except SpotifyApiError as exc:
                if exc.http_status not in (403, 404):
                    raise
                self._batch_unavailable.add(kind)
                self.log.info(
                    "the batch endpoint GET /%s answered HTTP %s (Spotify removed it for "
                    "development-mode apps in February 2026); fetching %s one at a time",
                    kind,
                    exc.http_status,
                    kind,
                )
                break
            found.extend(dict(item) for item in (result or {}).get(kind) or [] if item)
            start += len(chunk)
        for item_id in wanted[start:]:
            try:
                item = self._call(f"GET {kind}/{item_id}", lambda i=item_id: single(i))
            except SpotifyApiError as exc:
                if exc.http_status in (400, 404):
                    self.log.warning("Spotify does not know %s id %s: %s", kind, item_id, exc)
                    continue
                raise
            if item:
                found.append(dict(item))
        return found

    def _call(self, label: str, fn: Callable[[], T]) -> T:
        """Run one spotipy call under our 401/429/5xx policy."""
        failures = 0
        refreshed = False
        while True:
            try:
                return fn()
            except SpotifyOauthError as exc:
                error = _auth_error(exc, f"refreshing the access token for {label}")
                if not isinstance(error, SpotifyUnavailable):
                    raise error from None
                detail, retry_after = str(error), None
            except SpotifyException as exc:
                status = exc.http_status
                if status == 401 and not refreshed:
                    refreshed = True
                    self.log.info("%s: access token expired (HTTP 401); refreshing it", label)
                    self._auth.invalidate()
                    continue
                if status == 429:
                    self._check_rate_limit(label, exc, failures)
                    retry_after = _retry_after(exc.headers)
                    detail = f"HTTP 429, Retry-After {retry_after}"
                elif isinstance(status, int) and status >= 500:
                    detail, retry_after = f"HTTP {status}", None
                else:
                    raise SpotifyApiError(
                        f"{label} failed: HTTP {status}: {_spotify_message(exc)}",
                        http_status=status,
                    ) from None
            except requests.RequestException as exc:
                detail, retry_after = f"{type(exc).__name__}: {redact(str(exc))}", None
            failures += 1
            if failures >= self.max_attempts:
                raise SpotifyUnavailable(
                    f"{label} failed {failures} times, last with {detail}; try again later"
                ) from None
            wait = retry_after if retry_after is not None else self._backoff(failures)
            self.log.warning("%s: %s; retrying in %.1f s", label, detail, wait)
            self._sleep(wait)

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


def _quietly(fn: Callable[..., T], *args: Any) -> T:
    """Call without spotipy's DeprecationWarning (audio features are known to be going)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return fn(*args)


def _unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(i for i in ids if i))


def _cursor_after(cursors: Any) -> int | None:
    if not isinstance(cursors, Mapping):
        return None
    value = cursors.get("after")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


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


# --- the one-time authorization (for `music-analytics spotify-auth`) ------------------------


def new_state() -> str:
    """A random `state` for one authorization attempt."""
    return secrets.token_urlsafe(16)


def authorization_url(
    client_id: str,
    redirect_uri: str,
    scopes: Iterable[str] = DEFAULT_SCOPES,
    state: str | None = None,
    accounts_base_url: str = DEFAULT_ACCOUNTS_BASE_URL,
) -> str:
    """The URL the user opens to authorize the app (authorization-code flow)."""
    if not (client_id or "").strip():
        raise ValueError("SPOTIFY_CLIENT_ID is empty: copy it from the app's dashboard")
    query = {
        "client_id": client_id.strip(),
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": " ".join(scopes),
    }
    if state is not None:
        query["state"] = state
    return f"{_authorize_url(accounts_base_url)}?{urlencode(query)}"


def exchange_code(
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    redirected_url: str,
    *,
    state: str | None = None,
    accounts_base_url: str = DEFAULT_ACCOUNTS_BASE_URL,
    requests_timeout: float = 30.0,
) -> str:
    """The refresh token for the URL the browser was redirected to after authorizing.

    Checks that the URL carries a `code` (and no `error`) and, when `state` is given, the same
    state; raises ValueError naming what was wrong, or SpotifyApiError if Spotify refuses.
    """
    pasted = (redirected_url or "").strip()
    if not pasted:
        raise ValueError("the redirected URL is empty: paste the whole URL from the address bar")
    parts = urlsplit(pasted)
    params = dict(parse_qsl(parts.query))
    if "error" in params:
        reason = params["error"]
        hint = " (you declined the authorization)" if reason == "access_denied" else ""
        raise ValueError(f"Spotify redirected with error={reason!r}{hint}; run it again")
    expected = urlsplit(redirect_uri)
    if (parts.scheme, parts.netloc, parts.path) != (
        expected.scheme,
        expected.netloc,
        expected.path,
    ):
        raise ValueError(
            f"the pasted URL does not start with the redirect URI {redirect_uri}: paste the URL "
            "the browser was sent to after you clicked Agree"
        )
    code = params.get("code")
    if not code:
        raise ValueError("the pasted URL has no `code` parameter: paste the whole URL")
    if state is not None and params.get("state") != state:
        raise ValueError(
            "the pasted URL's `state` does not match this authorization attempt (a stale or "
            "foreign URL): open the printed URL again and paste its redirect"
        )
    _remember_secret(client_secret, code)
    session = requests.Session()
    try:
        oauth = SpotifyOAuth(
            client_id=client_id.strip(),
            client_secret=client_secret.strip(),
            redirect_uri=redirect_uri,
            requests_session=session,
            requests_timeout=requests_timeout,
            open_browser=False,
            cache_handler=MemoryCacheHandler(),
        )
        oauth.OAUTH_TOKEN_URL = _token_url(accounts_base_url)
        try:
            access = oauth.get_access_token(code=code, as_dict=False, check_cache=False)
        except SpotifyOauthError as exc:
            if exc.error == "invalid_grant":
                raise SpotifyAuthError(
                    "Spotify refused the authorization code (invalid_grant: "
                    f"{exc.error_description or 'no description'}): codes work once and "
                    f"expire within minutes, and the redirect URI must match. Run "
                    f"`{AUTH_COMMAND}` again."
                ) from None
            raise _auth_error(exc, "exchanging the authorization code") from None
        except requests.RequestException as exc:
            raise SpotifyUnavailable(
                f"could not reach Spotify's accounts service: {type(exc).__name__}: "
                f"{redact(str(exc))}"
            ) from None
        _remember_secret(access)
        info = oauth.cache_handler.get_cached_token() or {}
    finally:
        session.close()
    refresh = info.get("refresh_token")
    if not refresh:
        raise SpotifyApiError("Spotify's token answer has no refresh_token")
    _remember_secret(refresh)
    return refresh
