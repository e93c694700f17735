"""A logging filter that rewrites records through a redaction function, for the API clients
whose libraries (urllib3, spotipy) log URLs and headers at DEBUG."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable


class RedactingFilter(logging.Filter):
    """Passes every record on, with its message run through `redact`."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler to report
            return True
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def install_redaction(logger_names: Iterable[str], redact: Callable[[str], str]) -> None:
    """Put a `RedactingFilter(redact)` on each named logger, once (idempotent)."""
    for name in logger_names:
        logger = logging.getLogger(name)
        installed = (f for f in logger.filters if isinstance(f, RedactingFilter))
        if not any(f.redact is redact for f in installed):
            logger.addFilter(RedactingFilter(redact))
