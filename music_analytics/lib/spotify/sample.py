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

The listener is in `sample_library` and `sample_listener`, the rows in `sample_rows`; this
module writes the files.
"""

from __future__ import annotations

import json
import zipfile
from datetime import date, timedelta
from pathlib import Path
from random import Random
from typing import Any

from music_analytics.lib.spotify.sample_listener import Listener, simulate_plays
from music_analytics.lib.spotify.sample_rows import extended_row

EXTENDED_FOLDER = "Spotify Extended Streaming History"
ENDSONG_FOLDER = "MyData"
ACCOUNT_FOLDER = "Spotify Account Data"
ZIP_NAME = "my_spotify_data.zip"
DEFAULT_ROWS_PER_FILE = 15_000  # about the 12 MB at which Spotify starts a new file
ACCOUNT_ROWS_PER_FILE = 10_000
_PDF = (
    b"%PDF-1.4\n% sample ReadMeFirst: not part of the streaming history\n"
    b"1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
)


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
            extended_row(p, rng, endsong=True, username=username)
            for p in plays
            if p.kind != "audiobook"  # the old shape predates audiobooks
        ]
        for n, chunk in enumerate(_chunks(rows, rows_per_file)):
            members.append((f"endsong_{n}.json", _dump(chunk)))
        members.append(("ReadMeFirst_ExtendedStreamingHistory.pdf", _PDF))
        folder = ENDSONG_FOLDER
    else:
        audio = [
            extended_row(p, rng, endsong=False, username="") for p in plays if p.kind != "video"
        ]
        video = [
            extended_row(p, rng, endsong=False, username="") for p in plays if p.kind == "video"
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
        "country": Listener(seed).home,
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
