"""Jobs over the marts, and the selection that puts a source's marts in its ingest run."""

import dagster as dg

from music_analytics.defs.transform.assets import dbt_daily_models

daily_marts_job = dg.define_asset_job(
    "daily_marts_job",
    selection=dg.AssetSelection.assets(dbt_daily_models),
    description=(
        "Rebuild marts and their Parquet exports in one dbt run. For a partition range: those "
        "days. Without a partition: every day the rebuild ledger holds (what loads touched and "
        "no build has finished yet), however sparse."
    ),
)


def with_downstream_marts(*raw_assets: dg.AssetsDefinition) -> dg.AssetSelection:
    """Raw assets and every dbt model downstream of them, with the dbt models those read
    (on a fresh home, fct_streams needs the Spotify views to exist even for an events load):
    one run ingests, builds the marts the load touched and writes their exports."""
    raw = dg.AssetSelection.assets(*raw_assets)
    dbt = dg.AssetSelection.assets(dbt_daily_models)
    marts = raw.downstream(include_self=False) & dbt
    return raw | marts | (marts.upstream() & dbt)
