with

source as (

    select
        *,
        cast({{ minus_milliseconds('ended_at', 'ms_played') }} as date) as stream_date
    from {{ source('raw', 'spotify_history') }}
    where kind in ('podcast', 'audiobook')

),

ranked as (

    -- the same play in two export files has one play_key: the copy loaded first wins. The
    -- key holds the end time and ms_played, so its copies share stream_date; keyed by the day
    -- too, listening_history's filter on stream_date goes below this window.
    select
        *,
        row_number() over (
            partition by stream_date, play_key order by load_id, source_file, member, row_number
        ) as copy_number
    from source

),

renamed as (

    select
        -- keys
        play_key,
        kind,

        -- timing (UTC)
        ended_at,
        ms_played,
        {{ minus_milliseconds('ended_at', 'ms_played') }} as started_at,
        stream_date,

        -- what: a podcast episode, or an audiobook chapter
        coalesce(episode_uri, audiobook_chapter_uri, audiobook_uri) as item_uri,
        coalesce(show_name, audiobook_title) as show_name,
        coalesce(episode_name, audiobook_chapter_title) as episode_name,

        -- where, how
        platform,
        conn_country,
        reason_end,
        skipped,

        -- lineage
        source_file,
        load_id,
        loaded_at

    from ranked
    where copy_number = 1

)

select * from renamed
