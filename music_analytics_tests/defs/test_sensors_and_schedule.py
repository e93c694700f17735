"""Sensors and the schedule through their build contexts."""

import json
import os
import time
from datetime import UTC, datetime

import dagster as dg

from music_analytics.defs.events.assets import stream_event_files
from music_analytics.defs.events.sensors import event_files_sensor
from music_analytics.defs.orchestration.schedules import build_daily_marts_schedule
from music_analytics.defs.orchestration.sensors import REFRESH_TAG, marts_after_raw_load_sensor
from music_analytics.defs.resources import DataFolders, build_resources
from music_analytics_tests.conftest import event, write_lines

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def folders(settings) -> DataFolders:
    return DataFolders(home=str(settings.home), file_stable_seconds=5)


def tick(settings, cursor=None):
    context = dg.build_sensor_context(cursor=cursor, resources={"folders": folders(settings)})
    requests = list(event_files_sensor(context) or [])
    return requests, context.cursor


def age(path, seconds: int) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_file_runs_once_it_is_stable(settings):
    path = write_lines(settings.events_landing / "a.ndjson", [event(1)])
    age(path, 60)
    requests, cursor = tick(settings)
    assert requests == []  # first sighting: size not yet seen twice
    requests, cursor = tick(settings, cursor)
    [request] = requests
    assert request.run_key.startswith("a.ndjson:")
    config = request.run_config["ops"]["stream_event_files"]["config"]
    assert config == {"paths": [str(path)]}
    # the same file on the next tick asks again with the same key: Dagster skips it
    again, _ = tick(settings, cursor)
    assert [r.run_key for r in again] == [request.run_key]


def test_growing_or_fresh_file_waits(settings):
    path = write_lines(settings.events_landing / "b.ndjson", [event(1)])
    age(path, 60)
    _, cursor = tick(settings)
    with path.open("a") as handle:  # still being written
        handle.write('{"stream_id": "x"')
    age(path, 60)
    requests, cursor = tick(settings, cursor)
    assert requests == []
    os.utime(path, None)  # size now stable but modified just now
    requests, cursor = tick(settings, cursor)
    requests, _ = tick(settings, cursor)
    assert requests == []


def test_marts_sensor_rebuilds_exactly_the_days_loaded(settings):
    instance = dg.DagsterInstance.ephemeral()
    resources = build_resources(settings)
    first = write_lines(
        settings.events_landing / "march.ndjson",
        [
            event(1, stream_start_time="2025-03-01 10:00:00"),
            event(2, stream_start_time="2025-03-02 10:00:00"),
            event(3, stream_start_time="2025-03-09 10:00:00"),
        ],
    )
    dg.materialize(
        [stream_event_files],
        resources=resources,
        instance=instance,
        run_config={"ops": {"stream_event_files": {"config": {"paths": [str(first)]}}}},
    )
    context = dg.build_sensor_context(instance=instance)
    requests = marts_after_raw_load_sensor(context)
    ranges = [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in requests]
    assert ranges == [("2025-03-01", "2025-03-02"), ("2025-03-09", "2025-03-09")]
    cursor = context.cursor

    # nothing new: skip
    again = marts_after_raw_load_sensor(dg.build_sensor_context(instance=instance, cursor=cursor))
    assert isinstance(again, dg.SkipReason)

    # a late file for last month refreshes last month's day only
    late = write_lines(
        settings.events_landing / "late.ndjson", [event(9, stream_start_time="2025-02-14 08:00:00")]
    )
    dg.materialize(
        [stream_event_files],
        resources=resources,
        instance=instance,
        run_config={"ops": {"stream_event_files": {"config": {"paths": [str(late)]}}}},
    )
    requests = marts_after_raw_load_sensor(
        dg.build_sensor_context(instance=instance, cursor=cursor)
    )
    assert [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in requests] == [
        ("2025-02-14", "2025-02-14")
    ]


def test_schedule_rebuilds_yesterday_with_lookback(settings):
    when = datetime(2025, 6, 10, 2, 0, tzinfo=UTC)
    schedule = build_daily_marts_schedule(settings)
    request = schedule(dg.build_schedule_context(scheduled_execution_time=when))
    assert request.run_key == "daily:2025-06-09"
    assert (request.tags[RANGE_START], request.tags[RANGE_END]) == ("2025-06-06", "2025-06-09")


def test_schedule_clips_to_the_first_partition(settings):
    when = datetime(2025, 1, 2, 2, 0, tzinfo=UTC)
    schedule = build_daily_marts_schedule(settings)
    request = schedule(dg.build_schedule_context(scheduled_execution_time=when))
    assert (request.tags[RANGE_START], request.tags[RANGE_END]) == ("2025-01-01", "2025-01-01")


def test_marts_sensor_leaves_the_days_of_refresh_runs_to_refresh(settings):
    """`music-analytics refresh` builds the marts itself: the sensor must not build them again."""
    instance = dg.DagsterInstance.ephemeral()
    path = write_lines(
        settings.events_landing / "a.ndjson", [event(1, stream_start_time="2025-03-01 10:00:00")]
    )
    dg.materialize(
        [stream_event_files],
        resources=build_resources(settings),
        instance=instance,
        run_config={"ops": {"stream_event_files": {"config": {"paths": [str(path)]}}}},
        tags=REFRESH_TAG,
    )
    context = dg.build_sensor_context(instance=instance)
    assert marts_after_raw_load_sensor(context) == []
    assert context.cursor  # the refresh's load is not looked at again


def test_file_sensor_skips_files_a_refresh_already_loaded(settings):
    loaded = write_lines(settings.events_landing / "loaded.ndjson", [event(1)])
    waiting = write_lines(settings.events_landing / "waiting.ndjson", [event(2)])
    for path in (loaded, waiting):
        age(path, 60)
    dg.materialize(
        [stream_event_files],
        resources=build_resources(settings),
        instance=dg.DagsterInstance.ephemeral(),
        run_config={"ops": {"stream_event_files": {"config": {"paths": [str(loaded)]}}}},
    )
    _, cursor = tick(settings)
    requests, _ = tick(settings, cursor)
    assert [r.tags["music_analytics/event_file"] for r in requests] == ["waiting.ndjson"]
    with loaded.open("a") as handle:  # rewritten: a new version, so it runs again
        handle.write(json.dumps(event(3)) + "\n")
    age(loaded, 60)
    _, cursor = tick(settings, cursor)
    requests, _ = tick(settings, cursor)
    assert sorted(r.tags["music_analytics/event_file"] for r in requests) == [
        "loaded.ndjson",
        "waiting.ndjson",
    ]
