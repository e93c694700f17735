"""The one-time Spotify authorization-code flow behind `music-analytics spotify-auth`."""

from __future__ import annotations

import pytest

from music_analytics.lib.spotify.errors import SpotifyAuthError
from music_analytics.lib.spotify.oauth import authorization_url, exchange_code, new_state
from music_analytics_tests.fakes.spotify_api import FakeSpotify

REDIRECT = "http://127.0.0.1:8888/callback"


@pytest.fixture
def fake(httpserver) -> FakeSpotify:
    return FakeSpotify(httpserver)


def test_authorization_round_trip(fake):
    state = new_state()
    url = authorization_url("cid", REDIRECT, state=state, accounts_base_url=fake.accounts_base_url)
    assert url.startswith(fake.accounts_base_url + "/authorize?")
    redirected = fake.approve(url)
    assert fake.authorize_requests[-1]["scope"] == "user-read-recently-played"
    accounts = fake.accounts_base_url
    refresh = exchange_code(
        "cid", "secret", REDIRECT, redirected, state=state, accounts_base_url=accounts
    )
    assert refresh == fake.refresh_token and fake.code_exchanges == 1
    with pytest.raises(SpotifyAuthError, match="spotify-auth"):  # codes work once
        exchange_code(
            "cid", "secret", REDIRECT, redirected, accounts_base_url=fake.accounts_base_url
        )


@pytest.mark.parametrize(
    ("pasted", "match"),
    [
        ("", "empty"),
        (f"{REDIRECT}?error=access_denied&state=s1", "declined"),
        ("http://example.com/other?code=c&state=s1", "redirect URI"),
        (f"{REDIRECT}?state=s1", "no `code`"),
        (f"{REDIRECT}?code=c&state=other", "state"),
    ],
)
def test_exchange_code_rejects_bad_urls(fake, pasted, match):
    with pytest.raises(ValueError, match=match):
        exchange_code(
            "cid", "secret", REDIRECT, pasted, state="s1", accounts_base_url=fake.accounts_base_url
        )
    assert fake.requests["token"] == 0
