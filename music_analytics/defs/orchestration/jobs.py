"""Jobs over the daily marts."""

import dagster as dg

from music_analytics.defs.partitions import daily_partitions
from music_analytics.defs.serving.assets import mart_exports
from music_analytics.defs.transform.assets import dbt_daily_models

daily_marts_job = dg.define_asset_job(
    "daily_marts_job",
    selection=dg.AssetSelection.assets(dbt_daily_models, mart_exports),
    partitions_def=daily_partitions,
    description=(
        "Rebuild the staging models and every mart for a range of days, in one dbt run, then "
        "their Parquet exports."
    ),
)
