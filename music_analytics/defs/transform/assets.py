"""Every dbt model as a daily-partitioned asset, dbt tests as asset checks.

One step builds the marts and their exports: it brings the raw Parquet layer up to date when
the layer is on (lib/core/raw_layer.py; the spark target's sources), plans the days
(lib/core/plans.py), runs one `dbt build` for all of them, then in one connection to the
warehouse reports the marts built with their row counts and typed columns (mart_metadata.py),
writes the rebuilt days' Parquet exports and the BI database, and only then clears the days
it built from the rebuild ledger.
Every run builds its partition (or range) and whatever the ledger holds for the selected
models, in one dbt invocation however sparse the days: the sensors, the schedule and
`refresh` start runs on the newest day they know of, and the other days built are reported
as materializations of their own partitions.
"""

import functools
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, timedelta
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets
from dagster_dbt.errors import DagsterDbtCliRuntimeError
from dagster_duckdb import DuckDBResource
from pydantic import Field

from music_analytics.defs.partitions import daily_partitions, partition_bounds
from music_analytics.defs.resources import DataFolders, dbt_project, open_warehouse
from music_analytics.defs.serving.exports import MARTS, export_built_days
from music_analytics.defs.transform.day_events import day_materializations
from music_analytics.defs.transform.dbt_build import (
    build_failure,
    dbt_locations,
    dbt_state_dir,
    keep_parse_state,
    start_build,
)
from music_analytics.defs.transform.mart_metadata import (
    describe_marts,
    is_mart_output,
    manifest_column_descriptions,
    with_metadata,
)
from music_analytics.lib.core.crash_points import crash_point
from music_analytics.lib.core.manifest import following_days, models_by_rebuild_source
from music_analytics.lib.core.mart_tables import open_marts
from music_analytics.lib.core.plans import BuildPlan, days_between, outside_message, plan_build
from music_analytics.lib.core.raw_layer import sync_before_build
from music_analytics.lib.core.raw_layer_names import RawLayerError
from music_analytics.lib.core.rebuild_ledger import PendingRebuilds, clear_pending, read_pending
from music_analytics.lib.core.warehouse import ensure_raw_tables

if not dbt_project.manifest_path.exists():
    raise FileNotFoundError(
        f"dbt manifest {dbt_project.manifest_path} is missing: run `make manifest` "
        "(or any make target), or start the UI with `make dev`, which prepares it."
    )

MODELS_BY_SOURCE = models_by_rebuild_source(dbt_project.manifest_path)
COLUMN_DESCRIPTIONS = manifest_column_descriptions(
    json.loads(dbt_project.manifest_path.read_text())
)
FOLLOWING_DAYS = following_days(dbt_project.manifest_path)
ALL_MODELS = frozenset().union(*MODELS_BY_SOURCE.values())


def plan_marts(
    pending: PendingRebuilds,
    *,
    first: date,
    last: date,
    selected_models: Iterable[str] = ALL_MODELS,
    extra_days: Iterable[date] = (),
) -> BuildPlan:
    """The one build of `selected_models` (all by default) for this dbt project: what the
    sensors, the schedule, refresh and the step itself plan with."""
    return plan_build(
        pending,
        selected_models=selected_models,
        models_by_source=MODELS_BY_SOURCE,
        following_days=FOLLOWING_DAYS,
        first=first,
        last=last,
        extra_days=extra_days,
    )


class MusicAnalyticsTranslator(DagsterDbtTranslator):
    """Models are keyed and grouped by their schema: staging/<model>, marts/<model>, and of
    the kind of the engine that builds them (duckdb or spark)."""

    def __init__(self, engine: str = "duckdb") -> None:
        super().__init__()
        self.engine = engine

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] not in ("model", "seed", "snapshot"):
            return spec
        schema = props["schema"]
        # dbt and the engine (dagster-dbt would add the adapter the manifest was parsed with)
        return spec.replace_attributes(
            key=dg.AssetKey([schema, props["name"]]),
            group_name=schema,
            kinds={"dbt", self.engine},
        )


class MartBuildConfig(dg.Config):
    """Days to build besides the run's partitions and the pending ones."""

    days: list[str] = Field(
        default_factory=list,
        description="YYYY-MM-DD days to rebuild too, e.g. the daily schedule's look-back.",
    )


def _window_days(context: dg.AssetExecutionContext) -> set[date]:
    window = context.partition_time_window
    return set(days_between(window.start.date(), (window.end - timedelta(days=1)).date()))


def _plan(context: dg.AssetExecutionContext, config: MartBuildConfig, folders, conn) -> BuildPlan:
    first, last = partition_bounds(folders.first_day)
    return plan_marts(
        read_pending(conn),
        selected_models={key.path[-1] for key in context.selected_asset_keys},
        first=first,
        last=last,
        extra_days=_window_days(context) | {date.fromisoformat(d) for d in config.days},
    )


def _with_other_days(
    context: dg.AssetExecutionContext, events: Iterator[Any], plan: BuildPlan
) -> Iterator[Any]:
    """dbt's events, then for each incremental mart built one materialization per day built
    outside the run's partitions, all in one batch, so the UI's partition status shows every
    day built."""
    window = _window_days(context)
    others = [day.isoformat() for day in plan.days if day not in window]
    reports = []
    for event in events:
        yield event
        if others and isinstance(event, dg.Output):
            key = context.asset_key_for_output(event.output_name)
            if key.path[-1] in MARTS:
                reports += [(key, day, event.metadata) for day in others]
    if reports:
        yield from day_materializations(context, reports)


def _sync_raw_layer(context: dg.AssetExecutionContext, folders: DataFolders, conn) -> None:
    """The raw Parquet layer brought to the raw tables before dbt reads anything (a no-op,
    bar emptying its queue, when the layer is off); under spark a layer that cannot be
    written fails the step with its one line."""
    try:
        sync_before_build(
            conn,
            folders.raw_layer_uri,
            enabled=bool(folders.raw_layer_uri),
            required=folders.engine == "spark",
            log=context.log.info,
            warn=context.log.warning,
        )
    except RawLayerError as exc:
        raise dg.Failure(description=str(exc)) from None


def _crash_while_dbt_runs(events: Iterator[Any]) -> Iterator[Any]:
    """The crash tests' point `dbt`: after dbt's first result, while it builds the rest."""
    for number, event in enumerate(events):
        if number == 1:
            crash_point("dbt")
        yield event


# The pool of the dbt step per engine. DuckDB: `duckdb`, the warehouse's one writer, since dbt
# writes the marts into the warehouse file. Spark: `spark` (limit 1 like every pool: one
# dbt-spark session at a time; raise it for a cluster); the step then takes the DuckDB
# warehouse only for moments (raw layer sync, rebuild ledger), waiting out another writer's
# lock as every connection does, while the raw writers (ingestion) keep the `duckdb` pool.
DBT_POOLS = {"duckdb": "duckdb", "spark": "spark"}


@functools.cache
def build_dbt_daily_models(engine: str = "duckdb") -> dg.AssetsDefinition:
    """The dbt models as assets for `engine` (MUSIC_ANALYTICS_ENGINE): the same step, in the
    engine's pool and of its kind."""
    if engine not in DBT_POOLS:
        raise ValueError(f"unknown engine {engine!r}: expected one of {', '.join(DBT_POOLS)}")

    @dbt_assets(
        manifest=dbt_project.manifest_path,
        project=dbt_project,
        dagster_dbt_translator=MusicAnalyticsTranslator(engine),
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=DBT_POOLS[engine],
        name="dbt_daily_models",
    )
    def dbt_daily_models(
        context: dg.AssetExecutionContext,
        config: MartBuildConfig,
        dbt: DbtCliResource,
        warehouse: DuckDBResource,
        folders: DataFolders,
    ):
        """Sync the raw Parquet layer, build the planned days of the selected models in one
        dbt call, export them, then clear them from the rebuild ledger."""
        yield from _build_marts(context, config, dbt, warehouse, folders)

    return dbt_daily_models


def _build_marts(
    context: dg.AssetExecutionContext,
    config: MartBuildConfig,
    dbt: DbtCliResource,
    warehouse: DuckDBResource,
    folders: DataFolders,
):
    """The step of build_dbt_daily_models, whichever the engine."""
    with open_warehouse(warehouse) as conn:
        ensure_raw_tables(conn)
        _sync_raw_layer(context, folders, conn)
        plan = _plan(context, config, folders, conn)
    if plan.outside:
        first, last = partition_bounds(folders.first_day)
        context.log.warning(outside_message(plan.outside, first, last))
    if not plan.days:
        context.log.info("nothing to build: no pending day for the selected models")
        return
    context.log.info(
        f"dbt build of {len(plan.days)} day(s) ({plan.days[0]}..{plan.days[-1]}) in "
        f"{len(plan.day_ranges)} range(s)"
    )
    invocation = start_build(
        dbt,
        ["build"],
        plan.day_ranges,
        home=folders.home,
        context=context,
        name=context.run_id[:8],
        locations=dbt_locations(folders.raw_layer_uri, folders.spark_warehouse_dir),
    )
    held: list[dg.Output] = []  # the marts' Outputs, described once dbt has let go of the file
    try:
        for event in _crash_while_dbt_runs(invocation.stream()):
            if is_mart_output(context, event):
                held.append(event)
            else:
                yield event
    except Exception as error:
        yield from held  # the marts dbt built before it failed are materialized, as before
        if isinstance(error, DagsterDbtCliRuntimeError):
            raise build_failure(invocation, plan.days, warehouse.database) from None
        raise
    keep_parse_state(invocation, dbt_state_dir(folders.home))
    built = {key.path[-1] for key in context.selected_asset_keys} & set(MARTS)
    with (
        open_warehouse(warehouse) as conn,
        open_marts(
            conn, engine=folders.engine, spark_warehouse=folders.spark_warehouse_dir
        ) as marts,
    ):
        described = describe_marts(
            marts,
            [context.asset_key_for_output(o.output_name).path[-1] for o in held],
            COLUMN_DESCRIPTIONS,
        )
        yield from _with_other_days(context, with_metadata(context, held, described), plan)
        yield from export_built_days(marts, folders, sorted(built), plan.days)
        cleared = clear_pending(conn, plan.sources, plan.days, plan.up_to)
    context.log.info(f"rebuild ledger: {cleared} entr(ies) cleared for {sorted(plan.sources)}")


# The duckdb engine's assets: their keys and checks are every engine's (jobs and tests select
# by them); build_definitions() takes the settings' engine's.
dbt_daily_models = build_dbt_daily_models("duckdb")
