"""The raw Parquet layer: real loads into a real DuckDB file, synced to a real folder, read
back with DuckDB's read_parquet(hive_partitioning) and compared with the tables row by row."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from music_analytics.lib.core.raw_layer import (
    MARKER,
    RAW_LAYER_TABLES,
    file_name,
    sync_before_build,
    sync_raw_layer,
)
from music_analytics.lib.core.raw_layer_ledger import is_synced_root, read_layer_changes
from music_analytics.lib.core.raw_layer_store import LayerStore, RawLayerError
from music_analytics.lib.dsp.report_load import load_report_zip
from music_analytics.lib.dsp.sample import write_report_zip
from music_analytics.lib.dsp.sample_report import build_report
from music_analytics.lib.events.datasource_rows import delete_user_rows, truncate_events
from music_analytics.lib.events.files import load_event_files
from music_analytics.lib.spotify.history import read_history_file
from music_analytics.lib.spotify.history_load import import_history_file
from music_analytics.lib.spotify.load import record_poll
from music_analytics.lib.spotify.metadata_load import save_artists, save_tracks
from music_analytics.lib.spotify.plays import RecentPage, RecentPlay
from music_analytics.lib.spotify.sample import generate_history_export
from music_analytics_tests.conftest import event, write_lines

DAY = date(2025, 4, 14)
TABLES = [t.name for t in RAW_LAYER_TABLES]


def load_events(conn, folder: Path, name: str, rows: list) -> None:
    for _, outcome in load_event_files(conn, [write_lines(folder / name, rows)]):
        assert not isinstance(outcome, Exception), outcome


def load_everything(conn, tmp_path: Path) -> None:
    """Rows in every table of the layer, through the real loaders."""
    load_events(
        conn,
        tmp_path,
        "a.ndjson",
        [event(n) for n in range(12)]
        + [event(12, stream_start_time="2025-04-15 01:00:00"), "{not json", event(13, user_id="")],
    )
    load_events(conn, tmp_path, "b.ndjson", [event(n) for n in range(20, 26)])
    for dsp in ("spotify", "youtube"):
        report = build_report(dsp, DAY, records=30, seed=3)
        report["data"][0] = {"no": "track_id"}  # quarantined
        load_report_zip(conn, write_report_zip(tmp_path / f"{dsp}.zip", report), source="landing")
    export = generate_history_export(
        tmp_path / "export", start=DAY, days=3, plays_per_day=8, seed=5, as_zip=False
    )
    paths = sorted(Path(export).rglob("*.json"))
    plays = json.loads(paths[0].read_text())
    paths[0].write_text(json.dumps([*plays, {"ts": "not a time", "ms_played": "x"}]))
    for path in paths:
        for history_file in read_history_file(path):
            import_history_file(conn, history_file)
    at = datetime(2026, 3, 1, 23, 50, tzinfo=UTC)
    plays = [
        RecentPlay(
            at + timedelta(minutes=m),
            f"t{m}",
            "Song",
            1000,
            ("a1",),
            ("A",),
            "al",
            "Al",
            "2020",
            None,
            None,
            None,
            {"track": {"id": f"t{m}"}},
        )
        for m in (0, 20)
    ]
    record_poll(conn, RecentPage(plays, None, False), after_ms=None)
    save_tracks(conn, [{"id": "t0", "name": "Song", "artists": [{"id": "a1"}], "album": {}}])
    save_artists(conn, [{"id": "a1", "name": "A", "genres": ["rock", "pop"]}])


@pytest.fixture
def conn(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        load_everything(conn, tmp_path)
        yield conn


def layer_rows(root: Path, table: str) -> list[tuple]:
    """Every row the layer holds for `table`, as a reader sees it (temporary names skipped)."""
    files = str(root / table / "date=*" / "[!_.]*.parquet")
    if not list(root.glob(f"{table}/date=*/[!_.]*.parquet")):
        return []
    with duckdb.connect() as reader:
        return sorted(
            reader.execute(
                f"select * exclude (date) from read_parquet('{files}', hive_partitioning=true)"
            ).fetchall(),
            key=repr,
        )


def table_rows(conn, table: str) -> list[tuple]:
    columns = conn.execute(
        "select string_agg(case when data_type = 'JSON' then 'cast(\"' || column_name || "
        "'\" as varchar)' else '\"' || column_name || '\"' end, ', ' order by column_index) "
        "from duckdb_columns() where schema_name = 'raw' and table_name = ?",
        [table],
    ).fetchone()[0]
    return sorted(conn.execute(f"select {columns} from raw.{table}").fetchall(), key=repr)


def assert_mirrors(conn, root: Path) -> None:
    for table in TABLES:
        assert layer_rows(root, table) == table_rows(conn, table), table


def parquet_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_every_table_is_mirrored_with_its_columns_types_and_partition_day(conn, tmp_path):
    root = tmp_path / "raw"
    summary = sync_raw_layer(conn, str(root))
    assert summary.whole and summary.files_written > 0
    assert_mirrors(conn, root)
    for table in TABLES:
        assert table_rows(conn, table), f"the fixture left {table} empty"
    # the partition day is the table's day column; each file is one load of one day
    day_of = {t.name: t.day_sql for t in RAW_LAYER_TABLES}
    for table in TABLES:
        with duckdb.connect() as reader:
            pairs = reader.execute(
                f"select distinct date, filename from read_parquet('{root}/{table}/*/*.parquet', "
                "hive_partitioning=true, filename=true)"
            ).fetchall()
        expected = conn.execute(
            f"select distinct {day_of[table]}, "
            f"{[t.key_sql for t in RAW_LAYER_TABLES if t.name == table][0]} from raw.{table}"
        ).fetchall()
        assert sorted((d, Path(f).name) for d, f in pairs) == sorted(
            (d, file_name(k)) for d, k in expected
        ), table
    # types: timestamps in microseconds without a time zone, JSON as text, lists as lists
    schema = pq.read_schema(next((root / "stream_events").rglob("*.parquet")))
    assert str(schema.field("stream_start_time").type) == "timestamp[us]"
    assert str(schema.field("stream_date").type) == "date32[day]"
    assert str(schema.field("line_number").type) == "int64"
    assert str(schema.field("completed").type) == "int32"
    schema = pq.read_schema(next((root / "spotify_artists").rglob("*.parquet")))
    assert str(schema.field("genres").type) == "list<element: string>"
    assert str(schema.field("item").type) == "string"
    assert json.loads((root / MARKER).read_text())["synced_all_at"]


def test_a_second_sync_with_nothing_changed_writes_nothing(conn, tmp_path):
    root = str(tmp_path / "raw")
    sync_raw_layer(conn, root)
    before = {p: p.stat().st_mtime_ns for p in Path(root).rglob("*.parquet")}
    again = sync_raw_layer(conn, root)
    assert (again.whole, again.files_written, again.files_removed, again.days_checked) == (
        False,
        0,
        0,
        0,
    )
    assert {p: p.stat().st_mtime_ns for p in Path(root).rglob("*.parquet")} == before


def test_new_loads_deletes_and_replacements_are_followed(conn, tmp_path):
    root = tmp_path / "raw"
    sync_raw_layer(conn, str(root))
    # a new events file: only its day is checked, one file added
    load_events(
        conn,
        tmp_path,
        "c.ndjson",
        [event(n, stream_start_time="2025-04-20 10:00:00") for n in range(30, 33)],
    )
    summary = sync_raw_layer(conn, str(root))
    assert not summary.whole and summary.files_written == 1
    assert_mirrors(conn, root)
    # a user deleted: the files of that user's days are rewritten (quarantine included)
    delete_user_rows(conn, "user_0", "op-1")
    summary = sync_raw_layer(conn, str(root))
    assert summary.files_written >= 1
    assert not [r for r in layer_rows(root, "stream_events") if r[1] == "user_0"]
    assert_mirrors(conn, root)
    # a DSP report replaced for its (dsp, report_date): the old load's files go
    old = conn.execute(
        "select distinct load_id from raw.dsp_report_records where dsp = 'youtube'"
    ).fetchone()[0]
    report = build_report("youtube", DAY, records=10, seed=9)
    load_report_zip(conn, write_report_zip(tmp_path / "yt2.zip", report), source="landing")
    sync_raw_layer(conn, str(root))
    assert not list(root.rglob(file_name(old)))
    assert_mirrors(conn, root)
    # a truncate: every events file goes, the folders too
    truncate_events(conn, "op-2")
    sync_raw_layer(conn, str(root))
    assert layer_rows(root, "stream_events") == [] or not (root / "stream_events").exists()
    assert not list((root / "stream_events").glob("date=*/*"))
    assert_mirrors(conn, root)
    assert read_layer_changes(conn).up_to == 0  # the queue is empty once synced


def test_stray_and_temporary_files_are_removed_and_named(conn, tmp_path):
    root = tmp_path / "raw"
    sync_raw_layer(conn, str(root))
    day = root / "stream_events" / f"date={DAY.isoformat()}"
    (day / "_tmp-0123.parquet").write_bytes(b"half a file")
    (day / "copy.parquet").write_bytes((next(day.glob("*.parquet"))).read_bytes())
    (root / "stream_events" / "loose.parquet").write_bytes(b"x")
    logged: list[str] = []
    summary = sync_raw_layer(conn, str(root), whole=True, log=logged.append)
    assert sorted(summary.strays_removed) == [
        "stream_events/date=2025-04-14/copy.parquet",
        "stream_events/loose.parquet",
    ]
    assert any("copy.parquet" in line for line in logged)
    assert not (day / "_tmp-0123.parquet").exists()
    assert_mirrors(conn, root)
    # a file of ours deleted by hand is written again by a whole sync
    victim = next(day.glob("*.parquet"))
    victim.unlink()
    sync_raw_layer(conn, str(root), whole=True)
    assert victim.exists()
    assert_mirrors(conn, root)


def test_an_unwritable_root_is_one_line_naming_the_setting(conn):
    with pytest.raises(RawLayerError) as caught:  # /proc refuses new folders, even to root
        sync_raw_layer(conn, "/proc/music-analytics-raw")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("MUSIC_ANALYTICS_RAW_LAYER_URI=/proc/music-analytics-raw: cannot")
    assert read_layer_changes(conn).up_to > 0  # the queue waits for the next sync


def test_a_root_that_is_a_file_is_one_line_naming_the_setting(conn, tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(RawLayerError, match=r"^MUSIC_ANALYTICS_RAW_LAYER_URI=.*afile"):
        sync_raw_layer(conn, str(tmp_path / "afile" / "raw"))
    warned: list[str] = []
    assert (
        sync_before_build(
            conn,
            str(tmp_path / "afile" / "raw"),
            enabled=True,
            required=False,
            log=print,
            warn=warned.append,
        )
        is None
    )
    assert len(warned) == 1 and "the next build retries" in warned[0]
    with pytest.raises(RawLayerError):
        sync_before_build(
            conn,
            str(tmp_path / "afile" / "raw"),
            enabled=True,
            required=True,
            log=print,
            warn=warned.append,
        )


def test_secrets_in_the_uri_never_reach_the_message_or_the_ledger():
    with pytest.raises(RawLayerError) as caught:
        LayerStore.open("nosuchscheme://user:s3cr3t@bucket/prefix")
    assert "s3cr3t" not in str(caught.value)
    assert LayerStore.__dict__  # the store itself records only the redacted root
    from music_analytics.lib.core.raw_layer_store import redacted

    assert redacted("s3://AKIA:s3cr3t@bucket/p") == "s3://***@bucket/p"


def test_file_and_memory_uris_and_switching_off(conn, tmp_path):
    root = tmp_path / "viauri"
    sync_raw_layer(conn, f"file://{root}")
    assert_mirrors(conn, root)
    memory = sync_raw_layer(conn, "memory://music-analytics-test/raw")
    assert (
        memory.whole
        and memory.files_written
        == sync_raw_layer(conn, str(tmp_path / "local"), whole=True).files_written
    )
    # switched off, the ledgers are emptied; switched on again, the next sync is whole
    assert (
        sync_before_build(conn, str(root), enabled=False, required=False, log=print, warn=print)
        is None
    )
    load_events(conn, tmp_path, "d.ndjson", [event(40, stream_start_time="2025-05-01 01:00:00")])
    assert not is_synced_root(conn, str(root))
    summary = sync_before_build(
        conn, str(root), enabled=True, required=False, log=print, warn=print
    )
    assert summary is not None and summary.whole
    assert_mirrors(conn, root)
