"""Storing Spotify polls, export files and metadata in a real DuckDB file."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from music_analytics.lib.spotify import load as spotify_load
from music_analytics.lib.spotify.history_load import import_history_file
from music_analytics.lib.spotify.load import last_cursor, record_poll
from music_analytics.lib.spotify.metadata_load import (
    artists_missing_metadata,
    save_artists,
    save_audio_features,
    save_tracks,
    tracks_missing_audio_features,
    tracks_missing_metadata,
)

# The parser's and the client's own classes when they exist; plain stand-ins otherwise.
try:
    from music_analytics.lib.spotify.history_shapes import (
        HistoryFile,
        HistoryPlay,
        QuarantinedRow,
        play_key,
    )

    STAND_IN_HISTORY = False
except ImportError:
    STAND_IN_HISTORY = True

    @dataclass(frozen=True)
    class HistoryPlay:  # type: ignore[no-redef]
        ended_at: datetime
        ms_played: int
        kind: str
        track_uri: str | None = None
        track_id: str | None = None
        track_name: str | None = None
        artist_name: str | None = None
        album_name: str | None = None
        episode_name: str | None = None
        show_name: str | None = None
        episode_uri: str | None = None
        audiobook_title: str | None = None
        audiobook_uri: str | None = None
        audiobook_chapter_uri: str | None = None
        audiobook_chapter_title: str | None = None
        platform: str | None = None
        conn_country: str | None = None
        reason_start: str | None = None
        reason_end: str | None = None
        shuffle: bool | None = None
        skipped: bool | None = None
        offline: bool | None = None
        offline_timestamp: datetime | None = None
        incognito_mode: bool | None = None
        shape: str = "extended"
        source_file: str = ""
        member: str | None = None
        row_number: int = 0
        ended_at_precision_seconds: int = 1

    @dataclass(frozen=True)
    class QuarantinedRow:  # type: ignore[no-redef]
        source_file: str
        member: str | None
        row_number: int
        row_json: str
        error: str

    @dataclass(frozen=True)
    class HistoryFile:  # type: ignore[no-redef]
        source_file: str
        member: str | None
        shape: str
        plays: list
        quarantined: list
        content_sha256: str

    def play_key(play) -> str:  # type: ignore[no-redef]
        uri = play.track_uri or play.episode_uri or play.audiobook_chapter_uri or ""
        return f"{play.ended_at:%Y-%m-%dT%H:%M:%S}|{uri}|{play.ms_played}"


try:
    from music_analytics.lib.spotify.plays import RecentPage, RecentPlay
except ImportError:

    @dataclass(frozen=True)
    class RecentPlay:  # type: ignore[no-redef]
        played_at: datetime
        track_id: str
        track_name: str | None = None
        duration_ms: int | None = None
        artist_ids: list = field(default_factory=list)
        artist_names: list = field(default_factory=list)
        album_id: str | None = None
        album_name: str | None = None
        album_release_date: str | None = None
        isrc: str | None = None
        context_type: str | None = None
        context_uri: str | None = None
        item: dict = field(default_factory=dict)

    @dataclass(frozen=True)
    class RecentPage:  # type: ignore[no-redef]
        plays: list
        cursor_after_ms: int | None
        full_page: bool


T0 = datetime(2026, 3, 1, 23, 50, tzinfo=UTC)


@pytest.fixture
def conn(tmp_path: Path, monkeypatch):
    if STAND_IN_HISTORY:
        monkeypatch.setattr(spotify_load, "_play_key", play_key)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as connection:
        yield connection


def count(conn, table: str) -> int:
    return conn.execute(f"select count(*) from raw.{table}").fetchone()[0]


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


# --- polls -------------------------------------------------------------------------------------


def recent(minute: int, track: str = "t1") -> Any:
    """A RecentPlay `minute` minutes after T0, built by field name (theirs or the stand-in)."""
    at = T0 + timedelta(minutes=minute)
    item = {"played_at": at.isoformat(), "track": {"id": track, "name": f"Song {track}"}}
    values = {
        "played_at": at,
        "track_id": track,
        "track_name": f"Song {track}",
        "duration_ms": 180_000,
        "artist_ids": ["a1"],
        "artist_names": ["Artist One"],
        "album_id": "al1",
        "album_name": "Album",
        "album_release_date": "2020-01-01",
        "isrc": "USX000000001",
        "context_type": "playlist",
        "context_uri": "spotify:playlist:p1",
    }
    kwargs = {}
    for f in dataclasses.fields(RecentPlay):
        if f.name in values:
            kwargs[f.name] = values[f.name]
        elif f.name in spotify_load._ITEM_ATTRIBUTES or (
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ):
            kwargs[f.name] = item  # the raw item, whatever the field is called
    return RecentPlay(**kwargs)


def page(plays: list, *, full: bool = False) -> Any:
    cursor = max(ms(p.played_at) for p in plays) if plays else None
    return RecentPage(plays=plays, cursor_after_ms=cursor, full_page=full)


def test_first_poll_stores_plays_and_cursor_progresses(conn):
    assert last_cursor(conn) is None
    first = page([recent(0), recent(5, "t2"), recent(15, "t3")])
    result = record_poll(conn, first, after_ms=None)
    assert (result.plays_returned, result.plays_new, result.full_page) == (3, 3, False)
    assert result.poll_id is not None
    assert result.cursor_after_ms == ms(T0 + timedelta(minutes=15))
    assert result.days_touched == [date(2026, 3, 1), date(2026, 3, 2)]
    assert result.new_track_ids == ["t1", "t2", "t3"]
    assert last_cursor(conn) == result.cursor_after_ms
    row = conn.execute(
        "select played_at, artist_ids, item->>'$.track.id', poll_id from raw.spotify_plays "
        "order by played_at limit 1"
    ).fetchone()
    assert row == (datetime(2026, 3, 1, 23, 50), ["a1"], "t1", result.poll_id)
    poll = conn.execute(
        "select after_ms, cursor_after_ms, plays_returned, plays_new, full_page "
        "from raw.spotify_polls"
    ).fetchone()
    assert poll == (None, result.cursor_after_ms, 3, 3, False)


def test_overlapping_polls_store_each_play_once(conn):
    record_poll(conn, page([recent(0), recent(5, "t2")]), after_ms=None)
    cursor = last_cursor(conn)
    # The second page repeats the play at minute 5 and brings one new one.
    second = record_poll(conn, page([recent(5, "t2"), recent(9, "t1")]), after_ms=cursor)
    assert (second.plays_returned, second.plays_new) == (2, 1)
    assert second.new_track_ids == ["t1"]  # no metadata yet
    assert count(conn, "spotify_plays") == 3
    assert count(conn, "spotify_polls") == 2
    assert last_cursor(conn) == ms(T0 + timedelta(minutes=9))


def test_new_track_ids_are_those_without_metadata(conn):
    save_tracks(conn, [{"id": "t1", "name": "Song t1", "artists": []}])
    result = record_poll(conn, page([recent(0), recent(1, "t9")]), after_ms=None)
    assert result.new_track_ids == ["t9"]


def test_poll_with_nothing_new_writes_nothing(conn):
    record_poll(conn, page([recent(0)]), after_ms=None)
    cursor = last_cursor(conn)
    empty = record_poll(conn, page([]), after_ms=cursor)
    assert (empty.poll_id, empty.plays_new, empty.cursor_after_ms) == (None, 0, cursor)
    again = record_poll(conn, page([recent(0)]), after_ms=cursor)
    assert (again.poll_id, again.plays_returned, again.plays_new) == (None, 1, 0)
    assert (count(conn, "spotify_plays"), count(conn, "spotify_polls")) == (1, 1)
    assert last_cursor(conn) == cursor


def test_cursor_falls_back_to_the_newest_play(conn):
    record_poll(conn, RecentPage(plays=[recent(3)], cursor_after_ms=None, full_page=False),
                after_ms=None)  # fmt: skip
    assert last_cursor(conn) == ms(T0 + timedelta(minutes=3))
    conn.execute("update raw.spotify_polls set cursor_after_ms = null")
    assert last_cursor(conn) == ms(T0 + timedelta(minutes=3))


def test_full_page_of_new_plays_is_flagged(conn):
    after = ms(T0) - 1
    plays = [recent(i, f"t{i}") for i in range(50)]
    result = record_poll(conn, page(plays, full=True), after_ms=after)
    assert result.full_page is True
    assert conn.execute("select full_page from raw.spotify_polls").fetchone() == (True,)
    # A full page reaching back to the cursor is not a gap.
    later = [recent(100 + i, f"t{i}") for i in range(49)] + [recent(-5, "old")]
    result = record_poll(conn, page(later, full=True), after_ms=ms(T0 + timedelta(minutes=49)))
    assert result.full_page is False


# --- export files ------------------------------------------------------------------------------


def hplay(minute: int, *, source: str = "Streaming_History_Audio_2026.json", row: int = 0,
          **overrides) -> Any:  # fmt: skip
    names = {f.name for f in dataclasses.fields(HistoryPlay)}
    values: dict[str, Any] = dict.fromkeys(names)
    values.update(
        ended_at=T0 + timedelta(minutes=minute),
        ms_played=120_000,
        kind="music",
        track_uri="spotify:track:t1",
        track_id="t1",
        track_name="Song t1",
        artist_name="Artist One",
        album_name="Album",
        platform="android",
        conn_country="DE",
        reason_start="trackdone",
        reason_end="trackdone",
        shuffle=False,
        skipped=False,
        offline=False,
        incognito_mode=False,
        shape="extended",
        source_file=source,
        member=None,
        row_number=row,
        ended_at_precision_seconds=1,
    )
    values.update(overrides)
    return HistoryPlay(**{k: v for k, v in values.items() if k in names})


def hfile(plays: list, quarantined: list | None = None, *, source: str = "export.json",
          salt: str = "") -> Any:  # fmt: skip
    sha = hashlib.sha256((salt + "|".join(play_key(p) for p in plays)).encode()).hexdigest()
    return HistoryFile(
        source_file=source,
        member=None,
        shape="extended",
        plays=plays,
        quarantined=quarantined or [],
        content_sha256=sha,
    )


def test_history_file_imported_once(conn):
    plays = [hplay(i, row=i) for i in range(0, 30, 10)]
    first = import_history_file(conn, hfile(plays))
    assert (first.status, first.plays_loaded, first.plays_already_loaded) == ("loaded", 3, 0)
    # Started at 23:48, 23:58 and 00:08: two UTC days.
    assert first.days_touched == [date(2026, 3, 1), date(2026, 3, 2)]
    assert first.new_track_ids == ["t1"]
    again = import_history_file(conn, hfile(plays))
    assert (again.status, again.load_id, again.plays_loaded) == ("duplicate", None, 0)
    assert (count(conn, "spotify_history"), count(conn, "spotify_history_files")) == (3, 1)
    assert conn.execute("select plays_loaded from raw.spotify_history_files").fetchone() == (3,)


def test_same_plays_in_another_file_count_as_already_loaded(conn):
    import_history_file(conn, hfile([hplay(0), hplay(10, row=1)], source="a.json"))
    repackaged = hfile(
        [hplay(0, source="b.json"), hplay(10, source="b.json", row=1), hplay(20, row=2)],
        source="b.json",
        salt="other bytes",
    )
    result = import_history_file(conn, repackaged)
    assert (result.status, result.plays_loaded, result.plays_already_loaded) == ("loaded", 1, 2)
    assert result.days_touched == [date(2026, 3, 2)]
    assert result.new_track_ids == ["t1"]
    assert count(conn, "spotify_history") == 3
    assert count(conn, "spotify_history_files") == 2


def test_quarantined_rows_and_podcasts_stored(conn):
    podcast = hplay(
        5,
        row=1,
        kind="podcast",
        track_uri=None,
        track_id=None,
        track_name=None,
        artist_name=None,
        album_name=None,
        episode_name="Episode 1",
        show_name="The Show",
        episode_uri="spotify:episode:e1",
        offline_timestamp=T0,
    )
    bad = QuarantinedRow(
        source_file="export.json",
        member=None,
        row_number=2,
        row_json=json.dumps({"ts": "yesterday"}),
        error="ts is 'yesterday', not a timestamp",
    )
    result = import_history_file(conn, hfile([hplay(0), podcast], [bad]))
    assert (result.plays_loaded, result.rows_quarantined) == (2, 1)
    assert result.new_track_ids == ["t1"]  # the podcast has no track to look up
    kinds = conn.execute(
        "select kind, track_id, show_name, episode_uri, offline_timestamp "
        "from raw.spotify_history order by kind"
    ).fetchall()
    assert kinds == [
        ("music", "t1", None, None, None),
        ("podcast", None, "The Show", "spotify:episode:e1", datetime(2026, 3, 1, 23, 50)),
    ]
    stored = conn.execute(
        "select source_file, row_number, row_json, error, load_id "
        "from raw.spotify_history_quarantine"
    ).fetchone()
    assert stored == (
        "export.json",
        2,
        '{"ts": "yesterday"}',
        "ts is 'yesterday', not a timestamp",
        result.load_id,
    )
    assert tracks_missing_metadata(conn) == ["t1"]


def test_large_file_is_quick(conn):
    plays = [hplay(i, row=i, track_id=f"t{i % 500}", track_uri=f"spotify:track:t{i % 500}")
             for i in range(20_000)]  # fmt: skip
    result = import_history_file(conn, hfile(plays))
    assert result.plays_loaded == 20_000
    assert len(result.new_track_ids) == 500


# --- metadata ----------------------------------------------------------------------------------


def track(track_id: str, *artists: str, popularity: int = 50) -> dict:
    return {
        "id": track_id,
        "name": f"Song {track_id}",
        "duration_ms": 200_000,
        "popularity": popularity,
        "album": {"id": "al1", "name": "Album", "release_date": "2021-05-01"},
        "external_ids": {"isrc": f"ISRC{track_id}"},
        "artists": [{"id": a, "name": a} for a in artists],
    }


def test_metadata_upserts_and_missing_ids(conn):
    record_poll(conn, page([recent(0, "t1"), recent(5, "t2"), recent(9, "t3")]), after_ms=None)
    assert tracks_missing_metadata(conn) == ["t3", "t2", "t1"]  # most recently played first
    assert tracks_missing_metadata(conn, limit=2) == ["t3", "t2"]
    assert save_tracks(conn, [track("t1", "a1", "a2"), None, track("t2", "a2")]) == 2
    assert tracks_missing_metadata(conn) == ["t3"]
    row = conn.execute(
        "select track_name, duration_ms, popularity, album_release_date, isrc, artist_ids, "
        "item->>'$.album.name' from raw.spotify_tracks where track_id = 't1'"
    ).fetchone()
    assert row == ("Song t1", 200_000, 50, "2021-05-01", "ISRCt1", ["a1", "a2"], "Album")
    # Replacing a track keeps one row with the new values.
    assert save_tracks(conn, [track("t1", "a1", popularity=70)]) == 1
    assert conn.execute(
        "select count(*), max(popularity) from raw.spotify_tracks where track_id = 't1'"
    ).fetchone() == (1, 70)
    assert artists_missing_metadata(conn) == ["a1", "a2"]
    artists = [
        {"id": "a1", "name": "One", "genres": ["indie pop", "rock"], "popularity": 40},
        {"id": "a2", "name": "Two", "genres": []},
    ]
    assert save_artists(conn, artists) == 2
    assert artists_missing_metadata(conn) == []
    assert conn.execute(
        "select artist_name, genres, popularity from raw.spotify_artists order by artist_id"
    ).fetchall() == [("One", ["indie pop", "rock"], 40), ("Two", [], None)]
    assert save_tracks(conn, []) == 0
    assert save_artists(conn, []) == 0


def test_audio_features_unavailable_are_not_asked_again(conn):
    record_poll(conn, page([recent(0, "t1"), recent(5, "t2")]), after_ms=None)
    save_tracks(conn, [track("t3", "a1")])
    assert sorted(tracks_missing_audio_features(conn)) == ["t1", "t2", "t3"]
    assert save_audio_features(conn, ["t1", "t2"], None) == 2
    assert tracks_missing_audio_features(conn) == ["t3"]
    assert conn.execute(
        "select bool_or(available), count(features) from raw.spotify_audio_features"
    ).fetchone() == (False, 0)
    assert save_audio_features(conn, ["t3"], {"t3": {"id": "t3", "energy": 0.5}}) == 1
    assert conn.execute(
        "select available, features->>'$.energy' from raw.spotify_audio_features "
        "where track_id = 't3'"
    ).fetchone() == (True, "0.5")
    assert tracks_missing_audio_features(conn) == []


def test_real_export_file_through_the_parser(conn, tmp_path):
    history = pytest.importorskip("music_analytics.lib.spotify.history")
    base = {
        "platform": "android",
        "ms_played": 200_000,
        "conn_country": "DE",
        "ip_addr": "192.0.2.1",
        "reason_start": "trackdone",
        "reason_end": "trackdone",
        "shuffle": False,
        "skipped": None,
        "offline": False,
        "offline_timestamp": None,
        "incognito_mode": False,
    }
    rows = [
        {
            **base,
            "ts": "2026-03-01T10:00:00Z",
            "master_metadata_track_name": "Song",
            "master_metadata_album_artist_name": "Artist",
            "master_metadata_album_album_name": "Album",
            "spotify_track_uri": "spotify:track:4uLU6hMCjMI75M1A2tKUQC",
        },
        {
            **base,
            "ts": "2026-03-01T11:00:00Z",
            "episode_name": "Episode",
            "episode_show_name": "Show",
            "spotify_episode_uri": "spotify:episode:0Q86acNRm6V9GYx55SXKwf",
        },
        {**base, "ts": "not a time"},
    ]
    path = tmp_path / "Streaming_History_Audio_2026.json"
    path.write_text(json.dumps(rows))
    (parsed,) = history.read_history_file(path)
    result = import_history_file(conn, parsed)
    assert (result.plays_loaded, result.rows_quarantined) == (2, 1)
    assert result.new_track_ids == ["4uLU6hMCjMI75M1A2tKUQC"]
    assert conn.execute(
        "select kind, count(*) from raw.spotify_history group by kind order by kind"
    ).fetchall() == [("music", 1), ("podcast", 1)]
    assert conn.execute("select row_number from raw.spotify_history_quarantine").fetchone() == (3,)
    assert import_history_file(conn, history.read_history_file(path)[0]).status == "duplicate"


def test_file_without_content_hash_is_refused(conn):
    unhashed = dataclasses.replace(hfile([hplay(0)]), content_sha256="")
    with pytest.raises(spotify_load.SpotifyLoadError, match="export.json"):
        import_history_file(conn, unhashed)
    assert count(conn, "spotify_history") == 0
