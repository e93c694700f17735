"""Parquet exports of the marts for BI tools, and the read-only DuckDB file of views over them.

Layout: `exports/<mart>/<date column>=YYYY-MM-DD/data.parquet`, one file a day (a month for a
mart of grain "month", whose date column holds month starts). One export run writes all its
days of a mart with one partitioned `COPY` into a staging folder `exports/<mart>/.staging-*`
(same filesystem; a dot name, and one level deeper than `*/data.parquet`, so no reader's glob
sees it), then renames each day's file into place: a reader sees the old file or the new one,
never half a file. A day that no longer has rows loses its file. A staging folder left by a
killed run is removed by the next export of that mart (exports are written by the one process
holding the warehouse, so no other export is using it). `exports/bi.duckdb` holds one view
per exported mart over those files: a BI tool opens it read-only at any time, because it
never touches the pipeline's warehouse file (and so never its write lock).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb

from music_analytics.lib.core.crash_points import crash_point
from music_analytics.lib.core.manifest import Grain

BI_DATABASE = "bi.duckdb"
DATA_FILE = "data.parquet"  # the one file of a day
STAGING_PREFIX = ".staging-"  # an export run's folder, inside exports/<mart>/


@dataclass(frozen=True)
class ExportedMart:
    """What exporting a range of days of one mart wrote (days_*: files, a month's for a
    monthly mart)."""

    mart: str
    days_written: int
    days_removed: int
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
) -> ExportedMart:
    """Write marts.<mart>'s rows of each date-column value as one Parquet file (one COPY for
    all values, then one atomic rename per value); a value without rows loses its file."""
    values = sorted(set(values))
    target = exports / mart
    target.mkdir(parents=True, exist_ok=True)
    remove_staging(target)
    if not values:
        return ExportedMart(mart, 0, 0, 0)
    staging = Path(tempfile.mkdtemp(dir=target, prefix=STAGING_PREFIX))
    try:
        rows = _copy_partitioned(conn, staging, mart, date_column, values)
        staged = _staged_folders(conn, staging, date_column)
        days_written = days_removed = 0
        for value in values:
            folder = day_folder(exports, mart, date_column, value)
            if value in staged:
                _move_into_place(staged[value], folder)
                days_written += 1
                crash_point("export_staged")  # crash tests: one day moved, the rest staged
            elif folder.exists():
                shutil.rmtree(folder)
                days_removed += 1
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportedMart(mart, days_written, days_removed, rows)


def _move_into_place(staged: Path, folder: Path) -> None:
    """Put a staged day folder's data file in place, atomically: a new day's whole folder is
    renamed (no folder to create or remove), an existing day's file is replaced."""
    if folder.is_dir():
        os.replace(staged / DATA_FILE, folder / DATA_FILE)
    else:
        os.rename(staged, folder)


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


def write_bi_database(exports: Path) -> Path:
    """(Re)create exports/bi.duckdb with a view per exported mart; swapped in atomically."""
    marts = exported_marts(exports)
    fd, tmp = tempfile.mkstemp(dir=exports, prefix=".bi-", suffix=".duckdb")
    os.close(fd)
    os.unlink(tmp)  # DuckDB creates the file itself
    with duckdb.connect(tmp) as bi:
        for mart in marts:
            glob = str((exports / mart).resolve() / "*" / DATA_FILE).replace("'", "''")
            bi.execute(
                f"create view {mart} as select * from "
                f"read_parquet('{glob}', hive_partitioning = true)"
            )
    target = exports / BI_DATABASE
    os.replace(tmp, target)
    return target
