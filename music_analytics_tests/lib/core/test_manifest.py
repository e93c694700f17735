"""The marts the exports follow, read off the real dbt manifest (`make manifest`)."""

import json

import pytest

from music_analytics.lib.core.manifest import DailyMart, daily_marts
from music_analytics.lib.core.settings import DBT_PROJECT_DIR


def test_each_mart_has_its_date_column_and_grain():
    marts = daily_marts(DBT_PROJECT_DIR / "target" / "manifest.json")
    assert marts["top_tracks_daily"] == DailyMart("stream_date", "day")
    assert marts["top_tracks_by_day"] == DailyMart("stream_date", "day")
    assert marts["top_tracks_by_month"] == DailyMart("month", "month")
    assert marts["top_tracks_by_country_month"] == DailyMart("month", "month")
    assert marts["dsp_track_daily"].date_column == "report_date"
    assert "stg_stream_events" not in marts


def test_an_unknown_grain_names_the_model(tmp_path):
    node = {
        "name": "weekly",
        "resource_type": "model",
        "schema": "marts",
        "config": {
            "materialized": "incremental",
            "unique_key": "week",
            "meta": {"export_grain": "week"},
        },
    }
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"nodes": {"model.x.weekly": node}}))
    with pytest.raises(ValueError, match="model weekly"):
        daily_marts(manifest)
