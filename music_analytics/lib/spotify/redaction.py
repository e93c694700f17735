"""Keeping Spotify secrets (client secret, tokens, authorization codes) out of logs and errors.

spotipy logs request headers and token-request bodies at DEBUG, so importing this module installs
a redacting filter on spotipy's and urllib3's loggers and on the client's.
"""

from __future__ import annotations

import re
import threading

from music_analytics.lib.core.log_redaction import install_redaction

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


def remember_secret(*values: str | None) -> None:
    """Add values (4 characters or more) to the secrets `redact` replaces wherever they appear."""
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


_REDACTED_LOGGERS = (
    "spotipy.client",
    "spotipy.oauth2",
    "urllib3.connectionpool",
    "music_analytics.lib.spotify.client",
)


def install_log_redaction() -> None:
    """Redact secrets from spotipy's (it logs headers), urllib3's and this module's records."""
    install_redaction(_REDACTED_LOGGERS, redact)


install_log_redaction()
