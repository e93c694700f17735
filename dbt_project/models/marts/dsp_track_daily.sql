{{ config(unique_key='report_date', partition_by=spark_partition_by('report_date'), pre_hook="{{ empty_partition_window('report_date') }}") }}

with

track_records as (

    select * from {{ ref('stg_dsp__track_records') }}
    where {{ partition_window('report_date') }}

),

country_counts as (

    select report_date, dsp, track_id, count(*) as countries
    from {{ ref('stg_dsp__country_stats') }}
    where {{ partition_window('report_date') }}
    group by report_date, dsp, track_id

),

final as (

    select
        -- grain
        track_records.report_date,
        track_records.dsp,
        track_records.track_id,

        -- track
        track_records.isrc,
        track_records.track_name,
        track_records.album_id,
        track_records.album_name,
        track_records.dsp_track_ref,

        -- measures: NULL where the DSP does not report it or the record lacks it
        track_records.streams,
        track_records.listeners,
        track_records.skips,
        track_records.saves,
        track_records.shares,
        track_records.completion_rate,
        track_records.watch_time_minutes,
        track_records.shazams,

        -- coverage: rows in dsp_track_country_daily (0 when the record has no country_stats)
        coalesce(country_counts.countries, 0) as countries

    from track_records
    left join country_counts
        on track_records.report_date = country_counts.report_date
        and track_records.dsp = country_counts.dsp
        and track_records.track_id = country_counts.track_id

)

select * from final
{{ in_day_order('report_date') }}
