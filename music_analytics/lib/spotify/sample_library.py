"""The sample listener's library: a few dozen artists (some with non-ASCII names) whose
popularity falls off like a Zipf law, albums of real-looking lengths, podcasts and an audiobook."""

from __future__ import annotations

from dataclasses import dataclass
from random import Random

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ZIPF_S = 1.1

_FIRST = (
    "Luna", "Milo", "Nora", "Elias", "Chloé", "Ásgeir", "Ines", "Kofi", "Yara", "Jonas",
    "Maëlle", "Tomás", "Freya", "Oskar", "Amara", "Léon",
)  # fmt: skip
_LAST = (
    "Ortega", "Lindqvist", "Marchand", "Okafor", "Dóttir", "Novak", "Reyes", "Haas", "Kimura",
    "Berg", "Moreau", "Søndergaard",
)  # fmt: skip
_BAND_A = (
    "The Velvet", "Northern", "Paper", "Golden", "Neon", "Crimson", "Silent", "Los Niños del",
    "Hollow", "Electric", "Midnight", "Coastal",
)  # fmt: skip
_BAND_B = (
    "Parade", "Lights", "Satellites", "Motel", "Echoes", "Sur", "Rivers", "Highway", "Foxes",
    "Harbour", "Static", "Choir",
)  # fmt: skip
_WORDS_A = (
    "Summer", "Midnight", "Golden", "Electric", "Silent", "Neon", "Velvet", "Broken", "Wild",
    "Lucky", "Burning", "Blue", "Distant", "Sweet", "Lonely", "Faded", "Sunday", "Little",
)  # fmt: skip
_WORDS_B = (
    "Breeze", "Dreams", "Heart", "River", "Highway", "Echoes", "Fire", "Rain", "Skyline",
    "Waves", "Shadows", "Garden", "Letters", "Signal", "Horizon", "Avenue", "Mirrors", "Ocean",
)  # fmt: skip
_SHOWS = (
    ("The Daily Signal", 25, 35),
    ("Data Engineering Weekly Chat", 45, 70),
    ("Stories at Midnight", 30, 50),
    ("Football Pod FC", 50, 80),
)
_VIDEO_SHOW = ("Studio Sessions Live", 20, 40)
_AUDIOBOOK = ("The Lighthouse Keeper's Daughter", 24)


@dataclass(frozen=True)
class Track:
    """A song of the library."""

    uri: str
    name: str
    artist: str
    album: str
    ms: int


@dataclass(frozen=True)
class Episode:
    """A podcast (or video podcast) episode."""

    uri: str
    name: str
    show: str
    ms: int


def _uri_id(rng: Random) -> str:
    return "".join(rng.choice(_BASE62) for _ in range(22))


class Library:
    """The listener's music, podcasts and audiobook; artists ranked by Zipf popularity."""

    def __init__(self, rng: Random, artists: int = 36) -> None:
        names: list[str] = []
        while len(names) < artists:
            if rng.random() < 0.55:
                name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
            else:
                name = f"{rng.choice(_BAND_A)} {rng.choice(_BAND_B)}"
            if name not in names:
                names.append(name)
        self.artists = names
        self.artist_weights = [1 / (rank**_ZIPF_S) for rank in range(1, artists + 1)]
        self.albums: dict[str, list[list[Track]]] = {}
        for artist in names:
            albums = []
            for _ in range(rng.randint(1, 4)):
                album = f"{rng.choice(_WORDS_A)} {rng.choice(_WORDS_B)}"
                tracks = [
                    Track(
                        uri=f"spotify:track:{_uri_id(rng)}",
                        name=f"{rng.choice(_WORDS_A)} {rng.choice(_WORDS_B)}",
                        artist=artist,
                        album=album,
                        ms=int(1000 * (140 + 200 * rng.random() ** 1.5) + rng.randrange(1000)),
                    )
                    for _ in range(rng.randint(6, 14))
                ]
                albums.append(tracks)
            self.albums[artist] = albums
        self.shows = [self._episodes(rng, show, 60) for show in _SHOWS]
        self.video_episodes = self._episodes(rng, _VIDEO_SHOW, 20)
        book, chapters = _AUDIOBOOK
        book_uri = f"spotify:show:{_uri_id(rng)}"
        self.chapters = [
            (
                book,
                book_uri,
                f"spotify:episode:{_uri_id(rng)}",
                f"Chapter {i}",
                60_000 * (12 + i % 9),
            )
            for i in range(1, chapters + 1)
        ]

    @staticmethod
    def _episodes(rng: Random, show: tuple[str, int, int], count: int) -> list[Episode]:
        title, low, high = show
        return [
            Episode(
                uri=f"spotify:episode:{_uri_id(rng)}",
                name=f"{title} #{100 + i}: {rng.choice(_WORDS_A)} {rng.choice(_WORDS_B)}",
                show=title,
                ms=60_000 * rng.randint(low, high) + rng.randrange(60_000),
            )
            for i in range(count)
        ]

    def artist(self, rng: Random) -> str:
        """An artist, drawn by popularity."""
        return rng.choices(self.artists, self.artist_weights)[0]

    def all_tracks(self, artist: str) -> list[Track]:
        """Every track of the artist, album by album."""
        return [t for album in self.albums[artist] for t in album]
