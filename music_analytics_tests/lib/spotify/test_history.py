"""Reading Spotify's streaming-history exports: the three shapes, ZIPs, quarantine, safety."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import stat
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from music_analytics.lib.core.landing import landing_files
from music_analytics.lib.core.zip_safety import SPOTIFY_EXPORT_LIMITS, ZipLimits
from music_analytics.lib.spotify.history import read_history_file
from music_analytics.lib.spotify.history_shapes import (
    HistoryFile,
    HistoryPlay,
    QuarantinedRow,
    SpotifyHistoryError,
    detect_shape,
    play_key,
)

EXTENDED_ROW = {
    "ts": "2024-03-01T12:34:56Z",
    "platform": "android",
    "ms_played": 201_000,
    "conn_country": "DE",
    "ip_addr": "203.0.113.7",
    "master_metadata_track_name": "Golden Waves",
    "master_metadata_album_artist_name": "Chloé Marchand",
    "master_metadata_album_album_name": "Blue Skyline",
    "spotify_track_uri": "spotify:track:4uLU6hMCjMI75M1A2tKUQC",
    "episode_name": None,
    "episode_show_name": None,
    "spotify_episode_uri": None,
    "audiobook_title": None,
    "audiobook_uri": None,
    "audiobook_chapter_uri": None,
    "audiobook_chapter_title": None,
    "reason_start": "clickrow",
    "reason_end": "trackdone",
    "shuffle": True,
    "skipped": False,
    "offline": True,
    "offline_timestamp": 1709296295,
    "incognito_mode": False,
}
ENDSONG_ROW = {
    "ts": "2021-06-05T08:00:01Z",
    "username": "1234567890",
    "platform": "Android OS 11 API 30 (Google, Pixel 4a)",
    "ms_played": 12_345,
    "conn_country": "SE",
    "ip_addr_decrypted": "198.51.100.9",
    "user_agent_decrypted": "unknown",
    "master_metadata_track_name": "Neon Rain",
    "master_metadata_album_artist_name": "Northern Static",
    "master_metadata_album_album_name": "Paper Lights",
    "spotify_track_uri": "spotify:track:0aBcDeFgHiJkLmNoPqRsTu",
    "episode_name": None,
    "episode_show_name": None,
    "spotify_episode_uri": None,
    "reason_start": "fwdbtn",
    "reason_end": "fwdbtn",
    "shuffle": False,
    "skipped": None,
    "offline": False,
    "offline_timestamp": 1622880000123,
    "incognito_mode": False,
}
PERSONAL = ("ip_addr", "203.0.113.7", "198.51.100.9", "1234567890", "user_agent_decrypted")


def write_json(path: Path, rows) -> Path:
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def one(path: Path) -> HistoryFile:
    files = read_history_file(path)
    assert len(files) == 1
    return files[0]


def test_extended_row_parses_with_every_field(tmp_path: Path) -> None:
    path = write_json(tmp_path / "Streaming_History_Audio_2024_3.json", [EXTENDED_ROW])
    history = one(path)
    assert history.shape == "extended"
    assert history.member is None
    assert history.source_file == str(path)
    assert history.quarantined == []
    assert history.plays == [
        HistoryPlay(
            ended_at=datetime(2024, 3, 1, 12, 34, 56, tzinfo=UTC),
            ms_played=201_000,
            kind="music",
            track_uri="spotify:track:4uLU6hMCjMI75M1A2tKUQC",
            track_id="4uLU6hMCjMI75M1A2tKUQC",
            track_name="Golden Waves",
            artist_name="Chloé Marchand",
            album_name="Blue Skyline",
            episode_name=None,
            show_name=None,
            episode_uri=None,
            audiobook_title=None,
            audiobook_uri=None,
            audiobook_chapter_uri=None,
            audiobook_chapter_title=None,
            platform="android",
            conn_country="DE",
            reason_start="clickrow",
            reason_end="trackdone",
            shuffle=True,
            skipped=False,
            offline=True,
            offline_timestamp=datetime(2024, 3, 1, 12, 31, 35, tzinfo=UTC),
            incognito_mode=False,
            shape="extended",
            source_file=str(path),
            member=None,
            row_number=1,
            ended_at_precision_seconds=1,
        )
    ]
    assert history.content_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_endsong_row_parses_and_drops_personal_fields(tmp_path: Path) -> None:
    history = one(write_json(tmp_path / "endsong_0.json", [ENDSONG_ROW]))
    assert history.shape == "endsong"
    (play,) = history.plays
    assert play.ended_at == datetime(2021, 6, 5, 8, 0, 1, tzinfo=UTC)
    assert (play.ms_played, play.kind, play.track_id) == (12_345, "music", "0aBcDeFgHiJkLmNoPqRsTu")
    assert (play.track_name, play.artist_name, play.album_name) == (
        "Neon Rain",
        "Northern Static",
        "Paper Lights",
    )
    assert play.platform == "Android OS 11 API 30 (Google, Pixel 4a)"
    assert (play.reason_start, play.reason_end) == ("fwdbtn", "fwdbtn")
    assert (play.shuffle, play.skipped, play.offline, play.incognito_mode) == (
        False,
        None,
        False,
        False,
    )
    # Epoch milliseconds in the old files.
    assert play.offline_timestamp == datetime(2021, 6, 5, 8, 0, 0, 123_000, tzinfo=UTC)
    assert play.audiobook_title is None and play.ended_at_precision_seconds == 1
    assert not any(p in repr(play) for p in PERSONAL)


def test_account_data_music_and_podcast_rows(tmp_path: Path) -> None:
    music = one(
        write_json(
            tmp_path / "StreamingHistory_music_0.json",
            [
                {
                    "endTime": "2023-01-31 23:59",
                    "artistName": "Ásgeir",
                    "trackName": "Torrent",
                    "msPlayed": 183_000,
                }
            ],  # fmt: skip
        )
    )
    assert music.shape == "account_data"
    (play,) = music.plays
    assert play.ended_at == datetime(2023, 1, 31, 23, 59, tzinfo=UTC)
    assert (play.kind, play.artist_name, play.track_name, play.ms_played) == (
        "music",
        "Ásgeir",
        "Torrent",
        183_000,
    )
    assert play.track_uri is None and play.platform is None and play.shuffle is None
    assert play.ended_at_precision_seconds == 60

    podcast = one(
        write_json(
            tmp_path / "StreamingHistory_podcast_0.json",
            [
                {
                    "endTime": "2023-02-01 07:10",
                    "podcastName": "The Daily Signal",
                    "episodeName": "#101: Rain",
                    "msPlayed": 1_500_000,
                }
            ],  # fmt: skip
        )
    )
    (episode,) = podcast.plays
    assert (episode.kind, episode.show_name, episode.episode_name) == (
        "podcast",
        "The Daily Signal",
        "#101: Rain",
    )
    assert episode.track_name is None and episode.artist_name is None

    # The old single-file name: music rows.
    legacy = one(
        write_json(
            tmp_path / "StreamingHistory0.json",
            [{"endTime": "2020-05-01 10:00", "artistName": "A", "trackName": "B", "msPlayed": 1}],
        )
    )
    assert legacy.shape == "account_data" and legacy.plays[0].kind == "music"


def test_kinds_come_from_each_rows_uris_and_fields_not_the_file_name(tmp_path: Path) -> None:
    blank = {
        k: None for k in EXTENDED_ROW if k.startswith(("master", "spotify", "episode", "audio"))
    }
    podcast = {**EXTENDED_ROW, **blank, "episode_name": "Ep 1", "episode_show_name": "Show",
               "spotify_episode_uri": "spotify:episode:abc"}  # fmt: skip
    audiobook = {**EXTENDED_ROW, **blank, "audiobook_title": "Book",
                 "audiobook_uri": "spotify:show:b", "audiobook_chapter_uri": "spotify:episode:c",
                 "audiobook_chapter_title": "Chapter 1"}  # fmt: skip
    unknown = {**EXTENDED_ROW, **blank}
    audio = one(
        write_json(
            tmp_path / "Streaming_History_Audio_2024_0.json",
            [EXTENDED_ROW, podcast, audiobook, unknown],
        )
    )
    assert [p.kind for p in audio.plays] == ["music", "podcast", "audiobook", "unknown"]
    assert [p.kind for p in audio.plays].count("music") == 1
    assert audio.plays[1].episode_uri == "spotify:episode:abc" and audio.plays[1].track_id is None
    assert audio.plays[2].audiobook_chapter_title == "Chapter 1"
    # Spotify's Video files hold music plays and video-podcast episodes alike.
    video = one(
        write_json(
            tmp_path / "Streaming_History_Video_2019-2024.json", [podcast, EXTENDED_ROW, unknown]
        )
    )
    assert [p.kind for p in video.plays] == ["podcast", "music", "unknown"]
    assert video.plays[1].track_id == EXTENDED_ROW["spotify_track_uri"].split(":")[-1]


def test_bad_rows_are_quarantined_with_the_reason_the_rest_parsed(tmp_path: Path) -> None:
    rows = [
        EXTENDED_ROW,
        "not an object",
        {**EXTENDED_ROW, "ts": "2024-13-45T99:00:00Z"},
        {k: v for k, v in EXTENDED_ROW.items() if k != "ts"},
        {**EXTENDED_ROW, "ms_played": -5},
        {k: v for k, v in EXTENDED_ROW.items() if k != "ms_played"},
        {**EXTENDED_ROW, "shuffle": "yes"},
        {**EXTENDED_ROW, "ms_played": 1.5},
        {**EXTENDED_ROW, "master_metadata_track_name": 42},
        {**EXTENDED_ROW, "offline_timestamp": "soon"},
        {**EXTENDED_ROW, "ts": "yesterday"},
        {**EXTENDED_ROW, "offline_timestamp": 0, "ts": "2024-03-01T12:35:56Z"},
    ]
    history = one(write_json(tmp_path / "Streaming_History_Audio_2024_0.json", rows))
    assert [p.row_number for p in history.plays] == [1, 12]
    assert history.plays[1].offline_timestamp is None
    errors = {q.row_number: q.error for q in history.quarantined}
    assert sorted(errors) == list(range(2, 12))
    assert "string" in errors[2] and "object" in errors[2]
    assert "ts" in errors[3] and "2024-13-45T99:00:00Z" in errors[3]
    assert errors[4] == "field ts is missing"
    assert "ms_played" in errors[5] and "-5" in errors[5]
    assert errors[6] == "field ms_played is missing"
    assert "shuffle" in errors[7] and "'yes'" in errors[7]
    assert "ms_played" in errors[8] and "1.5" in errors[8]
    assert "master_metadata_track_name" in errors[9] and "42" in errors[9]
    assert "offline_timestamp" in errors[10]
    assert "yesterday" in errors[11]
    quarantined = history.quarantined[0]
    assert isinstance(quarantined, QuarantinedRow)
    assert quarantined.row_json == '"not an object"'
    assert json.loads(history.quarantined[1].row_json)["ts"] == "2024-13-45T99:00:00Z"

    account = one(
        write_json(
            tmp_path / "StreamingHistory_music_1.json",
            [
                {
                    "endTime": "2023-01-31T23:59:00Z",
                    "artistName": "A",
                    "trackName": "B",
                    "msPlayed": 10,
                },
                {"endTime": "2023-01-31 23:59", "msPlayed": "10"},
            ],  # fmt: skip
        )
    )
    assert account.plays == []
    assert "endTime" in account.quarantined[0].error
    assert "msPlayed" in account.quarantined[1].error and "'10'" in account.quarantined[1].error


def test_personal_fields_are_kept_nowhere(tmp_path: Path) -> None:
    rows = [EXTENDED_ROW, {**EXTENDED_ROW, "ms_played": -1}]
    history = one(write_json(tmp_path / "Streaming_History_Audio_2024_0.json", rows))
    endsong = one(write_json(tmp_path / "endsong_0.json", [ENDSONG_ROW, {**ENDSONG_ROW, "ts": 1}]))
    for parsed in (history, endsong):
        assert len(parsed.plays) == 1 and len(parsed.quarantined) == 1
        dumped = repr(parsed) + json.dumps(
            [dataclasses.asdict(p) for p in parsed.plays + parsed.quarantined], default=str
        )
        for fragment in PERSONAL:
            assert fragment not in dumped
        assert all(not hasattr(p, "ip_addr") for p in parsed.plays)


def test_not_json_or_not_an_array_is_an_error_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "Streaming_History_Audio_2024_0.json"
    broken.write_text('[{"ts": "2024-03-01T12:34:56Z", ', encoding="utf-8")
    with pytest.raises(SpotifyHistoryError, match="Streaming_History_Audio_2024_0.json.*not valid"):
        read_history_file(broken)
    obj = write_json(tmp_path / "endsong_1.json", {"ts": "2024-03-01T12:34:56Z"})
    with pytest.raises(SpotifyHistoryError, match="endsong_1.json.*object, expected an array"):
        read_history_file(obj)
    other = write_json(tmp_path / "Userdata.json", [{"username": "x"}])
    with pytest.raises(SpotifyHistoryError, match="Userdata.json.*not a Spotify streaming"):
        read_history_file(other)


def test_detect_shape() -> None:
    assert detect_shape("Streaming_History_Audio_2014-2016_0.json", EXTENDED_ROW) == "extended"
    assert detect_shape("renamed.json", EXTENDED_ROW) == "extended"
    assert detect_shape("endsong_4.json", EXTENDED_ROW) == "endsong"
    assert detect_shape("renamed.json", ENDSONG_ROW) == "endsong"
    assert detect_shape("x.json", {"endTime": "2023-01-31 23:59"}) == "account_data"
    assert detect_shape("StreamingHistory3.json", {}) == "account_data"
    assert detect_shape("Userdata.json", {"username": "x"}) is None


def _zip(path: Path, members: dict[str, bytes], **modes: int) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 3, 2, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = modes.get(name, 0o100644) << 16
            archive.writestr(info, data)
    return path


def test_zip_with_members_in_a_folder_ignores_pdf_and_other_files(tmp_path: Path) -> None:
    folder = "Spotify Extended Streaming History/"
    first = json.dumps([EXTENDED_ROW]).encode()
    second = json.dumps([{**EXTENDED_ROW, "ts": "2024-03-02T00:00:00Z"}]).encode()
    path = _zip(
        tmp_path / "my_spotify_data.zip",
        {
            folder: b"",
            folder + "ReadMeFirst_ExtendedStreamingHistory.pdf": b"%PDF-1.4 not json",
            folder + "Streaming_History_Audio_2023-2024_0.json": first,
            folder + "Streaming_History_Audio_2024_1.json": second,
            "Spotify Account Data/Userdata.json": b'{"username": "x"}',
            "README.txt": b"hello",
        },
        **{folder: 0o40755},
    )
    files = read_history_file(path)
    assert [f.member for f in files] == [
        folder + "Streaming_History_Audio_2023-2024_0.json",
        folder + "Streaming_History_Audio_2024_1.json",
    ]
    assert all(f.source_file == str(path) and f.shape == "extended" for f in files)
    assert files[0].plays[0].member == folder + "Streaming_History_Audio_2023-2024_0.json"
    # The member's hash is that of the same file dropped loose.
    loose = tmp_path / "Streaming_History_Audio_2023-2024_0.json"
    loose.write_bytes(first)
    assert one(loose).content_sha256 == files[0].content_sha256
    assert one(loose).plays[0] == dataclasses.replace(
        files[0].plays[0], source_file=str(loose), member=None
    )


def test_broken_json_inside_zip_names_file_and_member(tmp_path: Path) -> None:
    path = _zip(tmp_path / "my_spotify_data.zip", {"MyData/endsong_0.json": b"[{"})
    with pytest.raises(SpotifyHistoryError) as caught:
        read_history_file(path)
    assert "my_spotify_data.zip" in str(caught.value)
    assert "MyData/endsong_0.json" in str(caught.value)


@pytest.mark.parametrize(
    "name", ["../Streaming_History_Audio_2024_0.json", "/etc/endsong_0.json", "a/../../x.pdf"]
)
def test_zip_with_path_traversal_is_rejected(tmp_path: Path, name: str) -> None:
    path = _zip(tmp_path / "evil.zip", {name: json.dumps([EXTENDED_ROW]).encode()})
    with pytest.raises(SpotifyHistoryError, match=r"evil\.zip.*absolute path or climbs"):
        read_history_file(path)


def test_zip_with_symlink_is_rejected(tmp_path: Path) -> None:
    name = "Spotify Extended Streaming History/Streaming_History_Audio_2024_0.json"
    path = _zip(tmp_path / "link.zip", {name: b"/etc/passwd"}, **{name: stat.S_IFLNK | 0o777})
    with pytest.raises(SpotifyHistoryError, match="symbolic link"):
        read_history_file(path)


def limits(**caps: float) -> ZipLimits:
    """Spotify's export limits with some caps changed."""
    return dataclasses.replace(SPOTIFY_EXPORT_LIMITS, **caps)


def test_zip_bomb_is_rejected_by_caps(tmp_path: Path) -> None:
    rows = [EXTENDED_ROW] * 2_000
    path = _zip(
        tmp_path / "bomb.zip", {"Streaming_History_Audio_2024_0.json": json.dumps(rows).encode()}
    )
    with pytest.raises(SpotifyHistoryError, match="over the cap"):
        read_history_file(path, limits=limits(max_member_bytes=10_000))
    with pytest.raises(SpotifyHistoryError, match="ratio"):
        read_history_file(path, limits=limits(max_ratio=5))
    assert len(read_history_file(path, limits=limits(max_ratio=1000))[0].plays) == 2000


def test_member_that_inflates_past_its_declared_size_is_rejected(tmp_path: Path) -> None:
    data = json.dumps([EXTENDED_ROW] * 50).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Streaming_History_Audio_2024_0.json", data)
    raw = bytearray(buffer.getvalue())
    # Patch the uncompressed size to 100 bytes in the central directory (offset 24 in the
    # entry) and in the local header (offset 22), so that both agree and the reading catches it.
    central = raw.rfind(b"PK\x01\x02")
    raw[central + 24 : central + 28] = (100).to_bytes(4, "little")
    local = raw.find(b"PK\x03\x04")
    raw[local + 22 : local + 26] = (100).to_bytes(4, "little")
    path = tmp_path / "liar.zip"
    path.write_bytes(bytes(raw))
    # zipfile stops at the declared size and then fails the CRC; either way it is refused.
    with pytest.raises(SpotifyHistoryError) as caught:
        read_history_file(path)
    assert "liar.zip" in str(caught.value)
    assert "Streaming_History_Audio_2024_0.json" in str(caught.value)
    assert "inflates to more than 100" in str(caught.value) or "CRC" in str(caught.value)


def test_not_a_zip_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "my_spotify_data.zip"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(SpotifyHistoryError, match="my_spotify_data.zip.*not a readable ZIP"):
        read_history_file(path)


def test_play_key_is_the_same_for_the_same_play_from_two_files(tmp_path: Path) -> None:
    old = {**ENDSONG_ROW, **{k: EXTENDED_ROW[k] for k in ("ts", "ms_played", "spotify_track_uri")}}
    extended = one(write_json(tmp_path / "Streaming_History_Audio_2024_0.json", [EXTENDED_ROW]))
    endsong = one(write_json(tmp_path / "endsong_0.json", [old]))
    assert play_key(extended.plays[0]) == play_key(endsong.plays[0])
    later = {**EXTENDED_ROW, "ts": "2024-03-01T12:34:57Z"}
    other = one(write_json(tmp_path / "Streaming_History_Audio_2024_1.json", [later]))
    assert play_key(other.plays[0]) != play_key(extended.plays[0])
    account_row = {"endTime": "2023-01-31 23:59", "artistName": "A", "trackName": "B",
                   "msPlayed": 5}  # fmt: skip
    a = one(write_json(tmp_path / "StreamingHistory_music_0.json", [account_row]))
    b = one(write_json(tmp_path / "StreamingHistory0.json", [account_row]))
    assert play_key(a.plays[0]) == play_key(b.plays[0])
    assert len(play_key(a.plays[0])) == 64


def test_list_history_files_skips_dotfiles_and_folders(tmp_path: Path) -> None:
    (tmp_path / "rejected").mkdir()
    (tmp_path / "rejected" / "endsong_0.json").write_text("[]")
    (tmp_path / ".endsong_1.json.part").write_text("[]")
    (tmp_path / ".hidden.json").write_text("[]")
    (tmp_path / "notes.txt").write_text("x")
    wanted = [tmp_path / "endsong_0.json", tmp_path / "my_spotify_data.ZIP"]
    for path in wanted:
        path.write_text("[]")
    assert sorted(landing_files(tmp_path, "spotify")) == sorted(wanted)
    assert landing_files(tmp_path / "missing", "spotify") == []


def test_empty_history_file_has_no_plays(tmp_path: Path) -> None:
    history = one(write_json(tmp_path / "Streaming_History_Audio_2024_0.json", []))
    assert (history.shape, history.plays, history.quarantined) == ("extended", [], [])
