"""The whole code location loads, with the objects and wiring the design names."""

import dagster as dg

from music_analytics.definitions import build_definitions
from music_analytics.lib.core.settings import Settings


def test_definitions_load_with_every_object(settings):
    defs = build_definitions(settings)
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == {
        "raw/stream_events",
        "raw/stream_events_quarantine",
        "staging/stg_events__streams",
        "marts/fct_streams",
        "marts/top_tracks_daily",
        "marts/user_activity_daily",
        "marts/genre_trends_daily",
        "marts/top_tracks_by_day",
        "marts/top_tracks_by_month",
        "marts/top_tracks_by_country_day",
        "marts/top_tracks_by_country_month",
        "archive/dsp_report_zips",
        "raw/dsp_report_records",
        "raw/dsp_report_countries",
        "raw/dsp_report_breakdowns",
        "raw/dsp_report_quarantine",
        "staging/stg_dsp__track_records",
        "staging/stg_dsp__country_stats",
        "staging/stg_dsp__breakdowns",
        "marts/dsp_track_daily",
        "marts/dsp_track_country_daily",
        "marts/dsp_breakdown_daily",
        "marts/track_performance_daily",
        "raw/spotify_plays",
        "raw/spotify_history",
        "raw/spotify_history_quarantine",
        "raw/spotify_tracks",
        "raw/spotify_artists",
        "raw/spotify_audio_features",
        "staging/stg_spotify__plays",
        "staging/stg_spotify__history",
        "staging/stg_spotify__history_episodes",
        "staging/stg_spotify__tracks",
        "staging/stg_spotify__artists",
        "staging/int_spotify__plays_unified",
        "staging/int_spotify__plays_sessionized",
        "marts/listening_history",
        "marts/listening_sessions",
        *(
            f"exports/{mart}"
            for mart in (
                "fct_streams",
                "top_tracks_daily",
                "top_tracks_by_day",
                "top_tracks_by_month",
                "top_tracks_by_country_day",
                "top_tracks_by_country_month",
                "user_activity_daily",
                "genre_trends_daily",
                "dsp_track_daily",
                "dsp_track_country_daily",
                "dsp_breakdown_daily",
                "track_performance_daily",
                "listening_history",
                "listening_sessions",
            )
        ),
    }
    # dbt tests arrive as asset checks on the marts
    checked = {k.asset_key.to_user_string() for k in graph.asset_check_keys}
    assert {"marts/top_tracks_daily", "marts/genre_trends_daily", "raw/stream_events"} <= checked
    assert defs.resolve_job_def("daily_marts_job").partitions_def is not None
    assert defs.resolve_schedule_def("daily_marts_schedule").cron_schedule == "0 2 * * *"
    assert {s.name for s in defs.sensors} == {
        "event_files_sensor",
        "dsp_landing_sensor",
        "spotify_history_sensor",
        "pending_rebuilds_sensor",
        "dead_runs_sensor",
        "run_failure_alert",
        "mart_freshness_sensor",
    }
    assert defs.resolve_schedule_def("spotify_poll_schedule").cron_schedule == "*/30 * * * *"
    assert defs.resolve_schedule_def("dsp_reports_schedule").cron_schedule == "0 1 * * *"
    assert defs.resolve_job_def("dsp_report_job").partitions_def.partition_dimension_names == [
        "date",
        "dsp",
    ]


def test_every_warehouse_writer_is_in_the_duckdb_pool(settings):
    """Only the DSP download, which writes files and no table, waits on the API's pool."""
    defs = build_definitions(settings)
    pools = {
        assets_def.node_def.name: assets_def.node_def.pool
        for assets_def in defs.resolve_asset_graph().assets_defs
        if assets_def.is_executable
    }
    assert pools.pop("archive__dsp_report_zips") == "dsp_api"
    assert set(pools.values()) == {"duckdb"}


def test_dsp_marts_depend_on_the_day_of_every_dsp_report(settings):
    graph = build_definitions(settings).resolve_asset_graph()
    staging = graph.get(dg.AssetKey(["staging", "stg_dsp__track_records"]))
    assert dg.AssetKey(["raw", "dsp_report_records"]) in staging.parent_keys
    # a daily mart partition maps to that day's report of every DSP
    upstream = graph.get_parent_partition_keys_for_child(
        "2025-03-02",
        parent_asset_key=dg.AssetKey(["raw", "dsp_report_records"]),
        child_asset_key=staging.key,
    ).partitions_subset.get_partition_keys()
    assert sorted(upstream) == [
        "2025-03-02|apple_music",
        "2025-03-02|spotify",
        "2025-03-02|youtube",
    ]


def test_marts_are_grouped_and_partitioned(settings):
    graph = build_definitions(settings).resolve_asset_graph()
    mart = graph.get(dg.AssetKey(["marts", "top_tracks_daily"]))
    assert mart.group_name == "marts"
    assert mart.partitions_def is not None
    assert "duckdb" in mart.kinds
    upstream = {k.to_user_string() for k in mart.parent_keys}
    assert upstream == {"marts/fct_streams"}


def test_each_ingest_job_builds_the_marts_downstream_of_its_source(settings):
    """One run per batch: ingest, the marts the load touched, their exports."""
    defs = build_definitions(settings)

    def selected(job_name):
        job = defs.resolve_job_def(job_name)
        return {k.to_user_string() for k in job.asset_layer.selected_asset_keys}

    events = selected("event_ingest_job")
    assert {"raw/stream_events", "marts/fct_streams", "marts/top_tracks_daily"} <= events
    assert not {"marts/listening_history", "marts/dsp_track_daily"} & events
    history = selected("spotify_history_job")
    assert {"raw/spotify_history", "marts/listening_history", "marts/fct_streams"} <= history
    assert "marts/dsp_track_daily" not in history


def test_exports_are_written_by_the_marts_step_not_on_their_own(settings):
    graph = build_definitions(settings).resolve_asset_graph()
    export = graph.get(dg.AssetKey(["exports", "top_tracks_daily"]))
    assert not export.is_executable
    assert export.parent_keys == {dg.AssetKey(["marts", "top_tracks_daily"])}


def test_partitions_start_at_the_setting_read_by_build_definitions(settings, monkeypatch):
    """No setting is read at import: build_definitions gives every asset the start date."""
    monkeypatch.setenv("MUSIC_ANALYTICS_START_DATE", "2020-05-01")
    defs = build_definitions(Settings.from_env())
    graph = defs.resolve_asset_graph()
    for key in (["marts", "top_tracks_daily"], ["staging", "stg_events__streams"]):
        assert graph.get(dg.AssetKey(key)).partitions_def.start.date().isoformat() == "2020-05-01"
    dsp = graph.get(dg.AssetKey(["raw", "dsp_report_records"])).partitions_def
    assert dsp.get_partition_keys()[0].startswith("2020-05-01|")
    assert defs.resolve_job_def("daily_marts_job").partitions_def.start.year == 2020


def test_the_sensor_interval_setting_shortens_every_sensor_but_not_the_module_ones(
    settings, monkeypatch
):
    from music_analytics.defs.events.sensors import event_files_sensor

    monkeypatch.setenv("MUSIC_ANALYTICS_SENSOR_INTERVAL_SECONDS", "2")
    defs = build_definitions(Settings.from_env())
    assert {sensor.minimum_interval_seconds for sensor in defs.sensors} == {2}
    assert event_files_sensor.minimum_interval_seconds == 15
