"""Spotify assets, sensor, schedule and `spotify-auth` through Dagster, against a local fake."""

import json
import os
import time
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from music_analytics.cli import main
from music_analytics.defs.partitions import newest_partition_key
from music_analytics.defs.resources import DataFolders, build_resources
from music_analytics.defs.spotify.assets import (
    GAP_CHECK,
    spotify_history_files,
    spotify_metadata,
    spotify_plays,
)
from music_analytics.defs.spotify.sensors import (
    build_spotify_poll_schedule,
    poll_cron,
    spotify_history_sensor,
)
from music_analytics.lib.core.settings import Settings, SettingsError
from music_analytics.lib.spotify.sample import generate_history_export
from music_analytics_tests.conftest import query
from music_analytics_tests.fakes.spotify_api import FakeSpotify

POLL = [spotify_plays, spotify_metadata]
START = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)


@pytest.fixture
def spotify(httpserver, settings, monkeypatch) -> tuple[FakeSpotify, Settings]:
    """A fake Spotify and settings connected to it (the refresh token in the token file)."""
    fake = FakeSpotify(httpserver)
    monkeypatch.setenv("SPOTIFY_CLIENT_ID", fake.client_id)
    monkeypatch.setenv("SPOTIFY_CLIENT_SECRET", fake.client_secret)
    monkeypatch.setenv("SPOTIFY_API_BASE_URL", fake.api_base_url)
    monkeypatch.setenv("SPOTIFY_ACCOUNTS_BASE_URL", fake.accounts_base_url)
    token_file = settings.home / "secrets" / "spotify_refresh_token"
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text(fake.refresh_token + "\n")
    return fake, Settings.from_env()


def poll(settings, instance=None):
    return dg.materialize(
        POLL, resources=build_resources(settings), instance=instance, raise_on_error=False
    )


def failure_text(result) -> str:
    [event] = result.get_step_failure_events()
    data = event.step_failure_data
    return data.user_failure_data.description if data.user_failure_data else data.error.message


def test_polls_keep_each_play_once_and_fetch_metadata(spotify):
    fake, settings = spotify
    for n in range(3):
        fake.add_play(START + timedelta(minutes=4 * n), f"t{n}", artist_ids=["a1"])
    first = poll(settings)
    assert first.success, failure_text(first)
    fake.add_play(START + timedelta(minutes=20), "t3", artist_ids=["a2"])
    second = poll(settings)
    assert second.success
    assert query(
        settings, "select count(*), count(distinct (played_at, track_id)) from raw.spotify_plays"
    ) == [(4, 4)]
    assert query(settings, "select count(*) from raw.spotify_tracks") == [(4,)]
    assert query(settings, "select count(*) from raw.spotify_artists") == [(2,)]
    # audio features are refused to new apps: recorded as unavailable, nothing fails
    assert query(settings, "select bool_or(available) from raw.spotify_audio_features") == [
        (False,)
    ]
    [plays] = second.asset_materializations_for_node(spotify_plays.op.name)
    assert plays.metadata["plays_new"].value == 1
    assert plays.metadata["days_touched"].value == ["2025-03-03"]
    # nothing new: one request, nothing written
    before = fake.requests["recently_played"]
    third = poll(settings)
    assert third.success
    assert fake.requests["recently_played"] == before + 1
    assert query(settings, "select count(*) from raw.spotify_polls") == [(2,)]


def test_a_full_page_of_new_plays_warns_of_a_gap(spotify):
    fake, settings = spotify
    for n in range(60):
        fake.add_play(START + timedelta(minutes=3 * n), f"t{n}")
    result = poll(settings)
    assert result.success
    [check] = result.get_asset_check_evaluations()
    assert (check.check_name, check.passed) == (GAP_CHECK, False)
    assert check.severity == dg.AssetCheckSeverity.WARN
    # the gap is named: from the first poll to the oldest of the 50 plays returned
    oldest = (START + timedelta(minutes=3 * 10)).isoformat(timespec="seconds")
    assert check.metadata["possible_gap"].value == f"the first poll and {oldest}"


def test_a_revoked_token_fails_at_once_and_says_what_to_do(spotify):
    fake, settings = spotify
    fake.add_play(START, "t1")
    fake.revoke()
    result = poll(settings)
    assert not result.success
    text = failure_text(result)
    assert "music-analytics spotify-auth" in text
    assert fake.refresh_token not in text and fake.client_secret not in text
    # not retried: one failed attempt
    assert len(result.get_step_failure_events()) == 1


def test_a_long_rate_limit_ends_the_step_without_sleeping(spotify):
    fake, settings = spotify
    fake.add_play(START, "t1")
    fake.rate_limit(7200)
    began = time.monotonic()
    result = poll(settings)
    assert time.monotonic() - began < 30
    assert not result.success
    assert "7200" in failure_text(result)
    assert query(settings, "select count(*) from raw.spotify_plays") == [(0,)]


def test_not_connected_fails_clearly(settings):
    result = poll(settings)
    assert not result.success
    assert "spotify-auth" in failure_text(result)


def test_export_import_is_idempotent_and_rejects_a_bad_file(settings):
    export = generate_history_export(
        settings.spotify_history_landing, start=date(2025, 3, 1), days=3, plays_per_day=20, seed=4
    )
    bad = settings.spotify_history_landing / "StreamingHistory0.json"
    bad.write_text("{not json")
    resources = build_resources(settings)
    result = dg.materialize(
        [spotify_history_files, spotify_metadata], resources=resources, raise_on_error=False
    )
    assert result.success  # a bad file is set aside; the export beside it still loads
    [history] = [
        m
        for m in result.asset_materializations_for_node(spotify_history_files.op.name)
        if m.asset_key == dg.AssetKey(["raw", "spotify_history"])
    ]
    assert history.metadata["files_rejected"].value == 1
    assert "StreamingHistory0.json" in json.dumps(history.metadata["rejected"].value)
    rejected = settings.spotify_history_landing / "rejected"
    assert (rejected / bad.name).exists()
    assert "StreamingHistory0.json" in (rejected / f"{bad.name}.error.txt").read_text()
    assert not export.exists()  # imported: moved to the archive
    [(music, others)] = query(
        settings,
        "select count(*) filter (where kind = 'music'), count(*) filter (where kind <> 'music') "
        "from raw.spotify_history",
    )
    assert music > 40 and others > 0
    # the same export again adds nothing
    again = generate_history_export(
        settings.spotify_history_landing, start=date(2025, 3, 1), days=3, plays_per_day=20, seed=4
    )
    second = dg.materialize([spotify_history_files, spotify_metadata], resources=resources)
    assert second.success and not again.exists()
    assert query(settings, "select count(*) from raw.spotify_history") == [(music + others,)]


def test_history_sensor_runs_the_settled_exports_in_one_run(settings):
    folders = DataFolders(home=str(settings.home), file_stable_seconds=1)
    export = generate_history_export(
        settings.spotify_history_landing, start=date(2025, 3, 1), days=1, plays_per_day=5, seed=1
    )
    past = time.time() - 60
    os.utime(export, (past, past))

    def tick(cursor=None):
        context = dg.build_sensor_context(cursor=cursor, resources={"folders": folders})
        result = spotify_history_sensor(context)
        return ([] if isinstance(result, dg.SkipReason) else [result]), context.cursor

    requests, cursor = tick()
    assert requests == []
    [request], _ = tick(cursor)
    assert request.partition_key == newest_partition_key()  # its marts build in the same run
    config = request.run_config["ops"][spotify_history_files.op.name]["config"]
    assert config == {"paths": [str(export)]}


def test_poll_schedule_skips_until_connected(settings, spotify):
    _, connected = spotify
    when = datetime(2025, 3, 3, 10, 30, tzinfo=UTC)
    skipped = build_spotify_poll_schedule(settings)(
        dg.build_schedule_context(scheduled_execution_time=when)
    )
    assert isinstance(skipped, dg.SkipReason)
    request = build_spotify_poll_schedule(connected)(
        dg.build_schedule_context(scheduled_execution_time=when)
    )
    assert request.run_key == "spotify-poll:2025-03-03T10:30"
    assert poll_cron(30) == "*/30 * * * *" and poll_cron(120) == "0 */2 * * *"
    with pytest.raises(SettingsError):
        poll_cron(45)


def test_spotify_auth_stores_the_refresh_token_for_the_resource(spotify, monkeypatch, capsys):
    fake, settings = spotify
    settings.spotify_refresh_token_file.unlink()

    def browser(prompt: str) -> str:
        url = next(
            line.strip() for line in capsys.readouterr().out.splitlines() if "authorize" in line
        )
        return fake.approve(url)

    monkeypatch.setattr("builtins.input", browser)
    assert main(["spotify-auth"]) == 0
    token_file = settings.spotify_refresh_token_file
    assert token_file.read_text().strip()
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    assert "Connected" in capsys.readouterr().out
    assert Settings.from_env().spotify_configured


def test_import_counts_music_plays_episodes_and_excluded_rows_apart(settings):
    """A Video file holds music plays and video-podcast episodes: each row by its URIs; a row
    naming nothing is stored, excluded from every mart and counted as such."""
    from music_analytics_tests.lib.spotify.test_history import EXTENDED_ROW

    blank = {
        k: None for k in EXTENDED_ROW if k.startswith(("master", "spotify", "episode", "audio"))
    }
    music = {**EXTENDED_ROW, "ts": "2024-03-01T10:00:00Z"}
    episode = {**EXTENDED_ROW, **blank, "ts": "2024-03-01T11:00:00Z", "episode_name": "Ep",
               "episode_show_name": "Show", "spotify_episode_uri": "spotify:episode:v"}  # fmt: skip
    nothing = {**EXTENDED_ROW, **blank, "ts": "2024-03-01T12:00:00Z"}
    video = settings.spotify_history_landing / "Streaming_History_Video_2024.json"
    video.write_text(json.dumps([music, episode, nothing]))
    result = dg.materialize([spotify_history_files], resources=build_resources(settings))
    [history, _] = result.asset_materializations_for_node(spotify_history_files.op.name)
    counts = {k: history.metadata[k].value for k in ("music_plays", "episodes", "excluded")}
    assert counts == {"music_plays": 1, "episodes": 1, "excluded": 1}
    assert history.metadata["plays_loaded"].value == 3
    assert query(settings, "select kind from raw.spotify_history order by ended_at") == [
        ("music",),
        ("podcast",),
        ("unknown",),
    ]
