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
        genres[1] as first_genre,
        popularity,

        -- lineage
        fetched_at

    from source

)

select * from renamed
