"""The production topology end to end: PostgreSQL, the code server, the daemon and the
webserver as separate processes (the commands of `music-analytics prod up`).

One test walks through what an operator meets: a dropped file's sensor run, a partition
backfill launched over GraphQL, the code server and the daemon killed (SIGKILL) mid-run,
PostgreSQL restarted, and a full restart that keeps the run history. Runs in `make test`;
skipped only when PostgreSQL is not installed outside CI (in CI, `.ci/run` installs it).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import requests
from dagster._core.events import DagsterEventType

from music_analytics.cli import main
from music_analytics.defs.transform.assets import dbt_daily_models
from music_analytics.lib.events.files import load_event_file
from music_analytics.lib.events.sample import generate_events
from music_analytics.production import services, topology
from music_analytics.production.config import ProductionConfig
from music_analytics.production.postgres import postgres_available
from music_analytics_tests.conftest import module_home

pytestmark = pytest.mark.skipif(
    not postgres_available() and os.environ.get("CI") != "true",
    reason="PostgreSQL 15 is not installed (apt-get install postgresql); CI always runs this",
)
TOPOLOGY = ("code-server", "daemon", "webserver")
WAIT_SECONDS = 240


class _Phases:
    """Prints how long each phase took (`pytest -s` shows it): where the test's time goes."""

    def __init__(self):
        self.last = time.monotonic()

    def __call__(self, name: str) -> None:
        now = time.monotonic()
        print(f"production topology: {name} in {now - self.last:.1f} s", flush=True)
        self.last = now


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(check: Callable[[], object], what: str, timeout: float = WAIT_SECONDS):
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def prod(tmp_path_factory) -> Iterator[ProductionConfig]:
    """The topology on free ports, a fresh home and a throwaway cluster; everything it started
    is stopped (SIGKILL after a short grace) and the cluster removed, also on failure."""
    # As root the cluster's folder belongs to `postgres`: a folder of its own under /tmp
    # (pytest's tmp folders are 0700, which `postgres` cannot enter).
    pg_data = Path(tempfile.mkdtemp(prefix="music-analytics-pg-"))
    env = {
        "MUSIC_ANALYTICS_PG_PORT": str(_free_port()),
        "MUSIC_ANALYTICS_PG_DATA": str(pg_data),
        "MUSIC_ANALYTICS_CODE_SERVER_PORT": str(_free_port()),
        "MUSIC_ANALYTICS_WEBSERVER_PORT": str(_free_port()),
        "MUSIC_ANALYTICS_SENSOR_INTERVAL_SECONDS": "2",
        "MUSIC_ANALYTICS_FILE_STABLE_SECONDS": "1",
    }
    with (
        module_home(tmp_path_factory, "prod", **env) as settings,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.delenv("MUSIC_ANALYTICS_PG_PASSWORD", raising=False)  # `up` generates one
        config = ProductionConfig.from_env(settings)
        try:
            topology.up(config, TOPOLOGY)
            yield config
        finally:
            topology.down(config, grace=2)
            shutil.rmtree(pg_data, ignore_errors=True)


def _instance(config: ProductionConfig) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(config.dagster_home))


def _graphql(config: ProductionConfig, query: str, **variables) -> dict:
    response = requests.post(
        f"{config.webserver_url}/graphql",
        json={"query": query, "variables": variables},
        timeout=30,
    )
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def _graphql_status(config: ProductionConfig) -> int:
    response = requests.post(f"{config.webserver_url}/graphql", json={"query": RUNS}, timeout=30)
    return response.status_code


RUNS = "{ runsOrError { ... on Runs { results { runId status jobName } } } }"
LAUNCH_BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""
BACKFILL_STATUS = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } }
}"""


def _drop_events(config: ProductionConfig, day: date, seed: int) -> list[str]:
    """Write a day's event file aside, move it into landing/events/; the stream ids the loader
    accepts from it."""
    staging = config.state / "staging" / day.isoformat()
    [path] = generate_events(staging, start=day, days=1, events_per_day=150, seed=seed).files
    with duckdb.connect(":memory:") as conn:
        load_event_file(conn, path)
        rows = conn.execute("select distinct stream_id from raw.stream_events").fetchall()
        ids = [row[0] for row in rows]
    os.replace(path, config.settings.events_landing / path.name)
    return ids


def _stream_id_counts(config: ProductionConfig, ids: list[str]) -> dict[str, int]:
    """How often each of `ids` is in the fct_streams export (every day)."""
    files = str(config.settings.exports_dir / "fct_streams" / "*" / "data.parquet")
    with duckdb.connect(":memory:") as conn:
        rows = conn.execute(
            f"select stream_id, count(*) from read_parquet('{files}') "
            "where stream_id in (select unnest(?::varchar[])) group by 1",
            [ids],
        ).fetchall()
    return dict(rows)


def _new_run(instance, job: str, known: set[str]) -> dg.DagsterRun | None:
    runs = [r for r in instance.get_runs(dg.RunsFilter(job_name=job)) if r.run_id not in known]
    return runs[0] if runs else None


def _finished(instance, run_id: str) -> dg.DagsterRun | None:
    run = instance.get_run_by_id(run_id)
    return run if run.is_finished else None


def _in_dbt_step(instance, run_id: str) -> bool:
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_START).records
    return any(r.event_log_entry.step_key == "dbt_daily_models" for r in records)


def test_production_topology(prod: ProductionConfig, monkeypatch, capsys):
    config = prod
    phase = _Phases()
    today = datetime.now(UTC).date()
    instance = _instance(config)

    # A wrong password: `prod up` says in one line what is wrong, without the password.
    wrong = "wrong-" + os.urandom(6).hex()
    with monkeypatch.context() as patch:
        patch.setenv("MUSIC_ANALYTICS_PG_PASSWORD", wrong)
        assert main(["prod", "up"]) == 1
    refused = capsys.readouterr().err
    assert "password authentication failed" in refused
    assert len(refused.strip().splitlines()) == 1 and wrong not in refused
    phase("wrong password refused")

    # 1. A dropped file: the sensor's run loads it and builds its day's marts. Meanwhile
    # 2. a backfill of two other days, launched through GraphQL, finishes as one run (the
    # marts' single-run backfill policy); the two runs queue on the `duckdb` pool.
    first_day = today - timedelta(days=10)
    first_ids = _drop_events(config, first_day, seed=1)
    params = {
        "assetSelection": [{"path": list(key.path)} for key in dbt_daily_models.keys],
        "partitionNames": [str(first_day - timedelta(days=3)), str(first_day - timedelta(2))],
    }
    launched = _graphql(config, LAUNCH_BACKFILL, params=params)["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    run = _wait(lambda: _new_run(instance, "event_ingest_job", set()), "the sensor's run")
    run = _wait(lambda: _finished(instance, run.run_id), "the sensor's run to finish")
    assert run.status == dg.DagsterRunStatus.SUCCESS
    counts = _stream_id_counts(config, first_ids)
    assert len(counts) == len(first_ids) and set(counts.values()) == {1}
    phase("sensor run")

    def backfill_done():
        status = _graphql(config, BACKFILL_STATUS, id=backfill_id)["partitionBackfillOrError"]
        return status["status"] not in ("REQUESTED", "CANCELING", "FAILING") and status

    assert _wait(backfill_done, "the backfill to finish")["status"] == "COMPLETED_SUCCESS"
    backfill_runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
    assert [r.status for r in backfill_runs] == [dg.DagsterRunStatus.SUCCESS]
    phase("backfill")

    # 3. PostgreSQL restarted: the webserver answers again (it keeps a pooled connection per
    # storage: a request on a connection the restart cut gets a 500, and SQLAlchemy then
    # drops the pool, so the next requests answer); the daemon's sensor launching the next
    # run, and that run, show the daemon and the code server reconnected.
    topology.cluster(config).restart()
    answers = [_graphql_status(config) for _ in range(5)]
    assert answers[-2:] == [200, 200], answers
    phase("PostgreSQL restart")

    # 4. A run killed mid-build: the code server (with its run worker) and then the daemon get
    # SIGKILL while the run's dbt step runs; restarted, the run is marked failed, its
    # `duckdb` slot freed, and the pending-rebuilds run builds the day: each id once.
    known = {r.run_id for r in instance.get_runs()}
    killed_ids = _drop_events(config, today - timedelta(days=5), seed=2)
    doomed = _wait(lambda: _new_run(instance, "event_ingest_job", known), "the second file's run")
    _wait(lambda: _in_dbt_step(instance, doomed.run_id), "the run's dbt step", timeout=120)
    for name in ("code-server", "daemon"):
        services.signal_group(services.pid_of(config, name), signal.SIGKILL)
        _wait(lambda name=name: services.pid_of(config, name) is None, f"{name} to die")
    services.start(config, "code-server")
    services.start(config, "daemon")
    failed = _wait(lambda: _finished(instance, doomed.run_id), "the killed run to be failed")
    assert failed.status == dg.DagsterRunStatus.FAILURE
    slots = instance.event_log_storage.get_concurrency_info("duckdb").claimed_slots
    assert doomed.run_id not in {slot.run_id for slot in slots}
    rebuild = _wait(
        lambda: _new_run(instance, "daily_marts_job", known | {doomed.run_id}),
        "the run that rebuilds the killed run's days",
    )
    rebuild = _wait(lambda: _finished(instance, rebuild.run_id), "the rebuild to finish")
    assert rebuild.status == dg.DagsterRunStatus.SUCCESS
    counts = _stream_id_counts(config, killed_ids)
    assert len(counts) == len(killed_ids) and set(counts.values()) == {1}

    phase("kill and recovery")

    # 5. A full restart (every service and PostgreSQL): the run history is still there.
    before = {r["runId"]: r["status"] for r in _graphql(config, RUNS)["runsOrError"]["results"]}
    instance.dispose()
    topology.down(config, grace=2)
    assert set(topology.status(config).values()) == {None}
    topology.up(config, TOPOLOGY)
    after = {r["runId"]: r["status"] for r in _graphql(config, RUNS)["runsOrError"]["results"]}
    assert after == before and after[doomed.run_id] == "FAILURE"

    phase("full restart")

    # The password is in no log of any service, nor PostgreSQL's.
    password = config.password()
    logs = [*config.logs.glob("*.log"), topology.cluster(config).log]
    assert [log.name for log in logs if password in log.read_text(errors="replace")] == []
