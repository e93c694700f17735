"""Spotify plays: recently-played polls, the privacy export's history, track/artist metadata."""

import shutil
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from music_analytics.defs.resources import DataFolders, SpotifyApi, open_warehouse
from music_analytics.lib.core.landing import landing_files, reject_file
from music_analytics.lib.core.warehouse import ensure_raw_tables, table_row_count
from music_analytics.lib.spotify.errors import (
    SpotifyApiError,
    SpotifyAuthError,
    SpotifyRateLimited,
)
from music_analytics.lib.spotify.history import read_history_file
from music_analytics.lib.spotify.history_load import HistoryStaging, import_history_file
from music_analytics.lib.spotify.history_shapes import SpotifyHistoryError
from music_analytics.lib.spotify.load import last_cursor, record_poll
from music_analytics.lib.spotify.metadata_load import (
    artists_missing_metadata,
    save_artists,
    save_audio_features,
    save_tracks,
    tracks_missing_audio_features,
    tracks_missing_metadata,
)

RAW_SPOTIFY_PLAYS = dg.AssetKey(["raw", "spotify_plays"])
RAW_SPOTIFY_HISTORY = dg.AssetKey(["raw", "spotify_history"])
RAW_SPOTIFY_HISTORY_QUARANTINE = dg.AssetKey(["raw", "spotify_history_quarantine"])
RAW_SPOTIFY_TRACKS = dg.AssetKey(["raw", "spotify_tracks"])
RAW_SPOTIFY_ARTISTS = dg.AssetKey(["raw", "spotify_artists"])
RAW_SPOTIFY_AUDIO_FEATURES = dg.AssetKey(["raw", "spotify_audio_features"])
GAP_CHECK = "no_plays_lost_between_polls"
GROUP = "raw_spotify"
# A long Retry-After is not slept inside the step: the step ends, retried by Dagster when the
# wait is short, otherwise by the next scheduled poll.
MAX_STEP_RETRY_WAIT_SECONDS = 15 * 60


def _api_failure(exc: SpotifyApiError) -> Exception:
    if isinstance(exc, SpotifyAuthError):
        return dg.Failure(description=str(exc), allow_retries=False)
    wait = exc.retry_after_seconds
    if isinstance(exc, SpotifyRateLimited) and wait and wait <= MAX_STEP_RETRY_WAIT_SECONDS:
        return dg.RetryRequested(max_retries=1, seconds_to_wait=wait)
    return dg.Failure(description=str(exc), allow_retries=exc.retryable)


def _require(spotify: SpotifyApi) -> None:
    if not spotify.configured:
        raise dg.Failure(
            description=(
                "Spotify is not connected: set SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET and "
                "run `music-analytics spotify-auth` (see the README's 'Connect Spotify')."
            ),
            allow_retries=False,
        )


@dg.asset(
    key=RAW_SPOTIFY_PLAYS,
    group_name=GROUP,
    kinds={"duckdb", "spotify"},
    pool="duckdb",
    check_specs=[
        dg.AssetCheckSpec(
            GAP_CHECK,
            asset=RAW_SPOTIFY_PLAYS,
            description=(
                "Warns when a poll returned a full page of 50 plays all newer than the cursor: "
                "plays in between were probably lost; import the streaming history for them."
            ),
        )
    ],
)
def spotify_plays(
    context: dg.AssetExecutionContext, warehouse: DuckDBResource, spotify: SpotifyApi
) -> dg.MaterializeResult:
    """Poll recently-played after the stored cursor and keep each new play once.

    Nothing new means one request and no write.
    """
    _require(spotify)
    with open_warehouse(warehouse) as conn:
        ensure_raw_tables(conn)
        after = last_cursor(conn)
    try:  # no warehouse connection is held while waiting on the network
        with spotify.client(log=context.log) as client:
            page = client.recently_played(after)
    except SpotifyApiError as exc:
        raise _api_failure(exc) from None
    with open_warehouse(warehouse) as conn:
        result = record_poll(conn, page, after_ms=after)
        total = table_row_count(conn, "raw.spotify_plays")
    context.log.info(f"{result.plays_new} new play(s) of {result.plays_returned} returned")
    gap = _possible_gap(after, page) if result.full_page else ""
    if gap:
        context.log.warning(
            f"a full page of 50 new plays: plays between {gap} may be lost; import the "
            "streaming history for that period (landing/spotify_history/)"
        )
    return dg.MaterializeResult(
        metadata={
            "plays_returned": result.plays_returned,
            "plays_new": result.plays_new,
            "cursor_after_ms": result.cursor_after_ms or 0,
            "days_touched": dg.MetadataValue.json([d.isoformat() for d in result.days_touched]),
            "possible_gap": gap,
            "dagster/row_count": total,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=GAP_CHECK,
                passed=not result.full_page,
                severity=dg.AssetCheckSeverity.WARN,
                description=f"plays between {gap} may be lost" if gap else None,
                metadata={"possible_gap": gap, "after_ms": after or 0},
            )
        ],
    )


def _possible_gap(after_ms: int | None, page) -> str:
    """The span a full page may have skipped: from the previous cursor to its oldest play."""
    oldest = min(play.played_at for play in page.plays)
    since = (
        datetime.fromtimestamp(after_ms / 1000, tz=UTC).isoformat(timespec="seconds")
        if after_ms
        else "the first poll"
    )
    return f"{since} and {oldest.isoformat(timespec='seconds')}"


class HistoryFilesConfig(dg.Config):
    """Which export files a run imports."""

    paths: list[str] = Field(
        default_factory=list,
        description="Export files (.json or the .zip); empty: all in landing/spotify_history/.",
    )


@dg.multi_asset(
    name="spotify_history_files",
    specs=[
        dg.AssetSpec(
            RAW_SPOTIFY_HISTORY,
            group_name=GROUP,
            kinds={"duckdb", "spotify"},
            description=(
                "Every play of Spotify's privacy export (extended, endsong and account-data "
                "shapes), all fields but the IP address; podcasts and audiobooks by `kind`."
            ),
        ),
        dg.AssetSpec(
            RAW_SPOTIFY_HISTORY_QUARANTINE,
            group_name=GROUP,
            kinds={"duckdb"},
            description="Export rows that could not be read, verbatim, with the reason.",
        ),
    ],
    pool="duckdb",
)
def spotify_history_files(
    context: dg.AssetExecutionContext,
    config: HistoryFilesConfig,
    warehouse: DuckDBResource,
    folders: DataFolders,
):
    """Import export files; each file is one transaction, a file seen before adds nothing.

    Imported files move to archive/spotify_history/; unreadable ones to landing's rejected/.
    """
    landing = folders.spotify_history_landing
    paths = [Path(p) for p in config.paths] or landing_files(landing, "spotify")
    loaded = duplicates = plays = already = quarantined = 0
    kinds = {"music_plays": 0, "episodes": 0, "excluded": 0}
    days: set = set()
    failures: dict[str, str] = {}
    with open_warehouse(warehouse) as conn:
        ensure_raw_tables(conn)
        for path in paths:
            # The file's rows are staged in DuckDB as they are parsed (flat memory), imported
            # member by member once the whole file read cleanly.
            staging = HistoryStaging(conn)
            try:
                files = read_history_file(path, json_limits=folders.json_limits, sink=staging.add)
            except SpotifyHistoryError as exc:
                # Handled: set aside with its reason; the other files still import.
                staging.close()
                failures[str(path)] = str(exc)
                context.log.warning(str(exc))
                if path.parent == landing:
                    reject_file(path, str(exc))
                continue
            for history_file in files:
                result = import_history_file(conn, history_file, staging=staging)
                loaded += result.status == "loaded"
                duplicates += result.status == "duplicate"
                plays += result.plays_loaded
                for kind in kinds:
                    kinds[kind] += getattr(result, kind)
                already += result.plays_already_loaded
                quarantined += result.rows_quarantined
                days.update(result.days_touched)
            staging.close()
            if path.parent == landing:
                folders.spotify_history_archive.mkdir(parents=True, exist_ok=True)
                shutil.move(path, folders.spotify_history_archive / path.name)
        history_total = table_row_count(conn, "raw.spotify_history")
        quarantine_total = table_row_count(conn, "raw.spotify_history_quarantine")
    context.log.info(
        f"{plays} row(s) imported from {loaded} file(s): {kinds['music_plays']} music play(s), "
        f"{kinds['episodes']} episode(s), {kinds['excluded']} excluded (naming nothing "
        f"played); {already} already known, {duplicates} file(s) seen before, {quarantined} "
        "row(s) quarantined"
    )
    yield dg.MaterializeResult(
        asset_key=RAW_SPOTIFY_HISTORY,
        metadata={
            "files_loaded": loaded,
            "files_seen_before": duplicates,
            "plays_loaded": plays,
            **kinds,
            "plays_already_loaded": already,
            "days_touched": dg.MetadataValue.json(sorted(d.isoformat() for d in days)),
            "files_rejected": len(failures),
            "rejected": dg.MetadataValue.json(failures),
            "dagster/row_count": history_total,
        },
    )
    yield dg.MaterializeResult(
        asset_key=RAW_SPOTIFY_HISTORY_QUARANTINE,
        metadata={"rows_quarantined": quarantined, "dagster/row_count": quarantine_total},
    )


def _metadata_spec(key: dg.AssetKey, description: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        key,
        deps=[RAW_SPOTIFY_PLAYS, RAW_SPOTIFY_HISTORY],
        group_name=GROUP,
        kinds={"duckdb", "spotify"},
        description=description,
        skippable=True,
    )


class MetadataConfig(dg.Config):
    """How much metadata one run fetches (the rest waits for the next run)."""

    max_tracks: int = Field(default=500, description="Tracks to look up per run at most.")


@dg.multi_asset(
    name="spotify_metadata",
    specs=[
        _metadata_spec(RAW_SPOTIFY_TRACKS, "Details of every track id played, fetched once."),
        _metadata_spec(RAW_SPOTIFY_ARTISTS, "Artist details (genres) for every artist of a track."),
        _metadata_spec(
            RAW_SPOTIFY_AUDIO_FEATURES,
            "Audio features where the API still gives them (new apps get 403: recorded as "
            "unavailable, never an error).",
        ),
    ],
    pool="duckdb",
    can_subset=True,
)
def spotify_metadata(
    context: dg.AssetExecutionContext,
    config: MetadataConfig,
    warehouse: DuckDBResource,
    spotify: SpotifyApi,
):
    """Fetch details of tracks and artists that have none yet; a play never waits for this."""
    if not spotify.configured:
        context.log.info("Spotify is not connected: no metadata fetched")
        return
    try:
        with spotify.client(log=context.log) as client:
            with open_warehouse(warehouse) as conn:
                ensure_raw_tables(conn)
                track_ids = tracks_missing_metadata(conn, limit=config.max_tracks)
            track_items = client.tracks(track_ids) if track_ids else []
            with open_warehouse(warehouse) as conn:
                tracks = save_tracks(conn, track_items)
                artist_ids = artists_missing_metadata(conn)
                feature_ids = tracks_missing_audio_features(conn)[: config.max_tracks]
            artist_items = client.artists(artist_ids) if artist_ids else []
            features = client.audio_features(feature_ids) if feature_ids else None
    except SpotifyApiError as exc:
        raise _api_failure(exc) from None
    with open_warehouse(warehouse) as conn:
        artists = save_artists(conn, artist_items)
        saved_features = save_audio_features(conn, feature_ids, features) if feature_ids else 0
        counts = {
            RAW_SPOTIFY_TRACKS: (tracks, table_row_count(conn, "raw.spotify_tracks")),
            RAW_SPOTIFY_ARTISTS: (artists, table_row_count(conn, "raw.spotify_artists")),
            RAW_SPOTIFY_AUDIO_FEATURES: (
                saved_features,
                table_row_count(conn, "raw.spotify_audio_features"),
            ),
        }
    for key in context.selected_asset_keys:
        fetched, total = counts[key]
        yield dg.MaterializeResult(
            asset_key=key, metadata={"fetched": fetched, "dagster/row_count": total}
        )
