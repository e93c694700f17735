"""The raw Parquet layer: every raw table dbt reads, mirrored as Hive-partitioned Parquet that
Spark (and DuckDB) read, `<root>/<table>/date=YYYY-MM-DD/<file_key>.parquet` (RAW_LAYER.md).

The DuckDB raw tables stay the one source of truth (transactions, the rebuild ledger); the
layer is derived from them by `sync_raw_layer`, which runs before every dbt build and from
`music-analytics raw-layer sync`. It reconciles by (table, day, file key, row count): for each
day the queue (raw.raw_layer_pending, filled by every raw transaction) names, and for the small
tables always, it compares `count(*)` per file key with the files ledger (raw.raw_layer_files)
and writes missing files, rewrites those whose rows changed (a user deleted, a truncate, a
delete by condition), removes files of loads that no longer have rows (a DSP report replaced
for its (dsp, report_date)) and anything else in that day's folder (a temporary file of a
killed sync, a stray file). Raw rows are only ever inserted or deleted, never updated, so a
file with the right row count has the right rows. The queue is cleared only after its days
are right, so a sync killed anywhere is finished by the next one; a first sync of a root (or
`--all`) compares every day and lists the whole layer.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING
from urllib.parse import quote

import duckdb

from music_analytics.lib.core.crash_points import crash_point
from music_analytics.lib.core.raw_layer_ledger import (
    clear_layer_changes,
    files_written,
    forget_layer,
    is_synced_root,
    note_files,
    note_synced_root,
    read_layer_changes,
)
from music_analytics.lib.core.raw_layer_names import TEMP_PREFIX, URI_SETTING, RawLayerError
from music_analytics.lib.core.raw_writer import utc_now
from music_analytics.lib.core.rebuild_ledger import SOURCE_TABLE_DAYS
from music_analytics.lib.core.settings import Settings
from music_analytics.lib.core.warehouse import RAW_SCHEMA, ensure_raw_tables
from music_analytics.lib.core.warehouse_file import connect_warehouse

if TYPE_CHECKING:
    from music_analytics.lib.core.raw_layer_store import LayerStore

MARKER = "_raw_layer.json"  # at the root: when the whole layer was last synced
_FETCH_KEY = "'fetched-' || strftime(fetched_at, '%Y%m%dT%H%M%S%f')"


@dataclass(frozen=True)
class LayerTable:
    """A raw table in the layer: its partition day and file key as SQL on its rows, and the
    ledger source whose queued days say which of its days changed (None: a small table,
    compared in full at every sync, since some of its changes queue no day)."""

    name: str
    day_sql: str
    key_sql: str
    source: str | None


_DAY = {table: day for tables in SOURCE_TABLE_DAYS.values() for table, day in tables.items()}
RAW_LAYER_TABLES = (
    LayerTable("stream_events", _DAY["stream_events"], "load_id", "events"),
    LayerTable("stream_events_quarantine", "cast(loaded_at as date)", "load_id", None),
    LayerTable("dsp_report_records", _DAY["dsp_report_records"], "load_id", "dsp"),
    LayerTable("dsp_report_countries", _DAY["dsp_report_countries"], "load_id", "dsp"),
    LayerTable("dsp_report_breakdowns", _DAY["dsp_report_breakdowns"], "load_id", "dsp"),
    LayerTable("dsp_report_quarantine", _DAY["dsp_report_quarantine"], "load_id", "dsp"),
    LayerTable("spotify_plays", _DAY["spotify_plays"], "poll_id", "spotify"),
    LayerTable("spotify_history", _DAY["spotify_history"], "load_id", "spotify"),
    LayerTable("spotify_history_quarantine", "cast(loaded_at as date)", "load_id", None),
    LayerTable("spotify_tracks", "cast(fetched_at as date)", _FETCH_KEY, None),
    LayerTable("spotify_artists", "cast(fetched_at as date)", _FETCH_KEY, None),
)


def file_name(file_key: str) -> str:
    """`<file_key>.parquet`, a `/` or any other character a path or a reader treats specially
    percent-encoded (load ids need none), and a leading `_` or `.` too: a key can neither leave
    its folder nor name a file readers skip."""
    encoded = quote(file_key, safe="-")
    if not encoded or encoded[0] in "_.~":
        encoded = f"%{ord(encoded[0]) if encoded else 0:02X}{encoded[1:]}"
    return encoded + ".parquet"


def day_folder(day: date) -> str:
    return f"date={day.isoformat()}"


@dataclass
class LayerSync:
    """What one sync did."""

    whole: bool = False  # every day compared, the whole layer listed
    days_checked: int = 0
    files_written: int = 0
    rows_written: int = 0
    files_removed: int = 0
    strays_removed: list[str] = field(default_factory=list)  # not ours: named in the log
    entries_cleared: int = 0

    def line(self) -> str:
        scope = "whole layer" if self.whole else f"{self.days_checked} table-day(s) checked"
        return (
            f"raw layer: {scope}; {self.files_written} file(s) written ({self.rows_written} "
            f"rows), {self.files_removed} removed, {len(self.strays_removed)} stray file(s)"
        )


def _select_list(conn: duckdb.DuckDBPyConnection, table: str) -> str:
    """The table's columns in order, JSON as its text (Parquet readers have no JSON type)."""
    rows = conn.execute(
        "select column_name, data_type from duckdb_columns() "
        "where schema_name = ? and table_name = ? order by column_index",
        [RAW_SCHEMA, table],
    ).fetchall()
    return ", ".join(
        f'cast("{name}" as varchar) as "{name}"' if kind == "JSON" else f'"{name}"'
        for name, kind in rows
    )


def _expected(
    conn: duckdb.DuckDBPyConnection, table: LayerTable, days: Iterable[date] | None
) -> dict[tuple[date, str], int]:
    """(day, file_key) -> rows the table holds now (on `days`, or every day when None)."""
    sql = (
        f"select {table.day_sql} as day, {table.key_sql} as file_key, count(*) "
        f"from {RAW_SCHEMA}.{table.name}"
    )
    params: list = []
    if days is not None:
        sql += f" where {table.day_sql} in (select unnest(?::date[]))"
        params.append(sorted(days))
    return {(d, k): n for d, k, n in conn.execute(sql + " group by all", params).fetchall()}


def _by_day(counts: dict[tuple[date, str], int]) -> dict[date, dict[str, int]]:
    out: dict[date, dict[str, int]] = {}
    for (day, key), rows in counts.items():
        out.setdefault(day, {})[key] = rows
    return out


class _Reconciler:
    """Brings one table's day folders to the table's rows. DuckDB reads the next file's rows
    while a thread writes the previous one (both release the GIL); the files ledger is written
    in batches (each commit is an fsync), always after the files it names are in place."""

    QUEUE = 2  # files read and not yet written: bounds the memory to two files' rows
    STREAM_ROWS = 500_000  # a larger file is streamed from DuckDB in batches, not overlapped
    BATCH = 200  # ledger notes per commit

    def __init__(self, conn, store: LayerStore, table: LayerTable, summary: LayerSync, log):
        self.conn, self.store, self.table, self.summary, self.log = conn, store, table, summary, log
        self.columns = _select_list(conn, table.name)
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raw-layer")
        self.in_flight: deque[tuple[Future, tuple[date, str]]] = deque()
        self.notes: list[tuple[date, str, int | None]] = []

    def day(
        self,
        day: date,
        expected: dict[str, int],
        written: dict[str, int],
        listing: list[str] | None,
    ) -> None:
        """Write, rewrite and remove files until `day`'s folder holds exactly `expected`;
        `listing` is the folder's files when known (None: trust the files ledger)."""
        self.summary.days_checked += 1
        folder = self.store.folder(self.table.name, day_folder(day))
        wanted = {file_name(key): key for key in expected}
        for name, key in wanted.items():
            missing = listing is not None and name not in listing
            if missing or written.get(key) != expected[key]:
                self._write(folder, day, key, name, expected[key])
        for key in written.keys() - expected.keys():
            self.store.remove(folder, file_name(key))
            self._note((day, key, None))
            self.summary.files_removed += 1
        ours = {file_name(key) for key in written}
        for name in sorted(set(listing or ()) - wanted.keys() - ours):
            self.store.remove(folder, name)
            self.summary.files_removed += 1
            if not name.startswith(TEMP_PREFIX):  # a temporary file is a killed sync's
                self.summary.strays_removed.append(f"{self.table.name}/{day_folder(day)}/{name}")
                self.log(
                    f"raw layer: removed {self.table.name}/{day_folder(day)}/{name}: a file no "
                    "load of the warehouse wrote (readers would take its rows as raw rows)"
                )
        if not expected and (written or listing):
            self.store.remove_folder_if_empty(folder)

    def _write(self, folder: str, day: date, key: str, name: str, expected_rows: int) -> None:
        rows = self.conn.sql(
            f"select {self.columns} from {RAW_SCHEMA}.{self.table.name} "
            f"where {self.table.day_sql} = $day and {self.table.key_sql} = $key",
            params={"day": day, "key": key},
        )
        if expected_rows > self.STREAM_ROWS:  # e.g. a large DSP report's breakdowns
            while self.in_flight:  # the connection streams this one result alone
                self._written(*self.in_flight.popleft())
            done: Future = Future()
            done.set_result(self.store.write_atomically(folder, name, rows.to_arrow_reader()))
            self._written(done, (day, key))
            return
        future = self.writer.submit(
            self.store.write_atomically, folder, name, rows.to_arrow_table()
        )
        self.in_flight.append((future, (day, key)))
        while len(self.in_flight) >= self.QUEUE:
            self._written(*self.in_flight.popleft())

    def _written(self, future: Future, file: tuple[date, str]) -> None:
        rows = future.result()  # the write's RawLayerError, if any, stops the sync here
        crash_point("raw_layer_file")  # the crash tests: a file in place, not in the ledger
        self.summary.files_written += 1
        self.summary.rows_written += rows
        self._note((*file, rows))

    def _note(self, note: tuple[date, str, int | None]) -> None:
        self.notes.append(note)
        if len(self.notes) >= self.BATCH:
            self._flush_notes()

    def _flush_notes(self) -> None:
        note_files(self.conn, self.store.root, self.table.name, self.notes, utc_now())
        self.notes = []

    def finish(self) -> None:
        """Wait for the writes in flight and commit the last notes (also after an error: the
        files that did get written are recorded)."""
        try:
            while self.in_flight:
                self._written(*self.in_flight.popleft())
        finally:
            self.writer.shutdown(wait=True, cancel_futures=True)
            self._flush_notes()

    def __enter__(self) -> _Reconciler:
        return self

    def __exit__(self, *exc_info) -> None:
        if exc_info[0] is None:
            self.finish()
            return
        self.writer.shutdown(wait=True, cancel_futures=True)
        self._flush_notes()


def _sync_table_whole(conn, store: LayerStore, table: LayerTable, summary, log) -> None:
    expected = _by_day(_expected(conn, table, None))
    written = _by_day(files_written(conn, store.root, table.name, None))
    tree = store.list_tree(store.folder(table.name))
    listed_days: dict[date, list[str]] = {}
    for sub, names in tree.items():
        try:
            day = date.fromisoformat(sub.removeprefix("date="))
            if sub != day_folder(day):
                raise ValueError(sub)
        except ValueError:  # a file outside any date=YYYY-MM-DD folder: readers would fail
            for name in names:
                store.remove(store.folder(table.name, *filter(None, [sub])), name)
                summary.files_removed += 1
                summary.strays_removed.append(f"{table.name}/{sub + '/' if sub else ''}{name}")
                log(f"raw layer: removed {summary.strays_removed[-1]}: not in a date= folder")
            continue
        listed_days[day] = names
    with _Reconciler(conn, store, table, summary, log) as reconciler:
        for day in sorted(expected.keys() | written.keys() | listed_days.keys()):
            reconciler.day(
                day, expected.get(day, {}), written.get(day, {}), listed_days.get(day, [])
            )


def _sync_table_days(
    conn, store: LayerStore, table: LayerTable, days: frozenset[date] | None, summary, log
) -> None:
    """The queued `days` of a table (listing their folders), or for a small table (days None)
    every day whose counts differ from the files ledger."""
    expected = _by_day(_expected(conn, table, days))
    written = _by_day(files_written(conn, store.root, table.name, days))
    if days is None:
        days = frozenset(
            d for d in expected.keys() | written.keys() if expected.get(d) != written.get(d)
        )
    with _Reconciler(conn, store, table, summary, log) as reconciler:
        for day in sorted(days):
            listing = store.list_names(store.folder(table.name, day_folder(day)))
            reconciler.day(day, expected.get(day, {}), written.get(day, {}), listing)


def sync_raw_layer(
    conn: duckdb.DuckDBPyConnection,
    uri: str,
    *,
    whole: bool = False,
    log: Callable[[str], None] = lambda line: None,
) -> LayerSync:
    """Bring the layer at `uri` to the raw tables' committed rows: only the queued days (and
    the small tables' changed days), or every day and the whole listing when `whole` or the
    root was never synced whole. Raises RawLayerError (one line) when the layer cannot be
    written; the queue then stays for the next sync."""
    from music_analytics.lib.core.raw_layer_store import LayerStore  # pyarrow: only to write

    store = LayerStore.open(uri)
    changes = read_layer_changes(conn)
    whole = whole or not is_synced_root(conn, store.root)
    summary = LayerSync(whole=whole)
    for table in RAW_LAYER_TABLES:
        if whole:
            _sync_table_whole(conn, store, table, summary, log)
        elif table.source is None:
            _sync_table_days(conn, store, table, None, summary, log)
        elif days := changes.days_by_source.get(table.source):
            _sync_table_days(conn, store, table, days, summary, log)
    if whole:
        at = utc_now()
        store.write_marker(MARKER, json.dumps({"synced_all_at": at.isoformat()}) + "\n")
        note_synced_root(conn, store.root, at)
    if changes.up_to:
        summary.entries_cleared = clear_layer_changes(conn, changes.up_to)
    return summary


def sync_with_settings(
    settings: Settings,
    *,
    whole: bool = False,
    log: Callable[[str], None] = lambda line: None,
) -> LayerSync:
    """`sync_raw_layer` on the settings' warehouse and root (for `refresh` and the CLI); the
    layer must be on (MUSIC_ANALYTICS_ENGINE=spark or MUSIC_ANALYTICS_RAW_LAYER_URI set)."""
    if not settings.raw_layer_enabled:
        raise RawLayerError(
            f"the raw layer is off: set {URI_SETTING} (or MUSIC_ANALYTICS_ENGINE=spark) to write it"
        )
    with connect_warehouse(settings.warehouse_path) as conn:
        ensure_raw_tables(conn)
        return sync_raw_layer(conn, settings.raw_layer_uri, whole=whole, log=log)


def sync_before_build(
    conn: duckdb.DuckDBPyConnection,
    uri: str,
    *,
    enabled: bool,
    required: bool,
    log: Callable[[str], None],
    warn: Callable[[str], None],
) -> LayerSync | None:
    """The sync every dbt build starts with. Switched off, the queue and files ledger are
    emptied (so switching on later syncs whole). When dbt reads the layer (`required`: the
    spark engine) a layer that cannot be written fails the build; otherwise it is a warning
    and the queue waits for the next build."""
    if not enabled:
        forget_layer(conn)
        return None
    try:
        summary = sync_raw_layer(conn, uri, log=log)
    except RawLayerError as exc:
        if required:
            raise
        warn(f"{exc} (the marts build on from the DuckDB tables; the next build retries)")
        return None
    log(summary.line())
    return summary
