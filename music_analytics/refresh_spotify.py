"""Spotify in `music-analytics refresh`: import settled exports, poll once when connected."""

from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from music_analytics.defs.spotify.assets import (
    RAW_SPOTIFY_HISTORY,
    RAW_SPOTIFY_PLAYS,
    spotify_history_files,
    spotify_metadata,
    spotify_plays,
)
from music_analytics.lib.core.settings import Settings
from music_analytics.run_results import failure_message


@dataclass
class SpotifyRefreshResult:
    """What the Spotify part of a refresh did."""

    history_plays_loaded: int = 0  # music plays; episodes and excluded rows apart
    history_episodes: int = 0
    history_excluded: int = 0
    polled_plays_new: int = 0
    failures: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


def _run(defs, instance, job_name: str, assets, run_config: dict, result: SpotifyRefreshResult):
    """The job's raw steps only: the marts are built once, after every source has loaded."""
    keys = [key for asset in assets for key in asset.keys]
    run = defs.resolve_job_def(job_name).execute_in_process(
        instance=instance, run_config=run_config, raise_on_error=False, asset_selection=keys
    )
    if not run.success:
        result.failures.append(failure_message(run, job_name))
    for event in run.get_asset_materialization_events():
        materialization = event.materialization
        metadata = materialization.metadata
        if materialization.asset_key == RAW_SPOTIFY_HISTORY:
            result.history_plays_loaded += metadata["music_plays"].value
            result.history_episodes += metadata["episodes"].value
            result.history_excluded += metadata["excluded"].value
            result.rejected += list(metadata["rejected"].value.values())
        elif materialization.asset_key == RAW_SPOTIFY_PLAYS:
            result.polled_plays_new += metadata["plays_new"].value


def refresh_spotify(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    settings: Settings,
    landed: list[Path],
    run_config: dict,
) -> SpotifyRefreshResult:
    """Import the settled export files `landed`, then poll once if Spotify is connected."""
    result = SpotifyRefreshResult()
    if landed:
        op_config = {"paths": [str(path) for path in landed]}
        config = {**run_config, "ops": {spotify_history_files.op.name: {"config": op_config}}}
        assets = [spotify_history_files, spotify_metadata]
        _run(defs, instance, "spotify_history_job", assets, config, result)
    if settings.spotify_configured:
        _run(
            defs,
            instance,
            "spotify_poll_job",
            [spotify_plays, spotify_metadata],
            run_config,
            result,
        )
    return result
