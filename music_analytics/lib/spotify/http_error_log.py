"""spotipy's `HTTP Error for GET ...` lines, held until we know whether the failure is handled.

spotipy logs every HTTP error at ERROR on `spotipy.client` before raising, including the ones
this client handles by design: a 401 answered by a token refresh, a 429 or 5xx retried, the
batch endpoints' 403/404 answered by fetching one id at a time, audio features' 403. While a
call runs under `holding_http_errors`, those records are kept aside on this thread; the call
policy then releases them at DEBUG when the failure was handled, or at their own level when
it was not, so no unhandled error is hidden.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SPOTIPY_LOGGER = "spotipy.client"
_PREFIX = "HTTP Error for "


class _HoldHttpErrors(logging.Filter):
    """Keeps spotipy's HTTP error records in the current thread's list, if it has one."""

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        held = getattr(self.local, "held", None)
        if held is None or not str(record.msg).startswith(_PREFIX):
            return True
        held.append(record)
        return False


def _installed() -> _HoldHttpErrors:
    logger = logging.getLogger(SPOTIPY_LOGGER)
    for existing in logger.filters:
        if isinstance(existing, _HoldHttpErrors):
            return existing
    holder = _HoldHttpErrors()
    logger.addFilter(holder)
    return holder


_HOLDER = _installed()


@contextmanager
def holding_http_errors(held: list[logging.LogRecord]) -> Iterator[list[logging.LogRecord]]:
    """Collect into `held` the HTTP error records spotipy logs on this thread meanwhile."""
    previous = getattr(_HOLDER.local, "held", None)
    _HOLDER.local.held = held
    try:
        yield held
    finally:
        _HOLDER.local.held = previous


def release_http_errors(held: list[logging.LogRecord], *, handled: bool) -> None:
    """Log the held records: at DEBUG when the failure was handled, else as spotipy logged them."""
    logger = logging.getLogger(SPOTIPY_LOGGER)
    for record in held:
        if handled:
            if not logger.isEnabledFor(logging.DEBUG):
                continue
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        logger.handle(record)
    held.clear()
