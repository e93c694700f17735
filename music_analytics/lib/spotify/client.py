"""Spotify Web API client for a listener's own plays: recently played, track/artist metadata.

Built on spotipy (`spotipy.Spotify` with an auth manager that refreshes the access token from a
stored refresh token, `oauth.RefreshTokenAuth`), with our own failure policy
(`call_policy.SpotifyCallPolicy`) instead of spotipy's urllib3 retries.

Spotify removed the batch endpoints `GET /tracks` and `GET /artists` for development-mode apps in
February 2026, and audio features for new apps in November 2024: batch calls fall back to one id
at a time on 403/404, and `audio_features` returns None on 403.

Secrets never reach a log line or an exception message (`redaction`).
"""

from __future__ import annotations

import logging
import random
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import requests
import spotipy

from music_analytics.lib.spotify.call_policy import SpotifyCallPolicy
from music_analytics.lib.spotify.errors import AUTH_COMMAND, SpotifyApiError
from music_analytics.lib.spotify.oauth import DEFAULT_ACCOUNTS_BASE_URL, RefreshTokenAuth
from music_analytics.lib.spotify.plays import RecentPage, RecentPlay
from music_analytics.lib.spotify.redaction import remember_secret

DEFAULT_API_BASE_URL = "https://api.spotify.com/v1/"
RECENTLY_PLAYED_LIMIT = 50  # the API's maximum page, and how far back it remembers
BATCH_SIZE = 50  # ids per GET /tracks or /artists
AUDIO_FEATURES_BATCH_SIZE = 100

logger = logging.getLogger(__name__)
T = TypeVar("T")


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
        remember_secret(client_secret.strip(), refresh_token.strip())
        self.api_base_url = api_base_url.rstrip("/") + "/"
        self.accounts_base_url = accounts_base_url.rstrip("/")
        self.log = log or logger
        # A plain session: no urllib3 Retry, so a 429 or 5xx reaches us with its headers.
        # (spotipy's own session with retries=0 turns them into a bare "Max Retries" 429.)
        self._session = requests.Session()
        self._auth = RefreshTokenAuth(
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
        self._policy = SpotifyCallPolicy(
            refresh_token=self._auth.invalidate,
            log=self.log,
            retry_after_cap=retry_after_cap,
            max_attempts=max_attempts,
            sleep=sleep,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            rng=rng,
        )
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
        result = self._policy.run(
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
                result = self._policy.run(
                    f"GET audio-features for {len(chunk)} tracks",
                    lambda chunk=chunk: _quietly(self._sp.audio_features, chunk),
                    handled_statuses=(403,),
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
                result = self._policy.run(
                    f"GET {kind} for {len(chunk)} ids",
                    lambda chunk=chunk: batch(chunk),
                    handled_statuses=(403, 404),
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
                item = self._policy.run(
                    f"GET {kind}/{item_id}",
                    lambda i=item_id: single(i),
                    handled_statuses=(400, 404),
                )
            except SpotifyApiError as exc:
                if exc.http_status in (400, 404):
                    self.log.warning("Spotify does not know %s id %s: %s", kind, item_id, exc)
                    continue
                raise
            if item:
                found.append(dict(item))
        return found


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
