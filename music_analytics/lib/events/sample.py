"""Realistic sample music-stream events, written as one NDJSON file per UTC day.

The events follow the schema of Tinybird's music_streams tutorial (see `event_validation`):

    {"stream_id": "stream_...", "user_id": "user_...", "track_id": "track_...",
     "artist_id": "artist_...", "album_id": "album_...", "genre": "rock",
     "stream_start_time": "2025-04-14 01:31:02", "stream_duration_seconds": 148,
     "completed": 0, "device_type": "smart_speaker", "country": "IN"}

What makes them realistic: a fixed catalogue derived from the seed (2,000 tracks by 400 artists
on 700 albums; a track's genre is its artist's), Zipf-like track popularity, 5,000 users with a
home country, a preferred device, a genre taste and a heavy-tailed activity level, a daily
listening rhythm in UTC (quiet 03-06, busy in the evening, a later morning at weekends), and
durations that depend on whether the stream was completed or skipped. A small share of lines is
dirty the way real feeds are: malformed lines of several kinds, blank lines, and verbatim
re-deliveries of earlier events (within a file and across files).

Each day has its own random stream, seeded by (seed, day), so a day's file does not depend on
how many days were generated before it. The exception is the first day of a run: it has no
previous file to re-deliver events from, so all its duplicates are within-file.

Only the standard library is used. The catalogue and users are in `sample_catalogue`, a day's
lines in `sample_lines`; this module writes the files.
"""

from __future__ import annotations

import gzip
import os
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from music_analytics.lib.events.sample_catalogue import catalogue
from music_analytics.lib.events.sample_lines import MAX_EVENTS_PER_DAY, write_day


@dataclass(frozen=True)
class SampleSummary:
    """What `generate_events` wrote: the files (in day order) and counts of their lines.

    `events` counts valid lines, duplicate copies included; `malformed_lines` the invalid ones;
    `duplicate_lines` the valid lines repeating the stream_id of an earlier line (same file or
    an earlier one). Blank lines are in no count.
    """

    files: list[Path]
    events: int
    malformed_lines: int
    duplicate_lines: int


def _file_name(day: date, gzipped: bool) -> str:
    """`events-YYYY-MM-DD.ndjson`, with `.gz` when gzipped."""
    return f"events-{day.isoformat()}.ndjson" + (".gz" if gzipped else "")


def _check_arguments(
    days: int,
    events_per_day: int,
    malformed_ratio: float,
    duplicate_ratio: float,
    gzip_every: int,
) -> None:
    """Raise ValueError naming the first argument `generate_events` cannot work with."""
    if days < 0:
        raise ValueError(f"days must be at least 0, got {days}")
    if not 0 <= events_per_day <= MAX_EVENTS_PER_DAY:
        raise ValueError(
            f"events_per_day must be between 0 and {MAX_EVENTS_PER_DAY}, got {events_per_day}"
        )
    for name, ratio in (("malformed_ratio", malformed_ratio), ("duplicate_ratio", duplicate_ratio)):
        if not 0 <= ratio <= 1:
            raise ValueError(f"{name} must be between 0 and 1, got {ratio}")
    if gzip_every < 0:
        raise ValueError(f"gzip_every must be at least 0, got {gzip_every}")


def generate_events(
    out_dir: Path,
    *,
    start: date,
    days: int,
    events_per_day: int,
    seed: int = 42,
    malformed_ratio: float = 0.005,
    duplicate_ratio: float = 0.001,
    gzip_every: int = 0,
) -> SampleSummary:
    """Write `days` daily NDJSON files of realistic stream events into `out_dir`, reproducibly.

    Day `start + i` goes to `events-YYYY-MM-DD.ndjson`, or `.ndjson.gz` when `gzip_every > 0`
    and `i + 1` is a multiple of it (gzip_every=7: every 7th day). A file holds exactly
    `events_per_day` non-blank lines: the day's events in time order, about `malformed_ratio`
    of them broken (never counted as events) and about `duplicate_ratio` of lines verbatim
    re-deliveries of an earlier event (from the same file, or from the previous day's), plus a
    few blank lines. Same arguments give byte-identical files (gzip headers carry no time or
    name). Each file is written under a `.part` name and renamed when complete, so a folder
    watcher never sees half a file; existing files of the same name are replaced.
    """
    _check_arguments(days, events_per_day, malformed_ratio, duplicate_ratio, gzip_every)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cat = catalogue(seed)
    files: list[Path] = []
    events = malformed = duplicates = 0
    pool: list[str] = []
    for i in range(days):
        day = start + timedelta(days=i)
        gzipped = gzip_every > 0 and (i + 1) % gzip_every == 0
        path = out_dir / _file_name(day, gzipped)
        partial = path.with_name(path.name + ".part")
        try:
            with (
                open(partial, "wb", buffering=1 << 20) as raw,
                # Level 5: within 3% of level 6's size, a third faster.
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=5, mtime=0)
                if gzipped
                else nullcontext(raw) as handle,
            ):
                result = write_day(
                    handle, cat, seed, day, events_per_day, malformed_ratio, duplicate_ratio, pool
                )
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, path)
        files.append(path)
        events += result.events
        malformed += result.malformed
        duplicates += result.duplicates
        pool = result.pool
    return SampleSummary(
        files=files, events=events, malformed_lines=malformed, duplicate_lines=duplicates
    )
