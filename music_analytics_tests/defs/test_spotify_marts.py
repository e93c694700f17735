"""A real dbt build of the Spotify plays into fct_streams and the listener marts, on a tmp DuckDB.

Raw rows are written as the poller, the export importer and the metadata fetcher write them;
the expected rows are worked out by hand from the rules in int_spotify__plays_unified.yml.
"""

import json
from datetime import date, datetime

import dagster as dg
import duckdb
import pytest

from music_analytics.definitions import build_definitions
from music_analytics.defs.partitions import partition_range_tags
from music_analytics.lib.core.settings import Settings
from music_analytics.lib.core.warehouse import ensure_raw_tables
from music_analytics_tests.conftest import module_home

DAY1, DAY2 = date(2025, 4, 1), date(2025, 4, 2)
LOADED_AT = datetime(2025, 4, 3, 1, 0)

# metadata: trk1 by A1 (indie first) and A2; trk2 by A2 (pop); trk4 by A3 (no genres);
# trk3 and trk5 have none (trk5's polled item lacks a duration too, its artist A9 is unknown)
TRACKS = {
    "trk1": (200_000, ["A1", "A2"]),
    "trk2": (180_000, ["A2"]),
    "trk4": (240_000, ["A3"]),
}
ARTISTS = {"A1": ["indie", "rock"], "A2": ["pop"], "A3": []}
NAMES = {"trk1": "Song One", "trk2": "Song Two", "trk4": "Song Four", "trk5": "Song Five"}


def at(day: date, clock: str) -> datetime:
    """A UTC timestamp on `day` at HH:MM:SS."""
    return datetime.combine(day, datetime.strptime(clock, "%H:%M:%S").time())


# live polls: (played_at = end of play, track_id)
API_PLAYS = [
    ("P1", at(DAY1, "10:03:25"), "trk1"),  # H1 ended 5 s earlier: the same play
    ("P2", at(DAY1, "10:06:12"), "trk2"),  # H2 ended 12 s earlier (> 10 + 1): another play
    ("P3", at(DAY1, "10:39:12"), "trk4"),  # starts 10:35:12, 29 min after P2's end
    ("P4", at(DAY2, "08:00:45"), "trk2"),  # H4 (account data, 08:00) within 10 + 60 s
    ("P5", at(DAY2, "12:00:00"), "trk5"),  # no duration anywhere: completed, 0 s
]

# export rows; H1 is in two files with one play_key (the earliest load wins)
HISTORY = [
    dict(key="H1", ended=at(DAY1, "10:03:20"), track="trk1", ms=200_000, platform="android",
         country="SE", reason_end="trackdone", skipped=False, load_id="load-1"),
    dict(key="H1", ended=at(DAY1, "10:03:20"), track="trk1", ms=200_000, platform="android",
         country="SE", reason_end="trackdone", skipped=False, load_id="load-2"),
    dict(key="H2", ended=at(DAY1, "10:06:00"), track="trk2", ms=60_000, platform="android",
         country="SE", reason_end="fwdbtn", skipped=True, load_id="load-1"),
    # 31 min after P3's end (10:39:12): a new session; trk3 has no metadata
    dict(key="H3", ended=at(DAY1, "11:12:42"), track="trk3", ms=150_000, platform="ios",
         country="SE", reason_end="trackdone", skipped=False, load_id="load-1"),
    # account data: minute precision, no URI (named like P4's track), no reason_end
    dict(key="H4", ended=at(DAY2, "08:00:00"), track=None, name="song two",
         artist="ARTIST TWO", ms=170_000, precision=60, shape="account_data", load_id="load-3"),
    # reason_end says trackdone but only half the track played: the ratio rule decides
    dict(key="H5", ended=at(DAY2, "20:00:00"), track="trk1", ms=100_000, platform="android",
         country="DE", reason_end="trackdone", skipped=False, load_id="load-2"),
    # a podcast: listening_history's podcast minutes, never fct_streams
    dict(key="E1", ended=at(DAY2, "09:00:00"), track=None, ms=1_800_000, kind="podcast",
         platform="android", country="SE", load_id="load-2"),
]  # fmt: skip


def insert_raw(conn: duckdb.DuckDBPyConnection) -> None:
    """Write the polls, export rows and metadata as the ingestion assets do."""
    for track_id, (duration_ms, artist_ids) in TRACKS.items():
        conn.execute(
            "insert into raw.spotify_tracks (track_id, track_name, duration_ms, album_id,"
            " artist_ids, item, fetched_at) values (?, ?, ?, ?, ?, '{}', ?)",
            [track_id, NAMES[track_id], duration_ms, f"alb-{track_id}", artist_ids, LOADED_AT],
        )
    for artist_id, genres in ARTISTS.items():
        conn.execute(
            "insert into raw.spotify_artists (artist_id, artist_name, genres, item, fetched_at)"
            " values (?, ?, ?, '{}', ?)",
            [artist_id, f"Artist {artist_id}", genres, LOADED_AT],
        )
    for poll, played_at, track_id in API_PLAYS:
        duration_ms, artist_ids = TRACKS.get(track_id, (None, ["A9"]))
        artist_names = ["Artist Two"] if track_id == "trk2" else ["Someone"]
        conn.execute(
            "insert into raw.spotify_plays (played_at, track_id, track_name, duration_ms,"
            " artist_ids, artist_names, album_id, item, poll_id, loaded_at)"
            " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [played_at, track_id, NAMES[track_id], duration_ms, artist_ids, artist_names,
             f"alb-{track_id}", json.dumps({"id": track_id}), poll, LOADED_AT],
        )  # fmt: skip
    for number, row in enumerate(HISTORY):
        kind = row.get("kind", "music")
        conn.execute(
            "insert into raw.spotify_history (ended_at, ended_at_precision_seconds, ms_played,"
            " kind, track_uri, track_id, track_name, artist_name, episode_name, show_name,"
            " platform, conn_country, reason_end, skipped, shape, play_key, source_file,"
            " row_number, load_id, loaded_at)"
            " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                row["ended"], row.get("precision", 1), row["ms"], kind,
                row["track"] and f"spotify:track:{row['track']}", row["track"],
                row.get("name"), row.get("artist"),
                "Episode 1" if kind == "podcast" else None,
                "The Show" if kind == "podcast" else None,
                row.get("platform"), row.get("country"), row.get("reason_end"),
                row.get("skipped"), row.get("shape", "extended"), row["key"],
                f"{row['load_id']}.json", number, row["load_id"], LOADED_AT,
            ],
        )  # fmt: skip


def epoch(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1)).total_seconds())


def rows(settings: Settings, sql: str) -> list[dict]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        cursor = conn.execute(sql)
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, values, strict=True)) for values in cursor.fetchall()]


def build_marts(settings: Settings, instance: dg.DagsterInstance, first: date, last: date):
    """Run daily_marts_job (one dbt build with its tests) for the days first..last."""
    job = build_definitions(settings).resolve_job_def("daily_marts_job")
    return job.execute_in_process(instance=instance, tags=partition_range_tags(first, last))


MART_QUERIES = {
    "fct_streams": "select * from marts.fct_streams order by source, stream_id",
    "listening_history": "select * from marts.listening_history order by 1, 2",
    "listening_sessions": "select * from marts.listening_sessions order by started_at",
    "user_activity_daily": "select * from marts.user_activity_daily order by 1, 2",
    "top_tracks_daily": "select * from marts.top_tracks_daily order by 1, 2, 5",
    "genre_trends_daily": "select * from marts.genre_trends_daily order by 1, 2, 3",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    with module_home(tmp_path_factory, "spotify_marts") as settings:
        with duckdb.connect(str(settings.warehouse_path)) as conn:
            ensure_raw_tables(conn)
            insert_raw(conn)
        instance = dg.DagsterInstance.ephemeral()
        result = build_marts(settings, instance, DAY1, DAY2)
        marts = {name: rows(settings, sql) for name, sql in MART_QUERIES.items()}
        yield settings, instance, result, marts


def test_build_passes_every_check(built):
    _, _, result, _ = built
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    checked = {e.asset_key.to_user_string() for e in evaluations}
    assert {
        "staging/stg_spotify__plays",
        "staging/stg_spotify__history",
        "staging/stg_spotify__history_episodes",
        "staging/int_spotify__plays_unified",
        "marts/fct_streams",
        "marts/listening_history",
        "marts/listening_sessions",
        "marts/top_tracks_daily",
    } <= checked
    assert [e.check_name for e in evaluations if not e.passed] == []


def test_a_play_polled_and_exported_counts_once_and_the_export_wins(built):
    *_, marts = built
    fact = {(r["source"], r["stream_id"]): r for r in marts["fct_streams"]}
    history_ids = {
        f"spotify:trk1:{epoch(at(DAY1, '10:03:20'))}",  # H1 (P1 matched it; two files)
        f"spotify:trk2:{epoch(at(DAY1, '10:06:00'))}",  # H2
        f"spotify:trk3:{epoch(at(DAY1, '11:12:42'))}",  # H3
        f"spotify:trk2:{epoch(at(DAY2, '08:00:00'))}",  # H4, account data, P4 matched it
        f"spotify:trk1:{epoch(at(DAY2, '20:00:00'))}",  # H5
    }
    api_ids = {
        f"spotify:trk2:{epoch(at(DAY1, '10:06:12'))}",  # P2: 12 s from H2, outside 10 + 1
        f"spotify:trk4:{epoch(at(DAY1, '10:39:12'))}",  # P3
        f"spotify:trk5:{epoch(at(DAY2, '12:00:00'))}",  # P5
    }
    assert {i for s, i in fact if s == "spotify_history"} == history_ids
    assert {i for s, i in fact if s == "spotify_api"} == api_ids
    h1 = fact[("spotify_history", f"spotify:trk1:{epoch(at(DAY1, '10:03:20'))}")]
    assert (h1["country"], h1["device_type"], h1["duration_seconds"]) == ("SE", "android", 200)
    assert h1["stream_start_time"] == at(DAY1, "10:00:00")
    assert (h1["user_id"], h1["artist_id"], h1["genre"]) == ("me", "A1", "indie")
    p3 = fact[("spotify_api", f"spotify:trk4:{epoch(at(DAY1, '10:39:12'))}")]
    # a polled play: the track's duration, start = end - duration, country/device unknown
    assert p3["stream_start_time"] == at(DAY1, "10:35:12")
    assert (p3["duration_seconds"], p3["country"], p3["device_type"]) == (240, "unknown", "unknown")
    assert p3["genre"] == "unknown"  # A3 has no genres
    h4 = fact[("spotify_history", f"spotify:trk2:{epoch(at(DAY2, '08:00:00'))}")]
    assert (h4["track_id"], h4["artist_id"], h4["genre"], h4["country"]) == (
        "trk2", "A2", "pop", "unknown"
    )  # fmt: skip
    h3 = fact[("spotify_history", f"spotify:trk3:{epoch(at(DAY1, '11:12:42'))}")]
    assert (h3["artist_id"], h3["genre"]) == (None, "unknown")  # no metadata
    assert all(r["track_id"] != "E1" and r["duration_seconds"] < 1800 for r in fact.values())


def test_one_completed_rule_for_both_spotify_sources(built):
    *_, marts = built
    completed = {
        (r["track_id"], r["stream_start_time"]): r["is_completed"] for r in marts["fct_streams"]
    }
    assert completed == {
        ("trk1", at(DAY1, "10:00:00")): True,  # 200 of 200 s
        ("trk2", at(DAY1, "10:05:00")): False,  # 60 of 180 s
        ("trk2", at(DAY1, "10:03:12")): True,  # polled: the whole track
        ("trk4", at(DAY1, "10:35:12")): True,
        ("trk3", at(DAY1, "11:10:12")): True,  # no duration known: reason_end trackdone
        ("trk2", at(DAY2, "07:57:10")): True,  # 170 of 180 s >= 0.8
        ("trk5", at(DAY2, "12:00:00")): True,  # polled, no duration known
        ("trk1", at(DAY2, "19:58:20")): False,  # trackdone, but 100 of 200 s < 0.8
    }


def test_listening_history_per_hour(built):
    *_, marts = built
    hours = {(r["stream_date"], r["hour_of_day"]): r for r in marts["listening_history"]}
    assert set(hours) == {(DAY1, 10), (DAY1, 11), (DAY2, 7), (DAY2, 8), (DAY2, 12), (DAY2, 19)}
    ten = hours[(DAY1, 10)]
    assert {k: ten[k] for k in ("plays", "distinct_tracks", "distinct_artists")} == {
        "plays": 4,
        "distinct_tracks": 3,
        "distinct_artists": 3,
    }
    assert ten["minutes_played"] == pytest.approx((200 + 60 + 180 + 240) / 60)
    assert (ten["skipped_plays"], ten["skip_rate"]) == (1, 0.5)  # of H1, H2 (API: unknown)
    assert (ten["top_artist_id"], ten["sessions_started"]) == ("A2", 1)  # P3: 29 min, same
    eleven = hours[(DAY1, 11)]
    assert (eleven["plays"], eleven["sessions_started"], eleven["top_artist_id"]) == (1, 1, None)
    assert eleven["skip_rate"] == 0.0
    podcast = hours[(DAY2, 8)]
    assert (podcast["plays"], podcast["podcast_minutes"], podcast["skip_rate"]) == (0, 30, None)
    assert hours[(DAY2, 7)]["skip_rate"] is None  # account data does not say
    assert sum(h["sessions_started"] for h in hours.values()) == 5
    assert all(h["podcast_minutes"] == 0 for k, h in hours.items() if k != (DAY2, 8))


def test_sessions_split_by_a_31_minute_gap_not_by_29(built):
    *_, marts = built
    sessions = [
        (s["started_at"], s["ended_at"], s["plays"], s["distinct_artists"])
        for s in marts["listening_sessions"]
    ]
    assert sessions == [
        (at(DAY1, "10:00:00"), at(DAY1, "10:39:12"), 4, 3),
        (at(DAY1, "11:10:12"), at(DAY1, "11:12:42"), 1, 0),
        (at(DAY2, "07:57:10"), at(DAY2, "08:00:00"), 1, 1),
        (at(DAY2, "12:00:00"), at(DAY2, "12:00:00"), 1, 1),
        (at(DAY2, "19:58:20"), at(DAY2, "20:00:00"), 1, 1),
    ]


def test_event_marts_cover_the_spotify_plays(built):
    *_, marts = built
    activity = {(r["stream_date"], r["user_id"]): r for r in marts["user_activity_daily"]}
    assert activity[(DAY1, "me")]["stream_count"] == 5
    assert activity[(DAY2, "me")]["stream_count"] == 3
    genres = {(r["stream_date"], r["genre"], r["country"]) for r in marts["genre_trends_daily"]}
    assert (DAY1, "unknown", "unknown") in genres  # P3: no genre, no country


def test_rerunning_a_day_gives_identical_rows(built):
    settings, instance, _, before = built
    result = build_marts(settings, instance, DAY2, DAY2)
    assert result.success
    assert [e.check_name for e in result.get_asset_check_evaluations() if not e.passed] == []
    after = {name: rows(settings, sql) for name, sql in MART_QUERIES.items()}
    assert after == before
