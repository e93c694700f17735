"""The raw sources' declared columns (models/staging/_raw__sources.yml) are the warehouse's.

Under Spark the sources are external tables over the raw Parquet layer, declared with those
columns and types (macros/raw_layer.sql); a column added to a raw table in
lib/core/warehouse.py and not to the YAML would be missing there, so they must stay equal.
"""

import duckdb
import yaml

from music_analytics.lib.core.settings import DBT_PROJECT_DIR
from music_analytics.lib.core.warehouse import ensure_raw_tables

SOURCES_YML = DBT_PROJECT_DIR / "models" / "staging" / "_raw__sources.yml"


def declared_columns() -> dict[str, list[tuple[str, str]]]:
    (raw,) = [s for s in yaml.safe_load(SOURCES_YML.read_text())["sources"] if s["name"] == "raw"]
    return {
        table["name"]: [(c["name"], c["data_type"]) for c in table.get("columns", [])]
        for table in raw["tables"]
    }


def test_every_raw_source_declares_the_warehouse_tables_columns():
    with duckdb.connect() as conn:
        ensure_raw_tables(conn)
        declared = declared_columns()
        actual = {
            table: conn.execute(
                "select column_name, lower(data_type) from information_schema.columns "
                "where table_schema = 'raw' and table_name = ? order by ordinal_position",
                [table],
            ).fetchall()
            for table in declared
        }
    assert declared == actual
