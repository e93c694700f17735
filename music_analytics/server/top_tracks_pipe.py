"""The top_tracks pipe: the most streamed tracks over a date range, from the dbt rollups.

A request over a year would aggregate every (day, track, genre, country) row of
top_tracks_daily. dbt also builds it summed per (day, track, genre), all a request without a
country filter needs, and per month of each (models/marts/top_tracks_by_*.sql): whole months
inside the range are read from the monthly rows and only the days at either end from the daily
ones (`month_split`); with a country filter, from the rollups that keep the country. The
snapshot stores their track_id as an ENUM in track_id order, so grouping by it costs what an
integer key does and ordering by it breaks ties as track_id would. A track's artist and album
are looked up for the returned rows only (a track has one of each).

`genre` labels the row: with a genre filter it is that genre (the counts are the track's
streams in it); without one, a track can carry several genres and the counts are over all of
them, so the label is the first of the track's genres in alphabetical order. `total_duration`
and `avg_duration` are the seed's columns (seconds streamed, and per stream).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from music_analytics.server.pipe_specs import (
    DAY_LAST_SECOND,
    Query,
    QueryResult,
    filtered,
    where_clause,
)
from music_analytics.server.snapshot import TIME_SORTED_COPIES, MartSnapshot

MONTHS_FROM_DAYS = 62  # ranges this long or longer read whole months from the monthly rollup
_MEASURES = ("stream_count", "completed_streams", "total_duration_seconds")
# The marts the pipe reads and the columns it needs of each (checked before a request runs).
READS: dict[str, tuple[str, ...]] = {
    "top_tracks_by_day": ("stream_date", "track_id", "genre", *_MEASURES),
    "top_tracks_by_month": ("month", "track_id", "genre", "artist_id", "album_id", *_MEASURES),
    "top_tracks_by_country_day": ("stream_date", "track_id", "genre", "country", *_MEASURES),
    "top_tracks_by_country_month": ("month", "track_id", "genre", "country", *_MEASURES),
}
# The partial days of a DateTime window come from the stream-level fact, read through the
# snapshot's copy of it sorted by time (snapshot.TIME_SORTED_COPIES: `fct_streams_by_time`).
READS_FOR_TIMES: dict[str, tuple[str, ...]] = {"fct_streams": TIME_SORTED_COPIES["fct_streams"][1]}
COLUMNS = [
    ("track_id", "VARCHAR"),
    ("artist_id", "VARCHAR"),
    ("album_id", "VARCHAR"),
    ("genre", "VARCHAR"),
    ("stream_count", "BIGINT"),
    ("completed_streams", "BIGINT"),
    ("completion_rate", "DOUBLE"),
    ("total_duration_seconds", "BIGINT"),
    ("total_duration", "BIGINT"),
    ("avg_duration", "DOUBLE"),
]


def month_split(
    first: date, last: date
) -> tuple[tuple[date, date] | None, list[tuple[date, date]]]:
    """Split first..last into whole months [start, end) and the days left at either end.

    >>> month_split(date(2025, 1, 20), date(2025, 4, 3))
    ((datetime.date(2025, 2, 1), datetime.date(2025, 4, 1)), [(datetime.date(2025, 1, 20), \
datetime.date(2025, 1, 31)), (datetime.date(2025, 4, 1), datetime.date(2025, 4, 3))])
    """
    try:
        month_start = first if first.day == 1 else (first.replace(day=28) + timedelta(days=4))
        month_start = month_start.replace(day=1)
        months_end = (last + timedelta(days=1)).replace(day=1)  # exclusive
    except OverflowError:  # a range that ends in December 9999: its days, read as days
        return None, [(first, last)]
    if month_start >= months_end:
        return None, [(first, last)]
    days = []
    if first < month_start:
        days.append((first, month_start - timedelta(days=1)))
    if months_end <= last:
        days.append((months_end, last))
    return (month_start, months_end), days


def rollup_ranges(first_day: date, last_day: date) -> list[tuple[str, date, date]]:
    """The whole days first..last as (grain, first, last) reads of the rollups: "day" ranges
    of the daily ones, and one "month" range (first and last month start) of the monthly ones
    when the range is long enough (each read has a fixed cost; up to two months of days cost
    less than three reads). None at all when first > last."""
    if first_day > last_day:
        return []
    if (last_day - first_day).days < MONTHS_FROM_DAYS:
        return [("day", first_day, last_day)]
    months, day_ranges = month_split(first_day, last_day)
    ranges = [("day", first, last) for first, last in day_ranges]
    if months is not None:
        ranges.append(("month", months[0], months[1] - timedelta(days=1)))
    return ranges


def edges_and_whole_days(v: dict) -> tuple[list[tuple[datetime, datetime]], date, date]:
    """A window with times as the partial days at its ends, each as (first, last second) of
    streams to count, and the whole days between (first > last when there are none)."""
    first, last = v["start_date"], v["end_date"]
    start_at, end_at = v.get("start_at"), v.get("end_at")
    if first == last and (start_at or end_at):
        whole = (datetime.combine(first, time.min), datetime.combine(last, DAY_LAST_SECOND))
        return [(start_at or whole[0], end_at or whole[1])], date.max, date.min
    edges = []
    if start_at:  # first < last here, so the day after exists
        edges.append((start_at, datetime.combine(first, DAY_LAST_SECOND)))
        first += timedelta(days=1)
    if end_at:
        edges.append((datetime.combine(last, time.min), end_at))
        last -= timedelta(days=1)
    return edges, first, last


def _edges_part(edges: list[tuple[datetime, datetime]], v: dict, filters: dict) -> tuple[str, list]:
    """The streams of the partial days, a row each (the outer sums count them), from the
    stream-level fact sorted by time: only the row groups of the windows are read."""
    windows = " or ".join("stream_start_time between ? and ?" for _ in edges)
    where, bound = filtered(f"({windows})", [t for edge in edges for t in edge], v, filters)
    sql = (
        "select track_id, 1::bigint as stream_count, "
        "is_completed::bigint as completed_streams, "
        "duration_seconds::bigint as total_duration_seconds "
        f"from fct_streams_by_time where {where}"
    )
    return sql, bound


def top_tracks_query(v: dict) -> Query:
    """Sums per track over the range, ranked; `top_tracks_rows` names the returned tracks.

    A DateTime start or end inside a day (`start_at`, `end_at`) makes that day partial: its
    streams are counted from fct_streams between the times, the whole days from the rollups.
    """
    by = "by_country" if v.get("country") is not None else "by"
    filters = {"genre": "genre", "country": "country"}
    edges, first_day, last_day = edges_and_whole_days(v)
    parts, bound = [], []
    if edges:
        sql, values = _edges_part(edges, v, filters)
        parts.append(sql)
        bound += values
    columns = "track_id, " + ", ".join(_MEASURES)
    for grain, first, last in rollup_ranges(first_day, last_day):
        column = "stream_date" if grain == "day" else "month"
        where, values = where_clause(column, {**v, "start_date": first, "end_date": last}, filters)
        parts.append(f"select {columns} from top_tracks_{by}_{grain} where {where}")
        bound += values
    source = f"({' union all '.join(parts)})"
    return Query(
        f"""
        select track_id, sum(stream_count) as stream_count,
               sum(completed_streams) as completed_streams,
               sum(total_duration_seconds) as total_duration_seconds,
               count(*) over () as __rows_before_limit
        from {source} group by track_id order by stream_count desc, track_id limit ?""",
        [*bound, v["limit"]],
    )


def top_tracks_rows(result: QueryResult, snapshot: MartSnapshot, values: dict) -> QueryResult:
    """The ranked sums with each track's artist, album and genre label (see the module's
    docstring), its completion rate and the seed's duration columns."""
    tracks = snapshot.lookup("top_tracks_by_month", "track_id", ("artist_id", "album_id", "genre"))
    rows = []
    for track_id, streams, completed, seconds in result.rows:
        artist_id, album_id, first_genre = tracks.get(track_id, (None, None, None))
        genre = values.get("genre") or first_genre
        rate = round(completed / streams, 4) if streams else None
        average = round(seconds / streams, 4) if streams else None
        seconds = int(seconds)
        rows.append(
            (
                track_id,
                artist_id,
                album_id,
                genre,
                int(streams),
                int(completed),
                rate,
                seconds,
                seconds,
                average,
            )
        )
    return QueryResult(COLUMNS, rows, result.rows_before_limit)
