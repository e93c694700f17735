{{ config(unique_key='stream_date', partition_by=spark_partition_by('stream_date'), pre_hook="{{ empty_partition_window('stream_date') }}") }}

{#-
    top_tracks_daily without its per-row extras (artist, album, averages, listeners): what a
    top_tracks request with a country filter reads for the days that are not whole months.
    Keyed by track_id as top_tracks_by_day is (the snapshot stores it as an ENUM).
-#}

with

top_tracks as (

    select * from {{ ref('top_tracks_daily') }}
    where {{ partition_window('stream_date') }}

),

final as (

    select
        -- grain
        stream_date,
        track_id,
        genre,
        country,

        -- measures: integers, so that sums over a range are exact and cheap to add up
        -- (seconds rounded before the cast: DuckDB's cast of a double rounds, Spark's truncates)
        cast(sum(stream_count) as integer) as stream_count,
        cast(sum(completed_streams) as integer) as completed_streams,
        cast(round(sum(total_duration_seconds)) as bigint) as total_duration_seconds

    from top_tracks
    group by stream_date, track_id, genre, country

)

select * from final
{{ in_day_order('stream_date') }}
