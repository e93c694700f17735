"""Row counts and typed column schemas of the marts a build materialized, for the UI.

dagster-dbt's own `fetch_row_counts()` / `fetch_column_metadata()` query the warehouse through
dbt's adapter while dbt still runs, from threads of this process: on DuckDB that is a second
process's connection to a file dbt holds for writing (it waits on the lock, or fails), and it
needs the adapter loaded in this process (a start-up cost `DbtCli` skips). So the marts'
Outputs are held back until dbt has finished, then described in one connection to the
warehouse: `dagster/row_count` (the table's rows) and `dagster/column_schema` (every column
with its DuckDB type, from `information_schema`, and its description from the dbt manifest),
and passed on.
"""

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import dagster as dg
import duckdb


def is_mart_output(context: dg.AssetExecutionContext, event: Any) -> bool:
    """Whether `event` is the Output of a model in the `marts` schema."""
    if not isinstance(event, dg.Output):
        return False
    return context.asset_key_for_output(event.output_name).path[0] == "marts"


def describe_marts(
    conn: duckdb.DuckDBPyConnection,
    marts: Iterable[str],
    descriptions: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Each mart's `dagster/row_count` and `dagster/column_schema`, read from the warehouse
    (`descriptions`: mart -> column -> its description, e.g. from the dbt manifest)."""
    names = sorted(set(marts))
    if not names:
        return {}
    descriptions = descriptions or {}
    columns: dict[str, list[dg.TableColumn]] = {name: [] for name in names}
    for table, column, data_type in conn.execute(
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_schema = 'marts' and table_name in (select unnest(?)) "
        "order by table_name, ordinal_position",
        [names],
    ).fetchall():
        description = descriptions.get(table, {}).get(column) or None
        columns[table].append(dg.TableColumn(column, data_type, description=description))
    described = {}
    for name in names:
        if not columns[name]:  # not in the warehouse (a failed model): nothing to report
            continue
        (rows,) = conn.execute(f'select count(*) from marts."{name}"').fetchone()
        described[name] = {
            "dagster/row_count": dg.MetadataValue.int(rows),
            "dagster/column_schema": dg.TableSchema(columns=columns[name]),
        }
    return described


def with_metadata(
    context: dg.AssetExecutionContext, outputs: Iterable[dg.Output], described: Mapping
) -> Iterator[dg.Output]:
    """The held Outputs, each with its mart's description added to its metadata."""
    for output in outputs:
        mart = context.asset_key_for_output(output.output_name).path[-1]
        extra = described.get(mart, {})
        yield output.with_metadata({**output.metadata, **extra}) if extra else output


def manifest_column_descriptions(manifest: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """mart -> column -> description, from a dbt manifest's models in the marts schema."""
    found: dict[str, dict[str, str]] = {}
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") == "model" and node.get("schema") == "marts":
            found[node["name"]] = {
                name: column.get("description", "")
                for name, column in node.get("columns", {}).items()
            }
    return found
