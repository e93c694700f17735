"""The benchmark year, built once and kept between `make bench` runs.

Under BENCH_CACHE (default ~/.cache/music-analytics-bench):

    year-<generator key>/events/          the year's daily event files, generated once
    year-<generator key>/home-<code key>/ a home where `music-analytics refresh` loaded them
                                          and built every mart and export

The generator key hashes the sample generator's source (music_analytics/lib/events/sample*.py)
and its parameters (BENCH_YEAR_EVENTS, default 10 million, over BENCH_YEAR_DAYS=365 days from
2025-01-01, seed 11); the code key hashes what builds the marts (dbt_project/models, macros,
dbt_project.yml, profiles.yml, music_analytics/**/*.py but the HTTP server's, and uv.lock). A
change to either makes a new entry; the three most recently used homes of a year are kept,
older ones deleted.

Entries are written under a temporary name and renamed when complete, so an interrupted run
leaves nothing that looks finished. Nothing ever writes into a cached home: `copy_home` gives
a working copy (event files hard-linked, everything else copied).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from bench.processes import REPO

CACHE = Path(os.environ.get("BENCH_CACHE") or "~/.cache/music-analytics-bench").expanduser()
YEAR_EVENTS = int(os.environ.get("BENCH_YEAR_EVENTS", "10000000"))
YEAR_DAYS = int(os.environ.get("BENCH_YEAR_DAYS", "365"))
FIRST_DAY = date(2025, 1, 1)
SEED = 11
KEPT_HOMES = 3
HOME_MARKER = ".bench-year-home.json"
_EVENT_SUFFIXES = (".ndjson", ".ndjson.gz")


@dataclass(frozen=True)
class Year:
    """The year's parameters; `day(i)` is its i-th day (0-based; `day(YEAR_DAYS)` the next)."""

    events: int = YEAR_EVENTS
    days: int = YEAR_DAYS
    first_day: date = FIRST_DAY
    seed: int = SEED

    @property
    def events_per_day(self) -> int:
        return self.events // self.days

    def day(self, index: int) -> date:
        return self.first_day + timedelta(days=index)

    @property
    def last_day(self) -> date:
        return self.day(self.days - 1)

    def env(self) -> dict[str, str]:
        """The settings a home of this year runs with: partitions from its first day, files
        loaded as soon as they are seen (the bench renames them in complete)."""
        return {
            "MUSIC_ANALYTICS_START_DATE": self.first_day.isoformat(),
            "MUSIC_ANALYTICS_FILE_STABLE_SECONDS": "0",
        }


def _hash_files(paths: list[Path], extra: str = "") -> str:
    digest = hashlib.sha256(extra.encode())
    for path in sorted(paths):
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def generator_key(year: Year) -> str:
    """What produced the year's files: the generator's source and the year's parameters."""
    sources = sorted((REPO / "music_analytics" / "lib" / "events").glob("sample*.py"))
    params = json.dumps({**year.__dict__, "first_day": year.first_day.isoformat()}, sort_keys=True)
    return _hash_files(sources, params)


def code_key() -> str:
    """What builds the marts from the files: the dbt project and the package's sources but
    the HTTP server's (music_analytics/server reads the exports; it writes none of them)."""
    dbt = REPO / "dbt_project"
    paths = [
        *(p for p in (dbt / "models").rglob("*") if p.is_file()),
        *(p for p in (dbt / "macros").rglob("*") if p.is_file()),
        dbt / "dbt_project.yml",
        dbt / "profiles.yml",
        *(
            p
            for p in (REPO / "music_analytics").rglob("*.py")
            if p.relative_to(REPO / "music_analytics").parts[0] != "server"
        ),
        REPO / "uv.lock",
    ]
    return _hash_files([p for p in paths if p.exists()])


def year_dir(year: Year) -> Path:
    return CACHE / f"year-{generator_key(year)}"


def event_files(year: Year) -> list[Path]:
    """The year's daily files, generating them into the cache the first time."""
    from music_analytics.lib.events.sample import generate_events

    folder = year_dir(year) / "events"
    if not folder.is_dir():
        partial = folder.with_name(f"events.partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        generate_events(
            partial,
            start=year.first_day,
            days=year.days,
            events_per_day=year.events_per_day,
            seed=year.seed,
        )
        try:
            partial.rename(folder)
        except OSError:  # another bench finished the same files first
            shutil.rmtree(partial)
    return sorted(p for p in folder.iterdir() if p.name.endswith(_EVENT_SUFFIXES))


def cached_home(year: Year) -> Path | None:
    """The finished home of this year and code, if one is cached (marked as used now)."""
    home = year_dir(year) / f"home-{code_key()}"
    marker = home / HOME_MARKER
    if not marker.is_file():
        return None
    marker.touch()
    return home


def home_record(home: Path) -> dict:
    """What the cached home's build measured (written by `keep_home`)."""
    return json.loads((home / HOME_MARKER).read_text())


def keep_home(year: Year, built: Path, record: dict) -> Path:
    """Move a home that refresh built from the year's files into the cache (renamed, not
    copied: the caller gives it up); the cached one if another run kept one first."""
    home = year_dir(year) / f"home-{code_key()}"
    (built / HOME_MARKER).write_text(json.dumps(record, indent=2) + "\n")
    if home.exists():
        shutil.rmtree(built)
    else:
        partial = home.with_name(f"{home.name}.partial-{os.getpid()}")
        shutil.move(built, partial)  # a rename on the same filesystem
        try:
            partial.rename(home)
        except OSError:
            shutil.rmtree(partial)
    _prune_homes(year)
    return home


def _prune_homes(year: Year) -> None:
    """Keep the KEPT_HOMES most recently used homes of the year; delete older ones and the
    leftovers of interrupted runs (partial entries older than a day)."""
    folder = year_dir(year)
    homes = sorted(
        (p for p in folder.glob("home-*") if (p / HOME_MARKER).is_file() and "." not in p.name),
        key=lambda p: (p / HOME_MARKER).stat().st_mtime,
        reverse=True,
    )
    stale = [p for p in folder.glob("*.partial-*") if time.time() - p.stat().st_mtime > 86_400]
    for path in [*homes[KEPT_HOMES:], *stale]:
        shutil.rmtree(path, ignore_errors=True)


def link_event_files(files: list[Path], landing: Path) -> None:
    """Put the files into a landing folder as hard links (the loader only reads them), or as
    copies where the cache is on another filesystem."""
    landing.mkdir(parents=True, exist_ok=True)
    for path in files:
        try:
            os.link(path, landing / path.name)
        except OSError:
            shutil.copy2(path, landing / path.name)


def copy_home(source: Path, target: Path) -> Path:
    """A working copy of a cached home: event files hard-linked (same names, sizes and mtimes,
    so the landing ledger still knows them), every other file copied; exports/bi.duckdb is
    rewritten so its views read the copy's Parquet files."""
    from music_analytics.lib.core.exports import write_bi_database

    def link_or_copy(src: str, dst: str) -> None:
        if Path(src).name.endswith(_EVENT_SUFFIXES):
            try:
                os.link(src, dst)
                return
            except OSError:
                pass
        shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link_or_copy, symlinks=True)
    (target / HOME_MARKER).unlink(missing_ok=True)
    if (target / "exports").is_dir():
        write_bi_database(target / "exports")
    return target
