"""The errors of the DSP analytics-reports API client, each naming the DSP, date and report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from music_analytics.lib.dsp.catalog import dsp_by_id


def dsp_label(dsp_id: int | None) -> str:
    """E.g. `Spotify (dsp_id 1)`; just `dsp_id 9` for a DSP the catalogue does not know."""
    if dsp_id is None:
        return "DSP"
    try:
        return f"{dsp_by_id(dsp_id).name} (dsp_id {dsp_id})"
    except ValueError:
        return f"dsp_id {dsp_id}"


def report_label(dsp_id: int | None, day: date | None, report_id: int | None) -> str:
    """E.g. `Spotify (dsp_id 1) report 6 for 2026-03-28`."""
    text = dsp_label(dsp_id) + " report"
    if report_id is not None:
        text += f" {report_id}"
    if day is not None:
        text += f" for {day.isoformat()}"
    return text


@dataclass(frozen=True)
class ReportContext:
    """Who a request is for, so errors can name the DSP, day and report."""

    dsp_id: int | None = None
    day: date | None = None
    report_id: int | None = None

    def kwargs(self) -> dict[str, Any]:
        """The fields as keyword arguments of a `DspApiError`."""
        return {"dsp_id": self.dsp_id, "day": self.day, "report_id": self.report_id}

    @property
    def label(self) -> str:
        """The report as error and log messages name it."""
        return report_label(self.dsp_id, self.day, self.report_id)


class DspApiError(Exception):
    """An analytics-reports API call failed; the message names the DSP, date and report id.

    `retryable` says whether running again later may succeed (outages, timeouts) or whether a
    person must fix something first (token, DSP list).
    """

    default_retryable = False

    def __init__(
        self,
        message: str,
        *,
        dsp_id: int | None = None,
        day: date | None = None,
        report_id: int | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.dsp_id = dsp_id
        self.day = day
        self.report_id = report_id
        self.retryable = self.default_retryable if retryable is None else retryable


class DspReportFailed(DspApiError):
    """The API reports status `failed`; the message carries its `error` text."""

    default_retryable = True  # the next run requests a new report


class DspUnsupportedDsp(DspApiError):
    """The API does not export this DSP (422); the message lists the DSPs it does."""


class DspAuthError(DspApiError):
    """The API refused the token (401/403): DSP_API_TOKEN is wrong or lacks access."""


class DspReportNotFound(DspApiError):
    """The API does not know the report id (404), e.g. a remembered id it has since deleted."""


class DspReportTimeout(DspApiError):
    """The report is still pending/processing at the poll timeout; its id stays remembered."""

    default_retryable = True


class DspDownloadError(DspApiError):
    """The ZIP could not be downloaded after retries and URL refreshes."""

    default_retryable = True


class DspApiUnavailable(DspApiError):
    """5xx, connection errors, 429 or 409 went on past the retries; try again later."""

    default_retryable = True
