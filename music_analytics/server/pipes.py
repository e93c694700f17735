"""Published pipes: one parameterised query per mart, as Tinybird publishes them.

`PIPES` lists them; a pipe's parameters and result types live in pipe_specs, its SQL in
pipe_queries (top_tracks, over the dbt rollups, in top_tracks_pipe). `parse_params` validates a
request's raw strings and raises `PipeParamError` naming the parameter; `run_pipe` runs the
query on a mart snapshot.
"""

from __future__ import annotations

from music_analytics.lib.dsp.catalog import DSP_KEYS
from music_analytics.server import top_tracks_arrays
from music_analytics.server.pipe_queries import (
    dsp_top_tracks_query,
    genre_trends_query,
    listening_history_query,
    track_performance_query,
    user_activity_query,
)
from music_analytics.server.pipe_specs import (
    RESERVED,
    NoDataError,
    Param,
    Pipe,
    PipeParamError,
    Query,
    QueryResult,
    parse_params,
    result_columns,
)
from music_analytics.server.snapshot import MartSnapshot
from music_analytics.server.top_tracks_pipe import READS as TOP_TRACKS_READS
from music_analytics.server.top_tracks_pipe import READS_FOR_TIMES as TOP_TRACKS_TIME_READS
from music_analytics.server.top_tracks_pipe import top_tracks_query, top_tracks_rows

__all__ = [
    "PIPES",
    "RESERVED",
    "NoDataError",
    "Param",
    "Pipe",
    "PipeParamError",
    "Query",
    "QueryResult",
    "parse_params",
    "run_pipe",
    "run_query",
    "scanned",
]


_GENRE = Param("genre", "string", "Only this genre (as in the marts, e.g. pop).")
_COUNTRY = Param(
    "country",
    "string",
    "Only listeners in this country (ISO 3166 alpha-2, e.g. US).",
    pattern=r"[A-Za-z]{2}",
)


def _top_tracks_arrays(snapshot: MartSnapshot) -> top_tracks_arrays.TopTracksArrays | None:
    return snapshot.prepared("top_tracks", top_tracks_arrays.load)


def top_tracks_sums(values: dict, snapshot: MartSnapshot) -> QueryResult | None:
    """top_tracks' sums from the snapshot's arrays (None: run its SQL)."""
    return top_tracks_arrays.compute(values, _top_tracks_arrays(snapshot))


def prepare(snapshot: MartSnapshot) -> None:
    """What the pipes hold per snapshot, made before it serves (SnapshotSource's `prepare`)."""
    if snapshot.conn is not None:
        _top_tracks_arrays(snapshot)


PIPES: dict[str, Pipe] = {
    pipe.name: pipe
    for pipe in (
        Pipe(
            "top_tracks",
            "top_tracks_daily",
            "The most streamed tracks over a date range, optionally for one genre or country.",
            7,
            (_GENRE, _COUNTRY),
            top_tracks_query,
            max_limit=1000,
            ranked=True,
            finish=top_tracks_rows,
            compute=top_tracks_sums,
            reads=TOP_TRACKS_READS,
            reads_for_times=TOP_TRACKS_TIME_READS,
        ),
        Pipe(
            "genre_trends",
            "genre_trends_daily",
            "Streams per genre per day, with the genre's share of the day's streams.",
            30,
            (_GENRE, _COUNTRY),
            genre_trends_query,
            default_limit=1000,
        ),
        Pipe(
            "user_activity",
            "user_activity_daily",
            "Active users, streams and listening time per day (optionally for one user).",
            30,
            (Param("user_id", "string", "Only this user."),),
            user_activity_query,
            default_limit=1000,
        ),
        Pipe(
            "dsp_top_tracks",
            "dsp_track_daily",
            "The most streamed tracks in the DSP daily reports, per DSP.",
            7,
            (
                Param("dsp", "enum", "Only this DSP.", choices=DSP_KEYS),
                Param(
                    "country",
                    "string",
                    "Only streams from this country (ISO 3166 alpha-2).",
                    pattern=r"[A-Za-z]{2}",
                ),
            ),
            dsp_top_tracks_query,
            max_limit=1000,
            ranked=True,
        ),
        Pipe(
            "track_performance",
            "track_performance_daily",
            "Streams per ISRC across Spotify, YouTube and Apple Music, side by side.",
            7,
            (
                Param(
                    "isrc",
                    "string",
                    "Only this ISRC (hyphens and case are ignored).",
                    pattern=r"[A-Za-z0-9-]{12,15}",
                ),
            ),
            track_performance_query,
            max_limit=1000,
            ranked=True,
        ),
        Pipe(
            "listening_history",
            "listening_history",
            "The Spotify listener's own plays, minutes, skips and sessions per day or hour.",
            30,
            (
                Param(
                    "granularity",
                    "enum",
                    "One row per day, or per day and hour.",
                    default="day",
                    choices=("day", "hour"),
                ),
            ),
            listening_history_query,
            default_limit=1000,
        ),
    )
}


def run_query(cursor, query: Query) -> QueryResult:
    """Run a pipe's query; its `__rows_before_limit` column becomes rows_before_limit."""
    cursor.execute(query.sql, query.params)
    names = result_columns(cursor.description)
    rows = cursor.fetchall()
    if names and names[-1][0] == "__rows_before_limit":
        before = rows[0][-1] if rows else 0
        return QueryResult(names[:-1], [r[:-1] for r in rows], before)
    return QueryResult(names, rows, len(rows))


def run_pipe(pipe: Pipe, values: dict, snapshot: MartSnapshot) -> QueryResult:
    result = pipe.compute(values, snapshot) if pipe.compute is not None else None
    if result is None:
        result = run_query(snapshot.cursor(), pipe.build(values))
    if pipe.finish is not None:
        result = pipe.finish(result, snapshot, values)
    if not pipe.ranked:
        return result
    # Numbering here is cheaper than a row_number() window over every group in the query.
    return QueryResult(
        [("rank", "BIGINT"), *result.columns],
        [(i, *row) for i, row in enumerate(result.rows, start=1)],
        result.rows_before_limit,
    )


def scanned(pipe: Pipe, values: dict, snapshot: MartSnapshot) -> tuple[int, int]:
    """Rows and bytes of the mart days the pipe's query reads (for the response's statistics)."""
    mart = pipe.mart
    if pipe.name == "dsp_top_tracks" and values.get("country") is not None:
        mart = "dsp_track_country_daily"
    info = snapshot.marts.get(mart)
    return info.scanned(values["start_date"], values["end_date"]) if info else (0, 0)
