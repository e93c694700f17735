with

source as (

    select * from {{ source('raw', 'spotify_artists') }}

),

renamed as (

    select
        -- keys
        artist_id,

        -- artist
        artist_name,
        genres,
        {{ first_element('genres') }} as first_genre,
        popularity,

        -- lineage
        fetched_at

    from source

)

select * from renamed
