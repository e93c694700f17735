"""The planning code the sensors, the schedule and refresh share."""

import os
import time
from datetime import date, timedelta

import duckdb

from music_analytics.lib.core.landing import landing_files
from music_analytics.lib.core.plans import (
    outside_message,
    plan_build,
    wait_until_settled,
)
from music_analytics.lib.core.rebuild_ledger import PendingRebuilds, latest_data_day
from music_analytics.lib.core.warehouse import ensure_raw_tables

D = date(2025, 3, 10)
MODELS = {
    "events": frozenset({"stg_events", "fct_streams", "genre_trends"}),
    "spotify": frozenset({"stg_spotify", "fct_streams", "listening_history"}),
    "dsp": frozenset({"stg_dsp", "dsp_track_daily"}),
}
ALL = set().union(*MODELS.values())
FIRST, LAST = date(2008, 1, 1), date(2025, 12, 31)


def pending(**days) -> PendingRebuilds:
    return PendingRebuilds({s: frozenset(d) for s, d in days.items()}, up_to=42)


def test_every_pending_day_in_one_build_however_sparse():
    years = [date(2010 + n, 6, 1) for n in range(10)]
    plan = plan_build(
        pending(spotify=years), selected_models=ALL, models_by_source=MODELS, first=FIRST, last=LAST
    )
    assert plan.days == years and plan.up_to == 42
    assert plan.day_ranges == [[d.isoformat(), d.isoformat()] for d in years]
    assert plan.sources == {"events", "spotify", "dsp"}


def test_a_subset_builds_and_clears_only_the_sources_it_covers():
    plan = plan_build(
        pending(events=[D], dsp=[D + timedelta(days=1)]),
        selected_models=MODELS["events"],
        models_by_source=MODELS,
        first=FIRST,
        last=LAST,
    )
    assert plan.days == [D] and plan.sources == {"events"}
    # a single mart's run covers no source: it builds its own days and clears nothing
    alone = plan_build(
        pending(events=[D]),
        selected_models={"fct_streams"},
        models_by_source=MODELS,
        first=FIRST,
        last=LAST,
        extra_days=[D - timedelta(days=3)],
    )
    assert alone.days == [D - timedelta(days=3)] and alone.sources == frozenset()


def test_trailing_windows_bring_the_following_days():
    plan = plan_build(
        pending(events=[D]),
        selected_models=ALL,
        models_by_source=MODELS,
        first=FIRST,
        last=D + timedelta(days=3),
        following_days={"genre_trends": 7},
    )
    assert plan.days == [D + timedelta(days=n) for n in range(4)]  # none past the last partition
    assert plan.outside == []
    # a DSP day feeds no trailing window: it brings no following day
    dsp = plan_build(
        pending(dsp=[D]),
        selected_models=ALL,
        models_by_source=MODELS,
        first=FIRST,
        last=LAST,
        following_days={"genre_trends": 7},
    )
    assert dsp.days == [D]


def test_following_days_stop_at_the_latest_day_with_data():
    """A day after the last one with streams has no rows a trailing measure could change: a
    load of yesterday's file does not rebuild the week after it when that is empty."""
    ledger = pending(events=[D - timedelta(days=2), D])
    plan = plan_build(
        PendingRebuilds(ledger.days_by_source, ledger.up_to, data_through=D + timedelta(days=1)),
        selected_models=ALL,
        models_by_source=MODELS,
        first=FIRST,
        last=LAST,
        following_days={"genre_trends": 7},
    )
    assert plan.days == [D + timedelta(days=n) for n in range(-2, 2)]


def test_the_latest_day_with_data_is_read_from_every_source(tmp_path):
    real = duckdb.connect(str(tmp_path / "w.duckdb"))
    assert latest_data_day(real) is None  # no raw tables yet
    ensure_raw_tables(real)
    assert latest_data_day(real) is None  # the real tables' day columns, and no rows
    # the day columns alone, with rows
    conn = duckdb.connect()
    conn.execute("create schema raw")
    conn.execute("create table raw.stream_events (stream_date date)")
    conn.execute("create table raw.spotify_history (ended_at timestamp, ms_played bigint)")
    conn.execute("insert into raw.stream_events values ('2025-03-02')")
    conn.execute("insert into raw.spotify_history values ('2025-03-04 23:59:00', 60000)")
    assert latest_data_day(conn) == date(2025, 3, 4)


def test_days_before_the_first_partition_name_the_setting():
    plan = plan_build(
        pending(spotify=[date(2006, 5, 1), D]),
        selected_models=ALL,
        models_by_source=MODELS,
        first=FIRST,
        last=LAST,
    )
    assert plan.days == [D] and plan.outside == [date(2006, 5, 1)]
    message = outside_message(plan.outside, FIRST, LAST)
    assert "MUSIC_ANALYTICS_START_DATE=2006-05-01" in message


def test_nothing_pending_plans_nothing():
    plan = plan_build(
        PendingRebuilds(), selected_models=ALL, models_by_source=MODELS, first=FIRST, last=LAST
    )
    assert plan.days == [] and plan.outside == [] and plan.day_ranges == []


def test_wait_until_settled_leaves_a_growing_file_for_next_time(tmp_path):
    done, growing = tmp_path / "done.ndjson", tmp_path / "growing.ndjson"
    done.write_text("{}\n")
    growing.write_text("{")
    past = time.time() - 60
    os.utime(done, (past, past))
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        with growing.open("a") as handle:  # still being copied
            handle.write("x")

    ready, changing = wait_until_settled([done, growing], 0, rounds=2, sleep=sleep)
    assert ready == [done] and changing == [growing] and len(sleeps) == 2


def test_each_landing_folder_has_one_scan(tmp_path):
    for name in ("a.ndjson", "b.jsonl.gz", "c.zip", ".d.ndjson.part", "e.json", "f.txt"):
        (tmp_path / name).write_text("x")
    (tmp_path / "rejected").mkdir()
    (tmp_path / "rejected" / "g.ndjson").write_text("x")
    names = {s: sorted(p.name for p in landing_files(tmp_path, s)) for s in ("events", "dsp")}
    assert names == {"events": ["a.ndjson", "b.jsonl.gz"], "dsp": ["c.zip"]}
    assert sorted(p.name for p in landing_files(tmp_path, "spotify")) == ["c.zip", "e.json"]


def test_files_quiet_for_the_settle_time_are_ready_without_a_wait(tmp_path):
    old, fresh = tmp_path / "old.ndjson", tmp_path / "fresh.ndjson"
    old.write_text("{}\n")
    fresh.write_text("{}\n")
    past = time.time() - 10
    os.utime(old, (past, past))
    sleeps = []
    ready, changing = wait_until_settled([old], 5, sleep=sleeps.append)
    assert ready == [old] and changing == [] and sleeps == []
    # a file written just now still needs its second look, settle time or not
    ready, changing = wait_until_settled([old, fresh], 0, sleep=sleeps.append)
    assert ready == [old, fresh] and changing == [] and sleeps == [1.0]
