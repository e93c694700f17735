"""`kill -9` of a real `music-analytics raw-layer sync` around its Parquet writes (a temporary
file written, not renamed; a file renamed into place, not yet in the files ledger), during a
whole sync and during an incremental one after new loads and a user deletion: the next sync
converges the layer to exactly the committed rows, nothing lost or doubled."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from music_analytics.lib.core.crash_points import CRASH_AT
from music_analytics.lib.core.raw_layer_ledger import read_layer_changes
from music_analytics.lib.events.datasource_rows import delete_user_rows
from music_analytics_tests.conftest import event
from music_analytics_tests.lib.core.test_raw_layer import (
    assert_mirrors,
    load_events,
    load_everything,
)

CLI = str(Path(sys.executable).parent / "music-analytics")
RAW_LAYER_POINTS = ("raw_layer_temp", "raw_layer_file")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    """A warehouse with rows in every table of the layer (closed, to be copied)."""
    folder = tmp_path_factory.mktemp("loaded")
    with duckdb.connect(str(folder / "warehouse.duckdb")) as conn:
        load_everything(conn, folder)
    return folder / "warehouse.duckdb"


def sync(home: Path, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "MUSIC_ANALYTICS_HOME": str(home),
        "MUSIC_ANALYTICS_RAW_LAYER_URI": str(home / "raw"),
    }
    env.pop(CRASH_AT, None)
    if crash_at:
        env[CRASH_AT] = crash_at
    return subprocess.run(
        [CLI, "raw-layer", "sync"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=True,
    )


def change_rows(home: Path) -> None:
    """New loads and a deletion after a finished sync: the queue names their days."""
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        load_events(
            conn,
            home,
            "later.ndjson",
            [event(n, stream_start_time="2025-04-16 09:00:00") for n in range(50, 60)],
        )
        delete_user_rows(conn, "user_3", "op-crash")


@pytest.mark.parametrize("phase", ["whole", "incremental"])
@pytest.mark.parametrize("point", RAW_LAYER_POINTS)
def test_a_sync_killed_at_a_write_is_finished_by_the_next(warehouse, tmp_path, point, phase):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(warehouse, home / "warehouse.duckdb")
    if phase == "incremental":
        assert sync(home).returncode == 0
        change_rows(home)
    killed = sync(home, crash_at=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = list((home / "raw").rglob("_tmp-*"))
    assert bool(left) == (point == "raw_layer_temp")
    done = sync(home)
    assert done.returncode == 0, done.stderr
    assert "raw layer:" in done.stdout
    assert not list((home / "raw").rglob("_tmp-*"))
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        assert_mirrors(conn, home / "raw")
        assert read_layer_changes(conn).up_to == 0
    again = sync(home)
    assert "0 file(s) written" in again.stdout and "0 removed" in again.stdout


def test_hostile_uri_and_switched_off_layer_are_one_line(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "MUSIC_ANALYTICS_HOME": str(home)}
    env.pop("MUSIC_ANALYTICS_RAW_LAYER_URI", None)
    env.pop("MUSIC_ANALYTICS_ENGINE", None)
    off = subprocess.run([CLI, "raw-layer", "sync"], env=env, capture_output=True, text=True)
    assert off.returncode == 1
    assert off.stderr.count("\n") == 1 and "the raw layer is off" in off.stderr
    env["MUSIC_ANALYTICS_RAW_LAYER_URI"] = "s3://AKIAXXXX:s3cr3t@bucket/raw"
    secret = subprocess.run([CLI, "raw-layer", "sync"], env=env, capture_output=True, text=True)
    assert secret.returncode == 2 and "s3cr3t" not in secret.stderr + secret.stdout
    assert "AWS_ACCESS_KEY_ID" in secret.stderr and secret.stderr.count("\n") == 1
