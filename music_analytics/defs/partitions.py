"""Partitions: `daily` (UTC days) for stream data and marts, `date x dsp` for DSP reports."""

from datetime import date, datetime, timedelta

import dagster as dg

from music_analytics.lib.core.settings import Settings
from music_analytics.lib.dsp.catalog import DSP_KEYS, Dsp, dsp_by_key

# End offset 1: today's partition exists, so late-night files can refresh today's marts.
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=Settings.from_env().start_date.isoformat(),
    timezone="UTC",
    end_offset=1,
)

# One partition per report the API can produce: a day of one DSP. Dimension names are what the
# UI shows; MultiPartitionKey strings look like "2026-03-28|spotify".
dsp_daily_partitions = dg.MultiPartitionsDefinition(
    {"date": daily_partitions, "dsp": dg.StaticPartitionsDefinition(list(DSP_KEYS))}
)


def dsp_partition_key(day: date, dsp: str) -> dg.MultiPartitionKey:
    """The `date x dsp` partition key of one report."""
    return dg.MultiPartitionKey({"date": day.isoformat(), "dsp": dsp})


def dsp_partition(partition_key: str) -> tuple[date, Dsp]:
    """The day and DSP of a `date x dsp` partition key."""
    keys = dsp_daily_partitions.get_partition_key_from_str(partition_key).keys_by_dimension
    return date.fromisoformat(keys["date"]), dsp_by_key(keys["dsp"])


def partition_bounds(now: datetime | None = None) -> tuple[date, date]:
    """First and last day that have a partition now."""
    keys = daily_partitions.get_partition_keys(current_time=now)
    return date.fromisoformat(keys[0]), date.fromisoformat(keys[-1])


def newest_partition_key(now: datetime | None = None) -> str:
    """Today's partition: the one an ingest run builds besides the days its load touched."""
    return partition_bounds(now)[1].isoformat()


def partition_range_tags(first: date, last: date) -> dict[str, str]:
    """Run tags that make one run build every partition from first to last (inclusive)."""
    return {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }


def dbt_partition_vars(window: dg.TimeWindow) -> dict[str, str]:
    """dbt vars min_date/max_date (inclusive) for a partition time window (end exclusive)."""
    last_day = (window.end - timedelta(days=1)).date()
    return {"min_date": window.start.date().isoformat(), "max_date": last_day.isoformat()}
