"""Spotify OAuth: the stored-refresh-token auth manager of the client, and the one-time
authorization-code flow of `music-analytics spotify-auth`."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.exceptions import SpotifyOauthError
from spotipy.oauth2 import SpotifyOAuth

from music_analytics.lib.spotify.errors import (
    AUTH_COMMAND,
    SpotifyApiError,
    SpotifyAuthError,
    SpotifyUnavailable,
    oauth_error,
)
from music_analytics.lib.spotify.redaction import redact, remember_secret

DEFAULT_ACCOUNTS_BASE_URL = "https://accounts.spotify.com"
DEFAULT_SCOPES: tuple[str, ...] = ("user-read-recently-played",)
_PLACEHOLDER_REDIRECT = "http://127.0.0.1:8888/callback"  # spotipy insists on one; never used


class RefreshTokenAuth(SpotifyOAuth):
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
        self.OAUTH_TOKEN_URL = token_url(accounts_base_url)
        self.OAUTH_AUTHORIZE_URL = authorize_url(accounts_base_url)
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
                remember_secret(info.get("access_token"))
                new_refresh = info.get("refresh_token")
                if new_refresh and new_refresh != self._refresh_token:
                    remember_secret(new_refresh)  # Spotify may rotate it
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


def token_url(accounts_base_url: str) -> str:
    """The accounts service's token endpoint."""
    return accounts_base_url.rstrip("/") + "/api/token"


def authorize_url(accounts_base_url: str) -> str:
    """The accounts service's authorization page."""
    return accounts_base_url.rstrip("/") + "/authorize"


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
    return f"{authorize_url(accounts_base_url)}?{urlencode(query)}"


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
    remember_secret(client_secret, code)
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
        oauth.OAUTH_TOKEN_URL = token_url(accounts_base_url)
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
            raise oauth_error(exc, "exchanging the authorization code") from None
        except requests.RequestException as exc:
            raise SpotifyUnavailable(
                f"could not reach Spotify's accounts service: {type(exc).__name__}: "
                f"{redact(str(exc))}"
            ) from None
        remember_secret(access)
        info = oauth.cache_handler.get_cached_token() or {}
    finally:
        session.close()
    refresh = info.get("refresh_token")
    if not refresh:
        raise SpotifyApiError("Spotify's token answer has no refresh_token")
    remember_secret(refresh)
    return refresh
