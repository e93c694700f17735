"""What loading an event file did, or why it could not be loaded."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


class EventFileError(RuntimeError):
    """An event file could not be loaded; the message names the file and the cause."""


@dataclass(frozen=True)
class FileLoadResult:
    """What loading one file did; `status` is `loaded` or `duplicate` (skipped)."""

    source_file: str
    status: str
    content_sha256: str
    load_id: str | None = None
    lines: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    days_touched: list[date] = field(default_factory=list)
    duplicate_of: str | None = None
