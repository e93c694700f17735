"""The one `daily` partitions definition shared by raw data and marts (UTC days)."""

from datetime import date, datetime, timedelta

import dagster as dg

from music_analytics.lib.settings import Settings

# End offset 1: today's partition exists, so late-night files can refresh today's marts.
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=Settings.from_env().start_date.isoformat(),
    timezone="UTC",
    end_offset=1,
)


def partition_bounds(now: datetime | None = None) -> tuple[date, date]:
    """First and last day that have a partition now."""
    keys = daily_partitions.get_partition_keys(current_time=now)
    return date.fromisoformat(keys[0]), date.fromisoformat(keys[-1])


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
