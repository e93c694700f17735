"""The top_tracks rollups built by real dbt from a hand-made top_tracks_daily, and exported.

Server tests write top_tracks_daily's exports themselves (so they can compare the pipes with
plain DuckDB over those files); the rollups the top_tracks pipe reads must then come from the
project's dbt models, as in production: `export_rollups` loads the exported top_tracks_daily
into a warehouse of its own, runs `dbt build` on the rollup models (their tests included) and
exports them as the pipeline does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

from music_analytics.lib.core.exports import export_mart_days
from music_analytics.lib.core.manifest import daily_marts
from music_analytics.lib.core.settings import DBT_PROJECT_DIR

ROLLUPS = (
    "top_tracks_by_day",
    "top_tracks_by_month",
    "top_tracks_by_country_day",
    "top_tracks_by_country_month",
)


def run_dbt(home: Path, *args: str) -> subprocess.CompletedProcess:
    """`dbt <args>` on home/warehouse.duckdb, its target and logs kept under home."""
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("dbt")),
            *args,
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(home / "dbt_target"),
            "--log-path",
            str(home / "dbt_logs"),
        ],
        env={
            **os.environ,
            "MUSIC_ANALYTICS_HOME": str(home),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        },
        capture_output=True,
        text=True,
        check=False,
    )


def export_rollups(exports: Path, home: Path) -> None:
    """Build the rollups from exports/top_tracks_daily with dbt and export them to `exports`."""
    home.mkdir(parents=True, exist_ok=True)
    daily = str(exports / "top_tracks_daily" / "*" / "data.parquet")
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        conn.execute("create schema if not exists marts")
        conn.execute(
            "create or replace table marts.top_tracks_daily as select * from "
            f"read_parquet('{daily}', hive_partitioning = true)"
        )
    built = run_dbt(home, "build", "--select", *ROLLUPS)
    if built.returncode:
        raise AssertionError(f"dbt build of the rollups failed:\n{built.stdout[-4000:]}")
    marts = daily_marts(DBT_PROJECT_DIR / "target" / "manifest.json")
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        [(first, last)] = conn.execute(
            "select min(stream_date), max(stream_date) from marts.top_tracks_daily"
        ).fetchall()
        for mart in ROLLUPS:
            export_mart_days(
                conn,
                exports,
                mart=mart,
                date_column=marts[mart].date_column,
                first=first,
                last=last,
                grain=marts[mart].grain,
            )
