{{ config(unique_key='stream_date', partition_by=spark_partition_by('stream_date'), pre_hook="{{ empty_partition_window('stream_date') }}") }}

with

streams as (

    select * from {{ ref('fct_streams') }}
    where {{ partition_window('stream_date') }}

),

final as (

    select
        -- grain
        stream_date,
        track_id,
        min(artist_id) as artist_id,
        min(album_id) as album_id,
        genre,
        country,

        -- measures: sum stream_count and total_duration_seconds over days, never the average
        count(*) as stream_count,
        sum(duration_seconds) as total_duration_seconds,
        avg(duration_seconds) as avg_duration_seconds,
        sum(case when is_completed then 1 else 0 end) as completed_streams,
        count(distinct user_id) as unique_listeners

    from streams
    group by stream_date, track_id, genre, country

)

select * from final
{{ in_day_order('stream_date') }}
