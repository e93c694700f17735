"""Dagster objects only, one folder per domain; `music_analytics.definitions` assembles them."""
