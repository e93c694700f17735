"""Spotify jobs, the poll schedule and the sensor that imports dropped exports."""

import hashlib
import json

import dagster as dg

from music_analytics.defs.orchestration.jobs import with_downstream_marts
from music_analytics.defs.partitions import newest_partition_key
from music_analytics.defs.resources import DataFolders
from music_analytics.defs.spotify.assets import (
    spotify_history_files,
    spotify_metadata,
    spotify_plays,
)
from music_analytics.lib.core.landing import file_run_key, landing_files, settled_files
from music_analytics.lib.core.settings import Settings, SettingsError

spotify_poll_job = dg.define_asset_job(
    "spotify_poll_job",
    selection=with_downstream_marts(spotify_plays, spotify_metadata),
    description=(
        "Poll the listener's recently-played plays, fetch metadata of new tracks, then rebuild "
        "the marts of the days with new plays (nothing when no play is new)."
    ),
)

spotify_history_job = dg.define_asset_job(
    "spotify_history_job",
    selection=with_downstream_marts(spotify_history_files, spotify_metadata),
    description=(
        "Import Spotify privacy-export files, fetch metadata of new tracks, then rebuild the "
        "marts of every day imported, in one dbt run however many years the export spans."
    ),
)


def poll_cron(minutes: int) -> str:
    """A cron for 'every `minutes` minutes' (a divisor of 60, or whole hours dividing 24)."""
    if minutes < 60 and 60 % minutes == 0:
        return f"*/{minutes} * * * *"
    if minutes % 60 == 0 and 24 % (minutes // 60) == 0:
        return f"0 */{minutes // 60} * * *"
    raise SettingsError(
        f"MUSIC_ANALYTICS_SPOTIFY_POLL_MINUTES={minutes}: use a divisor of 60 (e.g. 15, 30) "
        "or whole hours that divide 24"
    )


def build_spotify_poll_schedule(settings: Settings) -> dg.ScheduleDefinition:
    """Polls every MUSIC_ANALYTICS_SPOTIFY_POLL_MINUTES (default 30: the API keeps only the
    last 50 plays, about 2.5 hours of listening). Off until the user turns it on."""

    @dg.schedule(
        name="spotify_poll_schedule",
        job=spotify_poll_job,
        cron_schedule=poll_cron(settings.spotify_poll_minutes),
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Polls recently-played (turn on after `music-analytics spotify-auth`).",
    )
    def spotify_poll_schedule(context: dg.ScheduleEvaluationContext):
        if not settings.spotify_configured:
            return dg.SkipReason(
                "Spotify is not connected: set SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET and "
                "run `music-analytics spotify-auth`"
            )
        tick = context.scheduled_execution_time.strftime("%Y-%m-%dT%H:%M")
        return dg.RunRequest(
            run_key=f"spotify-poll:{tick}",
            partition_key=newest_partition_key(context.scheduled_execution_time),
        )

    return spotify_poll_schedule


@dg.sensor(
    job=spotify_history_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Imports each Spotify privacy export (the ZIP or its JSON files) dropped into "
        "landing/spotify_history/, once it has stopped changing."
    ),
)
def spotify_history_sensor(context: dg.SensorEvaluationContext, folders: DataFolders):
    """One run per batch of settled files (a lifetime export's JSON files build together);
    imported files leave the landing folder."""
    previous: dict[str, list[int]] = json.loads(context.cursor) if context.cursor else {}
    files = landing_files(folders.spotify_history_landing, "spotify")
    ready, seen = settled_files(files, previous, folders.file_stable_seconds)
    context.update_cursor(json.dumps(seen))
    if not ready:
        return dg.SkipReason("no new settled export file")
    keys = "\n".join(file_run_key(path) for path in ready)
    return dg.RunRequest(
        run_key="spotify-export:" + hashlib.sha256(keys.encode()).hexdigest()[:16],
        partition_key=newest_partition_key(),  # the marts step also builds the days imported
        run_config=dg.RunConfig(
            ops={spotify_history_files.op.name: {"config": {"paths": [str(p) for p in ready]}}}
        ),
        tags={"music_analytics/spotify_export_files": str(len(ready))},
    )
