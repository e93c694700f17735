"""What the DSP analytics-reports API says about a report, and what fetching one produced."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

ACTIVE_STATUSES = frozenset({"pending", "processing"})


@dataclass(frozen=True)
class ReportStatus:
    """One report as the API describes it (`data` of POST/GET); the URL is kept out of repr."""

    report_id: int
    dsp_id: int
    day: date
    status: str  # pending, processing, completed or failed
    total_records: int | None = None
    file_size_bytes: int | None = None
    error: str | None = None
    download_url: str | None = field(default=None, repr=False)

    @property
    def is_active(self) -> bool:
        """Pending or processing: counts against the API's active-report limit."""
        return self.status in ACTIVE_STATUSES

    @classmethod
    def from_api(
        cls, data: Any, *, dsp_id: int | None = None, day: date | None = None
    ) -> ReportStatus:
        """Parse a response's `data` object; `dsp_id`/`day` fill in fields the API omits.

        Raises ValueError, naming the field, when the object lacks `id` or `status` or holds
        values of the wrong type.
        """
        if not isinstance(data, Mapping):
            raise ValueError("`data` is not an object")
        raw_dsp, raw_day = data.get("dsp_id", dsp_id), data.get("date")
        parsed_day = date.fromisoformat(raw_day[:10]) if isinstance(raw_day, str) else day
        status = data.get("status")
        if not isinstance(status, str) or not status:
            raise ValueError(f"`status` is {status!r}, expected a string")
        return cls(
            report_id=_positive_int(data.get("id"), "id"),
            dsp_id=_positive_int(raw_dsp, "dsp_id"),
            day=_need(parsed_day, "date"),
            status=status,
            total_records=_optional_int(data.get("total_records"), "total_records"),
            file_size_bytes=_optional_int(data.get("file_size_bytes"), "file_size_bytes"),
            error=None if data.get("error") is None else str(data["error"]),
            download_url=data.get("download_url") or None,
        )


def _need(value: Any, name: str) -> Any:
    if value is None:
        raise ValueError(f"`{name}` is missing")
    return value


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"`{name}` is {value!r}, expected a positive whole number")
    return value


def _optional_int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"`{name}` is {value!r}, expected a whole number or null")
    return value


@dataclass(frozen=True)
class FetchedReport:
    """A downloaded (and, if asked, validated) report ZIP."""

    report_id: int
    dsp_id: int
    day: date
    path: Path
    status: ReportStatus


@dataclass(frozen=True)
class FetchOutcome:
    """What `fetch_reports` did for one (dsp_id, day): the fetched report or the error."""

    dsp_id: int
    day: date
    fetched: FetchedReport | None
    error: Exception | None

    @property
    def ok(self) -> bool:
        """True when the report was fetched."""
        return self.error is None
