"""Partitions: `daily` (UTC days) for stream data and marts, `date x dsp` for DSP reports.

The assets are declared with partitions from the default start date; `with_start_date`
(called by `build_definitions`) gives them the partitions of MUSIC_ANALYTICS_START_DATE, so
no setting is read at import.
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime

import dagster as dg

from music_analytics.lib.core.settings import DEFAULT_START_DATE
from music_analytics.lib.dsp.catalog import DSP_KEYS, Dsp, dsp_by_key


def daily_partitions_def(start: date) -> dg.DailyPartitionsDefinition:
    """UTC days from `start`; end offset 1: today's partition exists, so late-night files can
    refresh today's marts."""
    return dg.DailyPartitionsDefinition(start_date=start.isoformat(), timezone="UTC", end_offset=1)


def dsp_partitions_def(daily: dg.DailyPartitionsDefinition) -> dg.MultiPartitionsDefinition:
    """One partition per report the API can produce: a day of one DSP. Dimension names are
    what the UI shows; keys look like "2026-03-28|spotify"."""
    return dg.MultiPartitionsDefinition(
        {"date": daily, "dsp": dg.StaticPartitionsDefinition(list(DSP_KEYS))}
    )


# What the asset decorators declare; build_definitions replaces them (with_start_date).
daily_partitions = daily_partitions_def(DEFAULT_START_DATE)
dsp_daily_partitions = dsp_partitions_def(daily_partitions)


def with_start_date(assets: Sequence, start: date) -> list:
    """The assets with partitions starting at `start` (daily ones daily, DSP ones date x dsp)."""
    daily = daily_partitions_def(start)
    dsp = dsp_partitions_def(daily)

    def repartition(spec: dg.AssetSpec) -> dg.AssetSpec:
        if isinstance(spec.partitions_def, dg.MultiPartitionsDefinition):
            return spec.replace_attributes(partitions_def=dsp)
        if isinstance(spec.partitions_def, dg.DailyPartitionsDefinition):
            return spec.replace_attributes(partitions_def=daily)
        return spec

    return [
        asset.map_asset_specs(repartition)
        if isinstance(asset, dg.AssetsDefinition) and asset.partitions_def is not None
        else asset
        for asset in assets
    ]


def dsp_partition_key(day: date, dsp: str) -> dg.MultiPartitionKey:
    """The `date x dsp` partition key of one report."""
    return dg.MultiPartitionKey({"date": day.isoformat(), "dsp": dsp})


def dsp_partition(partition_key: str) -> tuple[date, Dsp]:
    """The day and DSP of a `date x dsp` partition key."""
    keys = dsp_daily_partitions.get_partition_key_from_str(partition_key).keys_by_dimension
    return date.fromisoformat(keys["date"]), dsp_by_key(keys["dsp"])


def partition_bounds(start: date, now: datetime | None = None) -> tuple[date, date]:
    """First and last day that have a partition now: `start` and today (UTC)."""
    return start, (now or datetime.now(UTC)).astimezone(UTC).date()


def partition_range_tags(first: date, last: date) -> dict[str, str]:
    """Run tags that make one run build every partition from first to last (inclusive)."""
    return {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }


def newest_partition_key(now: datetime | None = None) -> str:
    """Today's partition: the one an ingest run builds besides the days its load touched."""
    return (now or datetime.now(UTC)).astimezone(UTC).date().isoformat()
