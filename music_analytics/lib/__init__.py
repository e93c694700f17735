"""Plain Python, no Dagster: settings, the warehouse's raw layer, parsers, validation, sample data."""
