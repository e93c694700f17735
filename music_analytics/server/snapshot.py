"""Read-only snapshots of the exported marts, for the HTTP server's pipes and SQL.

The server never opens the pipeline's warehouse (and so never waits on its write lock): it
reads the Parquet exports. A snapshot copies every exported mart into a DuckDB file of its
own, sorted by the date column so date filters skip most of it, then reopens that file
read-only with file access limited to the exports folder and the configuration locked. SQL
run on it can read the marts and nothing else: no other file, no network, no extension, no
write, no setting.

`SnapshotSource.current()` hands out the newest snapshot. When `exports/bi.duckdb` changes
(every export run rewrites it), the next call starts building a new snapshot on a background
thread and keeps serving the old one until the new one is ready; requests never wait on a
rebuild after the first.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TypeVar

import duckdb

from music_analytics.lib.core.exports import BI_DATABASE, exported_marts
from music_analytics.server.pipe_rollups import ROLLUPS

log = logging.getLogger(__name__)
T = TypeVar("T")

# Too large to copy (a row per stream): served as a view over its Parquet files.
VIEW_ONLY_MARTS = frozenset({"fct_streams"})


@dataclass(frozen=True)
class MartInfo:
    name: str
    date_column: str
    first_day: date | None
    last_day: date | None
    rows: int
    day_rows: dict[date, int] = field(default_factory=dict)
    day_bytes: dict[date, int] = field(default_factory=dict)  # uncompressed Parquet bytes

    def scanned(self, first: date, last: date) -> tuple[int, int]:
        """Rows and bytes of the days first..last: what a query over that range reads."""
        days = [d for d in self.day_rows if first <= d <= last]
        return sum(self.day_rows[d] for d in days), sum(self.day_bytes.get(d, 0) for d in days)

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
    unusable: dict[str, str] = field(default_factory=dict)  # mart -> why its pipes cannot run
    filters: dict = field(default_factory=dict)
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _lookups: dict = field(default_factory=dict, repr=False)
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

    def lookup(self, table: str) -> dict:
        """A small table as {first column: (the other columns)}, read once per snapshot."""
        found = self._lookups.get(table)
        if found is None:
            rows = self.cursor().execute(f"select * from {table}").fetchall()
            found = self._lookups[table] = {row[0]: row[1:] for row in rows}
        return found

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


def build_snapshot(
    exports: Path, target: Path, *, memory_limit: str = "", version: tuple = ()
) -> MartSnapshot:
    """Copy the exported marts into `target` and open it read-only, locked to the exports."""
    exports = Path(exports).resolve()
    marts = exported_marts(exports)
    infos: dict[str, MartInfo] = {}
    with duckdb.connect(str(target)) as build:
        build.execute("set enable_progress_bar = false")
        for mart, date_column in marts.items():
            files = _quoted(exports / mart / "*" / "data.parquet")
            source = f"read_parquet({files}, hive_partitioning = true)"
            if mart in VIEW_ONLY_MARTS:
                build.execute(f"create view {mart} as select * from {source}")
            else:
                build.execute(
                    f"create table {mart} as select * from {source} order by {date_column}"
                )
            day_rows = dict(
                build.execute(f"select {date_column}, count(*) from {mart} group by 1").fetchall()
            )
            sizes = build.execute(
                f"select file_name, sum(total_uncompressed_size) from parquet_metadata({files}) "
                "group by 1"
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
            )
        unusable = {}
        for mart, statements in ROLLUPS.items():
            if mart in infos and mart not in VIEW_ONLY_MARTS:
                try:
                    for statement in statements:
                        build.execute(statement)
                except duckdb.Error as exc:  # the mart's columns changed: say so, serve the rest
                    log.warning("no rollups for %s: %s", mart, exc)
                    unusable[mart] = (
                        f"the exports of {mart} do not have the expected columns: {exc}"
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
    snapshot = MartSnapshot(conn, infos, version, time.time(), path=Path(target), unusable=unusable)
    snapshot.filters = _filters(conn, infos)
    return snapshot


class SnapshotSource:
    """Keeps the newest snapshot of `exports`, rebuilt in the background when it changes."""

    def __init__(
        self, exports: Path, *, memory_limit: str = "", check_interval: float = 1.0
    ) -> None:
        self.exports = Path(exports)
        self.memory_limit = memory_limit
        self.check_interval = check_interval
        self._work = Path(tempfile.mkdtemp(prefix="music-analytics-serve-"))
        self._lock = threading.Lock()
        self._snapshot: MartSnapshot | None = None
        self._building: tuple | None = None
        self._failed: tuple | None = (
            None  # exports whose rebuild failed: not retried until they change
        )
        self._checked_at = 0.0
        self._count = 0
        self.last_error: str | None = None

    def _version(self) -> tuple:
        try:
            stat = (self.exports / BI_DATABASE).stat()
        except FileNotFoundError:
            return ()
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def _build(self, version: tuple) -> MartSnapshot:
        self._count += 1
        target = self._work / f"snapshot-{self._count}.duckdb"
        for attempt in (1, 2):
            try:
                return build_snapshot(
                    self.exports, target, memory_limit=self.memory_limit, version=version
                )
            except (duckdb.IOException, duckdb.InvalidInputException) as exc:
                # An export run removed a day between the listing and the read: try again.
                target.unlink(missing_ok=True)
                if attempt == 2:
                    raise
                log.info("rebuilding the mart snapshot once more: %s", exc)
        raise AssertionError("unreachable")

    def _swap(self, snapshot: MartSnapshot) -> None:
        with self._lock:
            old, self._snapshot = self._snapshot, snapshot
            self._building = None
        if old is not None and old.path is not None:
            # Requests still on the old snapshot keep its inode; its disk is freed when they end.
            old.path.unlink(missing_ok=True)

    def _rebuild_in_background(self, version: tuple) -> None:
        def work() -> None:
            try:
                self._swap(self._build(version))
                self.last_error = None
            except Exception as exc:  # keep serving the old snapshot; say why
                log.exception("cannot rebuild the mart snapshot")
                self.last_error = f"cannot rebuild the mart snapshot: {exc}"
                with self._lock:
                    self._building, self._failed = None, version

        threading.Thread(target=work, name="mart-snapshot", daemon=True).start()

    def current(self) -> MartSnapshot:
        """The newest snapshot; the first call builds one, later ones never wait."""
        now = time.monotonic()
        with self._lock:
            snapshot = self._snapshot
            due = now - self._checked_at >= self.check_interval
            if snapshot is not None and not due:
                return snapshot
            self._checked_at = now
        version = self._version()
        if snapshot is None:
            with self._lock:
                if self._snapshot is None:
                    self._snapshot = self._empty(version) if not version else self._build(version)
                return self._snapshot
        if version != snapshot.version and version != self._failed:
            with self._lock:
                start = self._building != version
                if start:
                    self._building = version
            if start:
                self._rebuild_in_background(version)
        return snapshot

    def _empty(self, version: tuple) -> MartSnapshot:
        return MartSnapshot(None, {}, version, time.time(), filters=_filters(None, {}))  # type: ignore[arg-type]

    def wait_until_current(self, timeout: float = 30.0) -> MartSnapshot:
        """Block until the snapshot matches the exports (tests and benchmarks use this)."""
        deadline = time.monotonic() + timeout
        while True:
            self._checked_at = 0.0
            snapshot = self.current()
            if snapshot.version == self._version() and self._building is None:
                return snapshot
            if time.monotonic() > deadline:
                raise TimeoutError(f"the mart snapshot did not catch up: {self.last_error}")
            time.sleep(0.05)

    def close(self) -> None:
        with self._lock:
            snapshot, self._snapshot = self._snapshot, None
        if snapshot is not None and snapshot.conn is not None:
            snapshot.conn.close()
        shutil.rmtree(self._work, ignore_errors=True)
