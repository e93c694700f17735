"""/v0/sql's guard: one SELECT, on a snapshot that reads the exports and nothing else."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from music_analytics.server.read_only_sql import (
    SqlLimits,
    SqlRejected,
    SqlTimeout,
    check_select,
    run_sql,
)
from music_analytics.server.snapshot import build_snapshot

LIMITS = SqlLimits(max_rows=100, timeout=5.0)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A snapshot of a two-mart exports folder, and a secret file beside the exports."""
    root = tmp_path_factory.mktemp("sql")
    exports = root / "exports"
    with duckdb.connect() as conn:
        for day in ("2025-03-01", "2025-03-02"):
            folder = exports / "top_tracks_daily" / f"stream_date={day}"
            folder.mkdir(parents=True)
            conn.execute(
                "copy (select 'track_' || i as track_id, 'pop' as genre, i as stream_count "
                f"from range(30) t(i)) to '{folder}/data.parquet'"
            )
        folder = exports / "genre_trends_daily" / "stream_date=2025-03-01"
        folder.mkdir(parents=True)
        conn.execute(
            "copy (select 'pop' as genre, 'US' as country, 5 as stream_count) "
            f"to '{folder}/data.parquet'"
        )
        conn.execute(f"copy (select 'secret' as s) to '{root}/outside.parquet'")
    (root / "outside.csv").write_text("s\nsecret\n")
    snapshot = build_snapshot(exports, root / "snapshot.duckdb")
    yield snapshot, root
    snapshot.conn.close()


@pytest.mark.parametrize(
    "sql",
    [
        "select 1",
        "SELECT * FROM top_tracks_daily",
        "with t as (select 1 as x) select x from t",
        "from top_tracks_daily",
        "select 1;",
        "  select 1 -- comment\n",
        "(select 1) union all (select 2)",
    ],
)
def test_one_select_is_accepted(sandbox, sql):
    statement = check_select(sql)
    assert len(duckdb.extract_statements(statement)) == 1
    assert run_sql(sandbox[0], sql, LIMITS).rows


@pytest.mark.parametrize(
    "sql, why",
    [
        ("", "give a SELECT"),
        ("   \n", "give a SELECT"),
        ("select 1; select 2", "one statement, got 2"),
        ("select 1; drop table top_tracks_daily", "one statement, got 2"),
        ("insert into top_tracks_daily values (1)", "INSERT"),
        ("create table x as select 1", "CREATE"),
        ("copy top_tracks_daily to '/tmp/x.csv'", "COPY"),
        ("attach '/tmp/x.duckdb' as x", "ATTACH"),
        ("detach snapshot", "DETACH"),
        ("pragma version", "PRAGMA"),
        ("set enable_external_access = true", "SET"),
        ("reset lock_configuration", "SET"),
        ("install httpfs", "LOAD"),
        ("load httpfs", "LOAD"),
        ("call pragma_version()", "CALL"),
        ("update top_tracks_daily set stream_count = 0", "UPDATE"),
        ("delete from top_tracks_daily", "DELETE"),
        ("drop table top_tracks_daily", "DROP"),
        ("export database '/tmp/db'", "EXPORT"),
        ("selec 1", "Parser Error"),
        ("x" * 20_001, "longer than"),
    ],
)
def test_anything_else_is_rejected(sql, why):
    with pytest.raises(SqlRejected, match=why) as caught:
        check_select(sql)
    assert "parameter 'q'" in str(caught.value)


def test_a_select_reads_the_marts(sandbox):
    snapshot, _ = sandbox
    result = run_sql(
        snapshot,
        "select stream_date, count(*), sum(stream_count) from top_tracks_daily "
        "group by 1 order by 1",
        LIMITS,
    )
    assert [name for name, _ in result.columns][1:] == ["count_star()", "sum(stream_count)"]
    assert [(str(r[0]), r[1], r[2]) for r in result.rows] == [
        ("2025-03-01", 30, 435),
        ("2025-03-02", 30, 435),
    ]
    assert result.rows_before_limit == 2


def test_the_row_limit_truncates_and_says_there_were_more(sandbox):
    snapshot, _ = sandbox
    result = run_sql(snapshot, "select * from top_tracks_daily", SqlLimits(max_rows=7))
    assert len(result.rows) == 7
    assert result.rows_before_limit > 7
    exact = run_sql(snapshot, "select * from top_tracks_daily", SqlLimits(max_rows=60))
    assert (len(exact.rows), exact.rows_before_limit) == (60, 60)


def test_a_slow_query_is_stopped_by_the_timeout(sandbox):
    snapshot, _ = sandbox
    slow = (
        "select count(*) from range(100000000) a, range(100000000) b "
        "where hash(a.range + b.range) = 0"
    )
    with pytest.raises(SqlTimeout, match="longer than 0.2 s"):
        run_sql(snapshot, slow, SqlLimits(timeout=0.2))
    assert run_sql(snapshot, "select 1", LIMITS).rows == [(1,)]  # the snapshot still works


@pytest.mark.parametrize(
    "sql",
    [
        "select * from read_csv('/etc/passwd')",
        "select * from read_csv_auto('/etc/passwd')",
        "select * from read_text('/etc/passwd')",
        "select read_text('/etc/passwd')",
        "select * from read_blob('/etc/hostname')",
        "select * from read_json('/etc/passwd')",
        "select * from sniff_csv('/etc/passwd')",
        "select * from glob('/etc/*')",
        "select * from read_parquet('{root}/outside.parquet')",
        "select * from read_parquet('{root}/exports/../outside.parquet')",
        "select * from parquet_metadata('{root}/outside.parquet')",
        "select * from read_csv('{root}/outside.csv')",
        "select * from read_parquet('https://example.com/x.parquet')",
        "select * from query('select * from read_csv(''{root}/outside.csv'')')",
        "select getenv('HOME')",
        "select * from query('copy top_tracks_daily to ''{root}/written.csv''')",
        "select * from query('attach ''{root}/attached.duckdb'' as a')",
        "select * from query('set enable_external_access = true')",
        "select * from query('create table t as select 1')",
        "select * from query('select 1; select 2')",
        "select set_config('enable_external_access', 'true', false)",
    ],
)
def test_nothing_outside_the_marts_can_be_read_written_or_changed(sandbox, sql):
    snapshot, root = sandbox
    with pytest.raises(SqlRejected):
        run_sql(snapshot, sql.format(root=root), LIMITS)
    assert not (root / "written.csv").exists()
    assert not (root / "attached.duckdb").exists()
    settings = run_sql(
        snapshot,
        "select current_setting('enable_external_access'), current_setting('lock_configuration')",
        LIMITS,
    )
    assert settings.rows == [(False, True)]


def test_query_and_query_table_see_only_the_marts(sandbox):
    snapshot, _ = sandbox
    assert run_sql(snapshot, "select * from query('select 42')", LIMITS).rows == [(42,)]
    counted = run_sql(snapshot, "select count(*) from query_table(['top_tracks_daily'])", LIMITS)
    assert counted.rows == [(60,)]


def test_the_snapshot_is_read_only_and_only_the_exports_are_allowed(sandbox):
    snapshot, root = sandbox
    with pytest.raises(duckdb.Error):
        snapshot.new_cursor().execute("create table t as select 1")
    with pytest.raises(duckdb.Error):
        snapshot.new_cursor().execute("set enable_external_access = true")
    allowed = run_sql(snapshot, "select current_setting('allowed_directories')", LIMITS)
    assert all(Path(d).resolve().is_relative_to(root.resolve()) for d in allowed.rows[0][0])
