"""The Dagster instance music-analytics prepares: its dagster.yaml and its event log storage."""
