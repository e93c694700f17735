{{ config(unique_key='stream_date', partition_by=spark_partition_by('stream_date'), pre_hook="{{ empty_partition_window('stream_date') }}") }}

with

events as (

    select * from {{ ref('stg_events__streams') }}
    where {{ partition_window('stream_date') }}

),

events_conformed as (

    select
        -- keys
        'events' as source,
        stream_id,
        stream_date,

        -- who, what
        user_id,
        track_id,
        artist_id,
        album_id,
        genre,

        -- where, how
        country,
        device_type,

        -- measures
        stream_start_time,
        duration_seconds,
        is_completed

    from events

),

spotify as (

    select * from {{ ref('int_spotify__plays_unified') }}
    where {{ partition_window('stream_date') }}

),

-- marts group by country and device: unknown is 'unknown', never NULL (polled plays have
-- neither; export rows may lack them)
spotify_conformed as (

    select
        -- keys
        source,
        stream_id,
        stream_date,

        -- who, what
        user_id,
        track_id,
        artist_id,
        album_id,
        genre,

        -- where, how
        coalesce(nullif(country, ''), 'unknown') as country,
        coalesce(nullif(device_type, ''), 'unknown') as device_type,

        -- measures
        started_at as stream_start_time,
        duration_seconds,
        is_completed

    from spotify

),

unioned as (

    select * from events_conformed
    union all
    select * from spotify_conformed

)

select * from unioned
{{ in_day_order('stream_date') }}
