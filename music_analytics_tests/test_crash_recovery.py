"""`kill -9` of a real `music-analytics refresh` at each crash point: the next refresh finishes
on its own, and every mart, export and raw table equals a clean build of the same input."""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from music_analytics.lib.core.crash_points import CRASH_AT, POINTS
from music_analytics.lib.core.exports import STAGING_PREFIX
from music_analytics.lib.dsp.sample import generate_dsp_reports
from music_analytics.lib.events.sample import generate_events
from music_analytics.lib.spotify.sample import generate_history_export

CLI = str(Path(sys.executable).parent / "music-analytics")
DAYS = 3


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """One batch of every source: event files, DSP report ZIPs, a Spotify export."""
    landing = tmp_path_factory.mktemp("inputs") / "landing"
    start = datetime.now(UTC).date() - timedelta(days=DAYS)
    generate_events(landing / "events", start=start, days=DAYS, events_per_day=300, seed=7)
    generate_dsp_reports(landing / "dsp", start=start, days=2, records_per_report=20, seed=7)
    generate_history_export(
        landing / "spotify_history", start=start, days=DAYS, plays_per_day=10, seed=7
    )
    return landing


def _home(tmp_path: Path, inputs: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(inputs, home / "landing")
    return home


def refresh(home: Path, crash_at: str | None = None) -> subprocess.CompletedProcess:
    """`music-analytics refresh` in a session of its own (so SIGKILL takes dbt with it)."""
    env = {
        **os.environ,
        "MUSIC_ANALYTICS_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "MUSIC_ANALYTICS_FILE_STABLE_SECONDS": "0",
    }
    env.pop(CRASH_AT, None)
    if crash_at:
        env[CRASH_AT] = crash_at
    return subprocess.run(
        [CLI, "refresh"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        start_new_session=True,
    )


def _checksum(rows: list[tuple]) -> tuple[int, str]:
    """Row count and an order-independent checksum; floats to 9 significant digits (DuckDB's
    parallel sums may differ in the last bit between two builds of the same rows)."""
    shown = sorted(
        repr(tuple(f"{v:.9g}" if isinstance(v, float) else v for v in row)) for row in rows
    )
    return len(shown), hashlib.md5("|".join(shown).encode()).hexdigest()


def fingerprint(home: Path) -> dict[str, tuple]:
    """Every mart's and export's rows (count and checksum), and the raw tables' row counts
    (their lineage columns differ between homes)."""
    result = {}
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        tables = conn.execute(
            "select schema_name, table_name from duckdb_tables() "
            "where schema_name in ('marts', 'raw') order by all"
        ).fetchall()
        for schema, table in tables:
            if schema == "marts":
                result[f"marts.{table}"] = _checksum(
                    conn.execute(f"select * from marts.{table}").fetchall()
                )
            else:
                result[f"raw.{table}"] = conn.execute(
                    f"select count(*) from raw.{table}"
                ).fetchone()
        for mart in sorted(p.name for p in (home / "exports").iterdir() if p.is_dir()):
            glob = str(home / "exports" / mart / "*" / "data.parquet")
            result[f"exports.{mart}"] = _checksum(
                conn.execute(
                    f"select * from read_parquet('{glob}', hive_partitioning = true)"
                ).fetchall()
            )
    return result


@pytest.fixture(scope="module")
def clean_build(inputs, tmp_path_factory) -> dict[str, tuple]:
    home = _home(tmp_path_factory.mktemp("clean"), inputs)
    done = refresh(home)
    assert done.returncode == 0, done.stderr
    return fingerprint(home)


def test_a_clean_build_builds_every_mart_and_empties_the_ledger(clean_build):
    assert clean_build["raw.pending_rebuilds"] == (0,)
    assert clean_build["marts.fct_streams"][0] > 0
    assert clean_build["marts.dsp_track_daily"][0] > 0
    assert clean_build["marts.listening_history"][0] > 0
    for mart in ("fct_streams", "top_tracks_daily", "dsp_track_daily", "listening_history"):
        assert clean_build[f"exports.{mart}"][0] == clean_build[f"marts.{mart}"][0]


@pytest.mark.parametrize("point", POINTS)
def test_the_next_refresh_recovers_from_a_kill(point, inputs, clean_build, tmp_path):
    home = _home(tmp_path, inputs)
    killed = refresh(home, crash_at=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    staging = f"*/{STAGING_PREFIX}*"
    if point == "export_staged":  # killed between two days of a mart's export
        assert list((home / "exports").glob(staging))
    recovered = refresh(home)
    assert recovered.returncode == 0, recovered.stderr[-2000:]
    if point != "raw_load":  # the killed run was marked failed, freeing its pool slot
        assert "had died" in recovered.stdout
    assert fingerprint(home) == clean_build
    assert not list((home / "exports").glob(staging))
    # nothing doubled: each event row once, each history play once
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        assert conn.execute(
            "select count(*) = count(distinct (source_file, line_number)) from raw.stream_events"
        ).fetchone()[0]
        assert conn.execute(
            "select count(*) = count(distinct play_key) from raw.spotify_history"
        ).fetchone()[0]
