"""Parquet exports of the marts for BI tools, and the read-only DuckDB file of views over them.

Layout: `exports/<mart>/<date column>=YYYY-MM-DD/data.parquet`, one file a day (a month for a
mart of grain "month", whose date column holds month starts). One export run writes all its
days of a mart with one partitioned `COPY` into a staging folder `exports/<mart>/.staging-*`
(same filesystem; a dot name, and one level deeper than `*/data.parquet`, so no reader's glob
sees it), then renames each day's file into place: a reader sees the old file or the new one,
never half a file. A day that no longer has rows loses its file. A staging folder left by a
killed run is removed by the next export of that mart (exports are written by the one process
holding the warehouse, so no other export is using it). A day that no longer has rows keeps
its file, emptied (0 rows, the mart's columns), swapped in the same way: a reader that listed
the day's file a moment before never finds it missing. Each version of a day's file also has
an immutable name beside it (export_versions.py): DuckDB readers go through those, because a
DuckDB read of a path replaced mid-query fails.

`exports/bi.duckdb` holds one view per exported mart over those files: a BI tool opens it
read-only at any time, because it never touches the pipeline's warehouse file (and so never
its write lock). It is written in DuckDB's storage format of 1.0 (`BI_STORAGE_VERSION`), which
every DuckDB 1.x reader (and the drivers of DBeaver, Metabase, Evidence) opens, and its views
hold paths relative to the exports folder (`<mart>/<column>=<day>/.v-<ns>.parquet`: each
day's current version, so a rewrite never changes a file under a reader), so a moved home or a
mounted copy of the exports reads its own files: DuckDB resolves a relative path against the
connection's `file_search_path` (else its working directory), which a reader sets to the
folder holding bi.duckdb (`bi_connect_config`). Without it a view fails with "No files found"
rather than read another folder's files.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb

from music_analytics.lib.core.crash_points import crash_point
from music_analytics.lib.core.export_versions import (
    SUPERSEDED_KEEP_SECONDS,
    current_version,
    link_version,
    remove_superseded,
)
from music_analytics.lib.core.manifest import Grain

BI_DATABASE = "bi.duckdb"
BI_STORAGE_VERSION = "v1.0.0"  # DuckDB's storage_compatibility_version for exports/bi.duckdb
BI_STORAGE_NUMBER = 64  # the storage number in the header of a file written with it
DATA_FILE = "data.parquet"  # the one file of a day
STAGING_PREFIX = ".staging-"  # an export run's folder, inside exports/<mart>/


@dataclass(frozen=True)
class ExportedMart:
    """What exporting a range of days of one mart wrote (days_*: files, a month's for a
    monthly mart)."""

    mart: str
    days_written: int
    days_removed: int  # days emptied: their file now holds no rows
    rows: int


def day_folder(exports: Path, mart: str, date_column: str, day: date) -> Path:
    """The folder of one day (or month start) of one mart's export (hive-style, so readers
    see the column)."""
    return exports / mart / f"{date_column}={day.isoformat()}"


def export_mart_days(
    conn: duckdb.DuckDBPyConnection,
    exports: Path,
    *,
    mart: str,
    date_column: str,
    first: date,
    last: date,
    grain: Grain = "day",
) -> ExportedMart:
    """Write marts.<mart>'s rows of first..last (inclusive) as one Parquet file per day; for a
    mart of grain "month" (its date column holds month starts), one file per month that holds
    one of those days."""
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return export_mart_values(
        conn, exports, mart=mart, date_column=date_column, values=partition_values(days, grain)
    )


def partition_values(days: Iterable[date], grain: Grain = "day") -> list[date]:
    """The values of a mart's date column that hold `days`: the days, or their month starts."""
    if grain == "month":
        return sorted({day.replace(day=1) for day in days})
    if grain != "day":
        raise ValueError(f"unknown export grain {grain!r}: expected 'day' or 'month'")
    return sorted(set(days))


def export_mart_values(
    conn: duckdb.DuckDBPyConnection,
    exports: Path,
    *,
    mart: str,
    date_column: str,
    values: Iterable[date],
    keep_seconds: float = SUPERSEDED_KEEP_SECONDS,
) -> ExportedMart:
    """Write marts.<mart>'s rows of each date-column value as one Parquet file (one COPY for
    all values, then one atomic rename per value); a value without rows that had a file gets
    an empty one (see the module docstring). Versions of these days superseded more than
    `keep_seconds` ago are removed."""
    values = sorted(set(values))
    target = exports / mart
    target.mkdir(parents=True, exist_ok=True)
    remove_staging(target)
    if not values:
        return ExportedMart(mart, 0, 0, 0)
    staging = Path(tempfile.mkdtemp(dir=target, prefix=STAGING_PREFIX))
    try:
        # A Spark mart left without any row has no files, so no view (mart_tables): its days
        # are all emptied, like a DuckDB mart's days without rows.
        rows = (
            _copy_partitioned(conn, staging, mart, date_column, values)
            if _readable(conn, mart)
            else 0
        )
        staged = _staged_folders(conn, staging, date_column)
        days_written = days_removed = 0
        for value in values:
            folder = day_folder(exports, mart, date_column, value)
            if value in staged:
                _move_into_place(staged[value], folder)
                days_written += 1
                crash_point("export_staged")  # crash tests: one day moved, the rest staged
            elif _has_rows(conn, folder / DATA_FILE):
                _empty_into_place(conn, staging, folder)
                days_removed += 1
            if folder.is_dir():
                remove_superseded(folder, DATA_FILE, keep_seconds)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportedMart(mart, days_written, days_removed, rows)


def remove_every_superseded_version(exports: Path) -> int:
    """Remove every superseded version of every exported day now, whatever its age (a user's
    deletion: an old version may still hold the user's rows). A BI reader whose bi.duckdb
    predates the last export may then fail its next query and must reconnect."""
    removed = 0
    for data_file in exports.glob(f"*/*=*/{DATA_FILE}"):
        removed += remove_superseded(data_file.parent, DATA_FILE, 0)
    return removed


def _move_into_place(staged: Path, folder: Path) -> None:
    """Put a staged day folder's data file in place, atomically: a new day's whole folder is
    renamed (no folder to create or remove), an existing day's file is replaced; either way
    after the new version got its immutable name."""
    if folder.is_dir():
        link_version(staged / DATA_FILE, folder)
        os.replace(staged / DATA_FILE, folder / DATA_FILE)
    else:
        link_version(staged / DATA_FILE, staged)
        os.rename(staged, folder)


def _has_rows(conn: duckdb.DuckDBPyConnection, day_file: Path) -> bool:
    """Whether a day's data file exists and holds a row (an emptied day's does not)."""
    if not day_file.exists():
        return False
    path = str(day_file).replace("'", "''")
    (rows,) = conn.execute(
        f"select coalesce(sum(num_rows), 0) from parquet_file_metadata('{path}')"
    ).fetchone()
    return rows > 0


def _readable(conn: duckdb.DuckDBPyConnection, mart: str) -> bool:
    """Whether `marts.<mart>` exists on the connection (a table, or a view over Spark files)."""
    (found,) = conn.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'marts' and table_name = ?",
        [mart],
    ).fetchone()
    return found > 0


def _empty_into_place(conn: duckdb.DuckDBPyConnection, staging: Path, folder: Path) -> None:
    """Replace a day's data file with one of no rows and the same columns (its own: the mart's
    but the date column, which is in the folder name), atomically: the file never goes
    missing."""
    empty = staging / f"empty-{folder.name}.parquet"
    path = str(empty).replace("'", "''")
    current = str(folder / DATA_FILE).replace("'", "''")
    conn.execute(
        f"copy (select * from read_parquet('{current}') limit 0) "
        f"to '{path}' (format parquet, compression zstd)"
    )
    link_version(empty, folder)
    os.replace(empty, folder / DATA_FILE)


def remove_staging(target: Path) -> None:
    """Remove the staging folders a killed export left in a mart's export folder."""
    for leftover in target.glob(f"{STAGING_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _copy_partitioned(
    conn: duckdb.DuckDBPyConnection, staging: Path, mart: str, date_column: str, values: list
) -> int:
    """One COPY of the rows of `values` into staging/<date column>=<value>/data_<i>.parquet;
    returns the rows written. The date column is in the folder names, not the files."""
    # COPY takes no bound parameters; the values are date objects, rendered by us.
    days = ", ".join(f"date '{value.isoformat()}'" for value in values)
    path = str(staging).replace("'", "''")
    (rows,) = conn.execute(
        f"copy (select * from marts.{mart} where {date_column} in ({days})) "
        f"to '{path}' (format parquet, compression zstd, partition_by ({date_column}), "
        "write_partition_columns false, filename_pattern 'data_{i}')"
    ).fetchone()
    return rows


def _staged_folders(
    conn: duckdb.DuckDBPyConnection, staging: Path, date_column: str
) -> dict[date, Path]:
    """Each staged value and its folder, left holding exactly one file, data.parquet.
    DuckDB writes several files to a partition when the write holds more partitions than
    `partitioned_write_max_open_files` and more rows than `partitioned_write_flush_threshold`;
    those are merged into one here."""
    staged = {}
    for folder in staging.iterdir():
        column, _, text = folder.name.partition("=")
        value = _iso_date(text)
        if column != date_column or value is None or folder.name != f"{column}={value}":
            raise RuntimeError(
                f"unexpected folder {folder} in an export's staging: expected "
                f"{date_column}=YYYY-MM-DD; is {date_column} a DATE column?"
            )
        files = sorted(folder.glob("*.parquet"))
        if len(files) == 1:
            files[0].rename(folder / DATA_FILE)
        else:
            _merge(conn, files, folder / DATA_FILE)
        staged[value] = folder
    return staged


def _iso_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _merge(conn: duckdb.DuckDBPyConnection, files: list[Path], merged: Path) -> None:
    """Write the rows of `files` as one file, `merged`, and remove them."""
    listed = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
    path = str(merged).replace("'", "''")
    conn.execute(
        f"copy (select * from read_parquet([{listed}], hive_partitioning = false)) "
        f"to '{path}' (format parquet, compression zstd)"
    )
    for file in files:
        file.unlink()


def exported_marts(exports: Path) -> dict[str, str]:
    """Each mart with at least one exported day, and its date column (read off the folders)."""
    marts: dict[str, str] = {}
    if not exports.is_dir():
        return marts
    for folder in sorted(p for p in exports.iterdir() if p.is_dir()):
        day = next(folder.glob(f"*=*/{DATA_FILE}"), None)
        if day is not None:
            marts[folder.name] = day.parent.name.split("=", 1)[0]
    return marts


def bi_connect_config(bi_database: Path) -> dict[str, str]:
    """The DuckDB connection settings a reader of `bi_database` needs: read-only, and its
    views' relative paths resolved against the folder holding it, from any working directory."""
    return {
        "access_mode": "read_only",
        "file_search_path": str(Path(bi_database).resolve().parent),
    }


def connect_bi_database(bi_database: Path | str) -> duckdb.DuckDBPyConnection:
    """A read-only connection to exports/bi.duckdb whose views read the files beside it,
    whatever the working directory (works on every DuckDB that opens the file: 1.x takes
    file_search_path only as a session setting, so it is SET, not passed at connect)."""
    config = bi_connect_config(Path(bi_database))
    conn = duckdb.connect(str(bi_database), read_only=True)
    search = config["file_search_path"].replace("'", "''")
    conn.execute(f"set file_search_path = '{search}'")
    return conn


def write_bi_database(exports: Path) -> Path:
    """(Re)create exports/bi.duckdb with a view per exported mart; swapped in atomically.

    Creating a view lists every file of its mart (DuckDB binds the glob), a cost that grows
    with the history; so when the file already holds the views it would get (same marts, same
    sources, same columns, same storage version), it is kept and only its modification time
    moves on: the server rebuilds its snapshot when that changes."""
    files = {mart: _view_files(exports, mart) for mart in exported_marts(exports)}
    sources = {mart: _view_source(names) for mart, names in files.items()}
    target = exports / BI_DATABASE
    if _holds_views(target, files, sources):
        mtime = max(time.time_ns(), target.stat().st_mtime_ns + 1)
        os.utime(target, ns=(mtime, mtime))
        return target
    fd, tmp = tempfile.mkstemp(dir=exports, prefix=".bi-", suffix=".duckdb")
    os.close(fd)
    os.unlink(tmp)  # DuckDB creates the file itself
    config = {
        "storage_compatibility_version": BI_STORAGE_VERSION,
        "file_search_path": str(exports.resolve()),  # the views bind their relative paths
    }
    with duckdb.connect(tmp, config=config) as bi:
        for mart, source in sources.items():
            bi.execute(f"create view {mart} as select * from {source}")
            quoted = source.replace("'", "''")
            bi.execute(f"comment on view {mart} is '{quoted}'")  # what _holds_views compares
    os.replace(tmp, target)
    return target


def _view_files(exports: Path, mart: str) -> list[str]:
    """The current version of each exported day of a mart, relative to the exports, by day."""
    folder = exports / mart
    days = sorted(name for name in os.listdir(folder) if "=" in name)
    versions = (current_version(folder / day, DATA_FILE) for day in days)
    return [path.relative_to(exports).as_posix() for path in versions if path is not None]


def _view_source(files: list[str]) -> str:
    """The read_parquet call of a mart's view in exports/bi.duckdb: its days' files."""
    listed = ", ".join("'" + name.replace("'", "''") + "'" for name in files)
    return f"read_parquet([{listed}], hive_partitioning = true)"


def storage_number(database: Path) -> int | None:
    """The storage version number in a DuckDB file's header (None: not a DuckDB file)."""
    with open(database, "rb") as file:
        header = file.read(20)
    if len(header) < 20 or header[8:12] != b"DUCK":
        return None
    return int.from_bytes(header[12:20], "little")


def _holds_views(bi_database: Path, files: dict[str, list[str]], sources: dict[str, str]) -> bool:
    """Whether `bi_database` is in BI_STORAGE_VERSION's format and has exactly the views
    `sources` give: each with its source (in its comment) and the columns the source binds
    to, found here on one file of each mart (the first, as the view binds), so in a time that
    does not grow with the history."""
    if not bi_database.exists() or storage_number(bi_database) != BI_STORAGE_NUMBER:
        return False
    with duckdb.connect() as probe:
        try:
            path = str(bi_database).replace("'", "''")
            probe.execute(f"attach '{path}' as bi (read_only)")
        except duckdb.Error:  # not a DuckDB file, or a BI tool holds it for writing
            return False
        for mart in sources:
            first = bi_database.parent / files[mart][0]
            one_file = str(first.resolve()).replace("'", "''")
            probe.execute(
                f"create view memory.main.{mart} as select * from "
                f"read_parquet('{one_file}', hive_partitioning = true)"
            )
        expected = {
            mart: (sources[mart], columns) for mart, (_, columns) in _views(probe, "memory").items()
        }
        return _views(probe, "bi") == expected


def _views(conn: duckdb.DuckDBPyConnection, database: str) -> dict[str, tuple]:
    """Each view of `database`: its comment and its columns with their types."""
    columns: dict[str, list] = {}
    for view, column, data_type in conn.execute(
        "select table_name, column_name, data_type from duckdb_columns() "
        "where database_name = ? order by table_name, column_index",
        [database],
    ).fetchall():
        columns.setdefault(view, []).append((column, data_type))
    return {
        view: (comment, columns.get(view, []))
        for view, comment in conn.execute(
            "select view_name, comment from duckdb_views() where database_name = ?", [database]
        ).fetchall()
    }
