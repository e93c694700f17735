"""music-analytics: Dagster + dbt on DuckDB, from raw listening data to daily marts."""
