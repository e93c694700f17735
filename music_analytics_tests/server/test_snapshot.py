"""The server's read-only snapshots of the exports: rebuilt when the exports change, cached
answers per snapshot, and temporary files removed on close."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from music_analytics.lib.core.exports import write_bi_database
from music_analytics.server.snapshot import MartSnapshot, build_snapshot
from music_analytics.server.snapshot_source import SnapshotSource


def export_day(exports: Path, day: str, streams: int) -> None:
    folder = exports / "genre_trends_daily" / f"stream_date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as conn:
        conn.execute(
            f"copy (select 'pop' as genre, 'US' as country, {streams} as stream_count) "
            f"to '{folder}/data.parquet'"
        )


def streams(snapshot: MartSnapshot) -> int:
    return (
        snapshot.cursor().execute("select sum(stream_count) from genre_trends_daily").fetchone()[0]
    )


def test_a_new_export_is_served_after_a_background_rebuild(tmp_path):
    exports = tmp_path / "exports"
    export_day(exports, "2025-03-01", 5)
    write_bi_database(exports)
    source = SnapshotSource(exports, check_interval=0)
    try:
        first = source.current()
        assert streams(first) == 5
        export_day(exports, "2025-03-02", 7)
        write_bi_database(exports)
        assert source.current() is first  # still served while the new one builds
        newer = source.wait_until_current()
        assert newer is not first and streams(newer) == 12
        assert not first.path.exists()  # the replaced snapshot's file is gone
        work = newer.path.parent
    finally:
        source.close()
    assert not work.exists()


def test_without_exports_the_snapshot_is_empty_and_says_so(tmp_path):
    source = SnapshotSource(tmp_path / "exports")
    try:
        snapshot = source.current()
        assert snapshot.marts == {} and snapshot.filters["date_range"] is None
        with pytest.raises(RuntimeError, match="no marts"):
            snapshot.cursor()
    finally:
        source.close()


def test_answers_are_remembered_per_snapshot_and_the_oldest_go_first(tmp_path):
    exports = tmp_path / "exports"
    export_day(exports, "2025-03-01", 5)
    snapshot = build_snapshot(exports, tmp_path / "s.duckdb")
    snapshot.answers_kept = 2
    calls = []

    def compute(value):
        return lambda: calls.append(value) or value

    assert snapshot.answer("a", compute(1)) == (1, False)
    assert snapshot.answer("a", compute(99)) == (1, True)
    snapshot.answer("b", compute(2))
    snapshot.answer("c", compute(3))  # "a" was used least recently: it goes
    assert snapshot.answer("a", compute(4)) == (4, False)
    assert calls == [1, 2, 3, 4]
    snapshot.conn.close()


def test_the_snapshot_cannot_be_written_or_reconfigured(tmp_path):
    exports = tmp_path / "exports"
    export_day(exports, "2025-03-01", 5)
    snapshot = build_snapshot(exports, tmp_path / "s.duckdb")
    cursor = snapshot.cursor()
    for statement in (
        "delete from genre_trends_daily",
        "create table x (a int)",
        "set enable_external_access = true",
    ):
        with pytest.raises(duckdb.Error):
            cursor.execute(statement)
    assert streams(snapshot) == 5
    assert snapshot.path.exists()
    snapshot.conn.close()


def test_a_failed_rebuild_keeps_the_old_snapshot_and_waits_for_new_exports(tmp_path):
    exports = tmp_path / "exports"
    export_day(exports, "2025-03-01", 5)
    write_bi_database(exports)
    source = SnapshotSource(exports, check_interval=0)
    try:
        first = source.current()
        broken = exports / "genre_trends_daily" / "stream_date=2025-03-02"
        broken.mkdir()
        (broken / "data.parquet").write_bytes(b"not parquet")
        write_bi_database(exports)
        with pytest.raises(TimeoutError, match="cannot rebuild"):
            source.wait_until_current(timeout=3)
        assert source.current() is first and streams(first) == 5
        assert source._building is None  # not retried while the exports stay the same
        shutil.rmtree(broken)  # its data file and the version bi.duckdb named
        export_day(exports, "2025-03-02", 7)
        write_bi_database(exports)
        assert streams(source.wait_until_current()) == 12
        assert source.last_error is None
    finally:
        source.close()


def export_streams(exports: Path, day: str, rows: int) -> None:
    """A day of fct_streams (a view-only mart), replaced the way the exporter replaces it:
    written aside, then renamed over the day's file."""
    folder = exports / "fct_streams" / f"stream_date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as conn:
        conn.execute(
            f"copy (select 'events' as source, i as n from range({rows}) t(i)) "
            f"to '{folder}/.next.parquet'"
        )
    (folder / ".next.parquet").replace(folder / "data.parquet")


def fct_rows(snapshot: MartSnapshot) -> int:
    return snapshot.cursor().execute("select count(*) from fct_streams").fetchone()[0]


def test_every_mart_of_a_snapshot_is_one_version_until_the_next(tmp_path):
    exports = tmp_path / "exports"
    export_day(exports, "2025-03-01", 5)
    export_streams(exports, "2025-03-01", 5)
    write_bi_database(exports)
    source = SnapshotSource(exports, check_interval=0)
    try:
        first = source.current()
        assert (streams(first), fct_rows(first)) == (5, 5)
        # a refresh rewrites a day and adds one: the served snapshot still answers as before,
        # in the view over fct_streams' files as in the copied marts
        export_day(exports, "2025-03-01", 9)
        export_streams(exports, "2025-03-01", 9)
        export_streams(exports, "2025-03-02", 4)
        assert (streams(first), fct_rows(first)) == (5, 5)
        write_bi_database(exports)
        newer = source.wait_until_current()
        assert (streams(newer), fct_rows(newer)) == (9, 13)
        assert first.pins.exists()  # kept one snapshot longer, for requests still on it
        export_day(exports, "2025-03-03", 1)
        write_bi_database(exports)
        newest = source.wait_until_current()
        assert not first.pins.exists() and newer.pins.exists() and newest.pins.exists()
    finally:
        source.close()
    assert list((exports / ".serve-pins").iterdir()) == []


def test_pins_of_a_server_that_died_are_removed_by_the_next(tmp_path):
    exports = tmp_path / "exports"
    export_streams(exports, "2025-03-01", 2)
    write_bi_database(exports)
    stale = exports / ".serve-pins" / "music-analytics-serve-gone-1" / "fct_streams"
    stale.mkdir(parents=True)
    source = SnapshotSource(exports, check_interval=0)
    try:
        assert fct_rows(source.current()) == 2
        assert not stale.parent.exists()
    finally:
        source.close()
