"""The sample Spotify exports: real layout, deterministic, and they parse without quarantine."""

from __future__ import annotations

import json
import zipfile
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest

from music_analytics.lib.spotify.history import read_history_file
from music_analytics.lib.spotify.history_shapes import play_key
from music_analytics.lib.spotify.sample import (
    ACCOUNT_FOLDER,
    ENDSONG_FOLDER,
    EXTENDED_FOLDER,
    generate_account_data_history,
    generate_history_export,
)

START = date(2023, 12, 1)
ARGS = dict(start=START, days=45, plays_per_day=30, seed=11)


def plays_of(path: Path):
    files = read_history_file(path)
    assert all(f.quarantined == [] for f in files)
    return files, [p for f in files for p in f.plays]


def test_extended_export_has_spotify_layout_and_parses_cleanly(tmp_path: Path) -> None:
    path = generate_history_export(tmp_path, **ARGS, rows_per_file=400)
    assert path == tmp_path / "my_spotify_data.zip"
    names = zipfile.ZipFile(path).namelist()
    assert f"{EXTENDED_FOLDER}/ReadMeFirst_ExtendedStreamingHistory.pdf" in names
    audio = [n for n in names if "Streaming_History_Audio_" in n]
    assert len(audio) >= 3  # split like Spotify splits by size
    assert audio[0] == f"{EXTENDED_FOLDER}/Streaming_History_Audio_2023_0.json"
    assert audio[-1].endswith(f"_2024_{len(audio) - 1}.json")
    files, plays = plays_of(path)
    assert {f.shape for f in files} == {"extended"}
    assert len(files) == len(audio) + any("Video" in n for n in names)
    kinds = Counter(p.kind for p in plays)
    assert kinds["music"] > 0.8 * len(plays)
    assert kinds["podcast"] > 0 and kinds["audiobook"] > 0
    assert min(p.ended_at for p in plays).date() >= START
    assert max(p.ended_at for p in plays).date() <= START + timedelta(days=46)
    assert len({play_key(p) for p in plays}) == len(plays)
    assert {p.reason_end for p in plays} >= {"trackdone", "fwdbtn", "endplay"}
    assert any(p.skipped for p in plays) and any(p.shuffle for p in plays)
    assert {p.platform for p in plays} <= {"android", "ios", "windows", "osx", "web_player"}
    assert all(p.conn_country and len(p.conn_country) == 2 for p in plays)
    assert all(p.track_id for p in plays if p.kind == "music")
    # A few dozen artists, the top one far ahead of the median (Zipf popularity).
    by_artist = Counter(p.artist_name for p in plays if p.kind == "music").most_common()
    assert 10 <= len(by_artist) <= 60
    assert by_artist[0][1] > 4 * by_artist[len(by_artist) // 2][1]


def test_generator_is_deterministic(tmp_path: Path) -> None:
    a = generate_history_export(tmp_path / "a", **ARGS)
    b = generate_history_export(tmp_path / "b", **ARGS)
    assert a.read_bytes() == b.read_bytes()
    c = generate_history_export(tmp_path / "c", **{**ARGS, "seed": 12})
    assert c.read_bytes() != a.read_bytes()


def test_endsong_export(tmp_path: Path) -> None:
    path = generate_history_export(tmp_path, **ARGS, shape="endsong")
    names = zipfile.ZipFile(path).namelist()
    assert f"{ENDSONG_FOLDER}/endsong_0.json" in names
    first = json.loads(zipfile.ZipFile(path).read(f"{ENDSONG_FOLDER}/endsong_0.json"))[0]
    assert {"username", "user_agent_decrypted", "ip_addr_decrypted"} <= first.keys()
    assert "audiobook_title" not in first
    files, plays = plays_of(path)
    assert {f.shape for f in files} == {"endsong"}
    assert "audiobook" not in {p.kind for p in plays}
    # The same listening as the extended export of the seed: the same plays, the same keys.
    extended = plays_of(generate_history_export(tmp_path / "x", **ARGS))[1]
    common = {play_key(p) for p in extended if p.kind in ("music", "podcast")}
    assert common <= {play_key(p) for p in plays}


def test_unzipped_export_is_a_folder_of_json_files(tmp_path: Path) -> None:
    folder = generate_history_export(tmp_path, **ARGS, as_zip=False)
    assert folder == tmp_path / EXTENDED_FOLDER
    files = sorted(folder.glob("Streaming_History_Audio_*.json"))
    assert files and all(read_history_file(f)[0].quarantined == [] for f in files)


def test_account_data_export(tmp_path: Path) -> None:
    path = generate_account_data_history(tmp_path, **ARGS)
    names = zipfile.ZipFile(path).namelist()
    assert f"{ACCOUNT_FOLDER}/StreamingHistory_music_0.json" in names
    assert f"{ACCOUNT_FOLDER}/Userdata.json" in names  # ignored by the reader
    files, plays = plays_of(path)
    assert [f.member for f in files] == [
        f"{ACCOUNT_FOLDER}/StreamingHistory_music_0.json",
        f"{ACCOUNT_FOLDER}/StreamingHistory_podcast_0.json",
    ]
    assert {f.shape for f in files} == {"account_data"}
    assert {p.kind for p in files[0].plays} == {"music"}
    assert {p.kind for p in files[1].plays} == {"podcast"}
    assert all(p.ended_at.second == 0 and p.ended_at_precision_seconds == 60 for p in plays)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="shape"):
        generate_history_export(Path("unused"), **ARGS, shape="account_data")
