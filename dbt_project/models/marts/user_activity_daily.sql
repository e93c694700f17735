{{ config(unique_key='stream_date', partition_by=spark_partition_by('stream_date'), pre_hook="{{ empty_partition_window('stream_date') }}") }}

with

streams as (

    select * from {{ ref('fct_streams') }}
    where {{ partition_window('stream_date') }}

),

activity as (

    select
        stream_date,
        user_id,
        count(*) as stream_count,
        sum(duration_seconds) as total_listening_seconds,
        count(distinct track_id) as distinct_tracks,
        count(distinct artist_id) as distinct_artists,
        sum(case when is_completed then 1 else 0 end) as completed_streams,
        min(stream_start_time) as first_stream_at,
        max(stream_start_time) as last_stream_at
    from streams
    group by stream_date, user_id

),

-- the user's most streamed genre and device that day; ties go to the first name
genre_ranked as (

    select
        stream_date,
        user_id,
        genre,
        row_number() over (
            partition by stream_date, user_id order by count(*) desc, genre
        ) as genre_rank
    from streams
    group by stream_date, user_id, genre

),

device_ranked as (

    select
        stream_date,
        user_id,
        device_type,
        row_number() over (
            partition by stream_date, user_id order by count(*) desc, device_type
        ) as device_rank
    from streams
    group by stream_date, user_id, device_type

),

final as (

    select
        activity.stream_date,
        activity.user_id,
        activity.stream_count,
        activity.total_listening_seconds,
        activity.distinct_tracks,
        activity.distinct_artists,
        activity.completed_streams,
        cast(activity.completed_streams as double) / activity.stream_count as completion_rate,
        genre_ranked.genre as top_genre,
        device_ranked.device_type as top_device_type,
        activity.first_stream_at,
        activity.last_stream_at
    from activity
    left join genre_ranked
        on activity.stream_date = genre_ranked.stream_date
        and activity.user_id = genre_ranked.user_id
        and genre_ranked.genre_rank = 1
    left join device_ranked
        on activity.stream_date = device_ranked.stream_date
        and activity.user_id = device_ranked.user_id
        and device_ranked.device_rank = 1

)

select * from final
{{ in_day_order('stream_date') }}
