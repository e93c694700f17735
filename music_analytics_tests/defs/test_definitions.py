"""The whole code location loads, with the objects and wiring the design names."""

import dagster as dg

from music_analytics.definitions import build_definitions


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
    }
    # dbt tests arrive as asset checks on the marts
    checked = {k.asset_key.to_user_string() for k in graph.asset_check_keys}
    assert {"marts/top_tracks_daily", "marts/genre_trends_daily", "raw/stream_events"} <= checked
    assert defs.resolve_job_def("daily_marts_job").partitions_def is not None
    assert defs.resolve_schedule_def("daily_marts_schedule").cron_schedule == "0 2 * * *"
    assert {s.name for s in defs.sensors} == {"event_files_sensor", "marts_after_raw_load_sensor"}


def test_every_warehouse_writer_is_in_the_duckdb_pool(settings):
    defs = build_definitions(settings)
    for assets_def in defs.resolve_asset_graph().assets_defs:
        if assets_def.is_executable:
            assert assets_def.node_def.pool == "duckdb", assets_def.node_def.name


def test_marts_are_grouped_and_partitioned(settings):
    graph = build_definitions(settings).resolve_asset_graph()
    mart = graph.get(dg.AssetKey(["marts", "top_tracks_daily"]))
    assert mart.group_name == "marts"
    assert mart.partitions_def is not None
    assert "duckdb" in mart.kinds
    upstream = {k.to_user_string() for k in mart.parent_keys}
    assert upstream == {"marts/fct_streams"}
