{{ config(unique_key='stream_date', partition_by=spark_partition_by('stream_date'), pre_hook="{{ empty_partition_window('stream_date') }}") }}

{#-
    top_tracks_daily summed over countries: all a top_tracks request without a country filter
    reads for the days of its range that are not whole months (see top_tracks_by_month).
    Tracks stay keyed by track_id here: the server's snapshot stores this column as an ENUM of
    the exported track ids in track_id order, which groups as fast as an integer key and breaks
    ties as track_id does. A dense integer key made in dbt would not be stable: a new track
    sorting before old ones would renumber the days already built.
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

        -- measures: integers, so that sums over a range are exact and cheap to add up
        -- (seconds rounded before the cast: DuckDB's cast of a double rounds, Spark's truncates)
        cast(sum(stream_count) as integer) as stream_count,
        cast(sum(completed_streams) as integer) as completed_streams,
        cast(round(sum(total_duration_seconds)) as bigint) as total_duration_seconds

    from top_tracks
    group by stream_date, track_id, genre

)

select * from final
{{ in_day_order('stream_date') }}
