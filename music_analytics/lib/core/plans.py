"""What to run next, decided once for the sensors, the schedules and `music-analytics refresh`.

- Which landed files are ready: `landing_files` (lib/core/landing.py) scans a source's
  landing folder, `settled_files` applies the rule that a file is completely written, and
  `wait_until_settled` applies the same rule for a one-shot command that has no previous tick.
- Which days to build: `plan_build` turns the rebuild ledger's pending days (and any days
  asked for) into one build: every day at once, however sparse, for the models selected.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from music_analytics.lib.core.landing import settled_files
from music_analytics.lib.core.partition_ranges import clamp_days, contiguous_ranges
from music_analytics.lib.core.rebuild_ledger import PendingRebuilds


def wait_until_settled(
    paths: list[Path],
    stable_seconds: int,
    *,
    rounds: int = 3,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[Path], list[Path]]:
    """The sensors' rule for a one-shot command: look, wait, look again.

    Returns (settled, still changing). A file is settled when its size and mtime did not
    change between two looks and it is at least `stable_seconds` old; files still being
    written after `rounds` looks are left for the next run. A file not modified for
    max(stable_seconds, 1) seconds already is settled at the first look: a writer updates the
    mtime as it writes, so a second look could only agree (no wait for a day's file copied
    in before the command started).
    """
    previous: dict[str, list[int]] = {}
    quiet_ns = max(stable_seconds, 1) * 1_000_000_000
    now_ns = time.time_ns()
    todo = [p for p in paths if p.exists()]
    ready = [p for p in todo if now_ns - p.stat().st_mtime_ns >= quiet_ns]
    todo = [p for p in todo if p not in ready]
    for look in range(rounds + 1):
        settled, previous = settled_files(todo, previous, stable_seconds)
        ready += settled
        todo = [p for p in todo if p not in settled and p.exists()]
        if not todo or look == rounds:
            break
        sleep(max(1.0, float(stable_seconds)))
    return sorted(ready, key=lambda p: (p.stat().st_mtime_ns, p.name)), todo


@dataclass(frozen=True)
class BuildPlan:
    """One mart build: the days, the ledger sources it covers (and may clear), what it leaves."""

    days: list[date] = field(default_factory=list)
    sources: frozenset[str] = frozenset()  # ledger sources whose every model is built
    up_to: int = 0  # the newest ledger entry read
    outside: list[date] = field(default_factory=list)  # pending, but before/after the partitions

    @property
    def day_ranges(self) -> list[list[str]]:
        """The days as [first, last] pairs for dbt's `day_ranges` var."""
        return [[a.isoformat(), b.isoformat()] for a, b in contiguous_ranges(self.days)]


def covered_sources(
    selected_models: Iterable[str], models_by_source: Mapping[str, frozenset[str]]
) -> frozenset[str]:
    """The ledger sources all of whose downstream models are selected: a build of those models
    brings the source's pending days fully up to date."""
    selected = set(selected_models)
    return frozenset(s for s, models in models_by_source.items() if models and models <= selected)


def plan_build(
    pending: PendingRebuilds,
    *,
    selected_models: Iterable[str],
    models_by_source: Mapping[str, frozenset[str]],
    first: date,
    last: date,
    extra_days: Iterable[date] = (),
    following_days: Mapping[str, int] | None = None,
) -> BuildPlan:
    """The one build for a set of models: the pending days of the sources it covers, plus
    `extra_days` (a partition range, a schedule's look-back), within [first, last].

    A pending day D also brings D+1..D+N when a selected model's rows read N days back
    (`following_days`, from the models' meta): their trailing measures changed too. Those
    days stop at the latest day with data (`pending.data_through`, when known): a later day has
    no streams, so no rows whose measures could change.
    """
    selected = set(selected_models)
    sources = covered_sources(selected, models_by_source)
    wanted = set(extra_days)
    following = following_days or {}
    until = min(last, pending.data_through) if pending.data_through else last
    for source in sources & pending.sources:
        # a source's day also dates the following days of the models downstream of it that
        # read back in time (e.g. a trailing week), when those have a partition yet
        reach = max((following.get(m, 0) for m in models_by_source[source] & selected), default=0)
        for day in pending.days_by_source[source]:
            wanted.add(day)
            wanted |= {d for n in range(1, reach + 1) if (d := day + timedelta(days=n)) <= until}
    inside, outside = clamp_days(wanted, first, last)
    return BuildPlan(inside, sources, pending.up_to, outside)


def days_between(first: date, last: date) -> list[date]:
    """Every day from first to last, inclusive."""
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def outside_message(outside: list[date], first: date, last: date) -> str:
    """One line on pending days no partition holds, naming the setting that brings them in."""
    before = [d for d in outside if d < first]
    if before:
        return (
            f"{len(outside)} day(s) with data are outside the partitions {first}..{last} and "
            f"were not built ({outside[0]}..{outside[-1]}): set "
            f"MUSIC_ANALYTICS_START_DATE={before[0].isoformat()} (or earlier) and run refresh"
        )
    return (
        f"{len(outside)} day(s) with data lie after today ({outside[0]}..{outside[-1]}): they "
        "are built once their partition exists (check the clocks of the systems that wrote them)"
    )
