{{ config(unique_key='stream_date', partition_by=spark_partition_by('stream_date'), pre_hook="{{ empty_partition_window('stream_date') }}") }}

with

sessions as (

    select
        -- the session's first play names it: stable as long as that play is
        'session:' || min_by(stream_id, stream_start_time) as session_id,
        min(stream_start_time) as started_at,
        max(ended_at) as ended_at,
        cast(min(stream_start_time) as date) as stream_date,
        count(*) as plays,
        sum(duration_seconds) / 60.0 as minutes_played,
        count(distinct artist_id) as distinct_artists
    from {{ ref('int_spotify__plays_sessionized') }}
    group by session_number

)

select * from sessions
where {{ partition_window('stream_date') }}
{{ in_day_order('stream_date') }}
