with

source as (

    select * from {{ source('raw', 'spotify_plays') }}

),

renamed as (

    select
        -- keys: raw already holds each (played_at, track_id) once
        track_id,
        played_at as ended_at,

        -- track as the API described it at play time
        track_name,
        duration_ms,
        artist_ids,
        {{ first_element('artist_ids') }} as artist_id,
        {{ first_element('artist_names') }} as artist_name,
        album_id,
        album_name,

        -- context
        context_type,
        context_uri,

        -- lineage
        poll_id,
        loaded_at

    from source

)

select * from renamed
