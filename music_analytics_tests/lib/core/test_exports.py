"""Parquet exports of a mart and the BI database over them, on a small DuckDB file."""

from datetime import date

import duckdb
import pytest
import sqlalchemy

from music_analytics.lib.core.exports import (
    day_folder,
    export_mart_days,
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
    files = sorted(p.relative_to(exports).as_posix() for p in exports.rglob("*.parquet"))
    assert files == [
        "daily/stream_date=2025-03-01/data.parquet",
        "daily/stream_date=2025-03-02/data.parquet",
    ]
    assert not list(exports.rglob(".data-*"))  # no temporary file left behind


def test_a_rebuilt_day_replaces_its_file_and_an_emptied_day_loses_it(conn, tmp_path):
    exports = tmp_path / "exports"
    export_mart_days(conn, exports, mart="daily", date_column="stream_date", first=D1, last=D2)
    conn.execute("delete from marts.daily where stream_date = ?", [D2])
    conn.execute("update marts.daily set n = n * 10")
    result = export_mart_days(
        conn, exports, mart="daily", date_column="stream_date", first=D1, last=D2
    )
    assert (result.days_written, result.days_removed) == (1, 1)
    assert not day_folder(exports, "daily", "stream_date", D2).exists()
    bi = write_bi_database(exports)
    with duckdb.connect(str(bi), read_only=True) as reader:
        rows = reader.execute("select stream_date, track_id, n from daily order by 2").fetchall()
    assert rows == [(D1, "a", 10), (D1, "b", 20)]


def test_a_bi_tool_reads_the_views_while_the_warehouse_is_held_for_writing(conn, tmp_path):
    """The pipeline's connection (`conn`, read-write) stays open: BI reads never need it."""
    exports = tmp_path / "exports"
    export_mart_days(conn, exports, mart="daily", date_column="stream_date", first=D1, last=D3)
    bi = write_bi_database(exports)
    conn.execute("insert into marts.daily values (?, 'c', 7)", [D3])  # a run writing
    engine = sqlalchemy.create_engine(f"duckdb:///{bi}", connect_args={"read_only": True})
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
    files = sorted(p.relative_to(exports).as_posix() for p in exports.rglob("*.parquet"))
    assert files == [
        "monthly/month=2025-02-01/data.parquet",
        "monthly/month=2025-03-01/data.parquet",
    ]
    # a month that lost its rows loses its file; the months not asked for keep theirs
    conn.execute("delete from marts.monthly where month = '2025-03-01'")
    result = export_mart_days(
        conn, exports, mart="monthly", date_column="month", first=D1, last=D1, grain="month"
    )
    assert (result.days_written, result.days_removed) == (0, 1)
    assert [p.parent.name for p in exports.rglob("*.parquet")] == ["month=2025-02-01"]


def test_partition_values_are_the_days_or_their_month_starts():
    days = [date(2025, 1, 31), date(2025, 2, 1), date(2025, 2, 14), date(2025, 1, 31)]
    assert partition_values(days) == [date(2025, 1, 31), date(2025, 2, 1), date(2025, 2, 14)]
    assert partition_values(days, "month") == [date(2025, 1, 1), date(2025, 2, 1)]
    with pytest.raises(ValueError, match="week"):
        partition_values(days, "week")  # type: ignore[arg-type]
