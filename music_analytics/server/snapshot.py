"""Read-only snapshots of the exported marts, for the HTTP server's pipes and SQL.

The server never opens the pipeline's warehouse (and so never waits on its write lock): it
reads the Parquet exports. A snapshot copies every exported mart as it is into a DuckDB file
of its own, sorted by the date column (or `SORTED_BY`) so filters skip most of it, then reopens
that file read-only with file access limited to the exports folder and the configuration
locked. SQL run on it can read the marts and nothing else: no other file, no network, no
extension, no write, no setting. It transforms nothing: every sum it serves was made by dbt
(the top_tracks rollups are marts of their own); only the storage differs (`ENUM_COLUMNS`).
snapshot_source keeps the newest snapshot as the exports change.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import TypeVar

import duckdb

from music_analytics.lib.core.exports import DATA_FILE, exported_marts

T = TypeVar("T")

# Too large to copy (a row per stream): served as a view over its Parquet files, as they were
# when the snapshot was made: each is hard-linked into the snapshot's pin folder (under the
# exports, so on their filesystem), and a later export that replaces or adds a day's file
# changes nothing the snapshot reads. Every mart of one snapshot is one version.
VIEW_ONLY_MARTS = frozenset({"fct_streams"})
# ...and, narrowed to the columns the pipes read, copied sorted by time (`<mart>_by_time`): a
# window of times (a DateTime pipe parameter's partial day) then reads only the row groups of
# that window, not the day's file. The same rows, stored for one kind of filter, like the ENUMs.
TIME_SORTED_COPIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "fct_streams": (
        "stream_start_time",
        ("stream_start_time", "track_id", "genre", "country", "duration_seconds", "is_completed"),
    ),
}
# Rows per row group of the snapshot's tables (DuckDB's default is 122,880): a one-day or
# few-hour filter then reads a quarter as many rows, and a year's scan costs no more. On the
# bench's year, top_tracks queries took about 8 % less CPU with it (16,384 did as well).
ROW_GROUP_SIZE = 32_768
PINS_FOLDER = ".serve-pins"  # exports/.serve-pins/<snapshot>/<mart>/<day>/data.parquet
# Sorted by country first, so that a country filter skips the other countries' row groups.
SORTED_BY: dict[str, tuple[str, ...]] = {
    "top_tracks_by_country_day": ("country", "stream_date"),
    "top_tracks_by_country_month": ("country", "month"),
}
# Stored as an ENUM of the column's distinct values over these marts, in sorted order:
# grouping by it costs what grouping by an integer key does (the top_tracks rollups group a
# year of rows by track), ordering by it orders as the strings do, and it reads as a string.
# genre and country too, so that the top_tracks pipe can hold these tables as integer codes
# (server/top_tracks_arrays.py).
_TOP_TRACKS_TABLES = (
    "top_tracks_by_day",
    "top_tracks_by_month",
    "top_tracks_by_country_day",
    "top_tracks_by_country_month",
    "fct_streams_by_time",
)
ENUM_COLUMNS: dict[str, tuple[str, ...]] = {
    "track_id": _TOP_TRACKS_TABLES,
    "genre": _TOP_TRACKS_TABLES,
    "country": _TOP_TRACKS_TABLES,
}


@dataclass(frozen=True)
class MartInfo:
    name: str
    date_column: str
    first_day: date | None
    last_day: date | None
    rows: int
    day_rows: dict[date, int] = field(default_factory=dict)
    day_bytes: dict[date, int] = field(default_factory=dict)  # uncompressed Parquet bytes
    columns: tuple[str, ...] = ()

    def scanned(self, first: date, last: date) -> tuple[int, int]:
        """Rows and bytes of the days first..last: what a query over that range reads."""
        days, rows, sizes = self._running_totals
        lo, hi = bisect_left(days, first), bisect_right(days, last)
        if hi <= lo:
            return 0, 0
        return rows[hi] - rows[lo], sizes[hi] - sizes[lo]

    @cached_property
    def _running_totals(self) -> tuple[list[date], list[int], list[int]]:
        """The days in order, and the rows and bytes of the days before each (one more entry
        than days), so `scanned` costs two bisections per request whatever the history."""
        days = sorted(self.day_rows)
        rows, sizes = [0], [0]
        for day in days:
            rows.append(rows[-1] + self.day_rows[day])
            sizes.append(sizes[-1] + self.day_bytes.get(day, 0))
        return days, rows, sizes

    @property
    def total_bytes(self) -> int:
        return sum(self.day_bytes.values())


@dataclass
class MartSnapshot:
    """One consistent read-only view of the exports; `cursor()` is per thread."""

    conn: duckdb.DuckDBPyConnection | None
    marts: dict[str, MartInfo]
    version: tuple
    built_at: float
    path: Path | None = None
    filters: dict = field(default_factory=dict)
    pins: Path | None = None  # its pinned Parquet files (build_snapshot), removed after it
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _lookups: dict = field(default_factory=dict, repr=False)
    _prepared: dict = field(default_factory=dict, repr=False)
    _prepared_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _answers: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _answers_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    answers_kept: int = 1024  # answers remembered per snapshot (a new snapshot starts empty)
    answers_reused: int = 0
    answers_computed: int = 0

    def answer(self, key: Hashable, compute: Callable[[], T]) -> tuple[T, bool]:
        """`compute()`'s value, remembered for `key` while this snapshot serves (its data
        cannot change), least recently used first out; returns (value, was it remembered)."""
        with self._answers_lock:
            if key in self._answers:
                self._answers.move_to_end(key)
                self.answers_reused += 1
                return self._answers[key], True
        value = compute()
        with self._answers_lock:
            self.answers_computed += 1
            self._answers[key] = value
            if len(self._answers) > self.answers_kept:
                self._answers.popitem(last=False)
        return value, False

    def cursor(self) -> duckdb.DuckDBPyConnection:
        if self.conn is None:
            raise RuntimeError("no marts have been exported yet")
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._local.cursor = self.conn.cursor()
        return cursor

    def lookup(self, table: str, key: str, columns: tuple[str, ...]) -> dict:
        """{key: (columns)} over a small table, read once per snapshot; where a key has more
        than one row, the least (in column order) is kept."""
        found = self._lookups.get((table, key, columns))
        if found is None:
            found = {}
            rows = self.cursor().execute(
                f"select distinct {key}, {', '.join(columns)} from {table} order by all desc"
            )
            for row in rows.fetchall():
                found[row[0]] = row[1:]
            self._lookups[(table, key, columns)] = found
        return found

    def prepared(self, key: Hashable, build: Callable[[MartSnapshot], T]) -> T:
        """`build(self)`, made once per snapshot (SnapshotSource's `prepare` makes them before
        the snapshot serves, so no request waits for one)."""
        if key not in self._prepared:
            with self._prepared_lock:
                if key not in self._prepared:
                    self._prepared[key] = build(self)
        return self._prepared[key]

    def new_cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor of its own (for work that may be interrupted, such as user SQL)."""
        if self.conn is None:
            raise RuntimeError("no marts have been exported yet")
        return self.conn.cursor()


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _filters(conn: duckdb.DuckDBPyConnection, marts: dict[str, MartInfo]) -> dict:
    """What the dashboard's filters can offer, computed once per snapshot."""

    def distinct(table: str, column: str) -> list:
        if table not in marts:
            return []
        rows = conn.execute(
            f"select distinct {column} from {table} where {column} is not null order by 1"
        ).fetchall()
        return [r[0] for r in rows]

    def span(table: str) -> dict | None:
        info = marts.get(table)
        if info is None or info.first_day is None:
            return None
        return {"min": info.first_day.isoformat(), "max": info.last_day.isoformat()}

    return {
        "date_range": span("top_tracks_daily"),
        "genres": distinct("genre_trends_daily", "genre"),
        "countries": distinct("genre_trends_daily", "country"),
        "dsps": distinct("dsp_track_daily", "dsp"),
        "dsp_date_range": span("dsp_track_daily"),
        "has_listening_history": bool(marts.get("listening_history")),
        "listening_date_range": span("listening_history"),
    }


def _columns(build: duckdb.DuckDBPyConnection, source: str) -> tuple[str, ...]:
    return tuple(d[0] for d in build.execute(f"select * from {source} limit 0").description)


def _create_enums(build: duckdb.DuckDBPyConnection, sources: dict, columns: dict) -> dict:
    """One ENUM type per `ENUM_COLUMNS` column found; returns {(mart, column): type name}."""
    casts = {}
    for column, marts in ENUM_COLUMNS.items():
        having = [mart for mart in marts if column in columns.get(mart, ())]
        if not having:
            continue
        type_name = f"{column}_values"
        values = " union ".join(f"select {column} from {sources[mart]}" for mart in having)
        build.execute(
            f"create type {type_name} as enum "
            f"(select {column} from ({values}) where {column} is not null order by 1)"
        )
        casts.update({(mart, column): type_name for mart in having})
    return casts


def _time_copy_name(mart: str) -> str:
    return f"{mart}_by_time"


def _time_copies(columns: dict) -> dict[str, str]:
    """{mart: its copy's name} for the TIME_SORTED_COPIES whose mart has every column needed."""
    return {
        mart: _time_copy_name(mart)
        for mart, (_, needed) in TIME_SORTED_COPIES.items()
        if set(needed) <= set(columns.get(mart, ()))
    }


def _copy_by_time(build: duckdb.DuckDBPyConnection, mart: str, source: str, casts: dict) -> None:
    """The mart's TIME_SORTED_COPIES columns, sorted by its time column, as a table."""
    name = _time_copy_name(mart)
    time_column, needed = TIME_SORTED_COPIES[mart]
    select = ", ".join(
        f"cast({c} as {casts[(name, c)]}) as {c}" if (name, c) in casts else c for c in needed
    )
    build.execute(f"create table {name} as select {select} from {source} order by {time_column}")


def empty_filters() -> dict:
    """The dashboard's filters before any mart is exported."""
    return _filters(None, {})  # type: ignore[arg-type]


def pin_files(exports: Path, mart: str, pins: Path) -> Path:
    """Hard links to the mart's day files as they are now, under `pins` (copies where the
    filesystem has no hard links); the folder to read them from."""
    folder = pins / mart
    for day_file in sorted((exports / mart).glob(f"*=*/{DATA_FILE}")):
        target = folder / day_file.parent.name / DATA_FILE
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(day_file, target)
        except FileNotFoundError:  # an export removed the day just now: not in this version
            target.parent.rmdir()
        except OSError:
            shutil.copyfile(day_file, target)
    return folder


def build_snapshot(
    exports: Path,
    target: Path,
    *,
    memory_limit: str = "",
    version: tuple = (),
    pins: Path | None = None,
) -> MartSnapshot:
    """Copy the exported marts into `target` and open it read-only, locked to the exports.

    The view-only marts read their files pinned under `pins` (a folder inside the exports:
    `exports/.serve-pins/<name>`, which the caller removes once no request reads the
    snapshot), or, without `pins`, the exports' live files."""
    exports = Path(exports).resolve()
    marts = exported_marts(exports)
    infos: dict[str, MartInfo] = {}
    with duckdb.connect(":memory:") as build:
        build.execute(
            f"attach {_quoted(Path(target))} as snapshot (row_group_size {ROW_GROUP_SIZE})"
        )
        build.execute("use snapshot")
        build.execute("set enable_progress_bar = false")
        files = {mart: _quoted(exports / mart / "*" / "data.parquet") for mart in marts}
        for mart in marts.keys() & VIEW_ONLY_MARTS if pins is not None else ():
            files[mart] = _quoted(pin_files(exports, mart, pins) / "*" / DATA_FILE)
        sources = {mart: f"read_parquet({files[mart]}, hive_partitioning = true)" for mart in marts}
        columns = {mart: _columns(build, sources[mart]) for mart in marts}
        copies = _time_copies(columns)
        casts = _create_enums(
            build,
            {**sources, **{copies[m]: sources[m] for m in copies}},
            {**columns, **{copies[m]: TIME_SORTED_COPIES[m][1] for m in copies}},
        )
        for mart, date_column in marts.items():
            if mart in VIEW_ONLY_MARTS:
                build.execute(f"create view {mart} as select * from {sources[mart]}")
                if mart in copies:
                    _copy_by_time(build, mart, sources[mart], casts)
            else:
                stored = ", ".join(
                    f"cast({column} as {casts[(mart, column)]}) as {column}"
                    for column in columns[mart]
                    if (mart, column) in casts
                )
                select = f"* replace ({stored})" if stored else "*"
                order = ", ".join(SORTED_BY.get(mart, (date_column,)))
                build.execute(
                    f"create table {mart} as select {select} from {sources[mart]} order by {order}"
                )
            day_rows = dict(
                build.execute(f"select {date_column}, count(*) from {mart} group by 1").fetchall()
            )
            sizes = build.execute(
                "select file_name, sum(total_uncompressed_size) "
                f"from parquet_metadata({files[mart]}) group by 1"
            ).fetchall()
            day_bytes = {
                date.fromisoformat(Path(name).parent.name.split("=", 1)[1]): int(size)
                for name, size in sizes
            }
            infos[mart] = MartInfo(
                mart,
                date_column,
                min(day_rows, default=None),
                max(day_rows, default=None),
                sum(day_rows.values()),
                day_rows,
                day_bytes,
                columns[mart],
            )
        build.execute("checkpoint")
    conn = duckdb.connect(str(target), read_only=True)
    if memory_limit:
        conn.execute(f"set memory_limit = '{memory_limit}'")
    conn.execute("set enable_progress_bar = false")
    # Requests run side by side; one thread per query avoids oversubscribing the cores.
    conn.execute("set threads = 1")
    conn.execute(f"set temp_directory = {_quoted(target.parent / 'spill')}")
    conn.execute(f"set allowed_directories = [{_quoted(exports)} || '/']")
    conn.execute("set enable_external_access = false")
    conn.execute("set autoinstall_known_extensions = false")
    conn.execute("set autoload_known_extensions = false")
    conn.execute("set lock_configuration = true")
    snapshot = MartSnapshot(conn, infos, version, time.time(), path=Path(target))
    snapshot.filters = _filters(conn, infos)
    return snapshot
