"""`make bench`'s spark section (opt-in: BENCH_ONLY=spark or BENCH_SPARK=1): the one-year
backfill on Spark next to DuckDB, on the same files, at each size of BENCH_SPARK_EVENTS
(default 1,000,000 and 10,000,000 events over the year's 365 days).

For each size, two fresh homes get the year's cached event files (bench/year_cache.py, the
year section's generator) and one `music-analytics refresh` each, as a user runs it: ingest,
every mart, every export. One runs with MUSIC_ANALYTICS_ENGINE=duckdb, the other with spark
(pyspark local[2] in dbt's process, reading the raw Parquet layer the refresh writes first).
Figures: wall seconds and peak RSS of each refresh's process tree (the CLI, dbt and, under
Spark, its JVM), and the ratio spark / duckdb. Figures only, no targets: the point is that the
same pipeline runs on both, and how each engine's cost grows from the smaller size to the
larger.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from bench.processes import music_analytics, progress, run_logged, user_env
from bench.year import _files
from bench.year_cache import Year, link_event_files

SIZES = tuple(
    int(size)
    for size in os.environ.get("BENCH_SPARK_EVENTS", "1000000,10000000").split(",")
    if size.strip()
)
# The driver holds dbt's Spark session; a year's marts need more than the 1g default.
DRIVER_MEMORY = os.environ.get("BENCH_SPARK_DRIVER_MEMORY", "4g")


def _say(message: str) -> None:
    progress("spark", message)


def _label(events: int) -> str:
    return f"{events // 1_000_000}m" if events >= 1_000_000 else f"{events // 1000}k"


def _check_exported(home: Path, year: Year) -> None:
    """Every day of the year is in the top_tracks_daily export (read through bi.duckdb, as
    for either engine) and the rebuild ledger is empty: the refresh did the whole job."""
    import duckdb

    from music_analytics.lib.core.exports import connect_bi_database

    with connect_bi_database(home / "exports" / "bi.duckdb") as bi:
        (days,) = bi.execute("select count(distinct stream_date) from top_tracks_daily").fetchone()
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        (pending,) = conn.execute("select count(*) from raw.pending_rebuilds").fetchone()
    if days != year.days or pending:
        raise RuntimeError(
            f"refresh of {home} exported {days} of {year.days} days of top_tracks_daily and "
            f"left {pending} pending rebuilds; see its log"
        )


def _backfill(year: Year, files: list[Path], work: Path, engine: str) -> dict:
    """One refresh of the year's files on a fresh home on `engine`, checked; its figures."""
    home = work / f"spark_{_label(year.events)}_{engine}"
    shutil.rmtree(home, ignore_errors=True)
    link_event_files(files, home / "landing" / "events")
    env = user_env(
        home,
        **year.env(),
        MUSIC_ANALYTICS_ENGINE=engine,
        MUSIC_ANALYTICS_SPARK_DRIVER_MEMORY=DRIVER_MEMORY,
    )
    done = run_logged(music_analytics("refresh"), env, work / f"{home.name}.log")
    _check_exported(home, year)
    shutil.rmtree(home, ignore_errors=True)  # a year's homes are large: one at a time
    return {"seconds": round(done.seconds, 1), "peak_rss_mb": round(done.peak_rss_mb)}


def bench_spark(work: Path) -> dict:
    figures: dict = {}
    for events in SIZES:
        year = Year(events=events)
        files = _files(year)
        label = _label(events)
        measured = {}
        for engine in ("duckdb", "spark"):
            _say(f"{label} events: the year's backfill through refresh on {engine}")
            measured[engine] = _backfill(year, files, work, engine)
            _say(f"{label} on {engine}: {measured[engine]}")
        figures[f"spark_backfill_{label}"] = {
            **measured,
            "spark_vs_duckdb_seconds": round(
                measured["spark"]["seconds"] / measured["duckdb"]["seconds"], 2
            ),
            "spark_vs_duckdb_peak_rss": round(
                measured["spark"]["peak_rss_mb"] / measured["duckdb"]["peak_rss_mb"], 2
            ),
        }
    return figures
