"""Published pipes: one parameterised query per mart, as Tinybird publishes them.

A pipe declares its parameters (type, default, bounds) and builds its SQL from the parameters
that are present. Values are always bound as query parameters; only the *shape* of the SQL
(which filters exist) depends on the request, and that from a fixed set of strings.
`parse_params` validates a request's raw strings and raises `PipeParamError` naming the
parameter; `run_pipe` runs the query on a mart snapshot.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

from music_analytics.lib.dsp.catalog import DSP_KEYS
from music_analytics.server.pipe_rollups import month_split
from music_analytics.server.snapshot import MartSnapshot

ParamKind = Literal["date", "string", "integer", "enum"]
MAX_STRING = 200


class PipeParamError(ValueError):
    """A request parameter is wrong; the message names it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"parameter '{param}': {message}")
        self.param = param


class NoDataError(LookupError):
    """The pipe's mart has not been exported yet."""


@dataclass(frozen=True)
class Param:
    name: str
    kind: ParamKind
    description: str
    default: Any = None
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    pattern: str | None = None

    def parse(self, raw: str) -> Any:
        if self.kind == "date":
            try:
                if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", raw):
                    raise ValueError(raw)
                return date.fromisoformat(raw)
            except ValueError:
                raise PipeParamError(
                    self.name, f"expected a date YYYY-MM-DD, got {raw!r}"
                ) from None
        if self.kind == "integer":
            if not re.fullmatch(r"[+-]?[0-9]{1,12}", raw.strip()):
                raise PipeParamError(self.name, f"expected a whole number, got {raw[:40]!r}")
            value = int(raw)
            if self.minimum is not None and value < self.minimum:
                raise PipeParamError(self.name, f"must be at least {self.minimum}, got {value}")
            if self.maximum is not None and value > self.maximum:
                raise PipeParamError(self.name, f"must be at most {self.maximum}, got {value}")
            return value
        if self.kind == "enum":
            if raw not in self.choices:
                raise PipeParamError(
                    self.name, f"expected one of {', '.join(self.choices)}, got {raw[:40]!r}"
                )
            return raw
        if not raw or len(raw) > MAX_STRING:
            raise PipeParamError(self.name, f"expected 1 to {MAX_STRING} characters")
        if self.pattern and not re.fullmatch(self.pattern, raw):
            raise PipeParamError(self.name, f"{raw[:40]!r} does not match {self.pattern}")
        return raw


@dataclass(frozen=True)
class Query:
    sql: str
    params: list


@dataclass(frozen=True)
class Pipe:
    name: str
    mart: str
    description: str
    default_days: int  # start_date defaults to this many days ending on end_date
    extra_params: tuple[Param, ...]
    build: Callable[[dict], Query]
    default_limit: int = 10
    max_limit: int = 10_000
    ranked: bool = False  # the rows come ranked: run_pipe numbers them in a first column `rank`
    finish: Callable[[QueryResult, MartSnapshot], QueryResult] | None = None  # rows -> answer

    @property
    def params(self) -> tuple[Param, ...]:
        return (
            Param(
                "start_date",
                "date",
                f"First day (YYYY-MM-DD). Default: {self.default_days} days ending on end_date.",
            ),
            Param("end_date", "date", "Last day (YYYY-MM-DD). Default: the mart's latest day."),
            *self.extra_params,
            Param(
                "limit",
                "integer",
                "Most rows to return.",
                default=self.default_limit,
                minimum=1,
                maximum=self.max_limit,
            ),
        )


def _where(date_column: str, values: dict, filters: dict[str, str]) -> tuple[str, list]:
    """`where` over the date range and the filters present (values bound, never pasted)."""
    clauses, bound = [f"{date_column} between ? and ?"], [values["start_date"], values["end_date"]]
    for param, column in filters.items():
        if values.get(param) is not None:
            clauses.append(f"{column} = ?")
            bound.append(values[param])
    return " and ".join(clauses), bound


_GENRE = Param("genre", "string", "Only this genre (as in the marts, e.g. pop).")
_COUNTRY = Param(
    "country",
    "string",
    "Only listeners in this country (ISO 3166 alpha-2, e.g. US).",
    pattern=r"[A-Za-z]{2}",
)


MONTHS_FROM_DAYS = 62  # ranges this long or longer read whole months from the monthly rollup


def _top_tracks(v: dict) -> Query:
    """Whole months come from the monthly rollup, the days at either end from the daily one;
    with a country filter, from the rollups that keep the country (see pipe_rollups). Rows
    come back by track_key; `_top_tracks_rows` names them."""
    by = "by_country" if v.get("country") is not None else "by"
    filters = {"genre": "genre", "country": "country"}
    months, day_ranges = month_split(v["start_date"], v["end_date"])
    if (v["end_date"] - v["start_date"]).days < MONTHS_FROM_DAYS:
        # Each union branch has a fixed cost; up to two months of days cost less than three.
        months, day_ranges = None, [(v["start_date"], v["end_date"])]
    parts, bound = [], []
    columns = "track_key, stream_count, completed_streams, total_duration_seconds"
    for first, last in day_ranges:
        where, values = _where("stream_date", {**v, "start_date": first, "end_date": last}, filters)
        parts.append(f"select {columns} from top_tracks__{by}_day where {where}")
        bound += values
    if months is not None:
        where, values = _where(
            "month",
            {**v, "start_date": months[0], "end_date": months[1] - timedelta(days=1)},
            filters,
        )
        parts.append(f"select {columns} from top_tracks__{by}_month where {where}")
        bound += values
    source = f"({' union all '.join(parts)})"
    return Query(
        f"""
        select track_key, sum(stream_count) as stream_count,
               sum(completed_streams) as completed_streams,
               sum(total_duration_seconds) as total_duration_seconds,
               count(*) over () as __rows_before_limit
        from {source} group by track_key order by stream_count desc, track_key limit ?""",
        [*bound, v["limit"]],
    )


_TOP_TRACKS_COLUMNS = [
    ("track_id", "VARCHAR"),
    ("artist_id", "VARCHAR"),
    ("album_id", "VARCHAR"),
    ("genre", "VARCHAR"),
    ("stream_count", "BIGINT"),
    ("completed_streams", "BIGINT"),
    ("completion_rate", "DOUBLE"),
    ("total_duration_seconds", "BIGINT"),
]


def _top_tracks_rows(result: QueryResult, snapshot: MartSnapshot) -> QueryResult:
    tracks = snapshot.lookup("top_tracks__tracks")
    rows = []
    for key, streams, completed, seconds in result.rows:
        track_id, artist_id, album_id, genre = tracks[key]
        rate = round(completed / streams, 4) if streams else None
        rows.append(
            (track_id, artist_id, album_id, genre, int(streams), int(completed), rate, int(seconds))
        )
    return QueryResult(_TOP_TRACKS_COLUMNS, rows, result.rows_before_limit)


def _genre_trends(v: dict) -> Query:
    where, bound = _where("stream_date", v, {"country": "country"})
    genre = "where genre = ?" if v.get("genre") is not None else ""
    return Query(
        f"""
        with days as (
            select stream_date, genre, cast(sum(stream_count) as bigint) as stream_count
            from genre_trends_daily where {where} group by stream_date, genre
        ), shares as (
            select stream_date, genre, stream_count,
                   round(stream_count / sum(stream_count) over (partition by stream_date), 4)
                       as share_of_day_streams
            from days
        )
        select *, count(*) over () as __rows_before_limit from shares {genre}
        order by stream_date, genre limit ?""",
        [*bound, *([v["genre"]] if genre else []), v["limit"]],
    )


def _user_activity(v: dict) -> Query:
    where, bound = _where("stream_date", v, {"user_id": "user_id"})
    return Query(
        f"""
        select stream_date, count(*) as active_users,
               cast(sum(stream_count) as bigint) as stream_count,
               cast(sum(completed_streams) as bigint) as completed_streams,
               round(sum(completed_streams) / sum(stream_count), 4) as completion_rate,
               round(sum(total_listening_seconds) / 3600, 2) as listening_hours,
               round(sum(stream_count) / count(*), 2) as avg_streams_per_user,
               count(*) over () as __rows_before_limit
        from user_activity_daily where {where}
        group by stream_date order by stream_date limit ?""",
        [*bound, v["limit"]],
    )


def _dsp_top_tracks(v: dict) -> Query:
    """Streams per (dsp, track), from the per-country mart when a country is asked for; the
    ISRC and name come from dsp_track_daily over the same days, for the returned rows only."""
    table = "dsp_track_country_daily" if v.get("country") is not None else "dsp_track_daily"
    where, bound = _where("report_date", v, {"dsp": "dsp", "country": "country"})
    return Query(
        f"""
        with top as (
            select dsp, track_id, cast(sum(streams) as bigint) as streams,
                   count(*) over () as __rows_before_limit
            from {table} where {where}
            group by dsp, track_id order by streams desc nulls last, dsp, track_id limit ?
        ), names as (
            select dsp, track_id, min(isrc) as isrc, min(track_name) as track_name
            from dsp_track_daily where report_date between ? and ? group by dsp, track_id
        )
        select dsp, track_id, names.isrc, names.track_name, streams, __rows_before_limit
        from top left join names using (dsp, track_id)
        order by streams desc nulls last, dsp, track_id""",
        [*bound, v["limit"], v["start_date"], v["end_date"]],
    )


def _track_performance(v: dict) -> Query:
    if v.get("isrc") is not None:
        v = {**v, "isrc": v["isrc"].replace("-", "").upper()}
    where, bound = _where("report_date", v, {"isrc": "isrc"})
    return Query(
        f"""
        select isrc, min(track_name) as track_name,
               cast(sum(spotify_streams) as bigint) as spotify_streams,
               cast(sum(youtube_streams) as bigint) as youtube_streams,
               cast(sum(apple_music_streams) as bigint) as apple_music_streams,
               cast(sum(total_streams) as bigint) as total_streams, count(*) as days_reporting,
               count(*) over () as __rows_before_limit
        from track_performance_daily where {where}
        group by isrc order by sum(total_streams) desc nulls last, isrc limit ?""",
        [*bound, v["limit"]],
    )


def _listening_history(v: dict) -> Query:
    where, bound = _where("stream_date", v, {})
    if v["granularity"] == "hour":
        return Query(
            f"""
            select stream_date, hour_of_day, plays, round(minutes_played, 1) as minutes_played,
                   skipped_plays, round(skip_rate, 4) as skip_rate, sessions_started,
                   round(podcast_minutes, 1) as podcast_minutes,
                   round(audiobook_minutes, 1) as audiobook_minutes,
                   count(*) over () as __rows_before_limit
            from listening_history where {where}
            order by stream_date, hour_of_day limit ?""",
            [*bound, v["limit"]],
        )
    return Query(
        f"""
        select stream_date, cast(sum(plays) as bigint) as plays,
               round(sum(minutes_played), 1) as minutes_played,
               cast(sum(skipped_plays) as bigint) as skipped_plays,
               round(sum(skipped_plays) / nullif(sum(plays), 0), 4) as skip_rate,
               cast(sum(sessions_started) as bigint) as sessions_started,
               round(sum(podcast_minutes), 1) as podcast_minutes,
               round(sum(audiobook_minutes), 1) as audiobook_minutes,
               count(*) over () as __rows_before_limit
        from listening_history where {where}
        group by stream_date order by stream_date limit ?""",
        [*bound, v["limit"]],
    )


PIPES: dict[str, Pipe] = {
    pipe.name: pipe
    for pipe in (
        Pipe(
            "top_tracks",
            "top_tracks_daily",
            "The most streamed tracks over a date range, optionally for one genre or country.",
            7,
            (_GENRE, _COUNTRY),
            _top_tracks,
            max_limit=1000,
            ranked=True,
            finish=_top_tracks_rows,
        ),
        Pipe(
            "genre_trends",
            "genre_trends_daily",
            "Streams per genre per day, with the genre's share of the day's streams.",
            30,
            (_GENRE, _COUNTRY),
            _genre_trends,
            default_limit=1000,
        ),
        Pipe(
            "user_activity",
            "user_activity_daily",
            "Active users, streams and listening time per day (optionally for one user).",
            30,
            (Param("user_id", "string", "Only this user."),),
            _user_activity,
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
            _dsp_top_tracks,
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
            _track_performance,
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
            _listening_history,
            default_limit=1000,
        ),
    )
}

# Request parameters that belong to the server, not to a pipe.
RESERVED = frozenset({"token"})


def parse_params(pipe: Pipe, raw: Mapping[str, str], snapshot: MartSnapshot) -> dict:
    """Typed parameter values with defaults applied; dates default from the mart's data."""
    known = {p.name: p for p in pipe.params}
    for name in raw:
        if name not in known and name not in RESERVED:
            raise PipeParamError(name, f"unknown for pipe {pipe.name}; it takes {', '.join(known)}")
    values = {
        name: (param.parse(raw[name]) if name in raw else param.default)
        for name, param in known.items()
    }
    info = snapshot.marts.get(pipe.mart)
    if pipe.mart in snapshot.unusable:
        raise NoDataError(snapshot.unusable[pipe.mart])
    if info is None or info.last_day is None:
        raise NoDataError(
            f"mart {pipe.mart} has no exports yet: build the marts first "
            "(make demo, or music-analytics refresh)"
        )
    if values["end_date"] is None:
        values["end_date"] = info.last_day
    if values["start_date"] is None:
        values["start_date"] = values["end_date"] - timedelta(days=pipe.default_days - 1)
    if values["start_date"] > values["end_date"]:
        raise PipeParamError(
            "start_date",
            f"{values['start_date']} is after end_date {values['end_date']}",
        )
    return values


@dataclass(frozen=True)
class QueryResult:
    columns: list[tuple[str, str]]  # (name, DuckDB type)
    rows: list[tuple]
    rows_before_limit: int


def run_query(cursor, query: Query) -> QueryResult:
    """Run a pipe's query; its `__rows_before_limit` column becomes rows_before_limit."""
    cursor.execute(query.sql, query.params)
    names = [(d[0], str(d[1])) for d in cursor.description]
    rows = cursor.fetchall()
    if names and names[-1][0] == "__rows_before_limit":
        before = rows[0][-1] if rows else 0
        return QueryResult(names[:-1], [r[:-1] for r in rows], before)
    return QueryResult(names, rows, len(rows))


def run_pipe(pipe: Pipe, values: dict, snapshot: MartSnapshot) -> QueryResult:
    result = run_query(snapshot.cursor(), pipe.build(values))
    if pipe.finish is not None:
        result = pipe.finish(result, snapshot)
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
