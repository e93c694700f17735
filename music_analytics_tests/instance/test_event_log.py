"""The batching event log storage: per-day materializations of a run land as Dagster's own
storage would leave them, on the same files, readable by Dagster's SqliteEventLogStorage."""

import dagster as dg
import pytest
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from music_analytics.defs.transform.day_events import day_materializations
from music_analytics.instance.event_log import BatchingSqliteEventLogStorage
from music_analytics.instance.home import prepare_dagster_home

DAYS = dg.DailyPartitionsDefinition(start_date="2025-01-01", end_date="2025-03-01")
KEYS = DAYS.get_partition_keys()
OTHERS = [dg.AssetKey(["marts", "a"]), dg.AssetKey(["marts", "b"])]


@dg.asset(partitions_def=DAYS)
def window_asset(context: dg.AssetExecutionContext):
    """Builds its partition and reports every other day of two other assets, as the dbt step."""
    context.log.info("a log line between the batch's events")
    yield from day_materializations(
        context, [(key, day, {"day": day}) for key in OTHERS for day in KEYS[:-1]]
    )
    yield dg.Output(None)


@pytest.fixture
def instance(settings):
    prepare_dagster_home(settings)
    with dg.DagsterInstance.get() as instance:
        yield instance


def _materialize(instance) -> str:
    result = dg.materialize([window_asset], instance=instance, partition_key=KEYS[-1])
    assert result.success
    return result.run_id


def test_the_instance_uses_the_batching_storage(instance):
    assert isinstance(instance.event_log_storage, BatchingSqliteEventLogStorage)
    assert instance.run_storage is not None  # the other storages stay Dagster's defaults


def test_every_day_reported_is_a_materialized_partition(instance):
    run_id = _materialize(instance)
    for key in OTHERS:
        assert instance.get_materialized_partitions(key) == set(KEYS[:-1])
        latest = instance.get_latest_materialization_event(key)
        assert latest.run_id == run_id
        assert latest.asset_materialization.partition == KEYS[-2]  # the last one reported
        assert latest.asset_materialization.metadata["day"].value == KEYS[-2]
    [record] = instance.get_asset_records([OTHERS[0]])
    assert record.asset_entry.last_run_id == run_id
    run_events = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    assert len(run_events) == 2 * (len(KEYS) - 1) + 1


def test_a_second_run_updates_the_asset_entries(instance):
    _materialize(instance)
    second = _materialize(instance)
    assert instance.get_latest_materialization_event(OTHERS[1]).run_id == second
    assert instance.get_materialized_partitions(OTHERS[1]) == set(KEYS[:-1])


def test_dagsters_own_storage_reads_the_same_files(instance, settings):
    run_id = _materialize(instance)
    base_dir = instance.event_log_storage._base_dir
    plain = SqliteEventLogStorage(base_dir)
    assert plain.get_materialized_partitions(OTHERS[0]) == set(KEYS[:-1])
    assert len(plain.get_logs_for_run(run_id)) == len(instance.all_logs(run_id))
