{{ config(unique_key='stream_date', pre_hook="{{ empty_partition_window('stream_date') }}") }}

{#- A new session starts after a gap of more than this many minutes without music. -#}
{%- set session_gap_minutes = 30 -%}

with

-- every Spotify play ever: sessions are numbered over the listener's whole history
spotify_plays as (

    select
        * exclude (started_at),
        started_at as stream_start_time
    from {{ ref('int_spotify__plays_unified') }}

),

flagged as (

    select
        *,
        max(ended_at) over (
            order by stream_start_time, stream_id
            rows between unbounded preceding and 1 preceding
        ) as previous_ended_at
    from spotify_plays

),

numbered as (

    select
        *,
        sum(
            case
                when previous_ended_at is null
                    or stream_start_time
                        > previous_ended_at + interval '{{ session_gap_minutes }} minutes'
                    then 1
                else 0
            end
        ) over (order by stream_start_time, stream_id rows unbounded preceding) as session_number
    from flagged

),

sessions as (

    select
        -- the session's first play names it: stable as long as that play is
        'session:' || arg_min(stream_id, stream_start_time) as session_id,
        min(stream_start_time) as started_at,
        max(ended_at) as ended_at,
        cast(min(stream_start_time) as date) as stream_date,
        count(*) as plays,
        sum(duration_seconds) / 60.0 as minutes_played,
        count(distinct artist_id) as distinct_artists
    from numbered
    group by session_number

)

select * from sessions
where {{ partition_window('stream_date') }}
