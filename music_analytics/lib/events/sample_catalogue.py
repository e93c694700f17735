"""The sample events' fixed world: a catalogue of tracks, artists and albums, and the users.

Derived from the seed: 2,000 tracks by 400 artists on 700 albums (a track's genre is its
artist's), Zipf-like track popularity, 5,000 users with a home country, a preferred device, a
genre taste and a heavy-tailed activity level. Everything the hot loop of `sample_lines` needs is
precomputed here as JSON fragments and cumulative weights.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import accumulate
from random import Random

TRACKS = 2_000
ARTISTS = 400
ALBUMS = 700
USERS = 5_000
ZIPF_EXPONENT = 1.07

GENRE_WEIGHTS: dict[str, float] = {
    "pop": 22,
    "hip-hop": 16,
    "rock": 12,
    "electronic": 9,
    "latin": 8,
    "r&b": 7,
    "indie": 6,
    "k-pop": 5,
    "country": 5,
    "metal": 3,
    "jazz": 2,
    "classical": 2,
    "reggae": 2,
    "blues": 1,
}
COUNTRY_WEIGHTS: dict[str, float] = {
    "US": 30,
    "GB": 9,
    "DE": 8,
    "BR": 8,
    "IN": 7,
    "MX": 6,
    "FR": 5,
    "JP": 5,
    "ES": 4,
    "CA": 4,
    "AU": 3,
    "SE": 3,
    "NL": 3,
    "IT": 3,
    "KR": 2,
}
DEVICE_WEIGHTS: dict[str, float] = {
    "mobile": 55,
    "desktop": 20,
    "smart_speaker": 10,
    "tablet": 7,
    "tv": 5,
    "car": 3,
}
# Local taste on top of the global genre mix: a user from KR leans to k-pop more often, etc.
_COUNTRY_GENRE_BOOST: dict[str, dict[str, float]] = {
    "US": {"country": 2.0, "hip-hop": 1.3},
    "GB": {"indie": 1.8, "rock": 1.2},
    "DE": {"electronic": 1.8, "metal": 1.5},
    "BR": {"latin": 4.0},
    "MX": {"latin": 5.0},
    "ES": {"latin": 3.0},
    "FR": {"hip-hop": 1.5},
    "JP": {"k-pop": 2.0, "electronic": 1.5},
    "SE": {"metal": 2.0, "pop": 1.3},
    "KR": {"k-pop": 8.0},
    "IN": {"pop": 1.3},
}
TASTE_SLOTS = 20  # a user's genre taste as 20 equally likely slots: a genre index or "any"
DEVICE_SLOTS = 20  # a user's devices as 20 equally likely slots
_OTHER_DEVICE_SLOTS = 3  # slots drawn from the global mix: ~85% of streams on the preferred one


class Catalogue:
    """Tracks and users as precomputed JSON fragments and cumulative weights for the hot loop."""

    __slots__ = (
        "track_parts",
        "track_lengths",
        "track_complete_p",
        "track_skip_span",
        "pick_cum",
        "pick_tracks",
        "user_cum",
        "user_heads",
        "user_tails",
        "user_slots",
        "id_base",
    )

    def __init__(self, seed: int) -> None:
        rng = Random(seed)
        genres = list(GENRE_WEIGHTS)
        genre_weights = list(GENRE_WEIGHTS.values())
        n_genres = len(genres)
        self.id_base = rng.randrange(100, 1000) * 10**13

        # Artists: every genre has at least one; popularity is heavy-tailed.
        artist_genre = list(range(n_genres)) + rng.choices(
            range(n_genres), weights=genre_weights, k=ARTISTS - n_genres
        )
        rng.shuffle(artist_genre)
        artist_pop = [rng.lognormvariate(0, 1.2) for _ in range(ARTISTS)]
        # Albums: one per artist, the rest to prolific artists; tracks: one per album, the rest
        # spread over albums, so every album has a track and every artist an album.
        productivity = [rng.paretovariate(1.5) for _ in range(ARTISTS)]
        album_artist = list(range(ARTISTS)) + rng.choices(
            range(ARTISTS), weights=productivity, k=ALBUMS - ARTISTS
        )
        rng.shuffle(album_artist)
        track_album = list(range(ALBUMS)) + rng.choices(range(ALBUMS), k=TRACKS - ALBUMS)
        rng.shuffle(track_album)

        length_mode = {"classical": 380, "jazz": 300, "metal": 280, "electronic": 260}
        parts, lengths, complete_p, skip_span, track_genre = [], [], [], [], []
        for t, album in enumerate(track_album):
            artist = album_artist[album]
            g = artist_genre[artist]
            length = round(rng.triangular(120, 420, length_mode.get(genres[g], 200)))
            parts.append(
                f'"track_id": "track_{t + 1}", "artist_id": "artist_{artist + 1}", '
                f'"album_id": "album_{album + 1}", "genre": "{genres[g]}", '
            )
            lengths.append(length)
            # Short tracks are finished ~65% of the time, the longest ~35%.
            complete_p.append(0.65 - 0.30 * (length - 120) / 300)
            skip_span.append(int(0.8 * length) - 5 + 1)  # skipped: 5 s .. 80% of the length
            track_genre.append(g)
        self.track_parts = tuple(parts)
        self.track_lengths = tuple(lengths)
        self.track_complete_p = tuple(complete_p)
        self.track_skip_span = tuple(skip_span)

        # Popularity: rank tracks by artist popularity times a per-track factor, then weight
        # each by 1 / rank**s. Index n_genres of pick_* is the whole catalogue.
        score = [
            artist_pop[album_artist[track_album[t]]] * rng.lognormvariate(0, 0.8)
            for t in range(TRACKS)
        ]
        by_rank = sorted(range(TRACKS), key=lambda t: -score[t])
        weight = [0.0] * TRACKS
        for rank, t in enumerate(by_rank, start=1):
            weight[t] = 1.0 / rank**ZIPF_EXPONENT
        pick_tracks: list[tuple[int, ...]] = [
            tuple(t for t in by_rank if track_genre[t] == g) for g in range(n_genres)
        ]
        pick_tracks.append(tuple(by_rank))
        self.pick_tracks = tuple(pick_tracks)
        self.pick_cum = tuple(tuple(accumulate(weight[t] for t in ts)) for ts in pick_tracks)

        # Users: home country, preferred device, 1-3 favourite genres, activity level.
        countries = rng.choices(list(COUNTRY_WEIGHTS), weights=COUNTRY_WEIGHTS.values(), k=USERS)
        devices = list(DEVICE_WEIGHTS)
        preferred = rng.choices(range(len(devices)), weights=DEVICE_WEIGHTS.values(), k=USERS)
        self.user_cum = tuple(accumulate(rng.lognormvariate(0, 1.0) for _ in range(USERS)))
        heads, tails, slots = [], [], []
        for u, country in enumerate(countries):
            heads.append(f'"user_id": "user_{u + 1}", ')
            by_device = [f'"device_type": "{d}", "country": "{country}"}}\n' for d in devices]
            others = rng.choices(by_device, weights=DEVICE_WEIGHTS.values(), k=_OTHER_DEVICE_SLOTS)
            tails.append((by_device[preferred[u]],) * (DEVICE_SLOTS - len(others)) + tuple(others))
            boost = _COUNTRY_GENRE_BOOST.get(country, {})
            local = [w * boost.get(genres[g], 1.0) for g, w in enumerate(genre_weights)]
            favourites: list[int] = []
            wanted = rng.choices((1, 2, 3), weights=(3, 4, 3))[0]
            while len(favourites) < wanted:
                g = rng.choices(range(n_genres), weights=local)[0]
                if g not in favourites:
                    favourites.append(g)
            leaning = rng.uniform(0.5, 0.9)  # share of streams from the favourite genres
            shares = (0.6, 0.3, 0.1)[:wanted]
            user_slots: list[int] = []
            for g, share in zip(favourites, shares, strict=True):
                user_slots += [g] * round(TASTE_SLOTS * leaning * share / sum(shares))
            user_slots = user_slots[:TASTE_SLOTS]
            user_slots += [n_genres] * (TASTE_SLOTS - len(user_slots))
            slots.append(tuple(user_slots))
        self.user_heads = tuple(heads)
        self.user_tails = tuple(tails)
        self.user_slots = tuple(slots)


@lru_cache(maxsize=4)
def catalogue(seed: int) -> Catalogue:
    """The seed's catalogue, built once per process (about 70 ms)."""
    return Catalogue(seed)
