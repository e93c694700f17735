{#- delete+insert only replaces the days that still have rows: the pre-hook empties the whole
    partition range first, so a day whose reports were replaced by empty ones loses its rows. -#}
{{ config(
    unique_key='report_date',
    pre_hook="{% if is_incremental() %}delete from {{ this }} where {{ partition_window('report_date') }}{% endif %}",
) }}

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
