"""The summary `music-analytics demo` prints once the marts are built."""

from __future__ import annotations

import duckdb

from music_analytics.lib.core.mart_tables import open_marts
from music_analytics.lib.core.settings import Settings
from music_analytics.refresh import RefreshSummary

TOP_TRACKS_SQL = """
select track_id, min(artist_id) as artist_id, min(genre) as genre,
       sum(stream_count) as streams, sum(unique_listeners) as listener_days
from marts.top_tracks_daily
group by track_id order by streams desc, track_id limit 5
"""

GENRE_TRENDS_SQL = """
with last_day as (select max(stream_date) as d from marts.genre_trends_daily)
select genre, sum(stream_count) as streams, round(sum(streams_7d_avg), 1) as avg_7d,
       round(sum(stream_count) * 100.0 / sum(sum(stream_count)) over (), 1) as share_pct,
       round(avg(streams_wow_change) * 100, 1) as avg_wow_change_pct
from marts.genre_trends_daily, last_day
where stream_date = last_day.d
group by genre order by streams desc, genre limit 5
"""


DSP_TRACKS_SQL = """
select isrc, min(track_name) as track_name, sum(spotify_streams) as spotify,
       sum(youtube_streams) as youtube, sum(apple_music_streams) as apple_music,
       sum(total_streams) as total
from marts.track_performance_daily
group by isrc order by total desc, isrc limit 5
"""


LISTENING_SQL = """
select hour_of_day, sum(plays) as plays, round(sum(minutes_played), 0) as minutes,
       round(sum(skipped_plays) * 1.0 / nullif(sum(plays), 0), 2) as skip_rate,
       sum(sessions_started) as sessions
from marts.listening_history
group by hour_of_day order by plays desc, hour_of_day limit 5
"""


def _table(title: str, cursor: duckdb.DuckDBPyConnection) -> str:
    columns = [d[0] for d in cursor.description]
    rows = [[str(v) for v in row] for row in cursor.fetchall()]
    widths = [
        max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(columns)
    ]
    lines = [title, "  " + "  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  " + "  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def dashboard_token(settings: Settings) -> str:
    """The demo home's read-only token for the dashboard (created once, then reused)."""
    from music_analytics.server.api_tokens import create_token, load_tokens

    existing = {t.name: t for t in load_tokens(settings.api_tokens_file).tokens}
    if "dashboard" in existing:
        return existing["dashboard"].token
    return create_token(settings.api_tokens_file, "dashboard", ["PIPES:READ"]).token


def print_demo_summary(settings: Settings, summary: RefreshSummary, elapsed: float) -> None:
    """Top tracks, genre trends, load counts, where things are and how to open the UI."""
    with (
        duckdb.connect(str(settings.warehouse_path), read_only=True) as warehouse,
        open_marts(
            warehouse, engine=settings.engine, spark_warehouse=settings.spark_warehouse_dir
        ) as conn,
    ):
        days = conn.execute(
            "select min(stream_date), max(stream_date), count(distinct stream_date) "
            "from marts.top_tracks_daily"
        ).fetchone()
        print()
        print(_table("Top tracks over the whole period:", conn.execute(TOP_TRACKS_SQL)))
        print()
        print(_table(f"Genres on the last day ({days[1]}):", conn.execute(GENRE_TRENDS_SQL)))
        print()
        print(_table("Tracks across DSPs (DSP reports):", conn.execute(DSP_TRACKS_SQL)))
        print()
        print(_table("Your busiest listening hours (Spotify export):", conn.execute(LISTENING_SQL)))
    built = ", ".join(f"{a}..{b}" for a, b in summary.ranges_built)
    print(f"""
Rows loaded:       {summary.rows_loaded} from {summary.files_loaded} files
Rows quarantined:  {summary.rows_quarantined} (see raw.stream_events_quarantine)
DSP reports:       {summary.dsp_reports_loaded} loaded, {summary.dsp_records_loaded} records \
(archived under {settings.dsp_archive})
Spotify plays:     {summary.spotify_history_plays} plays, {summary.spotify_history_episodes} \
episodes, {summary.spotify_history_excluded} excluded, imported from the sample export
Marts built:       {len(summary.days_built)} days ({built}) in one dbt run
Warehouse:         {settings.warehouse_path}
BI database:       {settings.exports_dir / "bi.duckdb"} (views over the Parquet exports; \
open read-only with file_search_path = '{settings.exports_dir}')
Took:              {elapsed:.0f} s

Open the Dagster UI on this data:
  MUSIC_ANALYTICS_HOME={settings.home} make dev     # then http://127.0.0.1:3000

Open the dashboard and the HTTP API on this data:
  MUSIC_ANALYTICS_HOME={settings.home} make serve
  then http://127.0.0.1:8000/?token={dashboard_token(settings)}
  (API docs at http://127.0.0.1:8000/docs; the token is in {settings.api_tokens_file})
""")
