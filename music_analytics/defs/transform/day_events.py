"""The materializations of the days a marts run built outside its own partitions, as one batch.

A run is on one partition (or range) but builds every pending day: each other day of each
mart built is reported as a materialization of its own partition, so the UI's partition
status shows it. They are handed to Dagster as one batch (the way Dagster hands over the
partitions of a range run's output), which the event log storage of
`music_analytics.instance.event_log` writes in one transaction: a year's backfill records
its thousands of per-day events in about a second instead of minutes.
"""

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import dagster as dg
from dagster._core.events import (
    DagsterEvent,
    DagsterEventBatchMetadata,
    generate_event_batch_id,
)


def day_materializations(
    context: dg.AssetExecutionContext,
    materializations: Sequence[tuple[dg.AssetKey, str, Mapping[str, Any]]],
) -> Iterator[DagsterEvent]:
    """One materialization event per (asset key, partition key, metadata), in one batch.

    The events are logged as they are created (as Dagster's own asset events are) and yielded
    for the step to pass on; Dagster buffers a batch until its last event when
    DAGSTER_EVENT_BATCH_SIZE is set, and stores each event on its own otherwise.
    """
    step_context = context.get_step_execution_context()
    batch_id = generate_event_batch_id()
    last = len(materializations) - 1
    for index, (key, partition, metadata) in enumerate(materializations):
        yield DagsterEvent.asset_materialization(
            step_context,
            dg.AssetMaterialization(asset_key=key, partition=partition, metadata=metadata),
            DagsterEventBatchMetadata(batch_id, index == last),
        )
