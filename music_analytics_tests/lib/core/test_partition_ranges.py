from datetime import date

from music_analytics.lib.core.partition_ranges import clamp_days, contiguous_ranges


def d(day: int, month: int = 3) -> date:
    return date(2025, month, day)


def test_contiguous_ranges_merge_consecutive_days_only():
    days = [d(5), d(1), d(2), d(3), d(5), d(31), d(1, 4)]
    assert contiguous_ranges(days) == [(d(1), d(3)), (d(5), d(5)), (d(31), d(1, 4))]


def test_contiguous_ranges_of_nothing():
    assert contiguous_ranges([]) == []


def test_clamp_days_splits_inside_and_outside():
    inside, outside = clamp_days([d(1), d(9), d(5), d(2)], d(2), d(5))
    assert inside == [d(2), d(5)]
    assert outside == [d(1), d(9)]
