"""Parquet exports of a mart and the BI database over them, on a small DuckDB file."""

import os
import signal
import subprocess
import sys
from datetime import date, timedelta

import duckdb
import pytest
import sqlalchemy

from music_analytics.lib.core.crash_points import CRASH_AT
from music_analytics.lib.core.exports import (
    STAGING_PREFIX,
    connect_bi_database,
    day_folder,
    export_mart_days,
    export_mart_values,
    exported_marts,
    partition_values,
    write_bi_database,
)

D1, D2, D3 = date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 3)


@pytest.fixture
def conn(tmp_path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    connection.execute("create schema marts")
    connection.execute("create table marts.daily (stream_date date, track_id varchar, n int)")
    connection.execute(
        "insert into marts.daily values (?, 'a', 1), (?, 'b', 2), (?, 'a', 5)", [D1, D1, D2]
    )
    yield connection
    connection.close()


def test_each_day_is_one_parquet_file_with_its_rows(conn, tmp_path):
    exports = tmp_path / "exports"
    result = export_mart_days(
        conn, exports, mart="daily", date_column="stream_date", first=D1, last=D3
    )
    assert (result.days_written, result.days_removed, result.rows) == (2, 0, 3)
    files = sorted(p.relative_to(exports).as_posix() for p in exports.rglob("data.parquet"))
    assert files == [
        "daily/stream_date=2025-03-01/data.parquet",
        "daily/stream_date=2025-03-02/data.parquet",
    ]
    assert not list(exports.rglob(".data-*"))  # no temporary file left behind


def test_a_rebuilt_day_replaces_its_file_and_an_emptied_day_keeps_an_empty_one(conn, tmp_path):
    exports = tmp_path / "exports"
    export_mart_days(conn, exports, mart="daily", date_column="stream_date", first=D1, last=D2)
    conn.execute("delete from marts.daily where stream_date = ?", [D2])
    conn.execute("update marts.daily set n = n * 10")
    result = export_mart_days(
        conn, exports, mart="daily", date_column="stream_date", first=D1, last=D2
    )
    assert (result.days_written, result.days_removed) == (1, 1)
    emptied = day_folder(exports, "daily", "stream_date", D2) / "data.parquet"
    assert conn.execute(f"select count(*) from '{emptied}'").fetchone() == (0,)
    bi = write_bi_database(exports)
    with connect_bi_database(str(bi)) as reader:
        rows = reader.execute("select stream_date, track_id, n from daily order by 2").fetchall()
    assert rows == [(D1, "a", 10), (D1, "b", 20)]


def test_a_bi_tool_reads_the_views_while_the_warehouse_is_held_for_writing(conn, tmp_path):
    """The pipeline's connection (`conn`, read-write) stays open: BI reads never need it."""
    exports = tmp_path / "exports"
    export_mart_days(conn, exports, mart="daily", date_column="stream_date", first=D1, last=D3)
    bi = write_bi_database(exports)
    conn.execute("insert into marts.daily values (?, 'c', 7)", [D3])  # a run writing
    engine = sqlalchemy.create_engine(
        f"duckdb:///{bi}?access_mode=read_only&file_search_path={bi.parent}"
    )
    with engine.connect() as reader:
        rows = reader.execute(
            sqlalchemy.text(
                "select track_id, sum(n) from daily where stream_date between :a and :b "
                "group by 1 order by 1"
            ),
            {"a": D1, "b": D3},
        ).fetchall()
    engine.dispose()
    assert rows == [("a", 6), ("b", 2)]


def test_a_monthly_mart_writes_one_file_per_month_that_holds_the_days(conn, tmp_path):
    conn.execute("create table marts.monthly (month date, track_id varchar, n int)")
    conn.execute(
        "insert into marts.monthly values ('2025-02-01', 'a', 1), ('2025-03-01', 'a', 2), "
        "('2025-03-01', 'b', 3)"
    )
    exports = tmp_path / "exports"
    result = export_mart_days(
        conn,
        exports,
        mart="monthly",
        date_column="month",
        first=date(2025, 2, 27),
        last=date(2025, 4, 2),
        grain="month",
    )
    assert (result.days_written, result.days_removed, result.rows) == (2, 0, 3)
    files = sorted(p.relative_to(exports).as_posix() for p in exports.rglob("data.parquet"))
    assert files == [
        "monthly/month=2025-02-01/data.parquet",
        "monthly/month=2025-03-01/data.parquet",
    ]
    # a month that lost its rows keeps an empty file; the months not asked for keep theirs
    conn.execute("delete from marts.monthly where month = '2025-03-01'")
    result = export_mart_days(
        conn, exports, mart="monthly", date_column="month", first=D1, last=D1, grain="month"
    )
    assert (result.days_written, result.days_removed) == (0, 1)
    rows = conn.execute(
        f"select month, count(*) from read_parquet('{exports}/monthly/*/data.parquet', "
        "hive_partitioning = true) group by all order by all"
    ).fetchall()
    assert rows == [(date(2025, 2, 1), 1)]
    assert len(list(exports.rglob("data.parquet"))) == 2


def test_partition_values_are_the_days_or_their_month_starts():
    days = [date(2025, 1, 31), date(2025, 2, 1), date(2025, 2, 14), date(2025, 1, 31)]
    assert partition_values(days) == [date(2025, 1, 31), date(2025, 2, 1), date(2025, 2, 14)]
    assert partition_values(days, "month") == [date(2025, 1, 1), date(2025, 2, 1)]
    with pytest.raises(ValueError, match="week"):
        partition_values(days, "week")  # type: ignore[arg-type]


def _day_rows(conn, mart: str, date_column: str) -> dict[date, list[tuple]]:
    """A mart's rows by day, without the date column, as the old one-COPY-a-day path wrote
    them into each day's file."""
    rows: dict[date, list[tuple]] = {}
    for day, *rest in conn.execute(
        f"select {date_column}, * exclude ({date_column}) from {mart}"
    ).fetchall():
        rows.setdefault(day, []).append(tuple(rest))
    return {day: sorted(day_rows) for day, day_rows in rows.items()}


def _file_rows(conn, folder) -> list[tuple]:
    path = str(folder / "data.parquet")
    return sorted(
        conn.execute(f"select * from read_parquet('{path}', hive_partitioning = false)").fetchall()
    )


@pytest.fixture
def year(tmp_path):
    """A mart of 60 days of 50 rows, in no particular order (as dbt's aggregates leave them)."""
    connection = duckdb.connect(str(tmp_path / "year.duckdb"))
    connection.execute("create schema marts")
    connection.execute(
        "create table marts.top (stream_date date, track_id varchar, streams bigint, "
        "seconds double, note varchar)"
    )
    connection.execute(
        "insert into marts.top select date '2025-01-01' + (i % 60)::int, 'trk_' || (i % 50), "
        "i, i * 1.5, case when i % 7 = 0 then null else 'n' || i end "
        "from range(3000) t(i) order by hash(i)"
    )
    yield connection
    connection.close()


FIRST = date(2025, 1, 1)
SIXTY = [FIRST + timedelta(days=n) for n in range(60)]


def test_many_days_in_one_call_hold_the_rows_of_the_one_copy_a_day_path(year, tmp_path):
    exports = tmp_path / "exports"
    result = export_mart_values(year, exports, mart="top", date_column="stream_date", values=SIXTY)
    assert (result.days_written, result.days_removed, result.rows) == (60, 0, 3000)
    folders = sorted(p.name for p in (exports / "top").iterdir())
    assert folders == [f"stream_date={day.isoformat()}" for day in SIXTY]  # no staging left
    expected = _day_rows(year, "marts.top", "stream_date")
    for day in SIXTY:
        folder = day_folder(exports, "top", "stream_date", day)
        assert [p.name for p in folder.iterdir() if not p.name.startswith(".v-")] == [
            "data.parquet"
        ]
        assert _file_rows(year, folder) == expected[day]
    # the file's columns are the mart's but the date column (it is in the folder name)
    schema = year.execute(
        "select name, type from parquet_schema(?) where num_children is null",
        [str(day_folder(exports, "top", "stream_date", FIRST) / "data.parquet")],
    ).fetchall()
    assert [name for name, _ in schema] == ["track_id", "streams", "seconds", "note"]
    # re-exporting every day replaces each file with the mart's new rows
    year.execute("update marts.top set streams = streams + 1")
    export_mart_values(year, exports, mart="top", date_column="stream_date", values=SIXTY)
    expected = _day_rows(year, "marts.top", "stream_date")
    for day in SIXTY:
        assert _file_rows(year, day_folder(exports, "top", "stream_date", day)) == expected[day]
    assert len(list((exports / "top").iterdir())) == 60


def test_a_day_written_in_several_files_by_duckdb_is_merged_into_one(year, tmp_path):
    """With more partitions than it keeps open and more rows than it buffers, DuckDB writes
    several files to a day's folder; the export leaves one."""
    year.execute(
        "create table marts.busy as select date '2025-01-01' + (i % 5)::int as stream_date, "
        "i as n from range(20000) t(i)"
    )
    year.execute("set partitioned_write_max_open_files = 1")
    year.execute("set partitioned_write_flush_threshold = 100")
    probe = tmp_path / "probe"
    year.execute(
        f"copy marts.busy to '{probe}' (format parquet, partition_by (stream_date), "
        "filename_pattern 'data_{i}')"
    )
    assert len(list(probe.rglob("*.parquet"))) > 5  # the case is real on this DuckDB
    exports = tmp_path / "exports"
    days = SIXTY[:5]
    result = export_mart_values(year, exports, mart="busy", date_column="stream_date", values=days)
    assert (result.days_written, result.rows) == (5, 20000)
    expected = _day_rows(year, "marts.busy", "stream_date")
    for day in days:
        folder = day_folder(exports, "busy", "stream_date", day)
        assert [p.name for p in folder.iterdir() if not p.name.startswith(".v-")] == [
            "data.parquet"
        ]
        assert _file_rows(year, folder) == expected[day]


def test_values_with_no_rows_at_all_write_nothing_and_empty_their_old_files(year, tmp_path):
    exports = tmp_path / "exports"
    export_mart_values(year, exports, mart="top", date_column="stream_date", values=SIXTY[:2])
    year.execute("delete from marts.top")
    result = export_mart_values(
        year, exports, mart="top", date_column="stream_date", values=SIXTY[:2] + [date(2030, 1, 1)]
    )
    assert (result.days_written, result.days_removed, result.rows) == (0, 2, 0)
    assert len(list((exports / "top").iterdir())) == 2  # no folder for 2030-01-01
    assert exported_marts(exports) == {"top": "stream_date"}
    with connect_bi_database(write_bi_database(exports)) as bi:
        assert bi.execute("select count(*) from top").fetchone() == (0,)
    again = export_mart_values(
        year, exports, mart="top", date_column="stream_date", values=SIXTY[:2]
    )
    assert again.days_removed == 0  # already empty: not rewritten


CHILD_EXPORT = """
import sys
from datetime import date
from pathlib import Path
import duckdb
from music_analytics.lib.core.exports import export_mart_values
conn = duckdb.connect(sys.argv[1])
days = [date.fromisoformat(day) for day in sys.argv[3:]]
export_mart_values(conn, Path(sys.argv[2]), mart="top", date_column="stream_date", values=days)
"""


def test_a_kill_mid_export_leaves_each_day_old_or_new_and_a_staging_no_reader_sees(year, tmp_path):
    exports = tmp_path / "exports"
    export_mart_values(year, exports, mart="top", date_column="stream_date", values=SIXTY)
    old = _day_rows(year, "marts.top", "stream_date")
    year.execute("update marts.top set streams = -streams")
    new = _day_rows(year, "marts.top", "stream_date")
    year.close()
    killed = subprocess.run(
        [sys.executable, "-c", CHILD_EXPORT, str(tmp_path / "year.duckdb"), str(exports)]
        + [day.isoformat() for day in SIXTY],
        env={**os.environ, CRASH_AT: "export_staged"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    leftovers = list((exports / "top").glob(f"{STAGING_PREFIX}*"))
    assert len(leftovers) == 1 and list(leftovers[0].rglob("*.parquet"))
    with duckdb.connect(str(tmp_path / "year.duckdb")) as conn:
        states = []
        for day in SIXTY:
            rows = _file_rows(conn, day_folder(exports, "top", "stream_date", day))
            assert rows in (old[day], new[day])
            states.append(rows == new[day])
        assert 0 < sum(states) < 60  # the kill came between two days
        # the readers' glob (bi.duckdb, the server's snapshot) sees the days, not the staging
        assert exported_marts(exports) == {"top": "stream_date"}
        with connect_bi_database(str(write_bi_database(exports))) as bi:
            assert bi.execute("select count(*) from top").fetchone() == (3000,)
        files = conn.execute("select file from glob(?)", [str(exports / "top/*/data.parquet")])
        matched = [file for (file,) in files.fetchall()]
        assert len(matched) == 60 and not [f for f in matched if STAGING_PREFIX in f]
        # the next export removes the staging folder and writes every day anew
        export_mart_values(conn, exports, mart="top", date_column="stream_date", values=SIXTY)
        assert not list((exports / "top").glob(f"{STAGING_PREFIX}*"))
        for day in SIXTY:
            assert _file_rows(conn, day_folder(exports, "top", "stream_date", day)) == new[day]


def test_a_staging_folder_left_behind_is_removed_even_by_an_export_of_no_days(year, tmp_path):
    leftover = tmp_path / "exports" / "top" / f"{STAGING_PREFIX}abc" / "stream_date=2025-01-01"
    leftover.mkdir(parents=True)
    (leftover / "data_0.parquet").write_bytes(b"half a file")
    export_mart_values(year, tmp_path / "exports", mart="top", date_column="stream_date", values=[])
    assert list((tmp_path / "exports" / "top").iterdir()) == []


def test_the_bi_database_is_kept_while_its_views_stay_and_rebuilt_when_they_change(year, tmp_path):
    """A call that would write the same views only moves bi.duckdb's modification time on
    (the server's signal to rebuild its snapshot); a rewritten day (a new version) is a new
    view."""
    exports = tmp_path / "exports"
    export_mart_values(year, exports, mart="top", date_column="stream_date", values=SIXTY)
    first = write_bi_database(exports).stat()
    kept = write_bi_database(exports).stat()
    assert kept.st_ino == first.st_ino and kept.st_mtime_ns > first.st_mtime_ns
    export_mart_values(year, exports, mart="top", date_column="stream_date", values=SIXTY[-1:])
    rewritten = write_bi_database(exports).stat()
    assert rewritten.st_ino != kept.st_ino
    kept = write_bi_database(exports).stat()

    def views() -> dict:
        with connect_bi_database(str(exports / "bi.duckdb")) as bi:
            names = bi.execute("select view_name from duckdb_views() where not internal")
            return {
                view: bi.execute(f"select count(*) from {view}").fetchone()[0]
                for (view,) in names.fetchall()
            }

    # a new mart: a new view
    year.execute("create table marts.other as select * from marts.top")
    export_mart_values(year, exports, mart="other", date_column="stream_date", values=SIXTY[:1])
    assert write_bi_database(exports).stat().st_ino != kept.st_ino
    assert views() == {"top": 3000, "other": 50}
    # the first day's file (the one a view binds its columns on) has a new column: rebuilt
    year.execute("alter table marts.other add column extra int default 1")
    export_mart_values(year, exports, mart="other", date_column="stream_date", values=SIXTY[:1])
    write_bi_database(exports)
    with connect_bi_database(str(exports / "bi.duckdb")) as bi:
        assert "extra" in [row[0] for row in bi.execute("describe other").fetchall()]
    # a mart whose every day lost its rows: its view stays, with no rows (its files are empty)
    year.execute("delete from marts.other")
    export_mart_values(year, exports, mart="other", date_column="stream_date", values=SIXTY[:1])
    write_bi_database(exports)
    assert views() == {"top": 3000, "other": 0}


def test_each_version_of_a_day_keeps_its_name_until_superseded_for_the_keep_window(conn, tmp_path):
    """bi.duckdb's views name a day's version; a rewrite adds a version (the old one stays for
    readers that opened the views before), and an export past the window removes it."""
    exports = tmp_path / "exports"
    folder = day_folder(exports, "daily", "stream_date", D1)

    def versions() -> list[str]:
        return sorted(p.name for p in folder.glob(".v-*.parquet"))

    export_mart_days(conn, exports, mart="daily", date_column="stream_date", first=D1, last=D1)
    (first,) = versions()
    assert os.path.samefile(folder / first, folder / "data.parquet")
    conn.execute("update marts.daily set n = n + 1")
    export_mart_days(conn, exports, mart="daily", date_column="stream_date", first=D1, last=D1)
    assert versions()[0] == first and len(versions()) == 2
    assert os.path.samefile(folder / versions()[1], folder / "data.parquet")
    export_mart_values(
        conn, exports, mart="daily", date_column="stream_date", values=[D1], keep_seconds=0
    )
    (current,) = versions()
    assert first != current and os.path.samefile(folder / current, folder / "data.parquet")
    with connect_bi_database(write_bi_database(exports)) as bi:
        source = bi.execute("select comment from duckdb_views() where view_name = 'daily'")
        assert current in source.fetchone()[0]
