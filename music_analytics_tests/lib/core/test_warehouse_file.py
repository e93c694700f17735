"""Opening the warehouse: a broken file fails at once, one line saying what to do; only a lock
held by another process is waited out (real DuckDB files, a real second process)."""

from __future__ import annotations

import pickle
import subprocess
import sys

import duckdb
import pytest

from music_analytics.lib.core.warehouse_file import (
    WarehouseFileError,
    check_warehouse,
    connect_warehouse,
    rebuild_advice,
)


@pytest.fixture
def good(tmp_path):
    """A real warehouse of a few hundred KB."""
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("create table t as select range as i from range(100000)")
    return path


def _damage(path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 3]
    elif how == "cut_in_header":
        data = data[:100]
    elif how == "garbage":
        data = bytearray(b"not a database" * 500)
    elif how == "empty":
        data = bytearray()
    elif how == "zeroed_block":
        data[12288 : 12288 + 8192] = bytes(8192)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncated", "cut_in_header", "garbage", "empty", "zeroed_block"])
def test_a_broken_file_fails_at_once_naming_it_and_what_to_do(good, how):
    _damage(good, how)
    waits = []
    with pytest.raises(WarehouseFileError) as caught:
        connect_warehouse(good, sleep=waits.append)
    message = str(caught.value)
    assert waits == []  # not one retry
    assert caught.value.reason == "broken"
    assert "\n" not in message
    assert f"the warehouse {good} is corrupt or truncated (DuckDB: " in message
    assert "restore it from a backup" in message and "music-analytics refresh" in message
    with pytest.raises(WarehouseFileError, match="corrupt or truncated"):
        check_warehouse(good)


def test_a_sound_file_opens_and_a_missing_one_is_created(good, tmp_path):
    with connect_warehouse(good, read_only=True) as conn:
        assert conn.execute("select count(*) from t").fetchone() == (100000,)
    check_warehouse(good)
    check_warehouse(tmp_path / "absent.duckdb")  # the first run creates it
    assert not (tmp_path / "absent.duckdb").exists()


def test_only_a_lock_held_by_another_process_is_waited_out(good):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
            "sys.stdin.read()",
            str(good),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        waits = []
        with pytest.raises(WarehouseFileError) as caught:
            connect_warehouse(good, lock_waits=(0.01, 0.02), sleep=waits.append)
        assert waits == [0.01, 0.02]
        assert caught.value.reason == "locked"
        assert "locked by another process" in str(caught.value)
        check_warehouse(good)  # a writer at work is not an error: its runs wait for it
    finally:
        holder.stdin.close()
        holder.wait()
    with connect_warehouse(good, lock_waits=()) as conn:
        assert conn.execute("select count(*) from t").fetchone() == (100000,)


def test_the_advice_says_what_a_rebuild_can_reload(tmp_path):
    home = tmp_path
    assert "nothing: no loaded input is kept on disk" in rebuild_advice(home)
    (home / "landing" / "events").mkdir(parents=True)
    (home / "landing" / "events" / "a.ndjson").write_text("{}\n")
    (home / "landing" / "events" / ".loaded").write_text("a.ndjson:3:1\n")
    report = home / "archive" / "dsp" / "spotify" / "2025-03-01" / "spotify-2025-03-01-abc.zip"
    report.parent.mkdir(parents=True)
    report.write_bytes(b"PK")
    (home / "archive" / "spotify_history").mkdir(parents=True)
    (home / "archive" / "spotify_history" / "my_spotify_data.zip").write_bytes(b"PK")
    advice = rebuild_advice(home)
    assert "the 1 event file(s) in" in advice and "(delete its .loaded)" in advice
    assert "the 1 DSP report ZIP(s) under" in advice and "copy them to landing/dsp/" in advice
    assert "the 1 Spotify export file(s) in" in advice
    assert "polled from recently-played" in advice


def test_the_error_survives_pickling():
    exc = WarehouseFileError("the warehouse x is corrupt", reason="broken")
    copy = pickle.loads(pickle.dumps(exc))
    assert (str(copy), copy.reason) == (str(exc), "broken")
