"""The SQL of the pipes over one mart each (top_tracks, over the rollups, has its own module).

Each function takes the parsed parameter values and returns the query: filters only for the
parameters present, every value bound. A trailing `__rows_before_limit` column carries the
number of rows before the limit (see pipes.run_query).
"""

from __future__ import annotations

from music_analytics.server.pipe_specs import Query, where_clause


def genre_trends_query(v: dict) -> Query:
    where, bound = where_clause("stream_date", v, {"country": "country"})
    genre = "where genre = ?" if v.get("genre") is not None else ""
    return Query(
        f"""
        with days as (
            select stream_date, genre, cast(sum(stream_count) as bigint) as stream_count
            from genre_trends_daily where {where} group by stream_date, genre
        ), shares as (
            select stream_date, genre, stream_count,
                   round(stream_count / sum(stream_count) over (partition by stream_date), 4)
                       as share_of_day_streams
            from days
        )
        select *, count(*) over () as __rows_before_limit from shares {genre}
        order by stream_date, genre limit ?""",
        [*bound, *([v["genre"]] if genre else []), v["limit"]],
    )


def user_activity_query(v: dict) -> Query:
    where, bound = where_clause("stream_date", v, {"user_id": "user_id"})
    return Query(
        f"""
        select stream_date, count(*) as active_users,
               cast(sum(stream_count) as bigint) as stream_count,
               cast(sum(completed_streams) as bigint) as completed_streams,
               round(sum(completed_streams) / sum(stream_count), 4) as completion_rate,
               round(sum(total_listening_seconds) / 3600, 2) as listening_hours,
               round(sum(stream_count) / count(*), 2) as avg_streams_per_user,
               count(*) over () as __rows_before_limit
        from user_activity_daily where {where}
        group by stream_date order by stream_date limit ?""",
        [*bound, v["limit"]],
    )


def dsp_top_tracks_query(v: dict) -> Query:
    """Streams per (dsp, track), from the per-country mart when a country is asked for; the
    ISRC and name come from dsp_track_daily over the same days, for the returned rows only."""
    table = "dsp_track_country_daily" if v.get("country") is not None else "dsp_track_daily"
    where, bound = where_clause("report_date", v, {"dsp": "dsp", "country": "country"})
    return Query(
        f"""
        with top as (
            select dsp, track_id, cast(sum(streams) as bigint) as streams,
                   count(*) over () as __rows_before_limit
            from {table} where {where}
            group by dsp, track_id order by streams desc nulls last, dsp, track_id limit ?
        ), names as (
            select dsp, track_id, min(isrc) as isrc, min(track_name) as track_name
            from dsp_track_daily where report_date between ? and ? group by dsp, track_id
        )
        select dsp, track_id, names.isrc, names.track_name, streams, __rows_before_limit
        from top left join names using (dsp, track_id)
        order by streams desc nulls last, dsp, track_id""",
        [*bound, v["limit"], v["start_date"], v["end_date"]],
    )


def track_performance_query(v: dict) -> Query:
    if v.get("isrc") is not None:
        v = {**v, "isrc": v["isrc"].replace("-", "").upper()}
    where, bound = where_clause("report_date", v, {"isrc": "isrc"})
    return Query(
        f"""
        select isrc, min(track_name) as track_name,
               cast(sum(spotify_streams) as bigint) as spotify_streams,
               cast(sum(youtube_streams) as bigint) as youtube_streams,
               cast(sum(apple_music_streams) as bigint) as apple_music_streams,
               cast(sum(total_streams) as bigint) as total_streams, count(*) as days_reporting,
               count(*) over () as __rows_before_limit
        from track_performance_daily where {where}
        group by isrc order by sum(total_streams) desc nulls last, isrc limit ?""",
        [*bound, v["limit"]],
    )


def listening_history_query(v: dict) -> Query:
    where, bound = where_clause("stream_date", v, {})
    if v["granularity"] == "hour":
        return Query(
            f"""
            select stream_date, hour_of_day, plays, round(minutes_played, 1) as minutes_played,
                   skipped_plays, round(skip_rate, 4) as skip_rate, sessions_started,
                   round(podcast_minutes, 1) as podcast_minutes,
                   round(audiobook_minutes, 1) as audiobook_minutes,
                   count(*) over () as __rows_before_limit
            from listening_history where {where}
            order by stream_date, hour_of_day limit ?""",
            [*bound, v["limit"]],
        )
    return Query(
        f"""
        select stream_date, cast(sum(plays) as bigint) as plays,
               round(sum(minutes_played), 1) as minutes_played,
               cast(sum(skipped_plays) as bigint) as skipped_plays,
               round(sum(skipped_plays) / nullif(sum(plays), 0), 4) as skip_rate,
               cast(sum(sessions_started) as bigint) as sessions_started,
               round(sum(podcast_minutes), 1) as podcast_minutes,
               round(sum(audiobook_minutes), 1) as audiobook_minutes,
               count(*) over () as __rows_before_limit
        from listening_history where {where}
        group by stream_date order by stream_date limit ?""",
        [*bound, v["limit"]],
    )
