"""The one Definitions object of the music_analytics code location."""

import dagster as dg

from music_analytics.defs.events.assets import stream_event_files
from music_analytics.defs.events.sensors import event_files_sensor, event_ingest_job
from music_analytics.defs.orchestration.jobs import daily_marts_job
from music_analytics.defs.orchestration.schedules import daily_marts_schedule
from music_analytics.defs.orchestration.sensors import marts_after_raw_load_sensor
from music_analytics.defs.resources import build_resources
from music_analytics.defs.transform.assets import dbt_daily_models
from music_analytics.lib.settings import Settings


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """All assets, jobs, schedules and sensors, with resources pointing at `settings.home`."""
    return dg.Definitions(
        assets=[stream_event_files, dbt_daily_models],
        jobs=[event_ingest_job, daily_marts_job],
        schedules=[daily_marts_schedule],
        sensors=[event_files_sensor, marts_after_raw_load_sensor],
        resources=build_resources(settings or Settings.from_env()),
    )


defs = build_definitions()
