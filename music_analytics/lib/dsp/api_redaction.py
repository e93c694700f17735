"""Keeping the DSP API token and pre-signed URLs' signatures out of logs and error messages.

urllib3 logs request lines with the full URL at DEBUG, so importing this module installs a
filter that strips query strings from those records.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from music_analytics.lib.core.log_redaction import install_redaction

_QUERY = re.compile(r"\?[^\s'\"<>)]*")

# urllib3 logs full URLs: connectionpool (request lines, retries) and util.retry (increments).
_URL_LOGGING_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry")


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


def redact_text(text: str, *secrets: str) -> str:
    """Text (e.g. a requests exception's message) without query strings or the given secrets."""
    text = _QUERY.sub("?[redacted]", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def install_log_redaction() -> None:
    """Strip query strings (pre-signed URLs' signatures) from urllib3's log records."""
    install_redaction(_URL_LOGGING_LOGGERS, redact_text)


install_log_redaction()
