{{ config(unique_key='report_date', partition_by=spark_partition_by('report_date'), pre_hook="{{ empty_partition_window('report_date') }}") }}

with

-- the isrc is what identifies one recording across DSPs: records without one cannot be
-- matched and are left out here (they stay in dsp_track_daily)
track_days as (

    select * from {{ ref('dsp_track_daily') }}
    where {{ partition_window('report_date') }}
        and isrc is not null

),

final as (

    select
        -- grain
        report_date,
        isrc,

        -- track: DSPs may spell the title differently; one of them, the first alphabetically
        min(track_name) as track_name,

        -- streams per DSP (youtube views, apple music plays), summed over the DSP's tracks
        -- with this isrc; NULL when the DSP has no row or its streams are unknown
        cast(sum(case when dsp = 'spotify' then streams end) as bigint) as spotify_streams,
        cast(sum(case when dsp = 'youtube' then streams end) as bigint) as youtube_streams,
        cast(sum(case when dsp = 'apple_music' then streams end) as bigint)
            as apple_music_streams,

        -- sum of the known streams; NULL only when every DSP's streams are unknown
        cast(sum(streams) as bigint) as total_streams,

        -- DSPs with a row for this isrc that day, whether or not their streams are known
        count(distinct dsp) as dsps_reporting

    from track_days
    group by report_date, isrc

)

select * from final
{{ in_day_order('report_date') }}
