"""A fake analytics-reports API (seed 002) and its S3 storage, served by pytest-httpserver.

`FakeDspApi(httpserver)` answers `POST/GET {base_url}/analytics-reports[/{id}]` with the seed's
JSON and serves report ZIPs at pre-signed-looking URLs
`/s3/reports/{id}.zip?X-Amz-Signature=...&X-Amz-Expires=43200`. Reports move from pending to
processing to completed (or failed) as they are polled. Knobs set limits and failures, counters
record what clients did, and queues of scripted one-off responses model 409/422/429/5xx/401 and
expired URLs. Handlers take a lock, so concurrent clients see consistent state.

    def test_fetch(httpserver, tmp_path):
        api = FakeDspApi(httpserver, polls_until_complete=1)
        client = DspReportClient(api.base_url, api.token, pending=..., sleep=lambda s: None)
        client.fetch_report(1, date(2026, 3, 28), tmp_path / "r.zip")
        assert api.posts == 1 and not api.download_authorization_headers()
"""

from __future__ import annotations

import copy
import io
import json
import re
import threading
import zipfile
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from music_analytics.lib.dsp.catalog import dsp_by_id
from music_analytics_tests.fakes.http import ScriptedResponse
from music_analytics_tests.spec_records import APPLE, SPOTIFY, YOUTUBE

API_PREFIX = "/api/v1"
STORAGE_PREFIX = "/s3/reports"
DEFAULT_TOKEN = "test-token"
SUPPORTED_DSP_IDS = (1, 3, 4)
ACTIVE = ("pending", "processing")
_S3_EXPIRED = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    "<Message>Request has expired</Message></Error>"
)
_S3_TWO_AUTHS = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidArgument</Code>'
    "<Message>Only one auth mechanism allowed</Message></Error>"
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --- report content ------------------------------------------------------------------------


def sample_records(dsp_id: int, day: date, n: int = 2) -> list[dict[str, Any]]:
    """`n` copies of the DSP's record as the documents print it (spec_records.py), on `day`,
    with ids, track and ISRC varying."""
    records = []
    for i in range(n):
        record = copy.deepcopy(_SPEC_RECORDS.get(dsp_id, SPOTIFY))
        record.update(
            id=dsp_id * 100_000 + i + 1,
            data_date=f"{day.isoformat()}T00:00:00.000000Z",
            dsp_name=dsp_by_id(dsp_id).name if dsp_id in SUPPORTED_DSP_IDS else None,
            track_id=5012 + i,
            track_name=f"Track {i + 1}",
            isrc=f"USRC1234{5678 + i}",
            created_at=f"{day.isoformat()}T02:15:00.000000Z",
            updated_at=f"{day.isoformat()}T02:15:00.000000Z",
        )
        records.append(record)
    return records


_SPEC_RECORDS: dict[int, dict[str, Any]] = {1: SPOTIFY, 3: YOUTUBE, 4: APPLE}


def build_report_zip(
    dsp_id: int,
    day: date,
    records: list[dict[str, Any]] | None = None,
    *,
    total_records: int | None = None,
    member_name: str | None = None,
) -> bytes:
    """A report ZIP as the API builds it: one `analytics-report-{date}.json` with meta and data.

    `records` default to two `sample_records`; `total_records` (default: their count) and
    `member_name` can be set to make a wrong file.
    """
    records = sample_records(dsp_id, day) if records is None else records
    meta = {
        "dsp_id": dsp_id,
        "dsp_name": dsp_by_id(dsp_id).name if dsp_id in SUPPORTED_DSP_IDS else None,
        "date": day.isoformat(),
        "total_records": len(records) if total_records is None else total_records,
        "generated_at": f"{day.isoformat()}T10:15:30+00:00",
        "generated_by": 42,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        name = member_name or f"analytics-report-{day.isoformat()}.json"
        archive.writestr(name, json.dumps({"meta": meta, "data": records}))
    return buffer.getvalue()


def _total_records(blob: bytes) -> int | None:
    """meta.total_records of a ZIP the fake serves, or None for bytes that are not a report."""
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            return int(json.loads(archive.read(archive.namelist()[0]))["meta"]["total_records"])
    except Exception:
        return None


# --- state ---------------------------------------------------------------------------------


@dataclass
class FakeReport:
    """One report the fake API holds."""

    report_id: int
    dsp_id: int
    day: date
    token: str
    status: str = "pending"
    polls: int = 0  # GETs of this report so far
    error: str | None = None
    created_at: str = field(default_factory=_now)
    started_at: str | None = None
    completed_at: str | None = None
    zip_bytes: bytes | None = None
    signatures: list[str] = field(default_factory=list)  # every signature handed out
    valid_signatures: set[str] = field(default_factory=set)


class FakeDspApi:
    """The analytics-reports API and its storage on a pytest-httpserver `HTTPServer`.

    Knobs (attributes, may be changed mid-test): `polls_until_processing` and
    `polls_until_complete` (a report is processing from that GET on, completed from that GET
    on; 0 completes it at the first GET), `fail_with` (reports finish as failed with this
    error text), `active_limit` (POST answers 409 while the token has this many pending or
    processing reports), `supported_dsp_ids`.

    Counters: `posts`, `gets`, `downloads` (requests, scripted ones included), `conflicts`
    (409s from the active limit), `max_active_seen`, `api_headers` and `download_headers`
    (each request's headers), `download_signatures` (each download's X-Amz-Signature).
    """

    def __init__(
        self,
        httpserver: HTTPServer,
        token: str = DEFAULT_TOKEN,
        zip_for: Callable[[int, date, int], bytes] | None = None,
        *,
        polls_until_processing: int = 1,
        polls_until_complete: int = 2,
        fail_with: str | None = None,
        active_limit: int = 20,
        supported_dsp_ids: Iterable[int] = SUPPORTED_DSP_IDS,
    ) -> None:
        self.server = httpserver
        self.token = token
        self.zip_for = zip_for
        self.polls_until_processing = polls_until_processing
        self.polls_until_complete = polls_until_complete
        self.fail_with = fail_with
        self.active_limit = active_limit
        self.supported_dsp_ids = tuple(supported_dsp_ids)
        self.reports: dict[int, FakeReport] = {}
        self.posts = self.gets = self.downloads = self.conflicts = self.max_active_seen = 0
        self.api_headers: list[dict[str, str]] = []
        self.download_headers: list[dict[str, str]] = []
        self.download_signatures: list[str | None] = []
        self._scripted: dict[str, deque[ScriptedResponse]] = {
            "post": deque(),
            "get": deque(),
            "download": deque(),
        }
        self._next_id = 1
        self._signature_serial = 0
        self._lock = threading.RLock()
        reports = re.escape(f"{API_PREFIX}/analytics-reports")
        httpserver.expect_request(re.compile(f"^{reports}$"), method="POST").respond_with_handler(
            self._handle_create
        )
        httpserver.expect_request(
            re.compile(f"^{reports}/[^/]+$"), method="GET"
        ).respond_with_handler(self._handle_get)
        httpserver.expect_request(
            re.compile(f"^{re.escape(STORAGE_PREFIX)}/[^/]+$"), method="GET"
        ).respond_with_handler(self._handle_download)

    @property
    def base_url(self) -> str:
        """The API's base URL, as DSP_API_BASE_URL would hold it (no trailing slash)."""
        return self.server.url_for(API_PREFIX).rstrip("/")

    # --- scripting -----------------------------------------------------------------------

    def script_post(
        self,
        status: int,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` POSTs with this response instead of creating a report."""
        self._script("post", ScriptedResponse(status, body, headers or {}), times)

    def script_get(
        self,
        status: int,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` report GETs with this response (the report does not advance)."""
        self._script("get", ScriptedResponse(status, body, headers or {}), times)

    def script_download(
        self,
        status: int,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` storage downloads with this response."""
        self._script("download", ScriptedResponse(status, body, headers or {}), times)

    def expire_next_downloads(self, n: int = 1) -> None:
        """The next `n` downloads answer 403 as S3 does for an expired pre-signed URL."""
        self.script_download(403, _S3_EXPIRED, {"Content-Type": "application/xml"}, times=n)

    def expire_download_urls(self) -> None:
        """Every URL handed out so far expires; the next completed GET hands out a fresh one."""
        with self._lock:
            for report in self.reports.values():
                report.valid_signatures.clear()

    def _script(self, route: str, response: ScriptedResponse, times: int) -> None:
        with self._lock:
            self._scripted[route].extend([response] * times)

    # --- state helpers -------------------------------------------------------------------

    def add_report(
        self,
        dsp_id: int,
        day: date,
        *,
        status: str = "pending",
        error: str | None = None,
        token: str | None = None,
    ) -> FakeReport:
        """Put a report in the API's state directly (e.g. one an earlier run created)."""
        with self._lock:
            report = FakeReport(self._next_id, dsp_id, day, token or self.token, error=error)
            self._next_id += 1
            self.reports[report.report_id] = report
            if status == "completed":
                self._complete(report)
            else:
                report.status = status
            return report

    def served_zip(self, report_id: int) -> bytes:
        """The bytes the fake serves for a report (built on first use)."""
        with self._lock:
            return self._zip(self.reports[report_id])

    def active_count(self, token: str | None = None) -> int:
        """How many of the token's reports are pending or processing."""
        with self._lock:
            wanted = token or self.token
            return sum(r.status in ACTIVE and r.token == wanted for r in self.reports.values())

    def download_authorization_headers(self) -> list[str]:
        """The Authorization headers sent with downloads (should be none)."""
        with self._lock:
            return [h["Authorization"] for h in self.download_headers if "Authorization" in h]

    # --- handlers ------------------------------------------------------------------------

    def _handle_create(self, request: Request) -> Response:
        with self._lock:
            self.posts += 1
            self.api_headers.append(dict(request.headers))
            if self._scripted["post"]:
                return self._scripted["post"].popleft().to_response()
            token = self._bearer(request)
            if token is None:
                return _json(401, {"message": "Unauthenticated."})
            try:
                body = json.loads(request.get_data(as_text=True))
                dsp_id, day = body["dsp_id"], date.fromisoformat(body["date"])
                if not isinstance(dsp_id, int) or len(body["date"]) != 10:
                    raise ValueError(dsp_id)
            except (ValueError, KeyError, TypeError):
                return _json(422, {"message": "The given data was invalid.", "errors": {}})
            if dsp_id not in self.supported_dsp_ids:
                return _json(
                    422,
                    {
                        "error": "DSP not supported for analytics export",
                        "supported_dsp_ids": list(self.supported_dsp_ids),
                    },
                )
            active = self.active_count(token)
            if active >= self.active_limit:
                self.conflicts += 1
                return _json(
                    409,
                    {
                        "error": f"You have reached the maximum of {self.active_limit} "
                        "active reports",
                        "active_count": active,
                    },
                )
            report = self.add_report(dsp_id, day, token=token)
            self.max_active_seen = max(self.max_active_seen, self.active_count(token))
            return _json(201, {"data": self._data(report)})

    def _handle_get(self, request: Request) -> Response:
        with self._lock:
            self.gets += 1
            self.api_headers.append(dict(request.headers))
            if self._scripted["get"]:
                return self._scripted["get"].popleft().to_response()
            token = self._bearer(request)
            if token is None:
                return _json(401, {"message": "Unauthenticated."})
            raw_id = request.path.rsplit("/", 1)[-1]
            report = self.reports.get(int(raw_id)) if raw_id.isdigit() else None
            if report is None or report.token != token:
                return _json(404, {"message": "Not found."})
            self._advance(report)
            if report.status == "completed":
                self._sign(report)
            return _json(200, {"data": self._data(report)})

    def _handle_download(self, request: Request) -> Response:
        with self._lock:
            self.downloads += 1
            self.download_headers.append(dict(request.headers))
            signature = request.args.get("X-Amz-Signature")
            self.download_signatures.append(signature)
            if self._scripted["download"]:
                return self._scripted["download"].popleft().to_response()
            if "Authorization" in request.headers:  # S3 refuses two auth mechanisms
                return Response(_S3_TWO_AUTHS, status=400, content_type="application/xml")
            match = re.fullmatch(r"(\d+)\.zip", request.path.rsplit("/", 1)[-1])
            report = self.reports.get(int(match[1])) if match else None
            if report is None or signature not in report.valid_signatures:
                return Response(_S3_EXPIRED, status=403, content_type="application/xml")
            return Response(self._zip(report), status=200, content_type="application/zip")

    # --- internals -----------------------------------------------------------------------

    def _bearer(self, request: Request) -> str | None:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
        return token if token == self.token else None

    def _advance(self, report: FakeReport) -> None:
        report.polls += 1
        if report.status not in ACTIVE:
            return
        if report.polls >= self.polls_until_complete:
            if self.fail_with is not None:
                report.status, report.error = "failed", self.fail_with
                report.completed_at = _now()
            else:
                self._complete(report)
        elif report.polls >= self.polls_until_processing:
            report.status = "processing"
            report.started_at = report.started_at or _now()

    def _complete(self, report: FakeReport) -> None:
        report.status = "completed"
        report.started_at = report.started_at or _now()
        report.completed_at = _now()
        self._zip(report)

    def _zip(self, report: FakeReport) -> bytes:
        if report.zip_bytes is None:
            if self.zip_for is not None:
                report.zip_bytes = self.zip_for(report.dsp_id, report.day, report.report_id)
            else:
                report.zip_bytes = build_report_zip(report.dsp_id, report.day)
        return report.zip_bytes

    def _sign(self, report: FakeReport) -> None:
        """A fresh signature per completed GET, as S3 pre-signing gives."""
        self._signature_serial += 1
        signature = f"fakesig{report.report_id}x{self._signature_serial:06d}"
        report.signatures.append(signature)
        report.valid_signatures.add(signature)

    def _download_url(self, report: FakeReport) -> str | None:
        if report.status != "completed" or not report.signatures:
            return None
        path = f"{STORAGE_PREFIX}/{report.report_id}.zip"
        query = f"X-Amz-Signature={report.signatures[-1]}&X-Amz-Expires=43200"
        return f"{self.server.url_for(path)}?{query}"

    def _data(self, report: FakeReport) -> dict[str, Any]:
        completed = report.status == "completed"
        blob = self._zip(report) if completed else None
        return {
            "id": report.report_id,
            "dsp_id": report.dsp_id,
            "dsp_name": (
                dsp_by_id(report.dsp_id).name if report.dsp_id in SUPPORTED_DSP_IDS else None
            ),
            "date": report.day.isoformat(),
            "status": report.status,
            "total_records": _total_records(blob) if blob is not None else None,
            "file_size_bytes": len(blob) if blob is not None else None,
            "error": report.error,
            "download_url": self._download_url(report),
            "started_at": report.started_at,
            "completed_at": report.completed_at,
            "created_at": report.created_at,
        }


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")
