"""The dbt project as Dagster assets, and its translator."""
