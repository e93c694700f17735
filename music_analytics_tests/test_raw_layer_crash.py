"""`kill -9` of a real `music-analytics raw-layer sync` around its Parquet writes (a temporary
file written, not renamed; a file renamed into place, not yet in the files ledger), during a
whole sync and during an incremental one after new loads and a user deletion: the next sync
converges the layer to exactly the committed rows, nothing lost or doubled. And a load killed
before its DuckDB commit adds nothing to the layer."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from music_analytics.cli import main
from music_analytics.lib.core.crash_points import CRASH_AT, RAW_LAYER_POINTS
from music_analytics.lib.core.raw_layer import sync_raw_layer
from music_analytics.lib.core.raw_layer_ledger import read_layer_changes
from music_analytics.lib.events.datasource_rows import delete_user_rows
from music_analytics_tests.conftest import event, write_lines
from music_analytics_tests.lib.core.test_raw_layer import (
    assert_mirrors,
    load_events,
    load_everything,
)

CLI = str(Path(sys.executable).parent / "music-analytics")


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
    if phase == "incremental":  # a finished sync (in this process), then rows change
        with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
            sync_raw_layer(conn, str(home / "raw"))
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
        again = sync_raw_layer(conn, str(home / "raw"))
    assert (again.files_written, again.files_removed) == (0, 0)


def test_the_command_on_a_switched_off_layer_or_a_uri_with_a_secret_is_one_line(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("MUSIC_ANALYTICS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MUSIC_ANALYTICS_RAW_LAYER_URI", raising=False)
    monkeypatch.delenv("MUSIC_ANALYTICS_ENGINE", raising=False)
    assert main(["raw-layer", "sync"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the raw layer is off" in err
    monkeypatch.setenv("MUSIC_ANALYTICS_RAW_LAYER_URI", "s3://AKIAXXXX:s3cr3t@bucket/raw")
    assert main(["raw-layer", "sync"]) == 2
    out = capsys.readouterr()
    assert "s3cr3t" not in out.err + out.out
    assert "AWS_ACCESS_KEY_ID" in out.err and out.err.count("\n") == 1
    monkeypatch.setenv("MUSIC_ANALYTICS_RAW_LAYER_URI", str(tmp_path / "raw"))
    assert main(["raw-layer", "sync", "--all"]) == 0
    assert "raw layer: whole layer;" in capsys.readouterr().out


def test_a_load_killed_before_its_commit_adds_nothing_to_the_layer(warehouse, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(warehouse, home / "warehouse.duckdb")
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        sync_raw_layer(conn, str(home / "raw"))
    path = write_lines(tmp_path / "new.ndjson", [event(n) for n in range(70, 75)])
    load = (
        "import duckdb, sys; from pathlib import Path\n"
        "from music_analytics.lib.events.files import load_event_files\n"
        "conn = duckdb.connect(sys.argv[1]); list(load_event_files(conn, [Path(sys.argv[2])]))"
    )
    killed = subprocess.run(
        [sys.executable, "-c", load, str(home / "warehouse.duckdb"), str(path)],
        env={**os.environ, CRASH_AT: "raw_load"},
        capture_output=True,
        start_new_session=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        summary = sync_raw_layer(conn, str(home / "raw"))
        assert (summary.files_written, summary.files_removed) == (0, 0)
        assert_mirrors(conn, home / "raw")
