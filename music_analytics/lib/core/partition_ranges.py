"""Turning a set of days into the fewest contiguous date ranges, for single-run backfills."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta


def contiguous_ranges(days: Iterable[date]) -> list[tuple[date, date]]:
    """Group days into inclusive (first, last) runs of consecutive days, in order."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if ranges and day == ranges[-1][1] + timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def clamp_days(days: Iterable[date], first: date, last: date) -> tuple[list[date], list[date]]:
    """Split days into (inside [first, last], outside it), both sorted."""
    inside, outside = [], []
    for day in sorted(set(days)):
        (inside if first <= day <= last else outside).append(day)
    return inside, outside
