"""The ingest asset materialized on a tmp_path warehouse."""

import gzip
import json

import dagster as dg
import duckdb

from music_analytics.defs.events.assets import RAW_EVENTS, stream_event_files
from music_analytics.defs.resources import build_resources
from music_analytics_tests.conftest import event, query, write_lines


def ingest(settings, paths=None, raise_on_error=True):
    config = {"ops": {"stream_event_files": {"config": {"paths": [str(p) for p in paths or []]}}}}
    return dg.materialize(
        [stream_event_files],
        resources=build_resources(settings),
        run_config=config,
        raise_on_error=raise_on_error,
    )


def raw_metadata(result) -> dict:
    [mat] = [
        m
        for m in result.asset_materializations_for_node("stream_event_files")
        if m.asset_key == RAW_EVENTS
    ]
    return {k: v.value for k, v in mat.metadata.items()}


def warehouse_counts(settings) -> tuple[int, int]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        return (
            conn.execute("select count(*) from raw.stream_events").fetchone()[0],
            conn.execute("select count(*) from raw.stream_events_quarantine").fetchone()[0],
        )


def test_ingest_reports_loaded_and_quarantined_rows(settings):
    write_lines(
        settings.events_landing / "a.ndjson",
        [event(1), event(2), "{nope", "", event(3, stream_duration_seconds=-1)],
    )
    result = ingest(settings)
    md = raw_metadata(result)
    assert (md["lines"], md["rows_loaded"], md["rows_quarantined"]) == (4, 2, 2)
    assert md["days_touched"] == ["2025-04-14"]
    assert md["dagster/row_count"] == 2
    assert "stream_1" in md["preview"]
    [check] = result.get_asset_check_evaluations()
    assert check.passed is False  # 50 % quarantined is over the 5 % threshold
    assert warehouse_counts(settings) == (2, 2)


def test_redropping_a_file_adds_nothing(settings):
    path = write_lines(settings.events_landing / "a.ndjson", [event(i) for i in range(20)])
    ingest(settings, [path])
    copy = write_lines(settings.events_landing / "copy-of-a.jsonl", [event(i) for i in range(20)])
    md = raw_metadata(ingest(settings, [copy]))
    assert (md["rows_loaded"], md["files_skipped_duplicate"], md["days_touched"]) == (0, 1, [])
    assert warehouse_counts(settings) == (20, 0)


def test_a_run_over_the_whole_folder_skips_what_loaded_and_loads_the_new_file(settings):
    for i in range(3):
        write_lines(
            settings.events_landing / f"day-{i}.ndjson", [event(10 * i + j) for j in range(4)]
        )
    first = raw_metadata(ingest(settings))
    assert (first["files_loaded"], first["files_skipped_duplicate"], first["rows_loaded"]) == (
        3,
        0,
        12,
    )
    write_lines(settings.events_landing / "day-3.ndjson.gz", [event(100), "{bad"])
    md = raw_metadata(ingest(settings))
    assert (md["files_loaded"], md["files_skipped_duplicate"], md["files_rejected"]) == (1, 3, 0)
    assert (md["lines"], md["rows_loaded"], md["rows_quarantined"]) == (2, 1, 1)
    assert "day-3.ndjson.gz" in md["files"] and "day-0.ndjson | duplicate" in md["files"]
    assert warehouse_counts(settings) == (13, 1)
    assert query(settings, "select count(*) from raw.event_file_loads") == [(4,)]


def test_gzip_and_late_file_report_their_own_days(settings):
    late = write_lines(
        settings.events_landing / "late.ndjson.gz",
        [
            event(1, stream_start_time="2025-03-02 10:00:00"),
            event(2, stream_start_time="2025-03-05T23:30:00-02:00"),
        ],
    )
    md = raw_metadata(ingest(settings, [late]))
    assert md["days_touched"] == ["2025-03-02", "2025-03-06"]


def test_an_unreadable_file_is_rejected_and_the_others_load(settings):
    good = write_lines(settings.events_landing / "good.ndjson", [event(1)])
    bad = settings.events_landing / "bad.ndjson.gz"  # a truncated gzip: no line can be read
    bad.write_bytes(gzip.compress(json.dumps(event(2)).encode() * 50 + b"\n")[:-20])
    result = ingest(settings, [good, bad])
    assert result.success
    md = raw_metadata(result)
    assert md["files_rejected"] == 1 and md["rows_loaded"] == 1
    assert "bad.ndjson.gz" in md["files"] and str(bad) in md["rejected"]
    assert warehouse_counts(settings) == (1, 0)
    rejected = settings.events_landing / "rejected"
    assert not bad.exists() and (rejected / "bad.ndjson.gz").exists()
    assert "bad.ndjson.gz" in (rejected / "bad.ndjson.gz.error.txt").read_text()
    # the next run does not see it again, and its days are in the ledger exactly once
    assert query(settings, "select source, count(*) from raw.pending_rebuilds group by 1") == [
        ("events", 1)
    ]


def test_duplicate_stream_ids_are_all_kept_in_raw(settings):
    write_lines(settings.events_landing / "dups.ndjson", [event(1), event(1), event(2)])
    ingest(settings)
    assert warehouse_counts(settings) == (3, 0)  # staging dedups; raw is lossless


def test_one_run_ingests_builds_and_exports_on_a_fresh_home(settings):
    """The events sensor's run: the file's rows reach the marts and the exports in that run,
    even before any mart or Spotify view exists."""
    from music_analytics.definitions import build_definitions
    from music_analytics.defs.partitions import newest_partition_key

    path = write_lines(
        settings.events_landing / "a.ndjson", [event(1, stream_start_time="2025-03-01 10:00:00")]
    )
    result = (
        build_definitions(settings)
        .resolve_job_def("event_ingest_job")
        .execute_in_process(
            instance=dg.DagsterInstance.ephemeral(),
            partition_key=newest_partition_key(),
            run_config={"ops": {"stream_event_files": {"config": {"paths": [str(path)]}}}},
        )
    )
    assert result.success
    assert query(settings, "select count(*) from marts.top_tracks_daily") == [(1,)]
    assert query(settings, "select count(*) from raw.pending_rebuilds") == [(0,)]
    export = settings.exports_dir / "fct_streams" / "stream_date=2025-03-01" / "data.parquet"
    assert export.exists()
