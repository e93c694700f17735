"""The same marts on Spark as on DuckDB: one small input, both engines, every mart row by row.

Two homes get the same input: the demo's sample event files, DSP report ZIPs and Spotify
streaming-history export (lib/*/sample.py, fixed seeds), plus the polled plays and metadata of
test_spotify_marts written into raw as the poller writes them. Each home runs `refresh` over
the same days, one with MUSIC_ANALYTICS_ENGINE=duckdb, one with spark (pyspark local[2]
reading the raw Parquet layer the raw writer keeps), so both go through the real pipeline:
raw layer sync, one dbt build with its tests, the exports and bi.duckdb. Then every mart is
compared row by row (floats within a relative 1e-9), and a day rebuilt on Spark, after a run of
it was SIGKILLed inside dbt, must give the same rows again (insert_overwrite of its partition).

Needs Java for pyspark: skipped when `java` is missing outside CI; in CI (`CI=true`, where
.ci/run installs openjdk-17-jre-headless) it runs or fails.
"""

import math
import os
import shutil
import signal
import subprocess
import sys
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from music_analytics.lib.core.crash_points import CRASH_AT
from music_analytics.lib.core.exports import connect_bi_database
from music_analytics.lib.core.manifest import daily_marts
from music_analytics.lib.core.mart_tables import open_marts, spark_mart_folders
from music_analytics.lib.core.settings import DBT_PROJECT_DIR, Settings
from music_analytics.lib.core.warehouse import ensure_raw_tables
from music_analytics.lib.dsp.sample import generate_dsp_reports
from music_analytics.lib.events.sample import generate_events
from music_analytics.lib.spotify.sample import generate_history_export
from music_analytics.refresh import refresh
from music_analytics_tests.conftest import module_home
from music_analytics_tests.defs.test_spotify_marts import insert_raw

pytestmark = pytest.mark.skipif(
    shutil.which("java") is None and os.environ.get("CI") != "true",
    reason="Java is not installed (apt-get install openjdk-17-jre-headless): pyspark needs it; "
    "CI always runs this",
)

# test_spotify_marts' polled plays are on 2025-04-01 and 02: the samples cover the same days
FIRST, DAYS = date(2025, 4, 1), 3
LAST = FIRST + timedelta(days=DAYS - 1)
RERUN_DAY = FIRST + timedelta(days=1)
MARTS = sorted(daily_marts(DBT_PROJECT_DIR / "target" / "manifest.json"))
RELATIVE_TOLERANCE = 1e-9
SHORT_RUN_JVM = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m"


def _write_inputs(settings: Settings) -> None:
    """The same input in any home: sample files in landing/, polled plays in raw."""
    generate_events(settings.events_landing, start=FIRST, days=DAYS, events_per_day=400, seed=15)
    generate_dsp_reports(
        settings.dsp_landing, start=FIRST + timedelta(days=1), days=2, records_per_report=15,
        seed=15,
    )  # fmt: skip
    generate_history_export(
        settings.spotify_history_landing, start=FIRST, days=DAYS, plays_per_day=25, seed=15
    )
    with duckdb.connect(str(settings.warehouse_path)) as conn:
        ensure_raw_tables(conn)
        insert_raw(conn)


def _build(tmp_path_factory, engine: str):
    """A home with the input, refreshed over FIRST..LAST on `engine`."""
    env = {
        "MUSIC_ANALYTICS_ENGINE": engine,
        "MUSIC_ANALYTICS_START_DATE": "2025-01-01",
        "MUSIC_ANALYTICS_FILE_STABLE_SECONDS": "0",
        "MUSIC_ANALYTICS_RAW_LAYER_URI": "",
        "MUSIC_ANALYTICS_SPARK_WAREHOUSE_DIR": "",
        # small data, many short queries: the quick JIT compiler alone is faster (6:35 against
        # 7:20 for this module)
        "MUSIC_ANALYTICS_SPARK_JAVA_OPTIONS": SHORT_RUN_JVM,
    }
    return module_home(tmp_path_factory, f"parity_{engine}", **env)


@pytest.fixture(scope="module")
def duckdb_home(tmp_path_factory):
    with _build(tmp_path_factory, "duckdb") as settings:
        _write_inputs(settings)
        summary = refresh(FIRST, LAST, settings=settings, instance=dg.DagsterInstance.ephemeral())
        assert summary.exit_code == 0
        yield settings


@pytest.fixture(scope="module")
def spark_home(tmp_path_factory):
    with _build(tmp_path_factory, "spark") as settings:
        _write_inputs(settings)
        instance = dg.DagsterInstance.ephemeral()
        summary = refresh(FIRST, LAST, settings=settings, instance=instance)
        assert summary.exit_code == 0
        yield settings, instance


def _value(value):
    """A value comparable across engines: numbers as float (DuckDB's HUGEINT and DECIMAL sums
    against Spark's BIGINT and DOUBLE), the rest as is."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float | Decimal):
        return float(value)
    return value


def _sort_key(row: tuple) -> tuple:
    return tuple(
        (v is None, round(v, 6) if isinstance(v, float) else v if v is not None else 0) for v in row
    )


def mart_rows(conn: duckdb.DuckDBPyConnection, mart: str) -> tuple[list[str], list[tuple]]:
    """A mart's columns (sorted by name) and its rows, as _value()s, in one order."""
    columns = sorted(
        name for name, *_ in conn.execute(f'select * from marts."{mart}" limit 0').description
    )
    listed = ", ".join(f'"{c}"' for c in columns)
    rows = [
        tuple(_value(v) for v in row)
        for row in conn.execute(f'select {listed} from marts."{mart}"').fetchall()
    ]
    return columns, sorted(rows, key=_sort_key)


def duckdb_marts(settings: Settings) -> dict:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        return {mart: mart_rows(conn, mart) for mart in MARTS}


def spark_marts(settings: Settings) -> dict:
    with open_marts(None, engine="spark", spark_warehouse=settings.spark_warehouse_dir) as conn:
        return {mart: mart_rows(conn, mart) for mart in MARTS}


def differences(expected: tuple, found: tuple) -> list[str]:
    """What differs between two marts' (columns, rows), at most a few lines."""
    (columns, rows), (found_columns, found_rows) = expected, found
    if columns != found_columns:
        return [f"columns {columns} != {found_columns}"]
    if len(rows) != len(found_rows):
        return [f"{len(rows)} rows != {len(found_rows)} rows"]
    problems = []
    for want, got in zip(rows, found_rows, strict=True):
        for column, a, b in zip(columns, want, got, strict=True):
            same = (
                math.isclose(a, b, rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-12)
                if isinstance(a, float) and isinstance(b, float)
                else a == b
            )
            if not same:
                problems.append(f"{column}: {a!r} != {b!r} in {want}")
    return problems[:5]


def test_every_mart_has_rows_on_both_engines(duckdb_home, spark_home):
    """The input reaches every mart (else the comparison would prove little)."""
    spark_settings, _ = spark_home
    with duckdb.connect(str(duckdb_home.warehouse_path), read_only=True) as conn:
        empty = [
            m for m in MARTS if not conn.execute(f"select count(*) from marts.{m}").fetchone()[0]
        ]
    assert empty == []
    assert set(spark_mart_folders(spark_settings.spark_warehouse_dir)) == set(MARTS)


def test_spark_marts_equal_duckdb_marts_row_by_row(duckdb_home, spark_home):
    spark_settings, _ = spark_home
    expected, found = duckdb_marts(duckdb_home), spark_marts(spark_settings)
    different = {m: d for m in MARTS if (d := differences(expected[m], found[m]))}
    assert different == {}


def test_exports_have_the_same_layout_and_rows(duckdb_home, spark_home):
    """The Parquet exports and bi.duckdb written from the Spark marts: the same files per
    day and the same row counts, so the server and BI tools read them unchanged."""
    spark_settings, _ = spark_home

    def layout(settings: Settings) -> set[str]:
        exports = settings.exports_dir
        return {p.relative_to(exports).as_posix() for p in exports.glob("*/*=*/data.parquet")}

    def counts(settings: Settings) -> dict[str, int]:
        with connect_bi_database(settings.exports_dir / "bi.duckdb") as bi:
            views = [
                v
                for (v,) in bi.execute(
                    "select view_name from duckdb_views() where not internal"
                ).fetchall()
            ]
            return {v: bi.execute(f"select count(*) from {v}").fetchone()[0] for v in views}

    assert layout(spark_settings) == layout(duckdb_home)
    assert counts(spark_settings) == counts(duckdb_home)


def _killed_refresh_on_spark(day: date) -> None:
    """`music-analytics refresh` of `day` in its own session, SIGKILLed (with dbt and its
    Spark JVM) after dbt's first result, while dbt-on-Spark builds the rest."""
    env = {**os.environ, CRASH_AT: "dbt"}
    killed = subprocess.run(
        [sys.executable, "-m", "music_analytics.cli", "refresh", "--start", str(day), "--end",
         str(day)],
        env=env, capture_output=True, text=True, timeout=600, start_new_session=True,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]


def test_a_day_rebuilt_on_spark_after_a_kill_gives_the_same_rows(duckdb_home, spark_home):
    """A re-run of one day, first SIGKILLed inside dbt's Spark build (some of its partitions
    overwritten, the Derby metastore of the dead session left behind), then run again: it
    replaces that day's partitions (insert_overwrite) with the same rows, nothing lost or
    doubled, the other days untouched; the raw layer keeps its files (its tables are
    re-declared on each run)."""
    spark_settings, instance = spark_home
    raw_files = sorted(Path(spark_settings.raw_layer_uri).glob("*/date=*/*.parquet"))
    before = spark_marts(spark_settings)
    started = datetime.now()
    _killed_refresh_on_spark(RERUN_DAY)
    summary = refresh(RERUN_DAY, RERUN_DAY, settings=spark_settings, instance=instance)
    assert summary.exit_code == 0
    assert summary.days_built == [RERUN_DAY]
    fct = spark_settings.spark_warehouse_dir / "marts.db" / "fct_streams"
    rewritten = [
        p for p in fct.glob("*=*/*.parquet") if datetime.fromtimestamp(p.stat().st_mtime) >= started
    ]
    assert {p.parent.name for p in rewritten} == {f"stream_date={RERUN_DAY}"}
    after = spark_marts(spark_settings)
    assert {m: d for m in MARTS if (d := differences(before[m], after[m]))} == {}
    assert {m: d for m in MARTS if (d := differences(duckdb_marts(duckdb_home)[m], after[m]))} == {}
    assert sorted(Path(spark_settings.raw_layer_uri).glob("*/date=*/*.parquet")) == raw_files


def test_delete_user_reports_the_same_on_both_engines_and_leaves_nothing(duckdb_home, spark_home):
    """`delete-user` under Spark: the report counts the user's rows in the Spark marts (the
    same figures as on DuckDB for the same input), and afterwards no Spark mart, raw Parquet
    layer file or export holds the user. Last in the module: it changes both homes."""
    from music_analytics.user_deletion import delete_user

    spark_settings, _ = spark_home
    with open_marts(
        None, engine="spark", spark_warehouse=spark_settings.spark_warehouse_dir
    ) as conn:
        [(user, streams)] = conn.execute(
            "select user_id, count(*) from marts.fct_streams where user_id is not null "
            "group by 1 order by 2 desc, 1 limit 1"
        ).fetchall()
    assert streams > 0
    on_spark = delete_user(spark_settings, user)
    on_duckdb = delete_user(duckdb_home, user)
    # the same lines but the count of superseded export versions (the Spark home rebuilt a
    # day more, in the test before)
    assert on_spark.lines()[:-1] == on_duckdb.lines()[:-1]
    assert on_spark.export_versions_removed > 0
    assert on_spark.marts["marts.fct_streams"] == streams
    assert on_spark.marts_left and set(on_spark.marts_left.values()) == {0}
    layer = str(Path(spark_settings.raw_layer_uri) / "stream_events" / "*" / "*.parquet")
    exports = str(spark_settings.exports_dir / "*" / "*" / "*.parquet")
    with duckdb.connect() as conn:
        for files in (layer, exports):
            left = conn.execute(
                f"select count(*) from read_parquet('{files}', union_by_name = true) "
                "where user_id = ?",
                [user],
            ).fetchone()[0]
            assert left == 0, files
