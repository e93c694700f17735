"""Plain Python, no Dagster: settings, the raw layer, parsers, validation, sample data."""
