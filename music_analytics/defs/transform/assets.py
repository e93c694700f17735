"""Every dbt model as a daily-partitioned asset, dbt tests as asset checks."""

import json
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from music_analytics.defs.partitions import daily_partitions, dbt_partition_vars
from music_analytics.defs.resources import dbt_project

if not dbt_project.manifest_path.exists():
    raise FileNotFoundError(
        f"dbt manifest {dbt_project.manifest_path} is missing: run `make manifest` "
        "(or any make target), or start the UI with `make dev`, which prepares it."
    )


class MusicAnalyticsTranslator(DagsterDbtTranslator):
    """Models are keyed and grouped by their schema: staging/<model>, marts/<model>."""

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] not in ("model", "seed", "snapshot"):
            return spec
        schema = props["schema"]
        return spec.replace_attributes(
            key=dg.AssetKey([schema, props["name"]]),
            group_name=schema,
        ).merge_attributes(kinds={"duckdb"})


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=MusicAnalyticsTranslator(),
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="duckdb",
    name="dbt_daily_models",
)
def dbt_daily_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """Build the selected models and their tests for the run's partition range, one dbt call."""
    dbt_vars = dbt_partition_vars(context.partition_time_window)
    context.log.info(f"dbt build for {dbt_vars['min_date']}..{dbt_vars['max_date']}")
    yield from dbt.cli(["build", "--vars", json.dumps(dbt_vars)], context=context).stream()
