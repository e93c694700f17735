"""Jobs over the marts, and the selections of the marts a source feeds."""

from collections.abc import Iterable

import dagster as dg

from music_analytics.defs.transform.assets import MODELS_BY_SOURCE, dbt_daily_models

daily_marts_job = dg.define_asset_job(
    "daily_marts_job",
    selection=dg.AssetSelection.assets(dbt_daily_models),
    description=(
        "Rebuild marts and their Parquet exports in one dbt run. For a partition range: those "
        "days. Without a partition: every day the rebuild ledger holds (what loads touched and "
        "no build has finished yet), however sparse."
    ),
)


def _with_what_they_read(models: dg.AssetSelection) -> dg.AssetSelection:
    """dbt models with the dbt models they read, those without their checks.

    On a fresh home, fct_streams needs the Spotify views to exist even for an events load, so
    they are built; their tests read data the load did not change, so they do not run.
    """
    dbt = dg.AssetSelection.assets(dbt_daily_models)
    return models | (models.upstream() & dbt).without_checks()


def with_downstream_marts(*raw_assets: dg.AssetsDefinition) -> dg.AssetSelection:
    """Raw assets and every dbt model downstream of them, with the dbt models those read:
    one run ingests, builds the marts the load touched and writes their exports."""
    raw = dg.AssetSelection.assets(*raw_assets)
    marts = raw.downstream(include_self=False) & dg.AssetSelection.assets(dbt_daily_models)
    return raw | _with_what_they_read(marts)


def marts_of_sources(sources: Iterable[str]) -> dg.AssetSelection:
    """The dbt models fed by the rebuild ledger's `sources` (e.g. {"events"}), with the dbt
    models they read: after an events load the event marts are rebuilt and tested, and the
    DSP ones, which did not change, are not."""
    names = frozenset().union(*(MODELS_BY_SOURCE[source] for source in sources))
    fed = [key for key in dbt_daily_models.keys if key.path[-1] in names]
    return _with_what_they_read(dg.AssetSelection.assets(*fed))
