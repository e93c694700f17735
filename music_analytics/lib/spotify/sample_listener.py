"""The sample listener's plays, session by session: sessions at commute, lunch and evening hours
separated by more than 30 minutes, album, artist and shuffled-playlist contexts, skips, `trackdone`
chains, a phone and a computer (plus the odd web-player session), offline and incognito sessions,
a trip abroad, podcast, video and audiobook sessions. IP addresses come from the documentation
ranges (RFC 5737)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from random import Random
from typing import Any

from music_analytics.lib.spotify.sample_library import Library

_HOMES = ("DE", "SE", "GB", "US", "NL", "FR", "ES", "BR")
_TRIPS = ("IT", "PT", "JP", "US", "GR", "DK")
# Session start hours (local and UTC taken alike): commute, lunch, evening.
_HOUR_WEIGHTS = (0.2, 0.1, 0.05, 0.05, 0.1, 0.3, 1.2, 2.6, 2.4, 1.2, 1.0, 1.2, 1.8, 1.4, 1.1,
                 1.2, 1.5, 2.4, 2.2, 2.0, 2.2, 2.0, 1.3, 0.6)  # fmt: skip
_FIRST_REASONS = (("clickrow", 45), ("playbtn", 25), ("appload", 15), ("remote", 8),
                  ("trackdone", 7))  # fmt: skip
_LAST_REASONS = (("endplay", 55), ("logout", 10), ("remote", 10),
                 ("unexpected-exit-while-paused", 15), ("unexpected-exit", 5),
                 ("trackerror", 5))  # fmt: skip


@dataclass(frozen=True)
class Play:
    """One simulated play; the writers turn it into each shape's row."""

    ended_at: datetime
    started_at: datetime
    ms_played: int
    kind: str  # music, podcast, audiobook, video
    item: Any  # a Track, an Episode or a (book, uri, chapter uri, chapter title) tuple
    platform: str
    country: str
    ip: str
    reason_start: str
    reason_end: str
    shuffle: bool
    skipped: bool
    offline: bool
    incognito: bool


def _weighted(rng: Random, pairs: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([p[0] for p in pairs], [p[1] for p in pairs])[0]


def _ip(rng: Random) -> str:
    prefix = rng.choice(("192.0.2", "198.51.100", "203.0.113"))
    return f"{prefix}.{rng.randrange(1, 255)}"


class Listener:
    """Simulates the plays of one listener, session by session."""

    def __init__(self, seed: int) -> None:
        self.rng = Random(f"music-analytics-spotify-history/{seed}")
        self.library = Library(self.rng)
        self.phone = self.rng.choice(("android", "ios"))
        self.computer = self.rng.choice(("windows", "osx"))
        self.home = self.rng.choice(_HOMES)
        self.plays: list[Play] = []
        self.cursor = datetime(1970, 1, 1, tzinfo=UTC)

    def simulate(self, start: date, days: int, plays_per_day: int) -> list[Play]:
        """The plays of `days` days from `start`, about `plays_per_day` a day."""
        rng = self.rng
        trip_start = rng.randrange(max(days, 1))
        trip = (trip_start, trip_start + rng.randint(3, 8), rng.choice(_TRIPS))
        for offset in range(days):
            day = start + timedelta(days=offset)
            country = trip[2] if trip[0] <= offset < trip[1] and days >= 14 else self.home
            wanted = max(0, round(rng.gauss(plays_per_day, plays_per_day * 0.3)))
            sessions = max(1, min(6, round(wanted / 12))) if wanted else 0
            hours = sorted(rng.choices(range(24), _HOUR_WEIGHTS, k=sessions))
            left = wanted
            for i, hour in enumerate(hours):
                n = left if i == sessions - 1 else max(1, round(left / (sessions - i)))
                left -= n
                begin = datetime.combine(day, time(hour), UTC) + timedelta(
                    seconds=rng.randrange(3600)
                )
                # Sessions are at least half an hour apart, as a listener's sessions are.
                begin = max(begin, self.cursor + timedelta(minutes=31 + rng.randrange(30)))
                self._session(begin, n, hour, country)
        return self.plays

    def _session(self, begin: datetime, n: int, hour: int, country: str) -> None:
        rng = self.rng
        weekday_commute = hour in (7, 8, 17, 18)
        roll = rng.random()
        platform = (
            "web_player"
            if roll < 0.04
            else self.phone
            if weekday_commute or roll < 0.55
            else self.computer
        )
        context = dict(
            platform=platform,
            country=country,
            ip=_ip(rng),
            offline=platform in ("android", "ios") and rng.random() < 0.08,
            incognito=rng.random() < 0.02,
        )
        cursor = begin
        kind_roll = rng.random()
        if kind_roll < 0.1:
            cursor = self._podcast_session(cursor, context)
        elif kind_roll < 0.13:
            cursor = self._audiobook_session(cursor, context)
        elif kind_roll < 0.15:
            cursor = self._video_session(cursor, context)
        if n:
            cursor = self._music_session(cursor, n, context)
        self.cursor = cursor

    def _add(self, start: datetime, ms: int, kind: str, item: Any, **fields: Any) -> datetime:
        ended = start + timedelta(milliseconds=ms)
        ended = ended.replace(microsecond=0)  # Spotify's ts is to the second
        self.plays.append(
            Play(ended_at=ended, started_at=start, ms_played=ms, kind=kind, item=item, **fields)
        )
        # At least a second apart, so no two plays end in the same second.
        return ended + timedelta(seconds=self.rng.randint(1, 2))

    def _music_session(self, cursor: datetime, n: int, context: dict[str, Any]) -> datetime:
        rng = self.rng
        mode = rng.choices(("album", "artist", "playlist"), (3, 2, 5))[0]
        shuffle = mode == "playlist" and rng.random() < 0.7 or rng.random() < 0.1
        if mode == "album":
            artist = self.library.artist(rng)
            queue = list(rng.choice(self.library.albums[artist]))
        elif mode == "artist":
            queue = self.library.all_tracks(self.library.artist(rng))
        else:
            queue = [rng.choice(self.library.all_tracks(self.library.artist(rng)))
                     for _ in range(max(n, 40))]  # fmt: skip
        if shuffle:
            rng.shuffle(queue)
        reason_start = _weighted(rng, _FIRST_REASONS)
        for i in range(n):
            track = queue[i % len(queue)]
            last = i == n - 1
            if last:
                reason_end = _weighted(rng, _LAST_REASONS)
            else:
                reason_end = rng.choices(("trackdone", "fwdbtn", "backbtn"), (64, 32, 4))[0]
            if reason_end == "trackdone":
                ms = track.ms
            elif reason_end in ("fwdbtn", "backbtn"):
                ms = int(rng.expovariate(1 / 12_000)) if rng.random() < 0.85 else 0
                ms = min(ms, track.ms - 1)
            elif reason_end == "trackerror":
                ms = 0
            else:
                ms = int(track.ms * rng.random())
            skipped = reason_end in ("fwdbtn", "backbtn") and ms < track.ms
            cursor = self._add(
                cursor, ms, "music", track, reason_start=reason_start, reason_end=reason_end,
                shuffle=shuffle, skipped=skipped, **context,
            )  # fmt: skip
            reason_start = (
                reason_end if reason_end in ("trackdone", "fwdbtn", "backbtn") else ("clickrow")
            )
        return cursor

    def _podcast_session(self, cursor: datetime, context: dict[str, Any]) -> datetime:
        rng = self.rng
        episodes = rng.choice(self.library.shows)
        for _ in range(rng.randint(1, 2)):
            episode = rng.choice(episodes)
            done = rng.random() < 0.5
            ms = episode.ms if done else int(episode.ms * rng.uniform(0.1, 0.9))
            cursor = self._add(
                cursor, ms, "podcast", episode, reason_start=rng.choice(("clickrow", "playbtn")),
                reason_end="trackdone" if done else "endplay", shuffle=False, skipped=False,
                **context,
            )  # fmt: skip
        return cursor + timedelta(minutes=rng.randint(1, 20))

    def _video_session(self, cursor: datetime, context: dict[str, Any]) -> datetime:
        rng = self.rng
        episode = rng.choice(self.library.video_episodes)
        ms = int(episode.ms * rng.uniform(0.2, 1.0))
        cursor = self._add(
            cursor, ms, "video", episode, reason_start="clickrow", reason_end="endplay",
            shuffle=False, skipped=False, **context,
        )  # fmt: skip
        return cursor + timedelta(minutes=rng.randint(1, 20))

    def _audiobook_session(self, cursor: datetime, context: dict[str, Any]) -> datetime:
        rng = self.rng
        first = rng.randrange(len(self.library.chapters) - 2)
        for chapter in self.library.chapters[first : first + rng.randint(1, 2)]:
            ms = chapter[4] if rng.random() < 0.6 else int(chapter[4] * rng.uniform(0.2, 0.9))
            cursor = self._add(
                cursor, ms, "audiobook", chapter, reason_start="playbtn",
                reason_end="trackdone" if ms == chapter[4] else "endplay", shuffle=False,
                skipped=False, **context,
            )  # fmt: skip
        return cursor + timedelta(minutes=rng.randint(1, 20))


def simulate_plays(start: date, days: int, plays_per_day: int, seed: int) -> list[Play]:
    """The simulated plays of the seed's listener, in end-time order (shared by every shape)."""
    if days < 0 or plays_per_day < 0:
        raise ValueError(f"days ({days}) and plays_per_day ({plays_per_day}) must be >= 0")
    plays = Listener(seed).simulate(start, days, plays_per_day)
    return sorted(plays, key=lambda p: p.ended_at)
