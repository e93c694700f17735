"""The errors of the Spotify client, and what a failed token request means for the user."""

from __future__ import annotations

from spotipy.exceptions import SpotifyOauthError

from music_analytics.lib.spotify.redaction import redact

AUTH_COMMAND = "music-analytics spotify-auth"


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


def oauth_error(exc: SpotifyOauthError, doing: str) -> SpotifyApiError:
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
