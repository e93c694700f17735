"""dead_runs_sensor's rule: a live-looking run is failed only once none of its processes runs."""

import subprocess
import sys
import time

import dagster as dg
from dagster._core.events import EngineEventData
from dagster._core.storage.dagster_run import DagsterRun

from music_analytics.defs.orchestration.run_recovery import fail_dead_runs


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
