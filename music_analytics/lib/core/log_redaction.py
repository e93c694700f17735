"""A logging filter that rewrites records through a redaction function, for the API clients
whose libraries (urllib3, spotipy) log URLs and headers at DEBUG."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable


class RedactingFilter(logging.Filter):
    """Passes every record on, with its message run through `redact`.

    With `per_argument`, each string argument is redacted and the arguments are kept, for
    formatters that read `record.args` themselves (uvicorn's access log does).
    """

    def __init__(self, redact: Callable[[str], str], *, per_argument: bool = False) -> None:
        super().__init__()
        self.redact = redact
        self.per_argument = per_argument

    def filter(self, record: logging.LogRecord) -> bool:
        if self.per_argument and isinstance(record.args, tuple):
            record.args = tuple(self.redact(a) if isinstance(a, str) else a for a in record.args)
            record.msg = self.redact(str(record.msg))
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler to report
            return True
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def install_redaction(
    logger_names: Iterable[str], redact: Callable[[str], str], *, per_argument: bool = False
) -> None:
    """Put a `RedactingFilter(redact)` on each named logger, once (idempotent)."""
    for name in logger_names:
        logger = logging.getLogger(name)
        installed = (f for f in logger.filters if isinstance(f, RedactingFilter))
        if not any(f.redact is redact for f in installed):
            logger.addFilter(RedactingFilter(redact, per_argument=per_argument))
