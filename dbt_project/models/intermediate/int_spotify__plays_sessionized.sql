{#-
    Every Spotify music play of the listener with its session: a play starts a session when
    its start is more than `session_gap_minutes` after the latest end of every earlier play
    (plays may overlap), or when it is the first play ever. Computed over the whole history
    with a window, because a session's start depends on the play before it, whatever its day.
-#}
{%- set session_gap_minutes = 30 -%}

with

spotify_plays as (

    select
        source,
        stream_id,
        ended_at,
        stream_date,
        user_id,
        track_id,
        artist_id,
        album_id,
        genre,
        country,
        device_type,
        duration_seconds,
        track_duration_seconds,
        is_completed,
        skipped,
        play_key,
        started_at as stream_start_time
    from {{ ref('int_spotify__plays_unified') }}

),

-- the latest end of any earlier play, so the gap before this play
flagged as (

    select
        *,
        max(ended_at) over (
            order by stream_start_time, stream_id
            rows between unbounded preceding and 1 preceding
        ) as previous_ended_at
    from spotify_plays

),

starts as (

    select
        *,
        previous_ended_at is null
            or stream_start_time
                > previous_ended_at + interval {{ session_gap_minutes }} minute
            as starts_session
    from flagged

),

numbered as (

    select
        *,
        count(case when starts_session then 1 end) over (
            order by stream_start_time, stream_id rows unbounded preceding
        ) as session_number
    from starts

)

select * from numbered
