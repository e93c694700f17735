"""The sensor that turns each new, fully written event file into one ingest run."""

import json
import time

import dagster as dg

from music_analytics.defs.events.assets import stream_event_files
from music_analytics.defs.resources import DataFolders
from music_analytics.lib.event_files import list_event_files

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
    """
    previous: dict[str, list[int]] = json.loads(context.cursor) if context.cursor else {}
    seen: dict[str, list[int]] = {}
    now_ns = time.time_ns()
    for path in list_event_files(folders.events_landing):
        stat = path.stat()
        signature = [stat.st_size, stat.st_mtime_ns]
        seen[str(path)] = signature
        settled = now_ns - stat.st_mtime_ns >= folders.file_stable_seconds * 1_000_000_000
        if previous.get(str(path)) != signature or not settled:
            continue
        yield dg.RunRequest(
            run_key=f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}",
            run_config=dg.RunConfig(ops={"stream_event_files": {"config": {"paths": [str(path)]}}}),
            tags={"music_analytics/event_file": path.name},
        )
    context.update_cursor(json.dumps(seen))
