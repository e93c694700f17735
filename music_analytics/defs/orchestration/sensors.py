"""Rebuilding exactly the mart partitions that newly loaded raw data touched."""

from datetime import date

import dagster as dg

from music_analytics.defs.dsp_reports.assets import RAW_DSP_RECORDS
from music_analytics.defs.events.assets import RAW_EVENTS
from music_analytics.defs.orchestration.jobs import daily_marts_job
from music_analytics.defs.partitions import partition_bounds, partition_range_tags
from music_analytics.defs.spotify.assets import RAW_SPOTIFY_HISTORY, RAW_SPOTIFY_PLAYS
from music_analytics.lib.core.partition_ranges import clamp_days, contiguous_ranges

RAW_SOURCES = (RAW_EVENTS, RAW_DSP_RECORDS, RAW_SPOTIFY_PLAYS, RAW_SPOTIFY_HISTORY)
_BATCH = 200
# Runs with this tag were started by `music-analytics refresh`, which builds the marts of the
# days they touched itself: the sensor does not build them again.
REFRESH_TAG = {"music_analytics/trigger": "refresh"}


def days_touched(metadata: dict) -> list[date]:
    """The days a raw materialization reported in its `days_touched` metadata."""
    entry = metadata.get("days_touched")
    return [date.fromisoformat(d) for d in (entry.value if entry is not None else [])]


def _runs_started_by_refresh(instance: dg.DagsterInstance, run_ids: set[str]) -> set[str]:
    filters = dg.RunsFilter(run_ids=list(run_ids), tags=REFRESH_TAG)
    return {record.dagster_run.run_id for record in instance.get_run_records(filters)}


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
    records = [
        record
        for key in RAW_SOURCES
        for record in context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_storage_id=cursor),
            limit=_BATCH,
            ascending=True,
        ).records
    ]
    if not records:
        return dg.SkipReason("no new raw data")
    newest = max(record.storage_id for record in records)
    by_refresh = _runs_started_by_refresh(context.instance, {r.run_id for r in records})
    days: set[date] = set()
    for record in records:
        if record.run_id not in by_refresh:
            days.update(days_touched(record.asset_materialization.metadata))
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
