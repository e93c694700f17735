with

source as (

    select * from {{ source('raw', 'spotify_history') }}
    where kind = 'music'

),

ranked as (

    -- the same play in two export files has one play_key: the copy loaded first wins
    select
        *,
        row_number() over (
            partition by play_key order by load_id, source_file, member, row_number
        ) as copy_number
    from source

),

renamed as (

    select
        -- keys
        play_key,
        track_id,

        -- timing (UTC)
        ended_at,
        ended_at_precision_seconds,
        ms_played,
        {{ minus_milliseconds('ended_at', 'ms_played') }} as started_at,

        -- track as the export names it
        track_name,
        artist_name,
        album_name,

        -- where, how
        platform,
        conn_country,
        reason_start,
        reason_end,
        shuffle,
        skipped,
        offline,
        incognito_mode,

        -- lineage
        shape,
        source_file,
        member,
        row_number,
        load_id,
        loaded_at

    from ranked
    where copy_number = 1

)

select * from renamed
