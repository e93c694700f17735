{#- delete+insert only replaces the days that still have rows: the pre-hook empties the whole
    partition range first, so a day whose reports were replaced by empty ones loses its rows. -#}
{{ config(
    unique_key='report_date',
    pre_hook="{% if is_incremental() %}delete from {{ this }} where {{ partition_window('report_date') }}{% endif %}",
) }}

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
