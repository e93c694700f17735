"""Shared fixtures: a fresh MUSIC_ANALYTICS_HOME per test and helpers to write event files."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from music_analytics.lib.core.settings import Settings

# Modules that take minutes on their own (two homes built on two engines, then rebuilt):
# collected first, so that `make test`'s loadscope workers start them at once rather than end
# on them. Tests keep their order within a module.
SLOW_MODULES = ("music_analytics_tests/defs/test_spark_parity.py",)


def pytest_collection_modifyitems(config, items) -> None:
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in SLOW_MODULES)


def event(n: int, **overrides) -> dict:
    """A valid event; `n` varies ids and the time so events differ."""
    row = {
        "stream_id": f"stream_{n}",
        "user_id": f"user_{n % 7}",
        "track_id": f"track_{n % 5}",
        "artist_id": f"artist_{n % 5}",
        "album_id": f"album_{n % 5}",
        "genre": ["rock", "pop", "jazz"][n % 3],
        "stream_start_time": f"2025-04-14 {n % 24:02d}:{n % 60:02d}:02",
        "stream_duration_seconds": 100 + n,
        "completed": n % 2,
        "device_type": ["mobile", "desktop"][n % 2],
        "country": ["US", "IN"][n % 2],
    }
    row.update(overrides)
    return row


def write_lines(path: Path, lines: Iterable[str | dict]) -> Path:
    """Write NDJSON (dicts are dumped, strings written as they are); gzip when the name says so."""
    text = "".join((json.dumps(x) if isinstance(x, dict) else x) + "\n" for x in lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings on a fresh home under tmp_path, exported so dbt sees the same warehouse."""
    monkeypatch.setenv("MUSIC_ANALYTICS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    resolved = Settings.from_env()
    resolved.ensure_folders()
    resolved.export_to_environment()
    return resolved


@contextmanager
def module_home(tmp_path_factory, name: str, **env: str) -> Iterator[Settings]:
    """Settings on a fresh home (and DAGSTER_HOME) for a module-scoped fixture, with `env`
    set too; the environment is restored when the module is done."""
    home = tmp_path_factory.mktemp(name)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MUSIC_ANALYTICS_HOME", str(home / "home"))
        patch.setenv("DAGSTER_HOME", str(home / "dagster"))
        for variable, value in env.items():
            patch.setenv(variable, value)
        settings = Settings.from_env()
        settings.ensure_folders()
        yield settings


def query(settings: Settings, sql: str, params=None) -> list[tuple]:
    """Rows of `sql` on the warehouse, opened read-only."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        return conn.execute(sql, params or []).fetchall()
