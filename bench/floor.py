"""The floor of the year backfill: what DuckDB alone takes to build the event marts.

One DuckDB script, no Dagster and no dbt: one `read_json` statement over every event file of
the year (malformed lines skipped, lines missing a field dropped, copies of a stream_id kept
once), then `top_tracks_daily`, `genre_trends_daily` and `user_activity_daily` with the columns
of their dbt models (dbt_project/models/marts/), built with plain SQL over all days at once,
and a checkpoint. `make bench` runs it in a child process beside `music-analytics refresh` on
the same files: the refresh's seconds over these are `year_backfill_vs_floor`.

    python -m bench.floor <database file> <event files glob>

prints the rows of each table, space-separated: streams, top_tracks_daily, genre_trends_daily,
user_activity_daily.
"""

from __future__ import annotations

import sys

# The columns of the event schema (music_analytics/lib/events/validation.py), typed; a line
# whose value does not convert is skipped like a malformed one.
_COLUMNS = {
    "stream_id": "VARCHAR",
    "user_id": "VARCHAR",
    "track_id": "VARCHAR",
    "artist_id": "VARCHAR",
    "album_id": "VARCHAR",
    "genre": "VARCHAR",
    "stream_start_time": "TIMESTAMP",
    "stream_duration_seconds": "INTEGER",
    "completed": "INTEGER",
    "device_type": "VARCHAR",
    "country": "VARCHAR",
}

STREAMS = """
create table streams as
select distinct on (stream_id)
    stream_id, user_id, track_id, artist_id, album_id, genre, country, device_type,
    stream_start_time,
    cast(stream_start_time as date) as stream_date,
    stream_duration_seconds as duration_seconds,
    completed = 1 as is_completed
from read_json(
    $files, format = 'newline_delimited', ignore_errors = true, columns = {columns}
)
where {all_present} and completed in (0, 1) and stream_duration_seconds >= 0
"""

TOP_TRACKS_DAILY = """
create table top_tracks_daily as
select
    stream_date, track_id, min(artist_id) as artist_id, min(album_id) as album_id, genre, country,
    count(*) as stream_count,
    sum(duration_seconds) as total_duration_seconds,
    avg(duration_seconds) as avg_duration_seconds,
    count(*) filter (where is_completed) as completed_streams,
    count(distinct user_id) as unique_listeners
from streams
group by stream_date, track_id, genre, country
"""

GENRE_TRENDS_DAILY = """
create table genre_trends_daily as
with daily as (
    select
        stream_date, genre, country,
        count(*) as stream_count,
        count(distinct user_id) as unique_listeners,
        sum(duration_seconds) as total_listening_seconds,
        count(*) filter (where is_completed) as completed_streams
    from streams
    group by stream_date, genre, country
)
select
    today.*,
    cast(today.stream_count as double)
        / sum(today.stream_count) over (partition by today.stream_date, today.country)
        as share_of_day_streams,
    sum(today.stream_count) over (
        partition by today.genre, today.country order by today.stream_date
        range between interval 6 days preceding and current row
    ) / 7.0 as streams_7d_avg,
    cast(today.stream_count - week_ago.stream_count as double) / week_ago.stream_count
        as streams_wow_change
from daily as today
left join daily as week_ago
    on week_ago.genre = today.genre
    and week_ago.country = today.country
    and week_ago.stream_date = today.stream_date - 7
"""

USER_ACTIVITY_DAILY = """
create table user_activity_daily as
with by_genre as (
    select stream_date, user_id, genre, count(*) as n
    from streams group by stream_date, user_id, genre
),
by_device as (
    select stream_date, user_id, device_type, count(*) as n
    from streams group by stream_date, user_id, device_type
),
top_genre as (
    select stream_date, user_id, first(genre order by n desc, genre) as top_genre
    from by_genre group by stream_date, user_id
),
top_device as (
    select stream_date, user_id, first(device_type order by n desc, device_type) as top_device
    from by_device group by stream_date, user_id
),
activity as (
    select
        stream_date, user_id,
        count(*) as stream_count,
        sum(duration_seconds) as total_listening_seconds,
        count(distinct track_id) as distinct_tracks,
        count(distinct artist_id) as distinct_artists,
        count(*) filter (where is_completed) as completed_streams,
        min(stream_start_time) as first_stream_at,
        max(stream_start_time) as last_stream_at
    from streams
    group by stream_date, user_id
)
select
    activity.stream_date, activity.user_id, stream_count, total_listening_seconds,
    distinct_tracks, distinct_artists, completed_streams,
    cast(completed_streams as double) / stream_count as completion_rate,
    top_genre.top_genre, top_device.top_device as top_device_type,
    first_stream_at, last_stream_at
from activity
join top_genre using (stream_date, user_id)
join top_device using (stream_date, user_id)
"""

TABLES = ("streams", "top_tracks_daily", "genre_trends_daily", "user_activity_daily")


def build(database: str, files_glob: str) -> list[int]:
    """Build the four tables in `database` from the files; their row counts."""
    import duckdb

    columns = "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in _COLUMNS.items()) + "}"
    all_present = " and ".join(f"{name} is not null" for name in _COLUMNS)
    with duckdb.connect(database) as conn:
        conn.execute("set enable_progress_bar = false")
        conn.execute(
            STREAMS.format(columns=columns, all_present=all_present), {"files": files_glob}
        )
        for sql in (TOP_TRACKS_DAILY, GENRE_TRENDS_DAILY, USER_ACTIVITY_DAILY):
            conn.execute(sql)
        conn.execute("checkpoint")
        return [conn.execute(f"select count(*) from {t}").fetchone()[0] for t in TABLES]


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m bench.floor <database file> <event files glob>")
    print(*build(sys.argv[1], sys.argv[2]))
