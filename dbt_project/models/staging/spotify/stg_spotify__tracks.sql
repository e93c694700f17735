with

source as (

    select * from {{ source('raw', 'spotify_tracks') }}

),

renamed as (

    select
        -- keys
        track_id,

        -- track
        track_name,
        duration_ms,
        popularity,
        nullif(upper(replace(trim(isrc), '-', '')), '') as isrc,

        -- album, artists (the first one is the track's artist in the marts)
        album_id,
        album_name,
        album_release_date,
        artist_ids,
        {{ first_element('artist_ids') }} as artist_id,

        -- lineage
        fetched_at

    from source

)

select * from renamed
