{{ config(unique_key='month', partition_by=spark_partition_by('month'), pre_hook="{{ empty_partition_window('month', grain='month') }}", meta={'export_grain': 'month'}) }}

{#-
    top_tracks_by_country_day per calendar month: a top_tracks request with a country filter
    reads its range's whole months here. A build of some days re-sums every month that holds one
    of them, from all of that month's days in top_tracks_daily (see top_tracks_by_month).
-#}

with

months_built as (

    select distinct cast({{ dbt.date_trunc('month', 'stream_date') }} as date) as month
    from {{ ref('top_tracks_daily') }}
    where {{ partition_window('stream_date') }}

),

top_tracks as (

    select
        cast({{ dbt.date_trunc('month', 'top_tracks_daily.stream_date') }} as date) as month,
        top_tracks_daily.track_id,
        top_tracks_daily.genre,
        top_tracks_daily.country,
        top_tracks_daily.stream_count,
        top_tracks_daily.completed_streams,
        top_tracks_daily.total_duration_seconds
    from {{ ref('top_tracks_daily') }} as top_tracks_daily
    inner join months_built
        on cast({{ dbt.date_trunc('month', 'top_tracks_daily.stream_date') }} as date)
            = months_built.month

),

final as (

    select
        -- grain
        month,
        track_id,
        genre,
        country,

        -- measures: integers, so that sums over a range are exact and cheap to add up
        -- (seconds rounded before the cast: DuckDB's cast of a double rounds, Spark's truncates)
        cast(sum(stream_count) as integer) as stream_count,
        cast(sum(completed_streams) as integer) as completed_streams,
        cast(round(sum(total_duration_seconds)) as bigint) as total_duration_seconds

    from top_tracks
    group by month, track_id, genre, country

)

select * from final
{{ in_day_order('month') }}
