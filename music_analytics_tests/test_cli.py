"""The CLI's whole-file failures: one line on stderr naming the file and what to do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import dagster as dg
import pytest

from music_analytics.cli import main
from music_analytics.defs.resources import WarehouseResource, open_warehouse
from music_analytics.lib.core import warehouse_file
from music_analytics_tests.conftest import event, query, write_lines
from music_analytics_tests.fakes.dsp_api import FakeDspApi
from music_analytics_tests.fakes.spotify_api import FakeSpotify


def test_refresh_on_a_corrupt_warehouse_prints_one_line_and_exits_4(settings, capsys):
    settings.warehouse_path.write_bytes(b"not a database" * 1000)
    before = settings.warehouse_path.read_bytes()
    assert main(["refresh"]) == 4
    out, err = capsys.readouterr()
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith(f"music-analytics: the warehouse {settings.warehouse_path} is corrupt")
    assert "restore it from a backup, or move it aside" in line
    assert settings.warehouse_path.read_bytes() == before  # left as it was, for the user


def test_a_step_on_a_corrupt_warehouse_fails_with_that_line_and_no_retry(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    path.write_bytes(b"\x00" * 4096)
    with pytest.raises(dg.Failure) as caught, open_warehouse(WarehouseResource(database=str(path))):
        pass
    assert caught.value.description.startswith(f"the warehouse {path} is corrupt or truncated")
    assert caught.value.allow_retries is False


@pytest.fixture
def spotify(settings, httpserver, monkeypatch):
    """A fake Spotify the settings point at (real spotipy, real HTTP)."""
    fake = FakeSpotify(httpserver)
    for name, value in {
        "SPOTIFY_CLIENT_ID": fake.client_id,
        "SPOTIFY_CLIENT_SECRET": fake.client_secret,
        "SPOTIFY_REFRESH_TOKEN": fake.refresh_token,
        "SPOTIFY_API_BASE_URL": fake.api_base_url,
        "SPOTIFY_ACCOUNTS_BASE_URL": fake.accounts_base_url,
    }.items():
        monkeypatch.setenv(name, value)
    return fake


def _refresh(*args: str) -> tuple[int, list[str]]:
    """`music-analytics refresh` as a user runs it: its own process, logging unconfigured (so
    any record at WARNING or above reaches stderr); its exit status and stderr lines."""
    done = subprocess.run(
        [sys.executable, "-m", "music_analytics.cli", "refresh", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        check=False,
    )
    return done.returncode, done.stderr.splitlines()


def test_refresh_with_a_revoked_spotify_token_prints_one_line(spotify):
    spotify.revoke()
    status, lines = _refresh()
    assert status == 1
    [line] = lines
    assert line.startswith("error: Spotify: spotify_poll_job: Spotify refused the refresh token")
    assert line.endswith("Run `music-analytics spotify-auth` again and store the new "
                         "SPOTIFY_REFRESH_TOKEN.")  # fmt: skip
    assert spotify.refresh_token not in line


def test_refresh_prints_nothing_for_http_conditions_the_client_handles(spotify):
    spotify.script("recently_played", 401, {"error": {"status": 401, "message": "expired"}})
    spotify.unavailable(503)
    assert _refresh() == (0, [])
    assert spotify.requests["recently_played"] == 3 and spotify.token_refreshes == 2


def test_refresh_prints_nothing_for_dsp_api_conditions_the_client_handles(
    settings, httpserver, monkeypatch
):
    """A 503 on the report request, a 500 on its status and an expired download URL are each
    retried or renewed: the reports load and nothing reaches stderr."""
    fake = FakeDspApi(httpserver, polls_until_processing=0, polls_until_complete=0)
    monkeypatch.setenv("DSP_API_BASE_URL", fake.base_url)
    monkeypatch.setenv("DSP_API_TOKEN", fake.token)
    monkeypatch.setenv("MUSIC_ANALYTICS_START_DATE", "2025-03-01")
    fake.script_post(503, {"error": "busy"}, {"Retry-After": "0"})
    fake.script_get(500, {"error": "oops"}, {"Retry-After": "0"})
    fake.expire_next_downloads()
    assert _refresh("--start", "2025-03-02", "--end", "2025-03-02") == (0, [])
    assert query(settings, "select count(*) from raw.dsp_report_loads") == [(3,)]


def test_refresh_on_a_warehouse_locked_past_the_waits_prints_one_line(settings, monkeypatch, capfd):
    monkeypatch.setattr(warehouse_file, "LOCK_WAITS_SECONDS", (0.01,))
    write_lines(settings.events_landing / "a.ndjson", [event(1)])
    old = time.time() - 60
    os.utime(settings.events_landing / "a.ndjson", (old, old))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
         "print('ready', flush=True); sys.stdin.read()", str(settings.warehouse_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ready"
        assert main(["refresh"]) == 1
    finally:
        holder.stdin.close()
        holder.wait()
    [line] = [line for line in capfd.readouterr().err.splitlines() if line]
    assert line.startswith(f"music-analytics: the warehouse {settings.warehouse_path} is locked")
    assert (settings.events_landing / "a.ndjson").exists()  # left for the next refresh


def test_a_failed_dbt_build_is_one_line_naming_the_model_and_its_reason(settings):
    """A mart table whose stream_date is text (a hand edit gone wrong) makes dbt's incremental
    delete fail: refresh prints one line with the model, the engine's reason and dbt's log,
    and the days stay pending for the next run."""
    write_lines(settings.events_landing / "a.ndjson", [event(1)])
    old = time.time() - 60
    os.utime(settings.events_landing / "a.ndjson", (old, old))
    with open_warehouse(WarehouseResource(database=str(settings.warehouse_path))) as conn:
        conn.execute("create schema if not exists marts")
        conn.execute(
            "create table marts.fct_streams as "
            "select 'events' as source, 'x' as stream_id, 'not a date' as stream_date"
        )
    status, lines = _refresh()
    assert status == 1
    [line] = lines
    assert line.startswith("music-analytics: dbt build of ")
    assert "failed: model fct_streams: Binder Error: Cannot " in line  # VARCHAR and DATE
    assert "the days stay in the rebuild ledger" in line
    log = line.rsplit("(dbt log: ", 1)[1].removesuffix(")")
    assert os.path.isfile(log)
    with open_warehouse(WarehouseResource(database=str(settings.warehouse_path))) as conn:
        assert conn.execute("select count(*) from raw.pending_rebuilds").fetchone()[0] > 0


def test_a_damaged_block_found_by_a_later_query_is_the_warehouse_line_and_exit_4(settings):
    """The file opens, but a block of raw.stream_events fails its checksum when a rebuild of
    its day reads it: refresh prints the warehouse's one line (what to do, what a rebuild
    recovers) and exits 4, as for a file that does not open."""
    path = write_lines(settings.events_landing / "a.ndjson", [event(n) for n in range(30_000)])
    old = time.time() - 60
    os.utime(path, (old, old))
    assert main(["refresh"]) == 0
    day = json.loads(path.read_text().splitlines()[0])["stream_start_time"][:10]
    with open_warehouse(WarehouseResource(database=str(settings.warehouse_path))) as conn:
        [(block,)] = conn.execute(
            "select distinct block_id from pragma_storage_info('raw.stream_events') "
            "where column_name = 'user_id' and block_id >= 0"
        ).fetchall()
        block_size = conn.execute("pragma database_size").fetchone()[2]
    with open(settings.warehouse_path, "r+b") as handle:
        handle.seek(3 * 4096 + block * block_size + 64)  # past the three header blocks
        handle.write(b"\xa5" * 4096)
    with open_warehouse(WarehouseResource(database=str(settings.warehouse_path))) as conn:
        assert conn.execute("select count(*) from raw.event_file_loads").fetchone() == (1,)
    status, lines = _refresh("--start", day, "--end", day)
    assert status == 4
    [line] = lines
    assert line.startswith(f"music-analytics: the warehouse {settings.warehouse_path} is corrupt")
    assert "Corrupt database file" in line and "move it aside" in line


def test_a_step_whose_query_reads_a_damaged_block_fails_with_the_warehouse_line(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with open_warehouse(WarehouseResource(database=str(path))) as conn:
        conn.execute("create table t as select md5(range::varchar) as s from range(100000)")
        conn.execute("checkpoint")
        [(block,)] = conn.execute(
            "select distinct block_id from pragma_storage_info('t') "
            "where column_name = 's' and block_id >= 0 limit 1"
        ).fetchall()
        block_size = conn.execute("pragma database_size").fetchone()[2]
    with open(path, "r+b") as handle:
        handle.seek(3 * 4096 + block * block_size + 64)
        handle.write(b"\xa5" * 4096)
    with (
        pytest.raises(dg.Failure) as caught,
        open_warehouse(WarehouseResource(database=str(path))) as conn,
    ):
        conn.execute("select max(s) from t").fetchall()
    assert caught.value.description.startswith(f"the warehouse {path} is corrupt or truncated")
    assert caught.value.allow_retries is False
    assert caught.value.metadata["warehouse_error"].value == "broken"
