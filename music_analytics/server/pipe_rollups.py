"""Rollups the server's snapshot adds beside a mart, so long date ranges stay cheap.

A top_tracks request over a year would aggregate every (day, track, genre, country) row of
the year. The snapshot also keeps the mart summed per (day, track, genre), which is all a
request without a country filter needs, and per month of each, so whole months inside the
range are read from the monthly rows and only the days at either end from the daily ones
(`month_split`). Tables with a country are sorted by country first, so a country filter skips
the other countries' row groups. Tracks are numbered (`top_tracks__tracks`): the rollups
group by that integer, not by the track_id string, and sum plain integers (the Parquet exports
hold some counts as DOUBLE), which halves a query's cost; the track's id, artist, album and
genre are looked up for the returned rows only (a track has one artist, album and genre).
"""

from __future__ import annotations

from datetime import date, timedelta

_SUMS = (
    "cast(sum(stream_count) as integer) as stream_count, "
    "cast(sum(completed_streams) as integer) as completed_streams, "
    "cast(sum(total_duration_seconds) as bigint) as total_duration_seconds"
)
_KEYED = (
    "top_tracks_daily join (select track_key, track_id from top_tracks__tracks) using (track_id)"
)

# mart -> statements run in the snapshot after the mart's table exists
ROLLUPS: dict[str, tuple[str, ...]] = {
    "top_tracks_daily": (
        # track_key follows track_id's order, so ordering by it breaks ties as track_id would
        """create table top_tracks__tracks as
        select cast(row_number() over (order by track_id) as integer) as track_key, *
        from (select track_id, min(artist_id) as artist_id, min(album_id) as album_id,
                     min(genre) as genre
              from top_tracks_daily group by track_id)""",
        f"""create table top_tracks__by_day as
        select stream_date, track_key, genre, {_SUMS}
        from {_KEYED} group by stream_date, track_key, genre order by stream_date""",
        f"""create table top_tracks__by_month as
        select cast(date_trunc('month', stream_date) as date) as month, track_key, genre, {_SUMS}
        from top_tracks__by_day group by all order by month""",
        f"""create table top_tracks__by_country_day as
        select stream_date, track_key, genre, country, {_SUMS}
        from {_KEYED} group by all order by country, stream_date""",
        f"""create table top_tracks__by_country_month as
        select cast(date_trunc('month', stream_date) as date) as month, track_key, genre,
               country, {_SUMS}
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
