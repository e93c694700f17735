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
        * exclude (started_at),
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
                > previous_ended_at + interval '{{ session_gap_minutes }} minutes'
            as starts_session
    from flagged

),

numbered as (

    select
        *,
        count(*) filter (where starts_session) over (
            order by stream_start_time, stream_id rows unbounded preceding
        ) as session_number
    from starts

)

select * from numbered
