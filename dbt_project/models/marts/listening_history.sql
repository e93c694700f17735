{{ config(unique_key='stream_date', partition_by=spark_partition_by('stream_date'), pre_hook="{{ empty_partition_window('stream_date') }}") }}

with

-- every Spotify play with its session (int_spotify__plays_sessionized holds the rule)
plays as (

    select
        *,
        extract(hour from stream_start_time) as hour_of_day
    from {{ ref('int_spotify__plays_sessionized') }}
    where {{ partition_window('stream_date') }}

),

episodes as (

    select
        stream_date,
        extract(hour from started_at) as hour_of_day,
        kind,
        ms_played
    from {{ ref('stg_spotify__history_episodes') }}
    where {{ partition_window('stream_date') }}

),

music_hours as (

    select
        stream_date,
        hour_of_day,
        count(*) as plays,
        sum(duration_seconds) / 60.0 as minutes_played,
        count(distinct track_id) as distinct_tracks,
        count(distinct artist_id) as distinct_artists,
        count(case when is_completed then 1 end) as completed_plays,
        count(case when skipped then 1 end) as skipped_plays,
        count(skipped) as plays_with_skip_known,
        count(case when starts_session then 1 end) as sessions_started
    from plays
    group by stream_date, hour_of_day

),

-- the artist played most in the hour; ties go to the smallest artist_id
artist_ranked as (

    select
        stream_date,
        hour_of_day,
        artist_id,
        row_number() over (
            partition by stream_date, hour_of_day order by count(*) desc, artist_id
        ) as artist_rank
    from plays
    where artist_id is not null
    group by stream_date, hour_of_day, artist_id

),

episode_hours as (

    select
        stream_date,
        hour_of_day,
        cast(sum(case when kind = 'podcast' then ms_played end) as double) / 60000
            as podcast_minutes,
        cast(sum(case when kind = 'audiobook' then ms_played end) as double) / 60000
            as audiobook_minutes
    from episodes
    group by stream_date, hour_of_day

),

final as (

    select
        -- grain (UTC)
        coalesce(music_hours.stream_date, episode_hours.stream_date) as stream_date,
        cast(coalesce(music_hours.hour_of_day, episode_hours.hour_of_day) as integer)
            as hour_of_day,

        -- music
        coalesce(music_hours.plays, 0) as plays,
        coalesce(music_hours.minutes_played, 0) as minutes_played,
        coalesce(music_hours.distinct_tracks, 0) as distinct_tracks,
        coalesce(music_hours.distinct_artists, 0) as distinct_artists,
        coalesce(music_hours.completed_plays, 0) as completed_plays,
        coalesce(music_hours.skipped_plays, 0) as skipped_plays,
        cast(music_hours.skipped_plays as double)
            / nullif(music_hours.plays_with_skip_known, 0) as skip_rate,
        artist_ranked.artist_id as top_artist_id,
        coalesce(music_hours.sessions_started, 0) as sessions_started,

        -- spoken word, from the export only
        coalesce(episode_hours.podcast_minutes, 0) as podcast_minutes,
        coalesce(episode_hours.audiobook_minutes, 0) as audiobook_minutes

    from music_hours
    full outer join episode_hours
        on music_hours.stream_date = episode_hours.stream_date
        and music_hours.hour_of_day = episode_hours.hour_of_day
    left join artist_ranked
        on music_hours.stream_date = artist_ranked.stream_date
        and music_hours.hour_of_day = artist_ranked.hour_of_day
        and artist_ranked.artist_rank = 1

)

select * from final
{{ in_day_order('stream_date') }}
