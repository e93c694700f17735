"""Spotify in `music-analytics refresh`: import waiting exports, poll once when connected."""

from dataclasses import dataclass, field
from datetime import date

import dagster as dg

from music_analytics.defs.orchestration.sensors import REFRESH_TAG, days_touched
from music_analytics.defs.spotify.assets import RAW_SPOTIFY_HISTORY, RAW_SPOTIFY_PLAYS
from music_analytics.lib.core.settings import Settings
from music_analytics.lib.spotify.history import list_history_files
from music_analytics.run_results import failure_message


@dataclass
class SpotifyRefreshResult:
    """What the Spotify part of a refresh did."""

    history_plays_loaded: int = 0
    polled_plays_new: int = 0
    failures: list[str] = field(default_factory=list)
    days_touched: set[date] = field(default_factory=set)


def _run(defs, instance, job_name: str, run_config: dict, result: SpotifyRefreshResult):
    run = defs.resolve_job_def(job_name).execute_in_process(
        instance=instance, run_config=run_config, raise_on_error=False, tags=REFRESH_TAG
    )
    if not run.success:
        result.failures.append(failure_message(run, job_name))
    for event in run.get_asset_materialization_events():
        materialization = event.materialization
        metadata = materialization.metadata
        if materialization.asset_key == RAW_SPOTIFY_HISTORY:
            result.history_plays_loaded += metadata["plays_loaded"].value
        elif materialization.asset_key == RAW_SPOTIFY_PLAYS:
            result.polled_plays_new += metadata["plays_new"].value
        else:
            continue
        result.days_touched.update(days_touched(metadata))


def refresh_spotify(
    defs: dg.Definitions, instance: dg.DagsterInstance, settings: Settings, run_config: dict
) -> SpotifyRefreshResult:
    """Import the exports in landing/spotify_history/, then poll once if Spotify is connected."""
    result = SpotifyRefreshResult()
    if list_history_files(settings.spotify_history_landing):
        _run(defs, instance, "spotify_history_job", run_config, result)
    if settings.spotify_configured:
        _run(defs, instance, "spotify_poll_job", run_config, result)
    return result
