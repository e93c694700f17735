"""Spotify jobs, the poll schedule and the sensor that imports dropped exports."""

import json

import dagster as dg

from music_analytics.defs.resources import DataFolders
from music_analytics.defs.spotify.assets import (
    spotify_history_files,
    spotify_metadata,
    spotify_plays,
)
from music_analytics.lib.core.landing import file_run_key, settled_files
from music_analytics.lib.core.settings import Settings, SettingsError
from music_analytics.lib.spotify.history import list_history_files

spotify_poll_job = dg.define_asset_job(
    "spotify_poll_job",
    selection=dg.AssetSelection.assets(spotify_plays, spotify_metadata),
    description="Poll the listener's recently-played plays, then fetch metadata of new tracks.",
)

spotify_history_job = dg.define_asset_job(
    "spotify_history_job",
    selection=dg.AssetSelection.assets(spotify_history_files, spotify_metadata),
    description="Import Spotify privacy-export files, then fetch metadata of new tracks.",
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
        return dg.RunRequest(run_key=f"spotify-poll:{tick}")

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
    """One run per settled file; imported files leave the landing folder."""
    previous: dict[str, list[int]] = json.loads(context.cursor) if context.cursor else {}
    files = list_history_files(folders.spotify_history_landing)
    ready, seen = settled_files(files, previous, folders.file_stable_seconds)
    for path in ready:
        yield dg.RunRequest(
            run_key=file_run_key(path),
            run_config=dg.RunConfig(
                ops={spotify_history_files.op.name: {"config": {"paths": [str(path)]}}}
            ),
            tags={"music_analytics/spotify_export": path.name},
        )
    context.update_cursor(json.dumps(seen))
