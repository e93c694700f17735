"""Sensors and the schedule through their build contexts."""

import json
import os
import time
from datetime import UTC, datetime

import dagster as dg
import duckdb

from music_analytics.definitions import build_definitions
from music_analytics.defs.events.assets import stream_event_files
from music_analytics.defs.events.sensors import event_files_sensor
from music_analytics.defs.orchestration.schedules import build_daily_marts_schedule
from music_analytics.defs.orchestration.sensors import pending_rebuilds_sensor
from music_analytics.defs.partitions import newest_partition_key
from music_analytics.defs.resources import DataFolders, build_resources
from music_analytics_tests.conftest import event, write_lines


def folders(settings) -> DataFolders:
    return DataFolders(home=str(settings.home), file_stable_seconds=5)


def tick(settings, cursor=None):
    """One sensor tick: its run request (or [] when it skips) and the new cursor."""
    context = dg.build_sensor_context(cursor=cursor, resources={"folders": folders(settings)})
    result = event_files_sensor(context)
    return ([] if isinstance(result, dg.SkipReason) else result), context.cursor


def batch(request) -> list[str]:
    """The file names of one run request of the events sensor."""
    paths = request.run_config["ops"]["stream_event_files"]["config"]["paths"]
    return sorted(os.path.basename(p) for p in paths)


def age(path, seconds: int) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_file_runs_once_it_is_stable(settings):
    path = write_lines(settings.events_landing / "a.ndjson", [event(1)])
    age(path, 60)
    requests, cursor = tick(settings)
    assert requests == []  # first sighting: size not yet seen twice
    requests, cursor = tick(settings, cursor)
    request = requests
    assert request.run_key.startswith("events:")
    assert request.partition_key == newest_partition_key()  # the marts step adds the days
    config = request.run_config["ops"]["stream_event_files"]["config"]
    assert config == {"paths": [str(path)]}
    # the same file on the next tick asks again with the same key: Dagster skips it
    again, _ = tick(settings, cursor)
    assert again.run_key == request.run_key


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


def pending_tick(settings, instance):
    context = dg.build_sensor_context(instance=instance, resources={"folders": folders(settings)})
    return pending_rebuilds_sensor(context)


def load(settings, instance, path):
    dg.materialize(
        [stream_event_files],
        resources=build_resources(settings),
        instance=instance,
        run_config={"ops": {"stream_event_files": {"config": {"paths": [str(path)]}}}},
    )


def test_pending_sensor_builds_what_the_ledger_holds_in_one_run(settings):
    instance = dg.DagsterInstance.ephemeral()
    assert isinstance(pending_tick(settings, instance), dg.SkipReason)  # no warehouse yet
    first = write_lines(
        settings.events_landing / "march.ndjson",
        [
            event(1, stream_start_time="2025-03-01 10:00:00"),
            event(2, stream_start_time="2025-03-09 10:00:00"),
            event(3, stream_start_time="2019-07-09 10:00:00"),
        ],
    )
    load(settings, instance, first)
    request = pending_tick(settings, instance)
    assert request.run_key.startswith("pending:")
    # the newest day with data (genre trends' following week stops there); the run builds all
    assert request.partition_key == "2025-03-09"
    # the same ledger: the same key, so Dagster starts no second run
    assert pending_tick(settings, instance).run_key == request.run_key
    late = write_lines(settings.events_landing / "late.ndjson", [event(9)])
    load(settings, instance, late)
    assert pending_tick(settings, instance).run_key != request.run_key


def test_pending_sensor_waits_while_a_build_runs_or_the_warehouse_is_written(settings):
    instance = dg.DagsterInstance.ephemeral()
    load(settings, instance, write_lines(settings.events_landing / "a.ndjson", [event(1)]))
    with duckdb.connect(str(settings.warehouse_path)):  # a writer holds the file
        assert isinstance(pending_tick(settings, instance), dg.SkipReason)
    run = instance.create_run_for_job(
        build_definitions(settings).resolve_job_def("daily_marts_job"),
        status=dg.DagsterRunStatus.STARTED,
    )
    skip = pending_tick(settings, instance)
    assert isinstance(skip, dg.SkipReason) and run.run_id in skip.skip_message


def test_schedule_rebuilds_yesterday_with_lookback(settings):
    when = datetime(2025, 6, 10, 2, 0, tzinfo=UTC)
    schedule = build_daily_marts_schedule(settings)
    request = schedule(dg.build_schedule_context(scheduled_execution_time=when))
    assert request.run_key == "daily:2025-06-09"
    assert request.partition_key == "2025-06-09"  # the step adds the look-back and pending
    config = request.run_config["ops"]["dbt_daily_models"]["config"]
    assert config == {"days": ["2025-06-06", "2025-06-07", "2025-06-08", "2025-06-09"]}


def test_schedule_clips_to_the_first_partition(settings):
    when = datetime(2008, 1, 2, 2, 0, tzinfo=UTC)  # the default first partition: 2008-01-01
    schedule = build_daily_marts_schedule(settings)
    request = schedule(dg.build_schedule_context(scheduled_execution_time=when))
    assert request.run_config["ops"]["dbt_daily_models"]["config"] == {"days": ["2008-01-01"]}


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
    request, _ = tick(settings, cursor)
    assert batch(request) == ["waiting.ndjson"]
    with loaded.open("a") as handle:  # rewritten: a new version, so it runs again
        handle.write(json.dumps(event(3)) + "\n")
    age(loaded, 60)
    _, cursor = tick(settings, cursor)
    request, _ = tick(settings, cursor)
    assert batch(request) == ["loaded.ndjson", "waiting.ndjson"]


def test_pending_sensor_skips_a_corrupt_warehouse_saying_what_to_do(settings):
    settings.warehouse_path.write_bytes(b"not a database" * 100)
    result = pending_tick(settings, dg.DagsterInstance.ephemeral())
    assert isinstance(result, dg.SkipReason)
    assert f"the warehouse {settings.warehouse_path} is corrupt or truncated" in (
        result.skip_message
    )
