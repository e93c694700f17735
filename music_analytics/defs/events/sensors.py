"""The events job (ingest, then the marts it touched and their exports) and its sensor."""

import hashlib
import json

import dagster as dg

from music_analytics.defs.events.assets import stream_event_files
from music_analytics.defs.orchestration.jobs import with_downstream_marts
from music_analytics.defs.partitions import newest_partition_key
from music_analytics.defs.resources import DataFolders
from music_analytics.lib.core.landing import file_run_key, landing_files, loaded_keys, settled_files

event_ingest_job = dg.define_asset_job(
    "event_ingest_job",
    selection=with_downstream_marts(stream_event_files),
    description=(
        "Load event files from landing/events/ into the raw tables, then rebuild the marts of "
        "the days they touched and write their exports, in one run."
    ),
)


@dg.sensor(
    job=event_ingest_job,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Launches one run per batch of new event files once their size has stopped changing: "
        "ingest, marts and exports."
    ),
)
def event_files_sensor(context: dg.SensorEvaluationContext, folders: DataFolders):
    """A file is ready when its size and mtime match the previous tick and it is a few seconds
    old (lib/core/landing.settled_files); every ready file of a tick goes into one run.

    The run key is made of the files' names, sizes and mtimes: the same batch never runs
    twice, and a file rewritten in place runs again (its content hash then decides whether it
    loads). Files in the folder's ledger (loaded by any run, `refresh` included) get no run.
    """
    previous: dict[str, list[int]] = json.loads(context.cursor) if context.cursor else {}
    files = landing_files(folders.events_landing, "events")
    ready, seen = settled_files(files, previous, folders.file_stable_seconds)
    loaded = loaded_keys(folders.events_landing)  # e.g. by `music-analytics refresh`
    batch = [path for path in ready if file_run_key(path) not in loaded]
    context.update_cursor(json.dumps(seen))
    if not batch:
        return dg.SkipReason("no new settled event file")
    keys = "\n".join(file_run_key(path) for path in batch)
    return dg.RunRequest(
        run_key="events:" + hashlib.sha256(keys.encode()).hexdigest()[:16],
        partition_key=newest_partition_key(),  # the marts step also builds the days loaded
        run_config=dg.RunConfig(
            ops={"stream_event_files": {"config": {"paths": [str(p) for p in batch]}}}
        ),
        tags={"music_analytics/event_files": str(len(batch))},
    )
