"""The Parquet exports of the marts: one asset per mart, written by the step that built it.

An export is not built on its own: the dbt step writes the days it rebuilt, whichever way the
marts were built (UI, sensor, schedule, refresh), so an export is never staler than its mart.
In the UI each export is an asset downstream of its mart, materialized by that step.
"""

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb

from music_analytics.defs.resources import DataFolders, dbt_project
from music_analytics.lib.core.crash_points import crash_point
from music_analytics.lib.core.exports import (
    export_mart_values,
    partition_values,
    write_bi_database,
)
from music_analytics.lib.core.manifest import daily_marts

MARTS = daily_marts(dbt_project.manifest_path)  # mart -> its date column and grain


def export_key(mart: str) -> dg.AssetKey:
    """The asset key of a mart's export."""
    return dg.AssetKey(["exports", mart])


export_specs = [
    dg.AssetSpec(
        export_key(mart),
        deps=[dg.AssetKey(["marts", mart])],
        group_name="exports",
        kinds={"parquet"},
        description=(
            f"marts.{mart} as Parquet, one file a {spec.grain}: exports/{mart}/"
            f"{spec.date_column}=YYYY-MM-DD/data.parquet, replaced atomically when it is "
            "rebuilt (by the step that rebuilds the mart); read through exports/bi.duckdb."
        ),
    )
    for mart, spec in MARTS.items()
]


def export_built_days(
    conn: duckdb.DuckDBPyConnection, folders: DataFolders, marts: list[str], days: list[date]
) -> Iterator[dg.AssetMaterialization]:
    """Write `days` of each mart in `marts` to its export, refresh exports/bi.duckdb, and
    report each export's materialization."""
    if not marts or not days:
        return
    exports = Path(folders.home) / "exports"
    results = []
    for mart in marts:
        spec = MARTS[mart]
        result = export_mart_values(
            conn,
            exports,
            mart=mart,
            date_column=spec.date_column,
            values=partition_values(days, spec.grain),
        )
        results.append((mart, result.days_written, result.days_removed, result.rows))
        crash_point("export")  # the crash tests' point: one mart exported, the others not
    bi = write_bi_database(exports)
    for mart, written, removed, rows in results:
        yield dg.AssetMaterialization(
            asset_key=export_key(mart),
            metadata={
                "days_written": written,
                "days_removed": removed,
                "rows_written": rows,
                "first_day": days[0].isoformat(),
                "last_day": days[-1].isoformat(),
                "path": dg.MetadataValue.path(str(exports / mart)),
                "bi_database": dg.MetadataValue.path(str(bi)),
            },
        )
