"""The CLI's whole-file failures: one line on stderr naming the file and what to do."""

from __future__ import annotations

import dagster as dg
import pytest

from music_analytics.cli import main
from music_analytics.defs.resources import WarehouseResource, open_warehouse


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
