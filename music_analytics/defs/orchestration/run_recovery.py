"""Runs whose process died: marked failed, their pool slots freed, so later runs go on.

Dagster's default run launcher has no worker health check, so its run monitoring never fails
a run whose worker was killed, and the run keeps its `duckdb` pool slot: every later writer
waits forever. Each run's processes are in its event log (the engine events carry `pid`);
when none of them is alive on this machine any more, the run is marked failed and its slots
are freed. `music-analytics refresh` does this before it starts; under the daemon,
`dead_runs_sensor` does it every 30 seconds. The days such a run was building are still in
the rebuild ledger, so the next build rebuilds them.
"""

import dagster as dg
import psutil
from dagster._core.events import DagsterEventType

_LIVE = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def _pids(instance: dg.DagsterInstance, run_id: str) -> dict[int, float]:
    """The run's processes: pid -> when the event naming it was logged (the earliest)."""
    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.ENGINE_EVENT, limit=200
    ).records
    pids: dict[int, float] = {}
    for record in records:
        entry = record.event_log_entry
        data = entry.dagster_event.engine_event_data
        pid = data.metadata.get("pid") if data else None
        if pid is not None and str(pid.value).isdigit():
            pids[int(pid.value)] = min(entry.timestamp, pids.get(int(pid.value), entry.timestamp))
    return pids


def _alive(pid: int, recorded_at: float) -> bool:
    """True when `pid` runs and had started when it was recorded (else the pid was reused).

    Not the run's start: under the daemon the run launcher starts the worker after the run
    was created, and the worker logs its pid while the run is still STARTING."""
    try:
        return psutil.Process(pid).create_time() <= recorded_at + 1
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def fail_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed every live-looking run none of whose processes is alive; free its slots.

    Returns the ids of the runs marked failed. A run without a recorded process (still being
    launched) is left to Dagster's start timeout.
    """
    failed = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=_LIVE)):
        run = record.dagster_run
        pids = _pids(instance, run.run_id)
        if not pids or any(_alive(pid, recorded_at) for pid, recorded_at in pids.items()):
            continue
        # Slots first: whoever sees the run failed (a test, the UI) sees its slots free too.
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        instance.report_run_failed(
            run,
            message=(
                f"the run's process (pid {', '.join(map(str, sorted(pids)))}) is gone: marked "
                "failed by music-analytics; its pending days are rebuilt by the next build"
            ),
        )
        failed.append(run.run_id)
    return failed


@dg.sensor(
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Marks failed the runs whose process died (kill -9, a crash) and frees their pool "
        "slots, so that the runs queued behind them start."
    ),
)
def dead_runs_sensor(context: dg.SensorEvaluationContext):
    """Housekeeping only: requests no run."""
    failed = fail_dead_runs(context.instance)
    return dg.SkipReason(
        f"marked {len(failed)} dead run(s) failed: {', '.join(failed)}" if failed else "no dead run"
    )
