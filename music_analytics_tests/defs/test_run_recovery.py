"""Runs whose process died are marked failed and free their pool slot; live ones are left."""

import signal
import subprocess
import sys
import time

import dagster as dg
from dagster._core.events import EngineEventData
from dagster._core.storage.dagster_run import DagsterRun

from music_analytics.definitions import build_definitions
from music_analytics.defs.orchestration.run_recovery import dead_runs_sensor, fail_dead_runs


def _run_with_process(instance, settings, pid: int) -> dg.DagsterRun:
    job = build_definitions(settings).resolve_job_def("daily_marts_job")
    run = instance.create_run_for_job(job, status=dg.DagsterRunStatus.STARTED)
    instance.report_engine_event(
        f"Executing steps in process (pid: {pid})", run, EngineEventData.in_process(pid)
    )
    return run


def test_a_killed_run_is_marked_failed_and_its_slot_freed(settings):
    instance = dg.DagsterInstance.ephemeral()
    worker = subprocess.Popen(["sleep", "60"])
    dead = _run_with_process(instance, settings, worker.pid)
    instance.event_log_storage.set_concurrency_slots("duckdb", 1)
    instance.event_log_storage.claim_concurrency_slot("duckdb", dead.run_id, "dbt_daily_models")
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    alive = subprocess.Popen(["sleep", "60"])
    try:
        live = _run_with_process(instance, settings, alive.pid)
        assert fail_dead_runs(instance) == [dead.run_id]
        assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(live.run_id).status == dg.DagsterRunStatus.STARTED
        info = instance.event_log_storage.get_concurrency_info("duckdb")
        assert info.active_slot_count == 0  # the next run's step can claim it
        skip = dead_runs_sensor(dg.build_sensor_context(instance=instance))
        assert isinstance(skip, dg.SkipReason) and "no dead run" in skip.skip_message
    finally:
        alive.kill()
        alive.wait()


def test_a_worker_started_after_the_run_was_created_is_alive_until_it_dies():
    """Under the daemon the launcher starts the worker seconds after the run was created and
    it logs its pid while the run is STARTING: that run is alive, not a reused pid."""
    with dg.DagsterInstance.ephemeral() as instance:
        run = instance.add_run(
            DagsterRun(job_name="event_ingest_job", status=dg.DagsterRunStatus.STARTING)
        )
        time.sleep(1.5)  # the worker starts after the run's creation (+1 s tolerance)
        worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            instance.report_engine_event(
                "Started process for run", run, EngineEventData.in_process(worker.pid)
            )
            assert fail_dead_runs(instance) == []
        finally:
            worker.kill()
            worker.wait()
        assert fail_dead_runs(instance) == [run.run_id]
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
