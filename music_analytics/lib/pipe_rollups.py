"""Rollups the server's snapshot adds beside a mart, so long date ranges stay cheap.

A top_tracks request over a year would aggregate every (day, track, genre, country) row of
the year. The snapshot also keeps the mart summed per (day, track, genre), which is all a
request without a country filter needs, and per month of each, so whole months inside the
range are read from the monthly rows and only the days at either end from the daily ones
(`month_split`). Tables with a country are sorted by country first, so a country filter skips
the other countries' row groups. Sums are cast to BIGINT (the Parquet exports hold some of
them as DOUBLE), which also keeps the aggregation on plain integers.
"""

from __future__ import annotations

from datetime import date, timedelta

_SUMS = (
    "cast(sum(stream_count) as bigint) as stream_count, "
    "cast(sum(completed_streams) as bigint) as completed_streams, "
    "cast(sum(total_duration_seconds) as bigint) as total_duration_seconds"
)
_NAMES = "min(artist_id) as artist_id, min(album_id) as album_id"

# mart -> statements run in the snapshot after the mart's table exists
ROLLUPS: dict[str, tuple[str, ...]] = {
    "top_tracks_daily": (
        f"""create table top_tracks__by_day as
        select stream_date, track_id, genre, {_NAMES}, {_SUMS}
        from top_tracks_daily group by stream_date, track_id, genre order by stream_date""",
        f"""create table top_tracks__by_month as
        select cast(date_trunc('month', stream_date) as date) as month, track_id, genre,
               {_NAMES}, {_SUMS}
        from top_tracks__by_day group by all order by month""",
        f"""create table top_tracks__by_country_day as
        select stream_date, track_id, genre, country, {_NAMES}, {_SUMS}
        from top_tracks_daily group by all order by country, stream_date""",
        f"""create table top_tracks__by_country_month as
        select cast(date_trunc('month', stream_date) as date) as month, track_id, genre,
               country, {_NAMES}, {_SUMS}
        from top_tracks__by_country_day group by all order by country, month""",
    ),
}


def month_split(
    first: date, last: date
) -> tuple[tuple[date, date] | None, list[tuple[date, date]]]:
    """Split first..last into whole months [start, end) and the days left at either end.

    >>> month_split(date(2025, 1, 20), date(2025, 4, 3))
    ((datetime.date(2025, 2, 1), datetime.date(2025, 4, 1)), [(datetime.date(2025, 1, 20), \
datetime.date(2025, 1, 31)), (datetime.date(2025, 4, 1), datetime.date(2025, 4, 3))])
    """
    month_start = first if first.day == 1 else (first.replace(day=28) + timedelta(days=4))
    month_start = month_start.replace(day=1)
    months_end = (last + timedelta(days=1)).replace(day=1)  # exclusive
    if month_start >= months_end:
        return None, [(first, last)]
    days = []
    if first < month_start:
        days.append((first, month_start - timedelta(days=1)))
    if months_end <= last:
        days.append((months_end, last))
    return (month_start, months_end), days
