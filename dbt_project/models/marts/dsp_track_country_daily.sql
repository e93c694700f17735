{{ config(unique_key='report_date', partition_by=spark_partition_by('report_date'), pre_hook="{{ empty_partition_window('report_date') }}") }}

with

country_stats as (

    select * from {{ ref('stg_dsp__country_stats') }}
    where {{ partition_window('report_date') }}

),

final as (

    select
        -- grain
        report_date,
        dsp,
        track_id,
        country,

        -- measures: NULL where the DSP does not report it or the country's entry lacks it
        streams,
        completion_rate,
        listeners

    from country_stats

)

select * from final
{{ in_day_order('report_date') }}
