"""The one Definitions object of the music_analytics code location."""

import copy

import dagster as dg

from music_analytics.defs.console import console_logger
from music_analytics.defs.dsp_reports.assets import dsp_report_tables, dsp_report_zips
from music_analytics.defs.dsp_reports.schedules import build_dsp_reports_schedule
from music_analytics.defs.dsp_reports.sensors import dsp_landing_sensor, dsp_report_job
from music_analytics.defs.events.assets import stream_event_files
from music_analytics.defs.events.sensors import event_files_sensor, event_ingest_job
from music_analytics.defs.orchestration.alerts import (
    build_alert_webhook,
    build_mart_freshness_sensor,
    build_run_failure_alert,
    freshness_window,
    with_mart_freshness,
)
from music_analytics.defs.orchestration.jobs import daily_marts_job
from music_analytics.defs.orchestration.run_recovery import dead_runs_sensor
from music_analytics.defs.orchestration.schedules import build_daily_marts_schedule
from music_analytics.defs.orchestration.sensors import pending_rebuilds_sensor
from music_analytics.defs.partitions import with_start_date
from music_analytics.defs.resources import build_resources
from music_analytics.defs.serving.exports import export_specs
from music_analytics.defs.spotify.assets import (
    spotify_history_files,
    spotify_metadata,
    spotify_plays,
)
from music_analytics.defs.spotify.sensors import (
    build_spotify_poll_schedule,
    spotify_history_job,
    spotify_history_sensor,
    spotify_poll_job,
)
from music_analytics.defs.transform.assets import build_dbt_daily_models
from music_analytics.lib.core.settings import Settings


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """All assets, jobs, schedules and sensors, with resources pointing at `settings.home` and
    partitions starting at `settings.start_date`; the settings are read here, not at import."""
    settings = settings or Settings.from_env()
    dbt_daily_models = build_dbt_daily_models(settings.engine)
    assets = [
        stream_event_files,
        dsp_report_zips,
        dsp_report_tables,
        spotify_plays,
        spotify_history_files,
        spotify_metadata,
        dbt_daily_models,
    ]
    assets = with_mart_freshness(
        with_start_date(assets, settings.start_date), freshness_window(settings)
    )
    mart_keys = [key for key in dbt_daily_models.keys if key.path[0] == "marts"]
    return dg.Definitions(
        assets=[*assets, *export_specs],
        jobs=[
            event_ingest_job,
            dsp_report_job,
            spotify_poll_job,
            spotify_history_job,
            daily_marts_job,
        ],
        schedules=[
            build_daily_marts_schedule(settings),
            build_dsp_reports_schedule(settings),
            build_spotify_poll_schedule(settings),
        ],
        sensors=_with_interval(
            [
                event_files_sensor,
                dsp_landing_sensor,
                spotify_history_sensor,
                pending_rebuilds_sensor,
                dead_runs_sensor,
                build_run_failure_alert(settings),
                build_mart_freshness_sensor(settings, mart_keys),
            ],
            settings.sensor_interval_seconds,
        ),
        resources={**build_resources(settings), "alert_webhook": build_alert_webhook(settings)},
        # Dagster's console logger, with handled failures (dg.Failure) at DEBUG: defs/console.py
        loggers={"console": console_logger},
        # Steps run in the run's own process: no interpreter start and code load per step.
        # Runs still queue on the pools; one run's steps run one after another anyway.
        executor=dg.in_process_executor,
    )


def _with_interval(sensors: list[dg.SensorDefinition], seconds: int) -> list:
    """The sensors, each ticking at most every `seconds` (0: at its own minimum interval).

    MUSIC_ANALYTICS_SENSOR_INTERVAL_SECONDS is for tests and demos that cannot wait 15-60 s a
    tick; SensorDefinition has no public copy-with-interval, so the copies set the field."""
    if not seconds:
        return sensors
    copies = []
    for sensor in sensors:
        faster = copy.copy(sensor)
        faster._min_interval = seconds  # noqa: SLF001 - see the docstring
        copies.append(faster)
    return copies


@dg.definitions
def defs() -> dg.Definitions:
    """What `dagster dev` and the code server load: the settings of their environment."""
    return build_definitions()
