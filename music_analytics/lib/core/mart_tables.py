"""The one place that opens the marts for reading, whichever engine built them.

Row counts for the UI (defs/transform/mart_metadata.py), the Parquet exports and bi.duckdb
(lib/core/exports.py) and the demo's summary read `marts.<mart>` on a DuckDB connection:

- **duckdb**: the warehouse's own schema `marts`, on the connection given.
- **spark**: the Spark marts are Parquet tables partitioned by their date column,
  `<spark warehouse>/marts.db/<mart>/<date column>=YYYY-MM-DD/part-*.parquet`; an in-memory
  DuckDB gets one view `marts.<mart>` over each (read_parquet with hive_partitioning, which
  brings the date column back from the folder names), so the same SQL reads them and the
  exports come out in the same layout. A mart without any file yet (no rows ever) gets no view,
  as a DuckDB mart that was never built has no table.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

SPARK_MARTS_DATABASE = "marts.db"  # Spark's folder of the `marts` schema in its warehouse


def spark_mart_folders(spark_warehouse: Path) -> dict[str, Path]:
    """Each Spark mart that has at least one Parquet file, and its table's folder."""
    marts = Path(spark_warehouse) / SPARK_MARTS_DATABASE
    if not marts.is_dir():
        return {}
    return {
        folder.name: folder
        for folder in sorted(marts.iterdir())
        if folder.is_dir() and next(folder.glob("*=*/*.parquet"), None) is not None
    }


def attach_spark_marts(conn: duckdb.DuckDBPyConnection, spark_warehouse: Path) -> list[str]:
    """Create schema `marts` on `conn` with a view per Spark mart over its Parquet files;
    returns the marts found."""
    conn.execute("create schema if not exists marts")
    found = spark_mart_folders(spark_warehouse)
    for mart, folder in found.items():
        files = str(folder / "*=*" / "*.parquet").replace("'", "''")
        conn.execute(
            f'create or replace view marts."{mart}" as select * from '
            f"read_parquet('{files}', hive_partitioning = true)"
        )
    return list(found)


@contextmanager
def open_marts(
    warehouse: duckdb.DuckDBPyConnection | None, *, engine: str, spark_warehouse: Path | str
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection on which `marts.<mart>` reads the marts `engine` built: the
    warehouse connection itself for duckdb (required then), else an in-memory one over the
    Spark marts' files, closed after the block."""
    if engine == "duckdb":
        if warehouse is None:
            raise ValueError("open_marts: the duckdb engine reads the marts on the warehouse")
        yield warehouse
        return
    if engine != "spark":
        raise ValueError(f"open_marts: unknown engine {engine!r}: expected duckdb or spark")
    conn = duckdb.connect()
    try:
        attach_spark_marts(conn, Path(spark_warehouse))
        yield conn
    finally:
        conn.close()
