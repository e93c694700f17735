"""The analytics-reports client against the fake API over real HTTP; a fake clock, no waiting."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import traceback
import zipfile
from datetime import date
from pathlib import Path

import pytest

from music_analytics.lib.dsp.api_client import DspReportClient
from music_analytics.lib.dsp.api_errors import (
    DspApiError,
    DspApiUnavailable,
    DspAuthError,
    DspDownloadError,
    DspReportFailed,
    DspReportTimeout,
    DspUnsupportedDsp,
)
from music_analytics.lib.dsp.api_polling import DEFAULT_POLL_DELAYS
from music_analytics.lib.dsp.pending_reports import PendingReports
from music_analytics_tests.fakes.dsp_api import FakeDspApi

DAY = date(2026, 3, 28)


class Clock:
    """Fake time: `sleep` records the delay and moves `monotonic` on at once."""

    def __init__(
        self, crash_on_sleep: BaseException | None = None, real_sleep: float = 0.0
    ) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.crash_on_sleep = crash_on_sleep
        self.real_sleep = real_sleep  # > 0 lets other threads run, so they overlap
        self._lock = threading.Lock()

    def sleep(self, seconds: float) -> None:
        if self.crash_on_sleep is not None:
            raise self.crash_on_sleep
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds
        if self.real_sleep:
            time.sleep(self.real_sleep)

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def api(httpserver) -> FakeDspApi:
    return FakeDspApi(httpserver)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def pending(tmp_path: Path) -> PendingReports:
    return PendingReports(tmp_path / "pending")


def client_for(
    api: FakeDspApi, pending: PendingReports, clock: Clock, **overrides
) -> DspReportClient:
    options = {
        "pending": pending,
        "sleep": clock.sleep,
        "monotonic": clock.monotonic,
        "rng": random.Random(7),
        **overrides,
    }
    token = options.pop("token", api.token)
    base_url = options.pop("base_url", api.base_url)
    return DspReportClient(base_url, token, **options)


@pytest.fixture
def client(api, pending, clock) -> DspReportClient:
    return client_for(api, pending, clock)


# --- the happy path ------------------------------------------------------------------------


@pytest.mark.parametrize("dsp_id", [1, 3, 4])
def test_fetches_each_dsp_without_sending_the_token_to_storage(
    dsp_id, api, client, pending, tmp_path
):
    dest = tmp_path / "out" / f"dsp{dsp_id}.zip"
    fetched = client.fetch_report(dsp_id, DAY, dest)

    assert (fetched.dsp_id, fetched.day, fetched.path) == (dsp_id, DAY, dest)
    assert dest.read_bytes() == api.served_zip(fetched.report_id)
    assert fetched.status.status == "completed" and fetched.status.total_records == 2
    assert api.posts == 1 and api.downloads == 1
    assert api.download_authorization_headers() == []
    post_headers = api.api_headers[0]
    assert post_headers["Authorization"] == f"Bearer {api.token}"
    assert post_headers["Content-Type"] == "application/json"
    assert post_headers["Accept"] == "application/json"
    assert pending.items() == []
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]  # no temp file left


def test_polls_pending_then_processing_then_completed_on_the_schedule(
    api, client, clock, tmp_path, caplog
):
    api.polls_until_processing, api.polls_until_complete = 2, 5
    caplog.set_level(logging.DEBUG, logger="music_analytics")
    client.fetch_report(1, DAY, tmp_path / "r.zip")

    assert clock.sleeps == list(DEFAULT_POLL_DELAYS[:5]) == [2, 3, 5, 8, 13]
    assert api.gets == 5
    seen = [r.getMessage().rsplit(" ", 1)[-1] for r in caplog.records if " is " in r.getMessage()]
    assert seen[:5] == ["pending", "processing", "processing", "processing", "completed"]


def test_poll_delays_repeat_the_last_one(api, pending, clock, tmp_path):
    api.polls_until_complete = 5
    client = client_for(api, pending, clock, poll_delays=(1, 4))
    client.fetch_report(1, DAY, tmp_path / "r.zip")
    assert clock.sleeps == [1, 4, 4, 4, 4]


# --- report failures and resuming ----------------------------------------------------------


def test_failed_report_names_the_error_dsp_and_date_and_is_forgotten(
    api, client, pending, tmp_path
):
    api.fail_with = "upstream statistics missing for the day"
    with pytest.raises(DspReportFailed) as raised:
        client.fetch_report(3, DAY, tmp_path / "r.zip")

    message = str(raised.value)
    assert "upstream statistics missing for the day" in message
    assert "YouTube" in message and "2026-03-28" in message and "report 1" in message
    assert (raised.value.dsp_id, raised.value.day, raised.value.report_id) == (3, DAY, 1)
    assert raised.value.retryable
    assert pending.get(3, DAY) is None
    assert not (tmp_path / "r.zip").exists()


def test_a_remembered_failed_report_is_replaced_by_a_new_one(api, client, pending, tmp_path):
    old = api.add_report(1, DAY, status="failed", error="boom")
    pending.remember(1, DAY, old.report_id)

    fetched = client.fetch_report(1, DAY, tmp_path / "r.zip")

    assert api.posts == 1 and fetched.report_id != old.report_id
    assert pending.get(1, DAY) is None


def test_a_remembered_report_the_api_no_longer_knows_is_replaced(api, client, pending, tmp_path):
    pending.remember(1, DAY, 999)
    fetched = client.fetch_report(1, DAY, tmp_path / "r.zip")
    assert api.posts == 1 and fetched.report_id == 1


def test_a_remembered_id_of_another_dsp_or_day_is_not_used(api, client, pending, tmp_path):
    other = api.add_report(4, date(2026, 3, 1))
    pending.remember(1, DAY, other.report_id)
    fetched = client.fetch_report(1, DAY, tmp_path / "r.zip")
    assert api.posts == 1 and fetched.report_id != other.report_id
    assert zip_day_and_dsp(fetched.path) == (1, DAY)


def test_crash_after_the_post_resumes_the_same_report(api, pending, tmp_path):
    crashing = client_for(api, pending, Clock(crash_on_sleep=RuntimeError("worker killed")))
    with pytest.raises(RuntimeError, match="worker killed"):
        crashing.fetch_report(1, DAY, tmp_path / "r.zip")
    assert pending.get(1, DAY) == 1

    fetched = client_for(api, pending, Clock()).fetch_report(1, DAY, tmp_path / "r.zip")

    assert api.posts == 1
    assert fetched.report_id == 1
    assert fetched.path.read_bytes() == api.served_zip(1)
    assert pending.get(1, DAY) is None


def test_timeout_names_the_report_and_keeps_it_for_the_next_run(api, pending, clock, tmp_path):
    api.polls_until_processing, api.polls_until_complete = 1, 10**6
    client = client_for(api, pending, clock, poll_timeout_seconds=30)
    with pytest.raises(DspReportTimeout) as raised:
        client.fetch_report(4, DAY, tmp_path / "r.zip")

    message = str(raised.value)
    assert "report 1" in message and "Apple Music" in message and "2026-03-28" in message
    assert "remembered" in message and "processing" in message
    assert raised.value.retryable and raised.value.report_id == 1
    assert sum(clock.sleeps) == 30 and clock.sleeps[:4] == [2, 3, 5, 8]
    assert pending.get(4, DAY) == 1

    api.polls_until_complete = 0  # the report finished meanwhile
    fetched = client.fetch_report(4, DAY, tmp_path / "r.zip")
    assert (api.posts, fetched.report_id) == (1, 1)


# --- 409, 422, 401 -------------------------------------------------------------------------


def test_409_is_waited_out_then_the_report_is_created(api, client, clock, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="music_analytics")
    api.script_post(409, {"error": "maximum of 20 active reports", "active_count": 20})
    client.fetch_report(1, DAY, tmp_path / "r.zip")

    assert api.posts == 2
    assert clock.sleeps[0] == 30
    # handled: said at DEBUG (a refresh prints nothing for it), nothing at WARNING or above
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any("20 reports of this token are active" in m for m in debug)
    ours = [r for r in caplog.records if r.name.startswith("music_analytics")]
    assert ours and not [r for r in ours if r.levelno >= logging.WARNING]


def test_409_until_the_poll_timeout_gives_up(api, pending, clock, tmp_path):
    api.script_post(409, {"error": "maximum", "active_count": 20}, times=10)
    client = client_for(api, pending, clock, poll_timeout_seconds=100)
    with pytest.raises(DspApiUnavailable, match="20 reports of this token are active"):
        client.fetch_report(1, DAY, tmp_path / "r.zip")
    assert clock.sleeps == [30, 30, 30, 10]
    assert api.posts == 5
    assert pending.get(1, DAY) is None


def test_never_more_active_reports_than_allowed(httpserver, pending, tmp_path):
    api = FakeDspApi(httpserver, active_limit=2)
    client = client_for(api, pending, Clock(real_sleep=0.01), max_active_reports=2)
    wanted = [(dsp_id, day) for dsp_id in (1, 3, 4) for day in (DAY, date(2026, 3, 29))]

    outcomes = client.fetch_reports(
        wanted, lambda d, day: tmp_path / f"{d}-{day}.zip", max_workers=6
    )

    assert [(o.dsp_id, o.day) for o in outcomes] == wanted
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    assert api.conflicts == 0 and api.posts == 6 and api.max_active_seen <= 2
    for outcome in outcomes:
        assert outcome.fetched.path.read_bytes() == api.served_zip(outcome.fetched.report_id)
        assert zip_day_and_dsp(outcome.fetched.path) == (outcome.dsp_id, outcome.day)


def test_one_failing_report_does_not_stop_the_others(api, client, tmp_path):
    outcomes = client.fetch_reports(
        [(1, DAY), (2, DAY), (4, DAY)], lambda d, day: tmp_path / f"{d}.zip", max_workers=3
    )
    assert [o.ok for o in outcomes] == [True, False, True]
    assert isinstance(outcomes[1].error, DspUnsupportedDsp) and outcomes[1].fetched is None
    assert outcomes[2].fetched.path == tmp_path / "4.zip"


def test_unsupported_dsp_lists_the_supported_ones_and_is_not_retried(
    api, client, clock, pending, tmp_path
):
    with pytest.raises(DspUnsupportedDsp) as raised:
        client.fetch_report(2, DAY, tmp_path / "r.zip")

    message = str(raised.value)
    for name in ("Spotify (dsp_id 1)", "YouTube (dsp_id 3)", "Apple Music (dsp_id 4)"):
        assert name in message
    assert "DSP not supported for analytics export" in message
    assert not raised.value.retryable
    assert api.posts == 1 and clock.sleeps == []
    assert pending.items() == []


def test_unsupported_dsp_without_a_list_falls_back_to_the_catalog(api, client, tmp_path):
    api.script_post(422, {"error": "nope"})
    with pytest.raises(DspUnsupportedDsp, match=r"Spotify.*YouTube.*Apple Music"):
        client.fetch_report(1, DAY, tmp_path / "r.zip")


def test_wrong_token_is_not_retried_and_not_shown(api, pending, clock, tmp_path):
    client = client_for(api, pending, clock, token="wrong-secret-token-123")
    with pytest.raises(DspAuthError) as raised:
        client.fetch_report(1, DAY, tmp_path / "r.zip")

    text = "".join(traceback.format_exception(raised.value))
    assert "wrong-secret-token-123" not in text
    assert "DSP_API_TOKEN" in str(raised.value) and "401" in str(raised.value)
    assert not raised.value.retryable
    assert api.posts == 1 and clock.sleeps == []


def test_403_from_the_api_is_an_auth_error_not_a_url_refresh(api, client, pending, tmp_path):
    api.script_get(403, {"error": "This action is unauthorized."})
    with pytest.raises(DspAuthError, match="This action is unauthorized"):
        client.fetch_report(1, DAY, tmp_path / "r.zip")
    assert api.downloads == 0
    assert pending.get(1, DAY) == 1  # the report exists; a fixed token resumes it


# --- 429, 5xx, connection errors -----------------------------------------------------------


def test_429_honours_retry_after_capped_and_falls_back_to_backoff(api, client, clock, tmp_path):
    api.script_post(429, {"error": "slow down"}, {"Retry-After": "7"})
    api.script_post(429, {"error": "slow down"}, {"Retry-After": "1000"})
    api.script_post(429, {"error": "slow down"}, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    client.fetch_report(1, DAY, tmp_path / "r.zip")

    assert api.posts == 4
    assert clock.sleeps[:2] == [7, 120]
    assert 0 <= clock.sleeps[2] <= 4  # full jitter of the third attempt: uniform(0, 1 * 2**2)
    assert clock.sleeps[3:] == [2, 3]


def test_503_is_retried_with_backoff(api, client, clock, tmp_path):
    api.script_get(503, {"error": "maintenance"}, times=2)
    fetched = client.fetch_report(1, DAY, tmp_path / "r.zip")

    assert fetched.path.exists()
    assert api.gets == 4
    first_poll, backoff_1, backoff_2, second_poll = clock.sleeps
    assert (first_poll, second_poll) == (2, 3)
    assert 0 <= backoff_1 <= 1 and 0 <= backoff_2 <= 2


def test_503_forever_gives_up_after_max_attempts(api, pending, clock, tmp_path):
    api.script_post(503, "Service Unavailable", times=50)
    client = client_for(api, pending, clock, max_attempts=5, backoff_cap=3)
    with pytest.raises(DspApiUnavailable) as raised:
        client.fetch_report(1, DAY, tmp_path / "r.zip")

    assert raised.value.retryable
    assert "HTTP 503" in str(raised.value) and "5 times" in str(raised.value)
    assert api.posts == 5 and len(clock.sleeps) == 4
    assert all(0 <= s <= min(3, 2**i) for i, s in enumerate(clock.sleeps))
    assert raised.value.__context__ is None and raised.value.__cause__ is None


def test_connection_refused_is_unavailable(pending, clock, tmp_path):
    client = DspReportClient(
        "http://127.0.0.1:1/api/v1",
        "t0ken",
        pending=pending,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        max_attempts=2,
        request_timeout=(2, 2),
    )
    with pytest.raises(DspApiUnavailable, match="ConnectionError") as raised:
        client.fetch_report(1, DAY, tmp_path / "r.zip")
    assert raised.value.__context__ is None and len(clock.sleeps) == 1


def test_malformed_body_names_the_endpoint_and_status(api, client, tmp_path):
    api.script_get(200, "<html>oops</html>")
    with pytest.raises(DspApiError, match=r"GET http://.*/analytics-reports/1 .*HTTP 200"):
        client.fetch_report(1, DAY, tmp_path / "r.zip")
    api.script_get(200, {"report": {}})
    with pytest.raises(DspApiError, match="no `data` object"):
        client.get_report(1)
    api.script_get(200, {"data": {"id": 1, "dsp_id": 1, "date": "2026-03-28"}})
    with pytest.raises(DspApiError, match="`status` is None"):
        client.get_report(1)


# --- downloads -----------------------------------------------------------------------------


def test_an_expired_download_url_is_refreshed(api, client, pending, tmp_path):
    api.expire_next_downloads(1)
    fetched = client.fetch_report(1, DAY, tmp_path / "r.zip")

    assert fetched.path.read_bytes() == api.served_zip(fetched.report_id)
    assert api.downloads == 2 and api.gets == 3  # two polls, one refresh
    first, second = api.download_signatures
    assert first != second
    assert pending.get(1, DAY) is None


def test_a_really_expired_signature_is_refreshed(api, client, tmp_path):
    report = client.wait_until_done(client.create_report(1, DAY))
    api.expire_download_urls()
    path = client.download(report, tmp_path / "r.zip")
    assert path.read_bytes() == api.served_zip(report.report_id)
    assert api.downloads == 2


def test_download_gives_up_after_two_refreshes(api, client, pending, tmp_path):
    api.expire_next_downloads(3)
    with pytest.raises(DspDownloadError) as raised:
        client.fetch_report(1, DAY, tmp_path / "r.zip")

    assert "2 times" in str(raised.value) and "HTTP 403" in str(raised.value)
    assert "X-Amz-Signature" not in str(raised.value)
    assert api.downloads == 3
    assert pending.get(1, DAY) == 1
    assert list(tmp_path.iterdir()) == [tmp_path / "pending"]


def test_storage_5xx_is_retried(api, client, tmp_path):
    api.script_download(500, "InternalError", times=2)
    fetched = client.fetch_report(1, DAY, tmp_path / "r.zip")
    assert fetched.path.read_bytes() == api.served_zip(fetched.report_id)
    assert api.downloads == 3


def test_validation_failing_once_downloads_again(api, client, tmp_path):
    calls = []

    def validate(path: Path) -> None:
        calls.append(path.read_bytes())
        if len(calls) == 1:
            raise ValueError("truncated ZIP")

    fetched = client.fetch_report(1, DAY, tmp_path / "r.zip", validate=validate)
    assert len(calls) == 2 and api.downloads == 2 and fetched.path.exists()


def test_validation_failing_twice_deletes_the_file_and_forgets_the_report(
    api, client, pending, tmp_path
):
    def validate(path: Path) -> None:
        raise ValueError(f"{path.name}: meta.total_records is 3 but data holds 2")

    with pytest.raises(ValueError, match="total_records"):
        client.fetch_report(1, DAY, tmp_path / "r.zip", validate=validate)

    assert api.downloads == 2
    assert not (tmp_path / "r.zip").exists()
    assert pending.get(1, DAY) is None


def test_bytes_from_zip_for_are_served_as_they_are(httpserver, pending, clock, tmp_path):
    api = FakeDspApi(httpserver, zip_for=lambda dsp_id, day, rid: b"not a zip %d" % rid)
    fetched = client_for(api, pending, clock).fetch_report(1, DAY, tmp_path / "r.zip")
    assert fetched.path.read_bytes() == b"not a zip 1"
    assert fetched.status.total_records is None and fetched.status.file_size_bytes == 11


# --- secrets -------------------------------------------------------------------------------


def test_no_token_or_signature_in_logs_errors_or_reprs(api, client, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    api.expire_next_downloads(1)
    fetched = client.fetch_report(1, DAY, tmp_path / "ok.zip")

    # A completed report whose URL points at a closed port: requests' error carries the URL.
    secret_url = "http://127.0.0.1:1/s3/reports/2.zip?X-Amz-Signature=SECRETSIG&X-Amz-Expires=1"
    data = {"id": 2, "dsp_id": 3, "date": "2026-03-28", "status": "completed"}
    api.script_get(200, {"data": {**data, "download_url": secret_url}})
    report = client.get_report(2)
    with pytest.raises(DspDownloadError) as raised:
        client.download(report, tmp_path / "bad.zip")

    error_text = "".join(traceback.format_exception(raised.value)) + repr(raised.value)
    assert "SECRETSIG" not in error_text and "127.0.0.1:1/s3/reports/2.zip" in error_text
    assert raised.value.__context__ is None and raised.value.__cause__ is None
    assert "X-Amz-Signature" not in repr(report) + repr(fetched) + repr(fetched.status)

    # werkzeug's records are the fake server's own request log, not the client's.
    client_records = [r for r in caplog.records if not r.name.startswith("werkzeug")]
    urllib3_lines = [r.getMessage() for r in client_records if r.name.startswith("urllib3")]
    assert any("/s3/reports/" in line for line in urllib3_lines)  # the filter saw them
    for record in client_records:
        message = record.getMessage()
        assert api.token not in message, message
        assert "X-Amz-Signature" not in message and "SECRETSIG" not in message, message


# --- construction --------------------------------------------------------------------------


@pytest.mark.parametrize("max_active", [0, 21])
def test_max_active_reports_must_stay_within_the_api_limit(pending, max_active):
    with pytest.raises(ValueError, match="between 1 and 20"):
        DspReportClient("https://h/api/v1", "t", pending=pending, max_active_reports=max_active)


def test_empty_token_or_base_url_is_refused(pending):
    with pytest.raises(ValueError, match="DSP_API_TOKEN"):
        DspReportClient("https://h/api/v1", " ", pending=pending)
    with pytest.raises(ValueError, match="DSP_API_BASE_URL"):
        DspReportClient("", "t", pending=pending)


def zip_day_and_dsp(path: Path) -> tuple[int, date]:
    """The meta.dsp_id and meta.date of a downloaded report ZIP."""
    with zipfile.ZipFile(path) as archive:
        meta = json.loads(archive.read(archive.namelist()[0]))["meta"]
    return meta["dsp_id"], date.fromisoformat(meta["date"])
