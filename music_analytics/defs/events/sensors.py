"""The sensor that turns each new, fully written event file into one ingest run."""

import json

import dagster as dg

from music_analytics.defs.events.assets import stream_event_files
from music_analytics.defs.resources import DataFolders
from music_analytics.lib.core.landing import file_run_key, loaded_keys, settled_files
from music_analytics.lib.events.files import list_event_files

event_ingest_job = dg.define_asset_job(
    "event_ingest_job",
    selection=dg.AssetSelection.assets(stream_event_files),
    description="Load event files from landing/events/ into the raw tables.",
)


@dg.sensor(
    job=event_ingest_job,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launches one ingest run per new event file once its size has stopped changing.",
)
def event_files_sensor(context: dg.SensorEvaluationContext, folders: DataFolders):
    """A file is ready when its size and mtime match the previous tick and it is a few seconds old.

    The run key is the file's name, size and mtime: the same file never runs twice, and a
    file rewritten in place runs again (its content hash then decides whether it loads).
    Files in the folder's ledger (loaded by any run, `refresh` included) get no run.
    """
    previous: dict[str, list[int]] = json.loads(context.cursor) if context.cursor else {}
    files = list_event_files(folders.events_landing)
    ready, seen = settled_files(files, previous, folders.file_stable_seconds)
    loaded = loaded_keys(folders.events_landing)  # e.g. by `music-analytics refresh`
    for path in ready:
        if file_run_key(path) in loaded:
            continue
        yield dg.RunRequest(
            run_key=file_run_key(path),
            run_config=dg.RunConfig(ops={"stream_event_files": {"config": {"paths": [str(path)]}}}),
            tags={"music_analytics/event_file": path.name},
        )
    context.update_cursor(json.dumps(seen))
