"""`refresh` imports a waiting export and polls Spotify once; a play seen by both counts once
in fct_streams and in the listener's marts (real spotipy against a fake, real dbt)."""

from datetime import date, timedelta

import dagster as dg
import duckdb
import pytest
from pytest_httpserver import HTTPServer

from music_analytics.lib.spotify.history import read_history_file
from music_analytics.lib.spotify.sample import generate_history_export
from music_analytics.refresh import refresh
from music_analytics.user_deletion import delete_user
from music_analytics_tests.conftest import event, module_home, query, write_lines
from music_analytics_tests.fakes.spotify_api import FakeSpotify


@pytest.fixture(scope="module")
def refreshed(tmp_path_factory):
    server = HTTPServer()
    server.start()
    fake = FakeSpotify(server)
    env = {
        "SPOTIFY_CLIENT_ID": fake.client_id,
        "SPOTIFY_CLIENT_SECRET": fake.client_secret,
        "SPOTIFY_REFRESH_TOKEN": fake.refresh_token,
        "SPOTIFY_API_BASE_URL": fake.api_base_url,
        "SPOTIFY_ACCOUNTS_BASE_URL": fake.accounts_base_url,
    }
    with module_home(tmp_path_factory, "refresh_spotify", **env) as settings:
        export = generate_history_export(
            settings.spotify_history_landing,
            start=date(2025, 3, 1),
            days=2,
            plays_per_day=15,
            seed=11,
        )
        music = [
            play
            for history_file in read_history_file(export)
            for play in history_file.plays
            if play.kind == "music"
        ]
        # the last two plays of the export were also polled, plus one play after it
        for play in music[-2:]:
            fake.add_play(play.ended_at, play.track_id, duration_ms=play.ms_played)
        fake.add_play(music[-1].ended_at + timedelta(minutes=5), "polledonly")
        summary = refresh(
            settings=settings, instance=dg.DagsterInstance.ephemeral(), log_level="WARNING"
        )
        yield settings, summary, music
    server.clear()
    server.stop()


def test_refresh_imports_the_export_and_polls_once(refreshed):
    settings, summary, music = refreshed
    assert summary.spotify_failures == []
    assert summary.spotify_polled_plays == 3
    assert summary.spotify_history_plays >= len(music)
    assert not list(settings.spotify_history_landing.glob("*.zip"))


def test_a_play_in_both_sources_counts_once(refreshed):
    settings, _, music = refreshed
    by_source = dict(
        query(
            settings,
            "select source, count(*) from marts.fct_streams where source like 'spotify%' "
            "group by source",
        )
    )
    assert by_source == {"spotify_history": len(music), "spotify_api": 1}
    [(plays,)] = query(settings, "select sum(plays) from marts.listening_history")
    assert plays == len(music) + 1


def test_deleting_the_listener_removes_their_plays_from_raw_marts_and_exports(refreshed):
    """`delete-user <MUSIC_ANALYTICS_SPOTIFY_USER>`: the listener's polled and imported plays
    leave raw, fct_streams, the listener's marts and the exports; an events user stays. (Last
    in the module: it empties the listener's data.)"""
    settings, _, music = refreshed
    write_lines(
        settings.events_landing / "other.ndjson",
        [event(1, user_id="someone-else", stream_start_time="2025-03-01 10:00:00")],
    )
    result = delete_user(settings, settings.spotify_user)
    assert result.raw["raw.spotify_plays"] == 3
    assert result.raw["raw.spotify_history"] >= len(music)
    assert result.marts["marts.listening_history"] > 0
    assert result.marts["marts.fct_streams"] == len(music) + 1
    assert result.rebuilt and set(result.marts_left.values()) == {0}
    for table in ("spotify_plays", "spotify_history", "spotify_history_quarantine"):
        assert query(settings, f"select count(*) from raw.{table}") == [(0,)]
    assert query(settings, "select user_id, source from marts.fct_streams") == [
        ("someone-else", "events")
    ]
    exported = settings.exports_dir / "fct_streams"
    with duckdb.connect() as conn:
        users = conn.execute(
            f"select distinct user_id from read_parquet('{exported}/*/*.parquet')"
        ).fetchall()
        assert users == [("someone-else",)]
        history = list((settings.exports_dir / "listening_history").glob("*/*.parquet"))
        if history:
            files = [str(f) for f in history]
            assert conn.execute("select count(*) from read_parquet(?)", [files]).fetchone() == (0,)
    # the poll cursor stays: the next refresh does not fetch the deleted plays again
    refresh(settings=settings, instance=dg.DagsterInstance.ephemeral(), log_level="WARNING")
    assert query(settings, "select count(*) from raw.spotify_plays") == [(0,)]
