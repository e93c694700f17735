with

source as (

    select * from {{ source('raw', 'dsp_report_records') }}

),

ranked as (

    -- a report lists a track once; when it lists it again, the last record (highest
    -- record_index) wins, as a later entry of the same file is taken to correct an earlier one
    select
        *,
        row_number() over (
            partition by report_date, dsp, track_id order by record_index desc
        ) as copy_rank
    from source

),

-- Each DSP names its measures differently (see shared/specs/dsp-report-formats.md). A missing
-- or null section or field, or a value that is not a number, gives NULL (unknown), never 0.
-- Numbers may arrive as ints, floats or numeric strings; counts are rounded to whole numbers.
renamed as (

    select
        -- keys
        report_date,
        dsp,
        track_id,
        record_index,
        record_id,

        -- track: isrc in its canonical form (12 characters, upper case, no hyphens)
        nullif(upper(replace(trim(isrc), '-', '')), '') as isrc,
        track_name,
        album_id,
        album_name,
        dsp_track_ref,

        -- plays: spotify streams, youtube views, apple music plays
        case dsp
            when 'spotify' then {{ json_count('record', '$.aggregated_data.total_streams') }}
            when 'youtube' then {{ json_count('record', '$.aggregated_data.total_views') }}
            when 'apple_music' then {{ json_count('record', '$.aggregated_data.total_plays') }}
        end as streams,
        case dsp
            when 'apple_music' then {{ json_count('record', '$.aggregated_data.total_listeners') }}
        end as listeners,

        -- engagement
        case dsp
            when 'spotify' then {{ json_count('record', '$.aggregated_data.total_skips') }}
        end as skips,
        case dsp
            when 'spotify' then {{ json_count('record', '$.aggregated_data.total_saves') }}
        end as saves,
        case dsp
            when 'spotify' then {{ json_count('record', '$.aggregated_data.total_shares') }}
            when 'youtube' then {{ json_count('record', '$.aggregated_data.shares') }}
        end as shares,
        -- percent 0..100; youtube's closest measure is the average share of the video watched
        case dsp
            when 'spotify' then {{ json_number('record', '$.engagement_stats.completion_rate') }}
            when 'youtube' then {{ json_number('record', '$.playback_stats.avg_view_percentage') }}
        end as completion_rate,
        case dsp
            when 'youtube' then {{ json_number('record', '$.aggregated_data.total_watch_time_minutes') }}
        end as watch_time_minutes,
        case dsp
            when 'apple_music' then {{ json_count('record', '$.shazam_stats.total_shazams') }}
        end as shazams,

        -- lineage
        load_id,
        loaded_at

    from ranked
    where copy_rank = 1

)

select * from renamed
