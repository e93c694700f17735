"""Rebuilding exactly the mart partitions that newly loaded raw data touched."""

from datetime import date

import dagster as dg

from music_analytics.defs.dsp_reports.assets import RAW_DSP_RECORDS
from music_analytics.defs.events.assets import RAW_EVENTS
from music_analytics.defs.orchestration.jobs import daily_marts_job
from music_analytics.defs.partitions import partition_bounds, partition_range_tags
from music_analytics.lib.partition_ranges import clamp_days, contiguous_ranges

RAW_SOURCES = (RAW_EVENTS, RAW_DSP_RECORDS)
_BATCH = 200


def days_touched(metadata: dict) -> list[date]:
    """The days a raw materialization reported in its `days_touched` metadata."""
    entry = metadata.get("days_touched")
    return [date.fromisoformat(d) for d in (entry.value if entry is not None else [])]


@dg.sensor(
    job=daily_marts_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "After raw data loads, rebuilds the mart partitions of exactly the days it touched, "
        "one run per contiguous range."
    ),
)
def marts_after_raw_load_sensor(context: dg.SensorEvaluationContext):
    """Reads new raw materializations after the cursor (an event storage id) and requests runs."""
    cursor = int(context.cursor) if context.cursor else 0
    newest = cursor
    days: set[date] = set()
    for key in RAW_SOURCES:
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_storage_id=cursor),
            limit=_BATCH,
            ascending=True,
        ).records
        for record in records:
            days.update(days_touched(record.asset_materialization.metadata))
            newest = max(newest, record.storage_id)
    if newest == cursor:
        return dg.SkipReason("no new raw data")
    first, last = partition_bounds()
    inside, outside = clamp_days(days, first, last)
    if outside:
        context.log.warning(
            f"{len(outside)} day(s) outside the partitions {first}..{last} are not rebuilt: "
            f"{outside[0]}..{outside[-1]} (see MUSIC_ANALYTICS_START_DATE)"
        )
    context.update_cursor(str(newest))
    return [
        dg.RunRequest(
            run_key=f"marts:{start.isoformat()}:{end.isoformat()}:{newest}",
            tags=partition_range_tags(start, end),
        )
        for start, end in contiguous_ranges(inside)
    ]
