with

source as (

    select * from {{ source('raw', 'dsp_report_countries') }}

),

-- only the country rows of the record staging keeps for each track
kept_records as (

    select report_date, dsp, track_id, record_index
    from {{ ref('stg_dsp__track_records') }}

),

-- Missing fields and values that are not numbers give NULL (unknown), never 0.
renamed as (

    select
        -- keys
        source.report_date,
        source.dsp,
        source.track_id,
        source.country,
        source.record_index,

        -- measures: spotify streams, youtube views, apple music plays
        case source.dsp
            when 'spotify' then {{ json_count('source.stats', '$.streams_count') }}
            when 'youtube' then {{ json_count('source.stats', '$.views') }}
            when 'apple_music' then {{ json_count('source.stats', '$.plays') }}
        end as streams,
        -- percent 0..100; youtube's closest measure is the average share of the video watched
        case source.dsp
            when 'spotify' then {{ json_number('source.stats', '$.completion_rate') }}
            when 'youtube' then {{ json_number('source.stats', '$.avg_view_percentage') }}
        end as completion_rate,
        case source.dsp
            when 'apple_music' then {{ json_count('source.stats', '$.listeners') }}
        end as listeners,

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
