"""The sample DSP reports' catalogue: one set of tracks per seed, shared by every DSP.

Same track_id, isrc, track and album names everywhere, so cross-DSP marts line up; the catalogue
is prefix-stable (a larger one starts with a smaller one); popularity is heavy-tailed.
"""

from __future__ import annotations

from functools import lru_cache
from random import Random

DEFAULT_CATALOG_SIZE = 2_000
_PARETO_ALPHA = 1.1  # track popularity ~ Pareto: streams by rank fall off like a Zipf law

_WORDS_A = (
    "Summer", "Midnight", "Golden", "Electric", "Silent", "Neon", "Velvet", "Broken", "Wild",
    "Coastal", "Crimson", "Paper", "Northern", "Lucky", "Hollow", "Burning", "Blue", "Distant",
    "Sweet", "Lonely", "Crystal", "Faded", "Sunday", "Little",
)  # fmt: skip
_WORDS_B = (
    "Breeze", "Dreams", "Heart", "Lights", "River", "Highway", "Echoes", "Fire", "Rain",
    "Hearts", "Skyline", "Waves", "Shadows", "Garden", "Letters", "Signal", "Horizon", "Motel",
    "Parade", "Satellite", "Avenue", "Static", "Mirrors", "Ocean",
)  # fmt: skip
_ISRC_COUNTRIES = ("US", "GB", "DE", "FR", "SE", "BR", "JP", "NL", "CA", "AU")
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_YOUTUBE_CHARS = BASE62 + "-_"


class Catalog:
    """Tracks as parallel tuples; track i is the same in every catalogue of the seed."""

    __slots__ = (
        "track_id",
        "track_name",
        "album_id",
        "album_name",
        "isrc",
        "spotify_id",
        "youtube_id",
        "apple_id",
        "length",
        "popularity",
    )

    def __init__(self, seed: int, size: int) -> None:
        rng = Random(f"music-analytics-dsp-catalog/{seed}")
        choice, randrange, random = rng.choice, rng.randrange, rng.random
        track_id, track_name, album_id, album_name, isrc = [], [], [], [], []
        spotify_id, youtube_id, apple_id, length, popularity = [], [], [], [], []
        album_no, album_left, album_title, registrant, year = 0, 0, "", "", 0
        for i in range(size):
            if album_left == 0:  # a new album of 1-12 tracks
                album_no += 1
                album_left = 1 + min(11, int(rng.expovariate(0.25)))
                album_title = f"{choice(_WORDS_A)} {choice(_WORDS_B)}"
                registrant = "".join(choice(_ALNUM) for _ in range(3))
                year = randrange(5, 27)
            album_left -= 1
            track_id.append(5_001 + i)
            track_name.append(f"{choice(_WORDS_A)} {choice(_WORDS_B)}")
            album_id.append(1_800 + album_no)
            album_name.append(album_title)
            isrc.append(f"{choice(_ISRC_COUNTRIES)}{registrant}{year:02d}{i % 100_000:05d}")
            spotify_id.append("".join(choice(BASE62) for _ in range(22)))
            youtube_id.append("".join(choice(_YOUTUBE_CHARS) for _ in range(11)))
            apple_id.append(str(1_000_000_000 + randrange(500_000_000)))
            length.append(round(120 + 300 * random() ** 1.8))
            popularity.append(rng.paretovariate(_PARETO_ALPHA))
        self.track_id = tuple(track_id)
        self.track_name = tuple(track_name)
        self.album_id = tuple(album_id)
        self.album_name = tuple(album_name)
        self.isrc = tuple(isrc)
        self.spotify_id = tuple(spotify_id)
        self.youtube_id = tuple(youtube_id)
        self.apple_id = tuple(apple_id)
        self.length = tuple(length)
        self.popularity = tuple(popularity)


@lru_cache(maxsize=4)
def catalog(seed: int, size: int) -> Catalog:
    """The seed's catalogue of `size` tracks, built once per process."""
    return Catalog(seed, size)
