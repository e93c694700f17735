{{ config(unique_key='stream_date') }}

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

)

select * from events_conformed
