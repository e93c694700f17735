{#- A day's trailing 7-day and week-over-week measures read the 7 days before it, so a change
    to a day also dates the 7 after it: rebuild_following_days tells the planner. -#}
{{ config(unique_key='stream_date', partition_by=spark_partition_by('stream_date'), pre_hook="{{ empty_partition_window('stream_date') }}", meta={'rebuild_following_days': 7}) }}

with

-- the partition's days plus the 7 before them, for the trailing and week-over-week measures
streams as (

    select * from {{ ref('fct_streams') }}
    where {{ partition_window('stream_date', lookback_days=7) }}

),

daily as (

    select
        stream_date,
        genre,
        country,
        count(*) as stream_count,
        count(distinct user_id) as unique_listeners,
        sum(duration_seconds) as total_listening_seconds,
        sum(case when is_completed then 1 else 0 end) as completed_streams
    from streams
    group by stream_date, genre, country

),

trailing_7d as (

    -- each day's streams plus those of the 6 days before it that have rows (a day without
    -- streams adds nothing): a window over the daily rows, not a join of each day to 7
    select
        stream_date,
        genre,
        country,
        sum(stream_count) over (
            partition by genre, country
            order by {{ dbt.datediff("cast('1970-01-01' as date)", 'stream_date', 'day') }}
            range between 6 preceding and current row
        ) as streams_7d
    from daily

),

final as (

    select
        -- grain
        today.stream_date,
        today.genre,
        today.country,

        -- the day
        today.stream_count,
        today.unique_listeners,
        today.total_listening_seconds,
        today.completed_streams,
        cast(today.stream_count as double)
            / sum(today.stream_count) over (partition by today.stream_date, today.country)
            as share_of_day_streams,

        -- trends: days without streams count as zero; no row a week earlier gives NULL
        cast(trailing_7d.streams_7d as double) / 7 as streams_7d_avg,
        cast(today.stream_count - week_ago.stream_count as double)
            / week_ago.stream_count as streams_wow_change

    from daily as today
    inner join trailing_7d
        on trailing_7d.stream_date = today.stream_date
        and trailing_7d.genre = today.genre
        and trailing_7d.country = today.country
    left join daily as week_ago
        on week_ago.genre = today.genre
        and week_ago.country = today.country
        and week_ago.stream_date = cast({{ dbt.dateadd('day', -7, 'today.stream_date') }} as date)
    where {{ partition_window('today.stream_date') }}

)

select * from final
{{ in_day_order('stream_date') }}
