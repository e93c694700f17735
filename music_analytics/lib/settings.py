"""Every user setting, read from the environment (and a `.env` beside pyproject.toml).

Only non-secret settings live here; secrets reach resources through `dagster.EnvVar`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from dotenv import load_dotenv

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

DEFAULTS = {
    "MUSIC_ANALYTICS_HOME": "./data",
    "MUSIC_ANALYTICS_START_DATE": "2025-01-01",
    "MUSIC_ANALYTICS_DAILY_CRON": "0 2 * * *",
    "MUSIC_ANALYTICS_LOOKBACK_DAYS": "3",
    "MUSIC_ANALYTICS_FILE_STABLE_SECONDS": "5",
    "MUSIC_ANALYTICS_QUARANTINE_WARN_RATIO": "0.05",
}


def events_landing(home: Path | str) -> Path:
    """Where event files are dropped under a MUSIC_ANALYTICS_HOME."""
    return Path(home) / "landing" / "events"


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


def _get(name: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or DEFAULTS[name]


def _as_int(name: str, minimum: int = 0) -> int:
    raw = _get(name)
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise SettingsError(f"{name}={value} must be at least {minimum}")
    return value


def _as_float(name: str) -> float:
    raw = _get(name)
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None


@dataclass(frozen=True)
class Settings:
    """The resolved settings; `home` is absolute so every process agrees on it."""

    home: Path
    start_date: date
    daily_cron: str
    lookback_days: int
    file_stable_seconds: int
    quarantine_warn_ratio: float

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def events_landing(self) -> Path:
        return events_landing(self.home)

    @property
    def exports_dir(self) -> Path:
        return self.home / "exports"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @classmethod
    def from_env(cls) -> Settings:
        """Read the settings; `.env` fills in what the environment does not set."""
        load_dotenv(PROJECT_ROOT / ".env", override=False)
        home = Path(_get("MUSIC_ANALYTICS_HOME")).expanduser()
        if not home.is_absolute():
            home = (PROJECT_ROOT / home).resolve()
        raw_start = _get("MUSIC_ANALYTICS_START_DATE")
        try:
            start_date = date.fromisoformat(raw_start)
        except ValueError:
            raise SettingsError(
                f"MUSIC_ANALYTICS_START_DATE={raw_start!r} is not a YYYY-MM-DD date"
            ) from None
        return cls(
            home=home,
            start_date=start_date,
            daily_cron=_get("MUSIC_ANALYTICS_DAILY_CRON"),
            lookback_days=_as_int("MUSIC_ANALYTICS_LOOKBACK_DAYS"),
            file_stable_seconds=_as_int("MUSIC_ANALYTICS_FILE_STABLE_SECONDS"),
            quarantine_warn_ratio=_as_float("MUSIC_ANALYTICS_QUARANTINE_WARN_RATIO"),
        )

    def export_to_environment(self) -> None:
        """Pin the absolute home in the environment so dbt's profile resolves the same file."""
        os.environ["MUSIC_ANALYTICS_HOME"] = str(self.home)

    def ensure_folders(self) -> None:
        """Create the home, landing, archive and export folders a fresh machine lacks."""
        for folder in (self.events_landing, self.home / "archive", self.exports_dir):
            folder.mkdir(parents=True, exist_ok=True)
