"""SpotifyPlaysClient with the real spotipy against FakeSpotify over real HTTP."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from music_analytics.lib.spotify.client import SpotifyPlaysClient
from music_analytics.lib.spotify.errors import (
    SpotifyApiError,
    SpotifyAuthError,
    SpotifyQuotaExceeded,
    SpotifyRateLimited,
    SpotifyUnavailable,
)
from music_analytics.lib.spotify.oauth import authorization_url, exchange_code, new_state
from music_analytics_tests.fakes.spotify_api import FakeSpotify

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
REDIRECT = "http://127.0.0.1:8888/callback"


@pytest.fixture
def fake(httpserver) -> FakeSpotify:
    return FakeSpotify(httpserver)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(fake, sleeps):
    with SpotifyPlaysClient(
        fake.client_id,
        fake.client_secret,
        fake.refresh_token,
        api_base_url=fake.api_base_url,
        accounts_base_url=fake.accounts_base_url,
        sleep=sleeps.append,
    ) as client:
        yield client


def add_plays(fake: FakeSpotify, n: int, start: datetime = T0) -> list[datetime]:
    times = [start + timedelta(minutes=4 * i) for i in range(n)]
    for i, moment in enumerate(times):
        fake.add_play(moment, f"track{i % 7}", artist_ids=[f"artist{i % 3}", "artistx"])
    return times


def test_first_poll_parses_plays(fake, client):
    times = add_plays(fake, 3)
    page = client.recently_played(None)
    assert [p.played_at for p in page.plays] == sorted(times, reverse=True)
    newest = page.plays[0]
    assert newest.track_id == "track2" and newest.track_name == "Track track2"
    assert newest.artist_ids == ("artist2", "artistx")
    assert newest.artist_names == ("Artist artist2", "Artist artistx")
    assert newest.album_id == "album-track2" and newest.album_release_date == "2024-05-17"
    assert newest.duration_ms == 200_000 and newest.isrc and newest.context_type == "playlist"
    assert newest.raw["track"]["id"] == "track2"
    assert page.cursor_after_ms == newest.played_at_ms == round(times[-1].timestamp() * 1000)
    assert page.full_page is False
    assert fake.requests["recently_played"] == 1 and fake.token_refreshes == 1
    assert fake.request_log[-1][1]["limit"] == "50"


def test_overlapping_polls_return_each_play_once(fake, client):
    add_plays(fake, 4)
    first = client.recently_played(None)
    add_plays(fake, 3, start=T0 + timedelta(hours=1))
    second = client.recently_played(first.cursor_after_ms)
    keys = [(p.played_at, p.track_id) for p in first.plays + second.plays]
    assert len(keys) == len(set(keys)) == 7
    assert fake.request_log[-1][1]["after"] == str(first.cursor_after_ms)

    before = fake.requests["recently_played"]
    third = client.recently_played(second.cursor_after_ms)
    assert third.plays == [] and third.cursor_after_ms == second.cursor_after_ms
    assert not third.full_page
    assert fake.requests["recently_played"] == before + 1
    assert fake.token_refreshes == 1  # the access token is reused


def test_full_page_is_flagged(fake, client):
    add_plays(fake, 60)
    page = client.recently_played(None)
    assert len(page.plays) == 50 and page.full_page is True
    later = client.recently_played(page.cursor_after_ms)
    assert later.plays == [] and not later.full_page


def test_short_retry_after_is_slept_and_retried(fake, client, sleeps):
    add_plays(fake, 2)
    fake.rate_limit(2)
    page = client.recently_played(None)
    assert len(page.plays) == 2
    assert sleeps == [2.0] and fake.requests["recently_played"] == 2


def test_huge_retry_after_raises_at_once(fake, client, sleeps):
    fake.rate_limit(3600)
    with pytest.raises(SpotifyRateLimited) as info:
        client.recently_played(None)
    assert sleeps == [] and fake.requests["recently_played"] == 1
    error = info.value
    assert error.retryable and error.retry_after_seconds == 3600 and error.http_status == 429
    assert "in 3600 s (at " in str(error) and "UTC)" in str(error)


def test_quota_exceeded(fake, client, sleeps):
    fake.quota_exceeded()
    with pytest.raises(SpotifyQuotaExceeded) as info:
        client.recently_played(None)
    assert not info.value.retryable and "QUOTA_EXCEEDED" in str(info.value)
    assert sleeps == [] and fake.requests["recently_played"] == 1


def test_5xx_then_success(fake, client, sleeps):
    add_plays(fake, 1)
    fake.unavailable(503, times=2)
    page = client.recently_played(None)
    assert len(page.plays) == 1 and fake.requests["recently_played"] == 3
    assert len(sleeps) == 2 and 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0


def test_5xx_forever(fake, client, sleeps):
    fake.unavailable(502, times=10)
    with pytest.raises(SpotifyUnavailable) as info:
        client.recently_played(None)
    assert info.value.retryable and "HTTP 502" in str(info.value)
    assert fake.requests["recently_played"] == 4 and len(sleeps) == 3


def test_connection_error_is_retried_then_unavailable(fake, sleeps):
    client = SpotifyPlaysClient(
        "cid",
        "secret",
        "refresh-1",
        api_base_url="http://127.0.0.1:9/v1/",  # discard port: refused
        accounts_base_url=fake.accounts_base_url,
        sleep=sleeps.append,
        max_attempts=2,
    )
    with client, pytest.raises(SpotifyUnavailable) as info:
        client.recently_played(None)
    assert info.value.retryable and "ConnectionError" in str(info.value) and len(sleeps) == 1


def test_invalid_grant_is_an_auth_error(fake, client, sleeps):
    fake.revoke()
    with pytest.raises(SpotifyAuthError) as info:
        client.recently_played(None)
    assert not info.value.retryable
    assert "music-analytics spotify-auth" in str(info.value)
    assert "invalid_grant" in str(info.value) and sleeps == []
    assert fake.requests["token"] == 1


def test_revoked_mid_life_is_an_auth_error(fake, client):
    client.recently_played(None)
    fake.revoke()  # also ends the access token: 401, then a refresh that fails
    with pytest.raises(SpotifyAuthError):
        client.recently_played(None)


def test_expired_access_token_is_refreshed(fake, client):
    add_plays(fake, 1)
    client.recently_played(None)
    fake.expire_access_tokens()
    page = client.recently_played(None)
    assert len(page.plays) == 1
    assert fake.token_refreshes == 2 == client.token_refreshes
    assert fake.auth_headers[-1] != fake.auth_headers[1]


def test_short_lived_tokens_are_refreshed_before_use(fake, client):
    fake.access_token_ttl = 30  # spotipy refreshes tokens with under 60 s left
    client.recently_played(None)
    client.recently_played(None)
    assert fake.token_refreshes == 2 and fake.requests["recently_played"] == 2


def test_audio_features_403_is_none(fake, client, caplog):
    add_plays(fake, 1)
    with caplog.at_level(logging.INFO, logger="music_analytics.lib.spotify.client"):
        assert client.audio_features(["track0"]) is None
    assert "unavailable" in caplog.text
    fake.audio_features_available = True
    assert client.audio_features(["track0"])["track0"]["tempo"] == 120.0


def test_batch_metadata(fake, client):
    add_plays(fake, 7)
    tracks = client.tracks(["track0", "track1", "nope", "track0"])
    assert [t["id"] for t in tracks] == ["track0", "track1"]
    artists = client.artists([f"artist{i}" for i in range(3)])
    assert [a["id"] for a in artists] == ["artist0", "artist1", "artist2"]
    assert fake.requests["tracks"] == 1 and fake.requests["artists"] == 1
    assert fake.requests["track"] == 0


def test_batch_403_falls_back_to_single_calls(fake, client):
    add_plays(fake, 7)
    fake.batch_available = False
    tracks = client.tracks(["track0", "track1", "nope"])
    assert [t["id"] for t in tracks] == ["track0", "track1"]
    assert fake.requests["tracks"] == 1 and fake.requests["track"] == 3
    client.tracks(["track2"])
    assert fake.requests["tracks"] == 1  # the fallback is remembered
    artists = client.artists(["artist0", "artistx"])
    assert [a["id"] for a in artists] == ["artist0", "artistx"]
    assert fake.requests["artists"] == 1 and fake.requests["artist"] == 2


def test_other_4xx_is_not_retried(fake, client, sleeps):
    fake.script("recently_played", 400, {"error": {"status": 400, "message": "Bad limit"}})
    with pytest.raises(SpotifyApiError) as info:
        client.recently_played(None)
    assert not info.value.retryable and "Bad limit" in str(info.value) and sleeps == []


def test_no_secret_in_logs_or_errors(fake, client, caplog, sleeps):
    add_plays(fake, 2)
    caught: list[Exception] = []
    with caplog.at_level(logging.DEBUG):
        client.recently_played(None)
        fake.expire_access_tokens()
        fake.rate_limit(1)
        fake.unavailable(500)
        client.recently_played(None)
        client.audio_features(["track0"])
        state = new_state()
        url = authorization_url(
            "cid", REDIRECT, state=state, accounts_base_url=fake.accounts_base_url
        )
        redirected = fake.approve(url)
        accounts = fake.accounts_base_url
        exchange_code(
            "cid", "secret", REDIRECT, redirected, state=state, accounts_base_url=accounts
        )
        for scripted in (fake.quota_exceeded, lambda: fake.rate_limit(9999), fake.revoke):
            scripted()
            try:
                client.recently_played(None)
            except SpotifyApiError as exc:
                caught.append(exc)
    assert len(caught) == 3
    code = redirected.split("code=")[1].split("&")[0]
    secrets = [fake.client_secret, fake.refresh_token, code, "access-", "Basic Y2lk"]
    records = [r for r in caplog.records if not r.name.startswith("werkzeug")]
    assert any(r.name.startswith("spotipy") for r in records)  # spotipy's DEBUG lines were seen
    texts = [r.getMessage() for r in records] + [str(e) for e in caught] + [repr(client)]
    for text in texts:
        for secret in secrets:
            assert secret not in text, (secret, text)


def _spotipy_http_errors(caplog) -> list[tuple[str, str]]:
    """spotipy's `HTTP Error for ...` records as (level, the part after the URL's host)."""
    return [
        (r.levelname, r.getMessage().split("/v1/")[1].split(" with ")[0])
        for r in caplog.records
        if r.name == "spotipy.client" and r.getMessage().startswith("HTTP Error for ")
    ]


def test_handled_http_errors_are_logged_at_debug_not_as_errors(fake, client, caplog, sleeps):
    add_plays(fake, 3)
    fake.batch_available = False
    with caplog.at_level(logging.DEBUG):
        client.recently_played(None)
        fake.expire_access_tokens()  # 401: refreshed
        fake.unavailable(503)  # 503: retried
        client.recently_played(None)
        client.tracks(["track0", "track1"])  # batch 403: one at a time
        client.audio_features(["track0"])  # 403: unavailable to new apps
    logged = _spotipy_http_errors(caplog)
    assert [path for _, path in logged] == [
        "me/player/recently-played",
        "me/player/recently-played",
        "tracks/?ids=track0,track1",
        "audio-features/?ids=track0",
    ]
    assert {level for level, _ in logged} == {"DEBUG"}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(sleeps) == 1
    # Not even at DEBUG when DEBUG is off: nothing reaches a console at WARNING.
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        client.audio_features(["track1"])
    assert caplog.records == []


def test_unhandled_http_errors_keep_spotipys_error_line(fake, client, caplog):
    fake.script("recently_played", 403, {"error": {"status": 403, "message": "Forbidden"}})
    fake.script("tracks", 400, {"error": {"status": 400, "message": "Bad ids"}})
    with caplog.at_level(logging.WARNING):
        with pytest.raises(SpotifyApiError, match="HTTP 403"):
            client.recently_played(None)
        with pytest.raises(SpotifyApiError, match="HTTP 400"):
            client.tracks(["track0"])
    assert _spotipy_http_errors(caplog) == [
        ("ERROR", "me/player/recently-played"),
        ("ERROR", "tracks/?ids=track0"),
    ]
