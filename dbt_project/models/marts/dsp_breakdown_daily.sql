{{ config(unique_key='report_date', partition_by=spark_partition_by('report_date'), pre_hook="{{ empty_partition_window('report_date') }}") }}

with

breakdowns as (

    select * from {{ ref('stg_dsp__breakdowns') }}
    where {{ partition_window('report_date') }}

),

final as (

    select
        -- grain
        report_date,
        dsp,
        track_id,
        dimension,
        key,

        -- measure
        value

    from breakdowns

)

select * from final
{{ in_day_order('report_date') }}
