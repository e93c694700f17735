"""The top_tracks pipe's sums from numpy arrays held per snapshot: top_tracks_query's answer
without a DuckDB query per request.

A request sums a few thousand rollup rows (or a few tens of thousands of stream rows for a
DateTime's partial days). As SQL that costs about 1 ms of planning and set-up on top of the
scan, and under load the server's CPU per request decides its latency. So, once per snapshot,
the four top_tracks rollups and `fct_streams_by_time` are read into arrays in their stored
order (by day, or by country then day, or by time), and a request is a few binary searches for
its slices, a mask for the genre and `np.bincount` per measure over the track codes (the
snapshot's `track_id` ENUM, whose order is track_id's, so ties break as in the SQL).

The SQL (top_tracks_pipe.top_tracks_query) stays the definition: `compute` returns None for
data the arrays cannot represent exactly (a NULL key or measure), and run_pipe then runs it;
a test holds the two equal over random windows and filters.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import duckdb
import numpy as np

from music_analytics.server.pipe_specs import QueryResult
from music_analytics.server.snapshot import MartSnapshot
from music_analytics.server.top_tracks_pipe import edges_and_whole_days, rollup_ranges

log = logging.getLogger(__name__)
_EPOCH_DAY = date(1970, 1, 1)
_EPOCH = datetime(1970, 1, 1)
_US = timedelta(microseconds=1)
_DAY_OFFSET = 1 << 31  # day numbers from 0001-01-01 on, made positive for the country keys
COLUMNS = [
    ("track_id", "VARCHAR"),
    ("stream_count", "HUGEINT"),
    ("completed_streams", "HUGEINT"),
    ("total_duration_seconds", "HUGEINT"),
]
ROLLUPS = {  # (table, its date column, whether it keeps the country)
    ("day", False): ("top_tracks_by_day", "stream_date"),
    ("month", False): ("top_tracks_by_month", "month"),
    ("day", True): ("top_tracks_by_country_day", "stream_date"),
    ("month", True): ("top_tracks_by_country_month", "month"),
}


def _day(d: date) -> int:
    return (d - _EPOCH_DAY).days


def _key(day: int, country: int | None) -> int:
    """A row's sort key: its day, or (country code, day) for the rollups sorted by country."""
    return day if country is None else (country << 32) + day + _DAY_OFFSET


@dataclass(frozen=True)
class _Rows:
    """One table's rows in stored order: the sort key, the codes and the three measures."""

    key: np.ndarray  # int64, ascending
    track: np.ndarray  # codes into TopTracksArrays.tracks
    genre: np.ndarray  # codes into TopTracksArrays.genres
    country: np.ndarray | None
    # streams, completed, seconds; streams None where each row is one stream
    measures: tuple[np.ndarray | None, np.ndarray, np.ndarray]

    def between(self, low: int, high: int) -> slice:
        """The rows whose key is in [low, high]."""
        return slice(
            int(np.searchsorted(self.key, low, "left")),
            int(np.searchsorted(self.key, high, "right")),
        )


@dataclass(frozen=True)
class TopTracksArrays:
    tracks: list[str]  # the track_id ENUM's values, in order
    genres: dict[str, int]
    countries: dict[str, int]
    rollups: dict[tuple[str, bool], _Rows]
    streams: _Rows | None  # fct_streams_by_time, keyed by its start time in microseconds


def _fetch(cursor, sql: str) -> dict[str, np.ndarray] | None:
    """The columns as plain arrays, or None when any holds a NULL."""
    columns = cursor.execute(sql).fetchnumpy()
    plain = {}
    for name, values in columns.items():
        if isinstance(values, np.ma.MaskedArray):
            if values.mask.any():
                return None
            values = values.data
        # Keys as int64; codes and measures as DuckDB typed them (uint8/16 codes, int32
        # seconds), so a year of streams takes about 170 MB, not 7 int64 columns' 560 MB.
        plain[name] = np.ascontiguousarray(values, dtype=np.int64 if name == "k" else None)
    return plain


def _sorted(rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The rows by their key (a table's stored order already is; this only makes sure)."""
    key = rows["k"]
    if key.size and not np.all(key[1:] >= key[:-1]):
        order = np.argsort(key, kind="stable")
        rows = {name: values[order] for name, values in rows.items()}
    return rows


def _enum_values(cursor, type_name: str) -> list[str]:
    return list(cursor.execute(f"select enum_range(null::{type_name})").fetchone()[0])


def load(snapshot: MartSnapshot) -> TopTracksArrays | None:
    """The arrays of `snapshot`, or None when its marts cannot be held so (no ENUM columns, a
    NULL anywhere): top_tracks then runs its SQL."""
    try:
        return _load(snapshot)
    except duckdb.Error as exc:  # unexpected, and not fatal: the SQL answers the same
        log.warning("top_tracks answers through SQL: cannot hold its marts as arrays: %s", exc)
        return None


def _load(snapshot: MartSnapshot) -> TopTracksArrays | None:
    cursor = snapshot.new_cursor()
    try:
        types = {
            name
            for (name,) in cursor.execute(
                "select type_name from duckdb_types() where logical_type = 'ENUM'"
            ).fetchall()
        }
        if not {"track_id_values", "genre_values", "country_values"} <= types:
            return None
        tracks = _enum_values(cursor, "track_id_values")
        genres = {g: i for i, g in enumerate(_enum_values(cursor, "genre_values"))}
        countries = {c: i for i, c in enumerate(_enum_values(cursor, "country_values"))}
        measures = "stream_count as s, completed_streams as c, total_duration_seconds as d"
        rollups = {}
        for (grain, by_country), (table, column) in ROLLUPS.items():
            if table not in snapshot.marts:
                return None
            day = f"({column} - date '1970-01-01')"
            key = (
                f"(enum_code(country)::bigint << 32) + {day} + {_DAY_OFFSET}" if by_country else day
            )
            rows = _fetch(
                cursor,
                f"select {key} as k, enum_code(track_id) as t, enum_code(genre) as g, "
                f"{'enum_code(country) as n, ' if by_country else ''}{measures} from {table}",
            )
            if rows is None:
                return None
            rows = _sorted(rows)
            rollups[(grain, by_country)] = _Rows(
                rows["k"],
                rows["t"],
                rows["g"],
                rows.get("n"),
                (rows["s"], rows["c"], rows["d"]),
            )
        streams = None
        if "fct_streams_by_time" in {t for (t,) in cursor.execute("show tables").fetchall()}:
            rows = _fetch(
                cursor,
                "select epoch_us(stream_start_time) as k, enum_code(track_id) as t, "
                "enum_code(genre) as g, enum_code(country) as n, "
                "is_completed::bigint as c, duration_seconds as d from fct_streams_by_time",
            )
            if rows is not None:
                rows = _sorted(rows)
                streams = _Rows(
                    rows["k"], rows["t"], rows["g"], rows["n"], (None, rows["c"], rows["d"])
                )
        return TopTracksArrays(tracks, genres, countries, rollups, streams)
    finally:
        cursor.close()


def _code(codes: dict[str, int], value: str | None) -> int | None:
    """The value's code; -1 (no row has it) for a value the marts never had."""
    return None if value is None else codes.get(value, -1)


def compute(v: dict, arrays: TopTracksArrays | None) -> QueryResult | None:
    """top_tracks_query's rows for the typed parameters `v`, or None to run the SQL instead."""
    if arrays is None:
        return None
    genre = _code(arrays.genres, v.get("genre"))
    country = _code(arrays.countries, v.get("country"))
    by_country = country is not None
    edges, first_day, last_day = edges_and_whole_days(v)
    if edges and arrays.streams is None:
        return None
    parts: list[tuple[_Rows, slice]] = []
    for start, end in edges:
        parts.append(
            (arrays.streams, arrays.streams.between((start - _EPOCH) // _US, (end - _EPOCH) // _US))
        )
    for grain, first, last in rollup_ranges(first_day, last_day):
        rows = arrays.rollups[(grain, by_country)]
        code = country if by_country else None
        parts.append((rows, rows.between(_key(_day(first), code), _key(_day(last), code))))
    size = len(arrays.tracks)
    groups = np.zeros(size, dtype=np.int64)
    sums = [np.zeros(size, dtype=np.int64) for _ in range(3)]
    for rows, span in parts:
        track = rows.track[span]
        keep = None
        if genre is not None:
            keep = rows.genre[span] == genre
        if by_country and rows is arrays.streams:  # the rollups' slice is the country's
            here = rows.country[span] == country
            keep = here if keep is None else keep & here
        if keep is not None:
            track = track[keep]
        rows_per_track = np.bincount(track, minlength=size)
        groups += rows_per_track
        for total, measure in zip(sums, rows.measures, strict=True):
            if measure is None:  # a row per stream
                total += rows_per_track
                continue
            values = measure[span] if keep is None else measure[span][keep]
            # float64 sums are exact below 2**53 (a year of seconds is about 2**32)
            total += np.bincount(track, weights=values, minlength=size).astype(np.int64)
    present = np.flatnonzero(groups)
    streams = sums[0][present]
    order = np.lexsort((present, -streams))[: v["limit"]]
    rows = [
        (
            arrays.tracks[present[i]],
            int(streams[i]),
            int(sums[1][present[i]]),
            int(sums[2][present[i]]),
        )
        for i in order
    ]
    return QueryResult(COLUMNS, rows, int(present.size))
