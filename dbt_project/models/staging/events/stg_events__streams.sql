with

source as (

    select * from {{ source('raw', 'stream_events') }}

),

ranked as (

    -- a stream counts once per day: of the copies of a stream_id on one stream_date, the copy
    -- loaded first wins (load ids are time-ordered). A re-delivery is verbatim, so its copies
    -- share the day; keyed by the day too, a filter on stream_date (a mart's partition_window)
    -- goes below this window and a day's build reads only that day's rows.
    select
        *,
        row_number() over (
            partition by stream_date, stream_id order by load_id, line_number
        ) as copy_number
    from source

),

renamed as (

    select
        -- ids
        stream_id,
        user_id,
        track_id,
        artist_id,
        album_id,

        -- attributes
        genre,
        country,
        device_type,

        -- timing (UTC)
        stream_start_time,
        stream_date,
        stream_duration_seconds as duration_seconds,
        completed = 1 as is_completed,

        -- lineage
        source_file,
        line_number,
        load_id,
        loaded_at

    from ranked
    where copy_number = 1

)

select * from renamed
