"""`make bench`'s year section: issue 11's figures, through `music-analytics refresh` as users
run it (a subprocess on a home with the DAGSTER_HOME and SQLite storage refresh prepares).

- **year backfill**: the cached year's files (bench/year_cache.py: 10 million events in 365
  daily files) hard-linked into landing/events/ of a fresh home, then one `refresh`: ingest,
  every mart, every export. Beside it, on the same files, the floor (bench/floor.py: DuckDB
  alone building the event marts); `year_backfill_vs_floor` is the ratio of their seconds.
  The backfill's home becomes the cached year home when none is cached for this code.
- **day refresh**: a copy of the year home refreshed with the next day's file (as yesterday's
  refresh would have), then the day after's file dropped and `refresh` run: its seconds and
  the peak RSS of its process tree (the CLI and its dbt subprocess, sampled every 0.1 s). The
  same day on a home holding one day of history (the year's last day, loaded by a first
  refresh); `day_refresh_year_vs_day_history` is the ratio of the two.

`year_home(work)` is the cached year home, built through the backfill when none is cached:
the serve section reads its marts from a copy of it.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from datetime import date
from pathlib import Path

from bench.processes import music_analytics, progress, run_logged, tail, user_env
from bench.year_cache import (
    Year,
    cached_home,
    copy_home,
    event_files,
    home_record,
    keep_home,
    link_event_files,
    year_dir,
)

TARGETS = (
    "year_backfill_seconds <= 60, year_backfill_vs_floor <= 2.5, "
    "day_refresh_year_vs_day_history <= 1.3, day_refresh_seconds <= 15, "
    "day_refresh_peak_rss_mb <= 600"
)


def _say(message: str) -> None:
    progress("year", message)


def _refresh(home: Path, year: Year, log: Path):
    """`music-analytics refresh` on `home`, as a user runs it; its Finished record."""
    return run_logged(music_analytics("refresh"), user_env(home, **year.env()), log)


def _check_built(home: Path, first, last) -> None:
    """Every day from first to last has top_tracks_daily rows and an export, and the rebuild
    ledger is empty: the refresh did the whole job."""
    import duckdb

    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        days = conn.execute(
            "select count(distinct stream_date) from marts.top_tracks_daily "
            "where stream_date between ? and ?",
            [first, last],
        ).fetchone()[0]
        pending = conn.execute("select count(*) from raw.pending_rebuilds").fetchone()[0]
    exported = home / "exports" / "top_tracks_daily" / f"stream_date={last}" / "data.parquet"
    wanted = (last - first).days + 1
    if days != wanted or pending or not exported.is_file():
        raise RuntimeError(
            f"refresh of {home} left {days} of {wanted} days in top_tracks_daily, {pending} "
            f"pending rebuilds, export of {last} present: {exported.is_file()}; see its log"
        )


def _floor(files: list[Path], work: Path) -> tuple[float, int]:
    """Seconds of the floor script over the files, in a child process, and its streams."""
    globbed = str(files[0].parent / "*.ndjson")
    done = run_logged(
        [sys.executable, "-m", "bench.floor", str(work / "floor.duckdb"), globbed],
        dict(os.environ),
        work / "floor.log",
    )
    (work / "floor.duckdb").unlink()
    streams = int(done.log.read_text().split()[0])
    return done.seconds, streams


def _loaded(log: Path) -> dict:
    """The rows the refresh said it loaded and quarantined (its summary line)."""
    found = re.search(
        r"loaded (\d+) rows from (\d+) new event file\(s\), quarantined (\d+)", tail(log)
    )
    if not found:
        raise RuntimeError(f"no summary line in {log}: did `refresh` change what it prints?")
    rows, files, quarantined = (int(x) for x in found.groups())
    return {"rows_loaded": rows, "files_loaded": files, "rows_quarantined": quarantined}


def _event_streams(home: Path) -> int:
    """The event streams in the home's fct_streams (each stream_id once)."""
    import duckdb

    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        sql = "select count(*) from marts.fct_streams where source = 'events'"
        return conn.execute(sql).fetchone()[0]


def _backfill(year: Year, files: list[Path], work: Path) -> tuple[Path, dict]:
    """A fresh home with the year's files in landing/events/ and one refresh; the home and
    what was measured."""
    home = work / "backfill_home"
    shutil.rmtree(home, ignore_errors=True)
    link_event_files(files, home / "landing" / "events")
    done = _refresh(home, year, work / "backfill_refresh.log")
    _check_built(home, year.first_day, year.last_day)
    return home, {
        "seconds": round(done.seconds, 1),
        "peak_rss_mb": round(done.peak_rss_mb),
        **_loaded(done.log),
        "fct_streams": _event_streams(home),
    }


def year_home(work: Path, year: Year | None = None) -> tuple[Path, dict]:
    """The cached year home and the record of its build; built (and cached) if missing."""
    year = year or Year()
    home = cached_home(year)
    if home is None:
        files = _files(year)
        _say(f"no year home cached for this code: backfilling {len(files)} files through refresh")
        built, record = _backfill(year, files, work)
        home = keep_home(year, built, record)
    return home, home_record(home)


def _files(year: Year) -> list[Path]:
    """The year's files from the cache, generated first if this is their first use."""
    if not (year_dir(year) / "events").is_dir():
        _say(f"generating the year's files once: {year.events:,} events in {year.days} days")
    return event_files(year)


def _drop(staged: Path, landing: Path) -> None:
    """Drop a file as a user's copy does: written under `.part`, renamed when complete."""
    partial = landing / f"{staged.name}.part"
    shutil.copyfile(staged, partial)
    os.replace(partial, landing / staged.name)


def _day_refresh(home: Path, year: Year, staged: Path, log: Path):
    """Drop a day's file into `home` and refresh: the measured run, checked."""
    _drop(staged, home / "landing" / "events")
    done = _refresh(home, year, log)
    day = date.fromisoformat(staged.stem.removeprefix("events-"))
    _check_built(home, day, day)
    return done


def _next_days(year: Year, work: Path) -> list[Path]:
    """The files of the two days after the year (same generator and size)."""
    from music_analytics.lib.events.sample import generate_events

    return generate_events(
        work / "next_days",
        start=year.day(year.days),
        days=2,
        events_per_day=year.events_per_day,
        seed=year.seed,
    ).files


def bench_year(work: Path) -> dict:
    year = Year()
    work = work / "year"
    work.mkdir()
    files = _files(year)
    _say(f"floor: DuckDB alone over the {len(files)} files")
    floor_s, floor_streams = _floor(files, work)
    _say(f"floor: {floor_s:.1f} s; year backfill: `music-analytics refresh` on a fresh home")
    built, backfill = _backfill(year, files, work)
    _say(f"year backfill: {backfill['seconds']} s, peak RSS {backfill['peak_rss_mb']} MB")
    home = cached_home(year) or keep_home(year, built, backfill)
    shutil.rmtree(built, ignore_errors=True)

    # A user's daily refresh follows yesterday's in the same home, whose dbt parse state it
    # reuses (dbt's profile holds the home's path, so a copied home starts without one): each
    # home has one refresh before the measured one.
    yesterday, today = _next_days(year, work)
    _say("day refresh: a copy of the year home refreshed with one day, then the measured day")
    year_copy = copy_home(home, work / "day_year_home")
    _day_refresh(year_copy, year, yesterday, work / "day_year_before.log")
    on_year = _day_refresh(year_copy, year, today, work / "day_year.log")
    _say(f"day refresh on a year: {on_year.seconds:.1f} s; now on one day of history")
    one_day = work / "day_one_home"
    link_event_files(files[-1:], one_day / "landing" / "events")
    _refresh(one_day, year, work / "day_one_history.log")
    on_day = _day_refresh(one_day, year, today, work / "day_one.log")
    _say(f"day refresh on one day: {on_day.seconds:.1f} s")
    for folder in ("day_year_home", "day_one_home"):
        shutil.rmtree(work / folder)
    return {
        "year_events": year.events,
        "year_days": year.days,
        "year_floor_seconds": round(floor_s, 1),
        "year_backfill_seconds": backfill["seconds"],
        "year_backfill_vs_floor": round(backfill["seconds"] / floor_s, 2),
        "year_backfill_peak_rss_mb": backfill["peak_rss_mb"],
        "year_backfill_rows_loaded": backfill["rows_loaded"],
        "year_backfill_rows_quarantined": backfill["rows_quarantined"],
        # the same streams, counted by the pipeline and by the floor's simpler rules
        "year_fct_streams": backfill["fct_streams"],
        "year_floor_streams": floor_streams,
        "day_refresh_seconds": round(on_year.seconds, 1),
        "day_refresh_peak_rss_mb": round(on_year.peak_rss_mb),
        "day_refresh_day_history_seconds": round(on_day.seconds, 1),
        "day_refresh_day_history_peak_rss_mb": round(on_day.peak_rss_mb),
        "day_refresh_year_vs_day_history": round(on_year.seconds / on_day.seconds, 2),
    }
