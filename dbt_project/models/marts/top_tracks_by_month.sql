{{ config(unique_key='month', partition_by=spark_partition_by('month'), pre_hook="{{ empty_partition_window('month', grain='month') }}", meta={'export_grain': 'month'}) }}

{#-
    top_tracks_daily summed per calendar month (over countries): a top_tracks request reads its
    range's whole months here and only the days at either end from top_tracks_by_day. A build
    of some days re-sums every month that holds one of them, from all of that month's days, so
    a month is always complete and rebuilding it is idempotent. Also carries each track's
    artist and album (a track has one of each), which the server shows for the returned rows.
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
        top_tracks_daily.artist_id,
        top_tracks_daily.album_id,
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

        -- the track
        min(artist_id) as artist_id,
        min(album_id) as album_id,

        -- measures: integers, so that sums over a range are exact and cheap to add up
        -- (seconds rounded before the cast: DuckDB's cast of a double rounds, Spark's truncates)
        cast(sum(stream_count) as integer) as stream_count,
        cast(sum(completed_streams) as integer) as completed_streams,
        cast(round(sum(total_duration_seconds)) as bigint) as total_duration_seconds

    from top_tracks
    group by month, track_id, genre

)

select * from final
{{ in_day_order('month') }}
