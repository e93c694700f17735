with

source as (

    select * from {{ source('raw', 'dsp_report_breakdowns') }}

),

-- only the breakdown rows of the record staging keeps for each track
kept_records as (

    select report_date, dsp, track_id, record_index
    from {{ ref('stg_dsp__track_records') }}

),

renamed as (

    select
        -- keys: dimension is section.name, e.g. demographics.age_groups; key '' = unknown
        source.report_date,
        source.dsp,
        source.track_id,
        source.dimension,
        source.key,
        source.record_index,

        -- measure: NULL when the report's value was not a number
        source.value,

        -- lineage
        source.load_id,
        source.loaded_at

    from source
    inner join kept_records
        on source.report_date = kept_records.report_date
        and source.dsp = kept_records.dsp
        and source.record_index = kept_records.record_index

)

select * from renamed
