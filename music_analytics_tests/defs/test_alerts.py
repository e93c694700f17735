"""Alerts posted to a real local HTTP server: a real failed run (its error quoting a secret),
a webhook that is down (queued, sent at the next tick), a stale mart; off without the URL."""

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest
from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
from dagster._core.instance.utils import RUNLESS_JOB_NAME, RUNLESS_RUN_ID

from music_analytics.definitions import build_definitions
from music_analytics.defs.orchestration.alerts import AlertWebhook, freshness_window
from music_analytics.lib.core.alerts import deliver, flush, scrub, secret_values
from music_analytics.lib.core.crash_points import CRASH_AT
from music_analytics.lib.core.settings import Settings

SECRET = "dsp-token-s3cr3t-value"


class Webhook:
    """A Slack-like webhook on 127.0.0.1: keeps each JSON body; answers `status`."""

    def __init__(self):
        self.bodies: list[dict] = []
        self.status = 200
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                if hook.status == 200:
                    hook.bodies.append(body)
                self.send_response(hook.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T000/B000/hook-secret"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory):
    """A real failed daily_marts_job run: its warehouse file is not a DuckDB file, and its
    home's path holds the DSP token's value (so the error quotes a secret)."""
    base = tmp_path_factory.mktemp("alerts")
    home = base / f"home-{SECRET}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MUSIC_ANALYTICS_HOME", str(home))
        patch.setenv("DSP_API_TOKEN", SECRET)
        patch.delenv("MUSIC_ANALYTICS_ALERT_WEBHOOK_URL", raising=False)
        settings = Settings.from_env()
        settings.ensure_folders()
        settings.warehouse_path.write_bytes(b"this is not a duckdb file" * 100)
        defs = build_definitions(settings)
        instance = dg.DagsterInstance.ephemeral()
        result = defs.resolve_job_def("daily_marts_job").execute_in_process(
            instance=instance, partition_key="2025-03-02", raise_on_error=False
        )
        assert not result.success
        yield defs, instance, result, base
        patch.undo()


def _context(defs, instance, result, hook_url: str, outbox):
    return dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert",
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"alert_webhook": AlertWebhook(url=hook_url, outbox=str(outbox))},
    ).for_run_failure()


def test_a_failed_run_posts_its_job_partition_step_and_error_without_secrets(
    failed_run, webhook, tmp_path, monkeypatch
):
    defs, instance, result, _ = failed_run
    monkeypatch.setenv("DSP_API_TOKEN", SECRET)
    sensor = defs.resolve_sensor_def("run_failure_alert")
    outcome = sensor(_context(defs, instance, result, webhook.url, tmp_path / "outbox"))
    assert "sent" in outcome.skip_message
    [body] = webhook.bodies
    text = body["text"]
    assert "daily_marts_job" in text and "2025-03-02" in text
    assert "failed step: dbt_daily_models" in text
    error = text.split("error: ", 1)[1].splitlines()[0]  # the error's first line
    assert error.startswith("Failure: the warehouse ") and "is corrupt or truncated" in error
    assert SECRET not in json.dumps(body) and "[DSP_API_TOKEN]" in text
    assert "hook-secret" not in json.dumps(body)
    assert [b["type"] for b in body["blocks"]] == ["header", "section"]


def test_a_webhook_that_is_down_logs_a_warning_and_the_next_tick_sends_the_alert(
    failed_run, webhook, tmp_path, capfd
):
    defs, instance, result, _ = failed_run
    outbox = tmp_path / "outbox"
    webhook.status = 500
    outcome = defs.resolve_sensor_def("run_failure_alert")(
        _context(defs, instance, result, webhook.url, outbox)
    )
    assert "queued" in outcome.skip_message and len(list(outbox.glob("*.json"))) == 1
    logged = capfd.readouterr().err
    assert "WARNING - the alert webhook answered HTTP 500: 1 alert(s) wait in" in logged
    assert "hook-secret" not in logged and "127.0.0.1" not in logged
    # the webhook is back: the freshness sensor's next tick sends what waited
    webhook.status = 200
    resources = {"alert_webhook": AlertWebhook(url=webhook.url, outbox=str(outbox))}
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        defs.resolve_sensor_def("mart_freshness_sensor")(context)
    assert len(webhook.bodies) == 1 and "daily_marts_job" in webhook.bodies[0]["text"]
    assert not list(outbox.glob("*.json"))


def test_an_unreachable_webhook_is_a_warning_naming_no_url(failed_run, tmp_path, capfd):
    defs, instance, result, _ = failed_run
    closed = Webhook()
    url = closed.url
    closed.close()  # nothing listens there now
    outcome = defs.resolve_sensor_def("run_failure_alert")(
        _context(defs, instance, result, url, tmp_path / "outbox")
    )
    assert "queued" in outcome.skip_message
    logged = capfd.readouterr().err
    assert "the alert webhook is unreachable (ConnectionError)" in logged
    assert "hook-secret" not in logged


def _materialized(instance, key: dg.AssetKey, at: float) -> None:
    instance.report_dagster_event(
        DagsterEvent(
            event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
            event_specific_data=StepMaterializationData(dg.AssetMaterialization(key)),
            job_name=RUNLESS_JOB_NAME,
        ),
        run_id=RUNLESS_RUN_ID,
        timestamp=at,
    )


def test_a_mart_not_updated_within_the_window_raises_one_alert(failed_run, webhook, tmp_path):
    defs, _, _, _ = failed_run
    settings = Settings.from_env()
    window = freshness_window(settings)
    assert window == timedelta(hours=24, minutes=180)  # daily cron + the default grace
    instance = dg.DagsterInstance.ephemeral()
    old, fresh = dg.AssetKey(["marts", "top_tracks_daily"]), dg.AssetKey(["marts", "fct_streams"])
    _materialized(instance, old, time.time() - window.total_seconds() - 60)
    _materialized(instance, fresh, time.time() - 3600)
    sensor = defs.resolve_sensor_def("mart_freshness_sensor")
    resources = {"alert_webhook": AlertWebhook(url=webhook.url, outbox=str(tmp_path / "o"))}
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        sensor(context)
        [body] = webhook.bodies
        assert "marts/top_tracks_daily: last updated" in body["text"]
        assert "fct_streams" not in body["text"] and "27 h" in body["text"]
        sensor(context)  # still stale: no second alert
        assert len(webhook.bodies) == 1
        _materialized(instance, old, time.time() - window.total_seconds() - 1)  # stale again
        sensor(context)
        assert len(webhook.bodies) == 2
    # the same window is each mart's FreshnessPolicy, which the UI shows
    graph = defs.resolve_asset_graph()
    marts = [key for key in graph.get_all_asset_keys() if key.path[0] == "marts"]
    policies = {graph.get(key).freshness_policy.fail_window.to_timedelta() for key in marts}
    assert marts and policies == {window}


def test_without_the_webhook_url_both_alert_sensors_are_stopped_and_say_why(failed_run):
    defs, instance, result, _ = failed_run
    for name in ("run_failure_alert", "mart_freshness_sensor"):
        sensor = defs.resolve_sensor_def(name)
        assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
        assert "MUSIC_ANALYTICS_ALERT_WEBHOOK_URL is not set" in sensor.description
    context = _context(defs, instance, result, "", "/nonexistent")
    outcome = defs.resolve_sensor_def("run_failure_alert")(context)
    assert "is not set" in outcome.skip_message


def test_secrets_are_scrubbed_longest_first():
    secrets = secret_values({"DSP_API_TOKEN": "abcd", "SPOTIFY_CLIENT_SECRET": "abcdef", "X": "z"})
    assert scrub("a abcdef abcd", secrets) == "a [SPOTIFY_CLIENT_SECRET] [DSP_API_TOKEN]"
    assert secret_values({"DSP_API_TOKEN": "ab"}) == {}  # too short to scrub safely


KILLED_SENDER = """
import logging, sys
from pathlib import Path
from music_analytics.lib.core.alerts import deliver
deliver(sys.argv[1], {"text": "disk full"}, Path(sys.argv[2]), logging.getLogger("alerts"))
"""


def test_a_sender_killed_after_queueing_loses_nothing_and_the_next_tick_sends_it_once(
    webhook, tmp_path
):
    outbox = tmp_path / "outbox"
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_SENDER, webhook.url, str(outbox)],
        env={**os.environ, CRASH_AT: "alert_queued"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert webhook.bodies == [] and len(list(outbox.glob("*.json"))) == 1
    assert flush(webhook.url, outbox, logging.getLogger("test")) == 1
    assert flush(webhook.url, outbox, logging.getLogger("test")) == 0
    assert webhook.bodies == [{"text": "disk full"}]


def test_a_hostile_webhook_answer_is_a_failed_delivery_and_an_unreadable_queued_file_is_set_aside(
    tmp_path, caplog
):
    """A webhook that redirects, answers garbage or hangs up; an outbox file that is not JSON."""
    outbox = tmp_path / "outbox"
    (outbox).mkdir()
    (outbox / "00000000000000000001-1.json").write_text("{not json")

    class Hangup(BaseHTTPRequestHandler):
        def do_POST(self):
            self.wfile.write(b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\n\r\n")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hangup)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        with caplog.at_level(logging.WARNING):
            assert not deliver(url, {"text": "x"}, outbox, logging.getLogger("test"))
    finally:
        server.shutdown()
        server.server_close()
    assert len(list(outbox.glob("*.json"))) == 1 and len(list(outbox.glob("*.bad"))) == 1
    assert any("unreadable" in m for m in caplog.messages)
    assert any("answered HTTP 302" in m for m in caplog.messages)  # not followed
