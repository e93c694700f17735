"""One export asset per mart: its days as Parquet, refreshed in the run that rebuilt them."""

from datetime import timedelta
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from music_analytics.defs.partitions import daily_partitions
from music_analytics.defs.resources import DataFolders, dbt_project, open_warehouse
from music_analytics.lib.core.exports import export_mart_days, write_bi_database
from music_analytics.lib.core.manifest import DailyMart, daily_marts


def _export_spec(mart: str, partitioned_by: DailyMart) -> dg.AssetSpec:
    date_column, per = partitioned_by.date_column, partitioned_by.grain
    return dg.AssetSpec(
        dg.AssetKey(["exports", mart]),
        deps=[dg.AssetKey(["marts", mart])],
        group_name="exports",
        kinds={"parquet"},
        partitions_def=daily_partitions,
        skippable=True,
        description=(
            f"marts.{mart} as Parquet, one file a {per}: exports/{mart}/{date_column}=YYYY-MM-DD/"
            "data.parquet, replaced atomically when the day is rebuilt; read through "
            "exports/bi.duckdb."
        ),
    )


MARTS = daily_marts(dbt_project.manifest_path)


@dg.multi_asset(
    name="mart_exports",
    specs=[_export_spec(mart, partitioned_by) for mart, partitioned_by in MARTS.items()],
    can_subset=True,
    pool="duckdb",
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def mart_exports(
    context: dg.AssetExecutionContext, warehouse: DuckDBResource, folders: DataFolders
):
    """Export the run's days of each selected mart, then refresh the BI database's views."""
    window = context.partition_time_window
    first, last = window.start.date(), (window.end - timedelta(days=1)).date()
    exports = Path(folders.home) / "exports"
    results = []
    with open_warehouse(warehouse) as conn:
        for key in sorted(context.selected_asset_keys):
            mart = key.path[-1]
            results.append(
                export_mart_days(
                    conn,
                    exports,
                    mart=mart,
                    date_column=MARTS[mart].date_column,
                    first=first,
                    last=last,
                    grain=MARTS[mart].grain,
                )
            )
    bi = write_bi_database(exports)
    for result in results:
        yield dg.MaterializeResult(
            asset_key=dg.AssetKey(["exports", result.mart]),
            metadata={
                "days_written": result.days_written,
                "days_removed": result.days_removed,
                "dagster/row_count": result.rows,
                "path": dg.MetadataValue.path(str(exports / result.mart)),
                "bi_database": dg.MetadataValue.path(str(bi)),
            },
        )
