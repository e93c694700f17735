"""The sensor that builds whatever the rebuild ledger holds, when nothing else is building."""

from pathlib import Path

import dagster as dg

from music_analytics.defs.orchestration.jobs import daily_marts_job
from music_analytics.defs.partitions import partition_bounds
from music_analytics.defs.resources import DataFolders
from music_analytics.defs.transform.assets import plan_marts
from music_analytics.lib.core.plans import outside_message
from music_analytics.lib.core.rebuild_ledger import read_pending
from music_analytics.lib.core.warehouse_file import WarehouseFileError, connect_warehouse

# Jobs whose runs build marts: while one is queued or running, it builds what is pending.
BUILDING_JOBS = (
    "daily_marts_job",
    "event_ingest_job",
    "spotify_history_job",
    "spotify_poll_job",
)
_ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def _read_pending(warehouse: Path):
    """The ledger, read through a short read-only connection (None while a run writes).

    Raises WarehouseFileError for a broken file (no tick repairs it)."""
    if not warehouse.exists():
        return None
    try:
        conn = connect_warehouse(warehouse, read_only=True, lock_waits=())
    except WarehouseFileError as exc:
        if exc.reason == "locked":  # a writer has it: next tick
            return None
        raise
    with conn:
        exists = conn.execute(
            "select count(*) from duckdb_tables() "
            "where schema_name = 'raw' and table_name = 'pending_rebuilds'"
        ).fetchone()[0]
        return read_pending(conn) if exists else None


@dg.sensor(
    job=daily_marts_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Builds the days in the rebuild ledger (loaded, not yet built: a DSP report, or a run "
        "that died) in one run, when no other run is building marts."
    ),
)
def pending_rebuilds_sensor(context: dg.SensorEvaluationContext, folders: DataFolders):
    """One run on the newest pending day's partition: it builds every pending day."""
    building = [
        run
        for run in context.instance.get_runs(dg.RunsFilter(statuses=_ACTIVE), limit=50)
        if run.job_name in BUILDING_JOBS
    ]
    if building:
        return dg.SkipReason(f"run {building[0].run_id} builds marts now")
    try:
        pending = _read_pending(folders.warehouse_path)
    except WarehouseFileError as exc:
        return dg.SkipReason(str(exc))
    if pending is None:
        return dg.SkipReason("the warehouse is being written (or does not exist yet)")
    first, last = partition_bounds(folders.first_day)
    plan = plan_marts(pending, first=first, last=last)
    if plan.outside:
        context.log.warning(outside_message(plan.outside, first, last))
    if not plan.days:
        return dg.SkipReason("nothing pending")
    return dg.RunRequest(run_key=f"pending:{plan.up_to}", partition_key=plan.days[-1].isoformat())
