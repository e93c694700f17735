{#-
    One row per music play of the listener, from the live polls and the privacy export, with
    a play seen by both counted once (the export's row wins). Not filtered to the partition
    range: fct_streams filters it, and the listener's sessions need the whole history.
-#}
{%- set match_seconds = var('spotify_match_seconds', env_var('MUSIC_ANALYTICS_SPOTIFY_MATCH_SECONDS', '10')) | float -%}
{%- set completed_min_ratio = var('completed_min_ratio', env_var('MUSIC_ANALYTICS_COMPLETED_MIN_RATIO', '0.8')) | float -%}
{#- the Spotify account's user_id in the marts: a var, else the setting Dagster exports -#}
{%- set spotify_user = var('spotify_user', env_var('MUSIC_ANALYTICS_SPOTIFY_USER', 'me')) -%}

with

api_plays as (

    select * from {{ ref('stg_spotify__plays') }}

),

history as (

    select * from {{ ref('stg_spotify__history') }}

),

tracks as (

    select * from {{ ref('stg_spotify__tracks') }}

),

artists as (

    select * from {{ ref('stg_spotify__artists') }}

),

-- what is known of each track: the metadata cache first, else the latest polled play's item
polled_tracks as (

    select
        track_id,
        max_by(duration_ms, ended_at) as duration_ms,
        max_by(artist_id, ended_at) as artist_id,
        max_by(album_id, ended_at) as album_id
    from api_plays
    group by track_id

),

track_facts as (

    select
        coalesce(tracks.track_id, polled_tracks.track_id) as track_id,
        coalesce(tracks.duration_ms, polled_tracks.duration_ms) as duration_ms,
        coalesce(tracks.artist_id, polled_tracks.artist_id) as artist_id,
        coalesce(tracks.album_id, polled_tracks.album_id) as album_id
    from tracks
    full outer join polled_tracks on tracks.track_id = polled_tracks.track_id

),

-- account-data rows name the track but carry no URI: take the id of a known track with the
-- same track and first-artist names (case-insensitive; of several, the smallest id)
named_tracks as (

    select
        lower(track_name) as track_name_key,
        lower(artist_name) as artist_name_key,
        min(track_id) as track_id
    from (
        select track_name, artist_name, track_id from api_plays
        union all
        select tracks.track_name, artists.artist_name, tracks.track_id
        from tracks
        inner join artists on tracks.artist_id = artists.artist_id
    ) as named
    where track_name is not null and artist_name is not null
    group by lower(track_name), lower(artist_name)

),

history_resolved as (

    select
        history.play_key,
        history.ended_at,
        history.ended_at_precision_seconds,
        history.started_at,
        history.ms_played,
        history.conn_country,
        history.platform,
        history.reason_end,
        history.skipped,
        -- unresolvable names still get a stable id, so that the play is counted
        coalesce(
            history.track_id,
            named_tracks.track_id,
            'unresolved:' || md5(
                lower(coalesce(history.artist_name, '')) || '|'
                || lower(coalesce(history.track_name, ''))
            )
        ) as track_id
    from history
    left join named_tracks
        on history.track_id is null
        and lower(history.track_name) = named_tracks.track_name_key
        and lower(history.artist_name) = named_tracks.artist_name_key

),

-- a polled play and an export play of the same track whose ends are at most match_seconds
-- apart, plus the export row's precision (60 s for account data), may be the same play
candidates as (

    select
        api_plays.track_id,
        api_plays.ended_at as api_ended_at,
        history_resolved.play_key,
        abs({{ epoch_millis('history_resolved.ended_at') }} - {{ epoch_millis('api_plays.ended_at') }}) as distance_ms
    from api_plays
    inner join history_resolved
        on history_resolved.track_id = api_plays.track_id
        and abs({{ epoch_millis('history_resolved.ended_at') }} - {{ epoch_millis('api_plays.ended_at') }})
            <= ({{ match_seconds }} + history_resolved.ended_at_precision_seconds) * 1000

),

-- one to one: a pair is the same play when each is the other's nearest candidate
matches as (

    select track_id, api_ended_at, play_key
    from (
        select
            *,
            row_number() over (
                partition by track_id, api_ended_at order by distance_ms, play_key
            ) as api_rank,
            row_number() over (
                partition by play_key order by distance_ms, api_ended_at
            ) as history_rank
        from candidates
    ) as ranked
    where api_rank = 1 and history_rank = 1

),

history_plays as (

    select
        'spotify_history' as source,
        history_resolved.track_id,
        history_resolved.ended_at,
        history_resolved.started_at,
        track_facts.artist_id,
        track_facts.album_id,
        history_resolved.conn_country as country,
        history_resolved.platform as device_type,
        cast(history_resolved.ms_played as double) / 1000 as duration_seconds,
        cast(track_facts.duration_ms as double) / 1000 as track_duration_seconds,
        coalesce(history_resolved.reason_end = 'trackdone', false) as reached_track_end,
        history_resolved.skipped,
        history_resolved.play_key
    from history_resolved
    left join track_facts on history_resolved.track_id = track_facts.track_id

),

-- recently-played does not report how long a play lasted: it is taken as the whole track
api_only_plays as (

    select
        'spotify_api' as source,
        api_plays.track_id,
        api_plays.ended_at,
        {{ minus_milliseconds('api_plays.ended_at', 'coalesce(track_facts.duration_ms, 0)') }} as started_at,
        track_facts.artist_id,
        track_facts.album_id,
        cast(null as {{ dbt.type_string() }}) as country,
        cast(null as {{ dbt.type_string() }}) as device_type,
        cast(coalesce(track_facts.duration_ms, 0) as double) / 1000 as duration_seconds,
        cast(track_facts.duration_ms as double) / 1000 as track_duration_seconds,
        -- recently-played lists plays that finished
        true as reached_track_end,
        cast(null as boolean) as skipped,
        cast(null as {{ dbt.type_string() }}) as play_key
    from api_plays
    left join track_facts on api_plays.track_id = track_facts.track_id
    left join matches
        on api_plays.track_id = matches.track_id
        and api_plays.ended_at = matches.api_ended_at
    where matches.play_key is null

),

plays as (

    select
        *,
        cast(floor({{ epoch_millis('ended_at') }} / 1000) as bigint) as ended_second
    from (
        select * from history_plays
        union all
        select * from api_only_plays
    ) as all_plays

),

-- stream_id: the track and the second the play ended; the rare play ending in the same
-- second (or minute, for account data) as another of the same track gets a suffix
numbered as (

    select
        *,
        'spotify:' || track_id || ':' || cast(ended_second as {{ dbt.type_string() }}) as base_id,
        row_number() over (
            partition by track_id, ended_second
            order by source desc, ended_at, play_key, duration_seconds
        ) as same_second_number
    from plays

),

final as (

    select
        -- keys
        numbered.source,
        case
            when numbered.same_second_number = 1 then numbered.base_id
            else numbered.base_id || ':'
                || cast(numbered.same_second_number as {{ dbt.type_string() }})
        end as stream_id,

        -- timing (UTC)
        numbered.ended_at,
        numbered.started_at,
        cast(numbered.started_at as date) as stream_date,

        -- who, what
        '{{ spotify_user }}' as user_id,
        numbered.track_id,
        numbered.artist_id,
        numbered.album_id,
        coalesce(artists.first_genre, 'unknown') as genre,

        -- where, how
        numbered.country,
        numbered.device_type,

        -- measures
        numbered.duration_seconds,
        numbered.track_duration_seconds,
        case
            when numbered.track_duration_seconds > 0
                then numbered.duration_seconds
                    >= {{ completed_min_ratio }} * numbered.track_duration_seconds
            else numbered.reached_track_end
        end as is_completed,
        numbered.skipped,

        -- lineage
        numbered.play_key

    from numbered
    left join artists on numbered.artist_id = artists.artist_id

)

select * from final
