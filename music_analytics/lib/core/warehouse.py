"""The raw layer of the warehouse: its tables and the one place that writes rows into them.

Ingestion never scatters SQL across assets: it calls these functions with an open DuckDB
connection (from the Dagster resource, a test, or the CLI), so moving the raw layer to another
engine means changing this module only.
"""

from __future__ import annotations

import duckdb

from music_analytics.lib.core.raw_layer_ledger import RAW_LAYER_LEDGER_DDL
from music_analytics.lib.core.rebuild_ledger import LEDGER_DDL

RAW_SCHEMA = "raw"

RAW_TABLES_DDL = (
    f"create schema if not exists {RAW_SCHEMA}",
    f"""
    create table if not exists {RAW_SCHEMA}.stream_events (
        stream_id varchar not null,
        user_id varchar not null,
        track_id varchar not null,
        artist_id varchar not null,
        album_id varchar not null,
        genre varchar not null,
        stream_start_time timestamp not null,   -- UTC
        stream_date date not null,              -- UTC day of stream_start_time
        stream_duration_seconds integer not null,
        completed integer not null,             -- 0 or 1
        device_type varchar not null,
        country varchar not null,
        -- lineage
        source_file varchar not null,
        line_number bigint not null,
        load_id varchar not null,
        loaded_at timestamp not null
    )
    """,
    f"""
    create table if not exists {RAW_SCHEMA}.stream_events_quarantine (
        source_file varchar not null,
        line_number bigint not null,
        line varchar not null,                  -- verbatim (too long, not UTF-8: its start)
        error_column varchar not null,
        error varchar not null,
        load_id varchar not null,
        loaded_at timestamp not null
    )
    """,
    f"""
    create table if not exists {RAW_SCHEMA}.event_file_loads (
        load_id varchar primary key,
        source_file varchar not null,
        content_sha256 varchar not null unique, -- of the decompressed bytes
        size_bytes bigint not null,
        mtime_ns bigint not null,
        lines bigint not null,
        rows_loaded bigint not null,
        rows_quarantined bigint not null,
        days_touched date[] not null,
        loaded_at timestamp not null
    )
    """,
    # Deletions and truncations through the Data Sources API or `delete-user`: one row per
    # operation, written in the transaction that removed the rows, so a job interrupted after
    # its commit is known to be done (server/jobs.py).
    f"""
    create table if not exists {RAW_SCHEMA}.datasource_operations (
        operation_id varchar primary key,       -- the job id (or delete-user's own id)
        kind varchar not null,                  -- delete_data | truncate | delete_user
        datasource varchar not null,
        condition varchar,                      -- the delete_condition as given
        rows_affected bigint not null,
        days_touched date[] not null,
        done_at timestamp not null
    )
    """,
    # DSP analytics reports: one load replaces a (dsp, report_date) partition in every table.
    f"""
    create table if not exists {RAW_SCHEMA}.dsp_report_loads (
        load_id varchar primary key,
        dsp varchar not null,                   -- spotify | youtube | apple_music
        report_date date not null,
        dsp_id integer not null,
        report_id bigint,                       -- the API's id; null for a ZIP dropped by hand
        source varchar not null,                -- api | landing
        archive_path varchar not null,
        content_sha256 varchar not null,        -- of the ZIP file
        generated_at varchar,                   -- meta.generated_at, verbatim
        total_records bigint not null,          -- meta.total_records (= records read)
        records_loaded bigint not null,
        records_quarantined bigint not null,
        country_rows bigint not null,
        breakdown_rows bigint not null,
        loaded_at timestamp not null
    )
    """,
    f"""
    create table if not exists {RAW_SCHEMA}.dsp_report_records (
        dsp varchar not null,
        report_date date not null,
        record_index integer not null,          -- position in the report's data array
        record_id bigint,                       -- record `id`
        track_id bigint not null,
        track_name varchar,
        album_id bigint,
        album_name varchar,
        isrc varchar,
        dsp_track_ref varchar,                  -- the DSP track id field (see lib/dsps.py)
        record json not null,                   -- the whole record, so nothing is lost
        load_id varchar not null,
        loaded_at timestamp not null
    )
    """,
    f"""
    create table if not exists {RAW_SCHEMA}.dsp_report_countries (
        dsp varchar not null,
        report_date date not null,
        record_index integer not null,
        track_id bigint not null,
        country varchar not null,               -- verbatim key of country_stats; '' = unknown
        stats json not null,                    -- that country's object, verbatim
        load_id varchar not null,
        loaded_at timestamp not null
    )
    """,
    f"""
    create table if not exists {RAW_SCHEMA}.dsp_report_breakdowns (
        dsp varchar not null,
        report_date date not null,
        record_index integer not null,
        track_id bigint not null,
        dimension varchar not null,             -- section.name, e.g. demographics.age_groups
        key varchar not null,                   -- verbatim; '' = unknown
        value double,                           -- null when the value was not a number
        load_id varchar not null,
        loaded_at timestamp not null
    )
    """,
    f"""
    create table if not exists {RAW_SCHEMA}.dsp_report_quarantine (
        dsp varchar not null,
        report_date date not null,
        record_index integer not null,
        record varchar not null,                -- the record as JSON
        error varchar not null,
        load_id varchar not null,
        loaded_at timestamp not null
    )
    """,
    # Spotify: plays polled from recently-played, the privacy export's history, metadata.
    f"""
    create table if not exists {RAW_SCHEMA}.spotify_polls (
        poll_id varchar primary key,            -- time-ordered
        polled_at timestamp not null,
        after_ms bigint,                        -- the cursor sent (null: first poll)
        cursor_after_ms bigint,                 -- the cursor to send next time
        plays_returned integer not null,
        plays_new integer not null,
        full_page boolean not null              -- 50 plays all newer than the cursor: likely gap
    )
    """,
    f"""
    create table if not exists {RAW_SCHEMA}.spotify_plays (
        played_at timestamp not null,           -- UTC, as recently-played reports it
        track_id varchar not null,
        track_name varchar,
        duration_ms bigint,
        artist_ids varchar[],
        artist_names varchar[],
        album_id varchar,
        album_name varchar,
        album_release_date varchar,
        isrc varchar,
        context_type varchar,
        context_uri varchar,
        item json not null,                     -- the API's item, verbatim
        poll_id varchar not null,
        loaded_at timestamp not null,
        primary key (played_at, track_id)       -- each play once, whatever the polls overlap
    )
    """,
    f"""
    create table if not exists {RAW_SCHEMA}.spotify_history (
        ended_at timestamp not null,            -- UTC end of the play (`ts` / `endTime`)
        ended_at_precision_seconds integer not null,  -- 1, or 60 for account-data files
        ms_played bigint not null,
        kind varchar not null,                  -- music | podcast | audiobook | video | unknown
        track_uri varchar,
        track_id varchar,
        track_name varchar,
        artist_name varchar,
        album_name varchar,
        episode_name varchar,
        show_name varchar,
        episode_uri varchar,
        audiobook_title varchar,
        audiobook_uri varchar,
        audiobook_chapter_uri varchar,
        audiobook_chapter_title varchar,
        platform varchar,
        conn_country varchar,
        reason_start varchar,
        reason_end varchar,
        shuffle boolean,
        skipped boolean,
        offline boolean,
        offline_timestamp timestamp,
        incognito_mode boolean,
        shape varchar not null,                 -- extended | endsong | account_data
        play_key varchar not null,              -- the same play in two files has one key
        source_file varchar not null,
        member varchar,                         -- the file inside a ZIP
        row_number bigint not null,
        load_id varchar not null,
        loaded_at timestamp not null
    )
    """,
    f"""
    create table if not exists {RAW_SCHEMA}.spotify_history_quarantine (
        source_file varchar not null,
        member varchar,
        row_number bigint not null,
        row_json varchar not null,
        error varchar not null,
        load_id varchar not null,
        loaded_at timestamp not null
    )
    """,
    f"""
    create table if not exists {RAW_SCHEMA}.spotify_history_files (
        load_id varchar primary key,
        source_file varchar not null,
        member varchar,
        content_sha256 varchar not null unique, -- of the member's bytes: a re-import adds nothing
        shape varchar not null,
        plays_loaded bigint not null,
        plays_already_loaded bigint not null,
        rows_quarantined bigint not null,
        loaded_at timestamp not null
    )
    """,
    f"""
    create table if not exists {RAW_SCHEMA}.spotify_tracks (
        track_id varchar primary key,
        track_name varchar,
        duration_ms bigint,
        popularity integer,
        album_id varchar,
        album_name varchar,
        album_release_date varchar,
        isrc varchar,
        artist_ids varchar[],
        item json not null,
        fetched_at timestamp not null
    )
    """,
    f"""
    create table if not exists {RAW_SCHEMA}.spotify_artists (
        artist_id varchar primary key,
        artist_name varchar,
        genres varchar[],
        popularity integer,
        item json not null,
        fetched_at timestamp not null
    )
    """,
    f"""
    create table if not exists {RAW_SCHEMA}.spotify_audio_features (
        track_id varchar primary key,
        available boolean not null,             -- false: the API refused (403 for new apps)
        features json,
        fetched_at timestamp not null
    )
    """,
)


def ensure_raw_tables(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the raw schema, tables and rebuild ledger when missing; safe on every run."""
    for statement in (*RAW_TABLES_DDL, *LEDGER_DDL, *RAW_LAYER_LEDGER_DDL):
        conn.execute(statement)


def table_row_count(conn: duckdb.DuckDBPyConnection, table: str) -> int:
    """Rows in a fully qualified table (used for materialization metadata)."""
    return conn.execute(f"select count(*) from {table}").fetchone()[0]
