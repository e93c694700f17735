"""Realistic sample Spotify privacy exports (streaming history), in Spotify's own file formats.

One simulated listener per seed, written in any of the three export shapes that
`spotify_history` reads:

- `generate_history_export(shape="extended")`: `my_spotify_data.zip` holding
  `Spotify Extended Streaming History/Streaming_History_Audio_YYYY[-YYYY]_N.json` (split by
  row count the way Spotify splits by size, named for the years each file covers),
  `Streaming_History_Video_YYYY[-YYYY].json` for video-podcast plays, and a
  `ReadMeFirst_ExtendedStreamingHistory.pdf` that readers must ignore;
- `shape="endsong"`: the older `MyData/endsong_N.json` files (with `username`,
  `ip_addr_decrypted`, `user_agent_decrypted`, long platform strings, no audiobooks);
- `generate_account_data_history`: `Spotify Account Data/StreamingHistory_music_N.json` and
  `StreamingHistory_podcast_N.json` (minute-precision `endTime`, names only, no URIs) next to
  other account files (Userdata.json, a playlist file, a ReadMeFirst PDF).

What makes the listening realistic: a library of a few dozen artists (some with non-ASCII
names) whose popularity falls off like a Zipf law, albums of real-looking lengths, listening
in sessions at commute, lunch and evening hours separated by more than 30 minutes, album,
artist and shuffled-playlist contexts, skips (`fwdbtn`, a few seconds in), `backbtn`,
`trackdone` chains whose next `reason_start` is the previous `reason_end`, sessions ending
in `endplay`, `logout`, `remote` or `unexpected-exit-while-paused`, a phone and a computer
(plus the odd web-player session), some offline and incognito sessions, a trip abroad
(`conn_country`), podcast episodes listened to in long stretches, a few audiobook chapters, and
a few 0 ms plays. IP addresses come from the documentation ranges (RFC 5737).

The same seed, start and days give the same listening in every shape, so an extended and an
account-data export of one seed overlap like a listener's real exports do. Output is
byte-for-byte deterministic for a seed (fixed ZIP timestamps).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from random import Random
from typing import Any

EXTENDED_FOLDER = "Spotify Extended Streaming History"
ENDSONG_FOLDER = "MyData"
ACCOUNT_FOLDER = "Spotify Account Data"
ZIP_NAME = "my_spotify_data.zip"
DEFAULT_ROWS_PER_FILE = 15_000  # about the 12 MB at which Spotify starts a new file
ACCOUNT_ROWS_PER_FILE = 10_000
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ZIPF_S = 1.1
_PDF = (
    b"%PDF-1.4\n% sample ReadMeFirst: not part of the streaming history\n"
    b"1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
)

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
_NEW_PLATFORMS = {"android": "android", "ios": "ios", "windows": "windows", "osx": "osx",
                  "web_player": "web_player"}  # fmt: skip
_OLD_PLATFORMS = {
    "android": "Android OS 12 API 31 (Google, Pixel 6)",
    "ios": "iOS 16.1.1 (iPhone14,5)",
    "windows": "Windows 10 (10.0.19045; x64; AppX)",
    "osx": "OS X 12.6.1 [arm 2]",
    "web_player": "WebPlayer (websocket RFC6455)",
}


@dataclass(frozen=True)
class _Track:
    uri: str
    name: str
    artist: str
    album: str
    ms: int


@dataclass(frozen=True)
class _Episode:
    uri: str
    name: str
    show: str
    ms: int


@dataclass(frozen=True)
class _Play:
    """One simulated play; the writers turn it into each shape's row."""

    ended_at: datetime
    started_at: datetime
    ms_played: int
    kind: str  # music, podcast, audiobook, video
    item: Any  # _Track, _Episode or a (book, uri, chapter uri, chapter title) tuple
    platform: str
    country: str
    ip: str
    reason_start: str
    reason_end: str
    shuffle: bool
    skipped: bool
    offline: bool
    incognito: bool


def _uri_id(rng: Random) -> str:
    return "".join(rng.choice(_BASE62) for _ in range(22))


def _weighted(rng: Random, pairs: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([p[0] for p in pairs], [p[1] for p in pairs])[0]


class _Library:
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
        self.albums: dict[str, list[list[_Track]]] = {}
        for artist in names:
            albums = []
            for _ in range(rng.randint(1, 4)):
                album = f"{rng.choice(_WORDS_A)} {rng.choice(_WORDS_B)}"
                tracks = [
                    _Track(
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
    def _episodes(rng: Random, show: tuple[str, int, int], count: int) -> list[_Episode]:
        title, low, high = show
        return [
            _Episode(
                uri=f"spotify:episode:{_uri_id(rng)}",
                name=f"{title} #{100 + i}: {rng.choice(_WORDS_A)} {rng.choice(_WORDS_B)}",
                show=title,
                ms=60_000 * rng.randint(low, high) + rng.randrange(60_000),
            )
            for i in range(count)
        ]

    def artist(self, rng: Random) -> str:
        return rng.choices(self.artists, self.artist_weights)[0]

    def all_tracks(self, artist: str) -> list[_Track]:
        return [t for album in self.albums[artist] for t in album]


def _ip(rng: Random) -> str:
    prefix = rng.choice(("192.0.2", "198.51.100", "203.0.113"))
    return f"{prefix}.{rng.randrange(1, 255)}"


class _Listener:
    """Simulates the plays of one listener, session by session."""

    def __init__(self, seed: int) -> None:
        self.rng = Random(f"music-analytics-spotify-history/{seed}")
        self.library = _Library(self.rng)
        self.phone = self.rng.choice(("android", "ios"))
        self.computer = self.rng.choice(("windows", "osx"))
        self.home = self.rng.choice(_HOMES)
        self.plays: list[_Play] = []
        self.cursor = datetime(1970, 1, 1, tzinfo=UTC)

    def simulate(self, start: date, days: int, plays_per_day: int) -> list[_Play]:
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
            _Play(ended_at=ended, started_at=start, ms_played=ms, kind=kind, item=item, **fields)
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


def simulate_plays(start: date, days: int, plays_per_day: int, seed: int) -> list[_Play]:
    """The simulated plays of the seed's listener, in end-time order (shared by every shape)."""
    if days < 0 or plays_per_day < 0:
        raise ValueError(f"days ({days}) and plays_per_day ({plays_per_day}) must be >= 0")
    plays = _Listener(seed).simulate(start, days, plays_per_day)
    return sorted(plays, key=lambda p: p.ended_at)


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _offline_ts(play: _Play, rng: Random, milliseconds: bool) -> int:
    """Epoch of the play's start as the client logged it (ms in old files); 0 rarely."""
    if rng.random() < 0.03:
        return 0
    seconds = int(play.started_at.timestamp())
    return seconds * 1000 + play.started_at.microsecond // 1000 if milliseconds else seconds


def _extended_row(play: _Play, rng: Random, *, endsong: bool, username: str) -> dict[str, Any]:
    item = play.item
    track = item if play.kind == "music" else None
    episode = item if play.kind in ("podcast", "video") else None
    chapter = item if play.kind == "audiobook" else None
    row: dict[str, Any] = {"ts": _ts(play.ended_at)}
    if endsong:
        row["username"] = username
    row["platform"] = (_OLD_PLATFORMS if endsong else _NEW_PLATFORMS)[play.platform]
    row["ms_played"] = play.ms_played
    row["conn_country"] = play.country
    if endsong:
        row["ip_addr_decrypted"] = play.ip
        row["user_agent_decrypted"] = "unknown"
    else:
        row["ip_addr"] = play.ip
    row.update(
        {
            "master_metadata_track_name": track.name if track else None,
            "master_metadata_album_artist_name": track.artist if track else None,
            "master_metadata_album_album_name": track.album if track else None,
            "spotify_track_uri": track.uri if track else None,
            "episode_name": episode.name if episode else None,
            "episode_show_name": episode.show if episode else None,
            "spotify_episode_uri": episode.uri if episode else None,
        }
    )
    if not endsong:
        row.update(
            {
                "audiobook_title": chapter[0] if chapter else None,
                "audiobook_uri": chapter[1] if chapter else None,
                "audiobook_chapter_uri": chapter[2] if chapter else None,
                "audiobook_chapter_title": chapter[3] if chapter else None,
            }
        )
    row.update(
        {
            "reason_start": play.reason_start,
            "reason_end": play.reason_end,
            "shuffle": play.shuffle,
            # Old files often have no skip flag for plays that were not skipped.
            "skipped": play.skipped if not endsong or play.skipped else None,
            "offline": play.offline,
            "offline_timestamp": _offline_ts(play, rng, endsong),
            "incognito_mode": play.incognito,
        }
    )
    return row


def _years(rows: list[dict[str, Any]], key: str) -> str:
    first, last = rows[0][key][:4], rows[-1][key][:4]
    return first if first == last else f"{first}-{last}"


def _chunks(rows: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def _dump(rows: list[dict[str, Any]]) -> bytes:
    return json.dumps(rows, ensure_ascii=False, indent=2).encode()


def _write(
    out: Path, folder: str, members: list[tuple[str, bytes]], as_zip: bool, stamp: date
) -> Path:
    """The files into `out/my_spotify_data.zip` (under `folder/`), or into `out/folder/`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not as_zip:
        target = out / folder
        target.mkdir(parents=True, exist_ok=True)
        for name, data in members:
            (target / name).write_bytes(data)
        return target
    path = out / ZIP_NAME
    date_time = (max(stamp.year, 1980), stamp.month, stamp.day, 9, 30, 0)
    with zipfile.ZipFile(path, "w") as archive:
        directory = zipfile.ZipInfo(f"{folder}/", date_time=date_time)
        directory.external_attr = (0o40755 << 16) | 0x10
        archive.writestr(directory, b"")
        for name, data in members:
            info = zipfile.ZipInfo(f"{folder}/{name}", date_time=date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            archive.writestr(info, data)
    return path


def generate_history_export(
    out: Path,
    *,
    start: date,
    days: int,
    plays_per_day: int,
    seed: int,
    shape: str = "extended",
    as_zip: bool = True,
    rows_per_file: int = DEFAULT_ROWS_PER_FILE,
) -> Path:
    """Write an extended (or older endsong) streaming-history export of the seed's listener.

    Returns `out/my_spotify_data.zip`, or with `as_zip=False` the folder of JSON files
    (`out/Spotify Extended Streaming History/` or `out/MyData/`).
    """
    if shape not in ("extended", "endsong"):
        raise ValueError(
            f"shape {shape!r}: use extended or endsong (or generate_account_data_history)"
        )
    if rows_per_file < 1:
        raise ValueError(f"rows_per_file must be >= 1, got {rows_per_file}")
    plays = simulate_plays(start, days, plays_per_day, seed)
    rng = Random(f"music-analytics-spotify-history-rows/{seed}/{shape}")
    endsong = shape == "endsong"
    username = f"{Random(seed).randrange(10**9, 10**10)}"
    members: list[tuple[str, bytes]] = []
    if endsong:
        rows = [
            _extended_row(p, rng, endsong=True, username=username)
            for p in plays
            if p.kind != "audiobook"  # the old shape predates audiobooks
        ]
        for n, chunk in enumerate(_chunks(rows, rows_per_file)):
            members.append((f"endsong_{n}.json", _dump(chunk)))
        members.append(("ReadMeFirst_ExtendedStreamingHistory.pdf", _PDF))
        folder = ENDSONG_FOLDER
    else:
        audio = [
            _extended_row(p, rng, endsong=False, username="") for p in plays if p.kind != "video"
        ]
        video = [
            _extended_row(p, rng, endsong=False, username="") for p in plays if p.kind == "video"
        ]
        members.append(("ReadMeFirst_ExtendedStreamingHistory.pdf", _PDF))
        for n, chunk in enumerate(_chunks(audio, rows_per_file)):
            members.append(
                (f"Streaming_History_Audio_{_years(chunk, 'ts')}_{n}.json", _dump(chunk))
            )
        if video:
            members.append((f"Streaming_History_Video_{_years(video, 'ts')}.json", _dump(video)))
        folder = EXTENDED_FOLDER
    return _write(out, folder, members, as_zip, start + timedelta(days=days + 21))


def generate_account_data_history(
    out: Path,
    *,
    start: date,
    days: int,
    plays_per_day: int,
    seed: int,
    as_zip: bool = True,
    rows_per_file: int = ACCOUNT_ROWS_PER_FILE,
) -> Path:
    """Write an "Account data" export: StreamingHistory_music_N / _podcast_N.json and friends.

    The plays are the seed's listener's (the same as `generate_history_export`'s), with the end
    time cut to the minute and names only. Returns `out/my_spotify_data.zip`, or with
    `as_zip=False` the folder `out/Spotify Account Data/`.
    """
    if rows_per_file < 1:
        raise ValueError(f"rows_per_file must be >= 1, got {rows_per_file}")
    plays = simulate_plays(start, days, plays_per_day, seed)
    music = [
        {
            "endTime": p.ended_at.strftime("%Y-%m-%d %H:%M"),
            "artistName": p.item.artist,
            "trackName": p.item.name,
            "msPlayed": p.ms_played,
        }
        for p in plays
        if p.kind == "music"
    ]
    podcast = [
        {
            "endTime": p.ended_at.strftime("%Y-%m-%d %H:%M"),
            "podcastName": p.item.show,
            "episodeName": p.item.name,
            "msPlayed": p.ms_played,
        }
        for p in plays
        if p.kind in ("podcast", "video")
    ]
    userdata = {
        "username": f"{Random(seed).randrange(10**9, 10**10)}",
        "country": _Listener(seed).home,
        "createdFromFacebook": False,
        "creationTime": "2016-04-02",
    }
    members: list[tuple[str, bytes]] = [
        ("ReadMeFirst_YourAccountData.pdf", _PDF),
        ("Userdata.json", json.dumps(userdata, indent=2).encode()),
        ("Playlist1.json", json.dumps({"playlists": []}, indent=2).encode()),
    ]
    for n, chunk in enumerate(_chunks(music, rows_per_file)):
        members.append((f"StreamingHistory_music_{n}.json", _dump(chunk)))
    for n, chunk in enumerate(_chunks(podcast, rows_per_file)):
        members.append((f"StreamingHistory_podcast_{n}.json", _dump(chunk)))
    return _write(out, ACCOUNT_FOLDER, members, as_zip, start + timedelta(days=days + 5))
