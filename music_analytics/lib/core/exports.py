"""Parquet exports of the marts for BI tools, and the read-only DuckDB file of views over them.

Layout: `exports/<mart>/<date column>=YYYY-MM-DD/data.parquet`, one file a day (a month for a
mart of grain "month", whose date column holds month starts). A day is written to a temporary
name and renamed into place, so a reader sees the old file or the new one, never half a file;
a day that no longer has rows loses its file. `exports/bi.duckdb`
holds one view per exported mart over those files: a BI tool opens it read-only at any time,
because it never touches the pipeline's warehouse file (and so never its write lock).
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

from music_analytics.lib.core.manifest import Grain

BI_DATABASE = "bi.duckdb"


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
    """Write marts.<mart>'s rows of each date-column value as one Parquet file; a value
    without rows loses its file."""
    values = sorted(set(values))
    days_written = days_removed = rows = 0
    target = exports / mart
    target.mkdir(parents=True, exist_ok=True)
    if not values:
        return ExportedMart(mart, 0, 0, 0)
    counts = dict(
        conn.execute(
            f"select {date_column}, count(*) from marts.{mart} "
            f"where {date_column} between ? and ? group by 1",
            [values[0], values[-1]],
        ).fetchall()
    )
    for value in values:
        folder = day_folder(exports, mart, date_column, value)
        if counts.get(value):
            _write_day(conn, folder, mart, date_column, value)
            days_written += 1
            rows += counts[value]
        elif folder.exists():
            shutil.rmtree(folder)
            days_removed += 1
    return ExportedMart(mart, days_written, days_removed, rows)


def _write_day(conn, folder: Path, mart: str, date_column: str, day: date) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".data-", suffix=".parquet")
    os.close(fd)
    # COPY takes no bound parameters; the day is a date object, rendered by us.
    conn.execute(
        f"copy (select * exclude ({date_column}) from marts.{mart} "
        f"where {date_column} = date '{day.isoformat()}') "
        f"to '{tmp}' (format parquet, compression zstd)"
    )
    os.replace(tmp, folder / "data.parquet")


def exported_marts(exports: Path) -> dict[str, str]:
    """Each mart with at least one exported day, and its date column (read off the folders)."""
    marts: dict[str, str] = {}
    if not exports.is_dir():
        return marts
    for folder in sorted(p for p in exports.iterdir() if p.is_dir()):
        day = next(folder.glob("*=*/data.parquet"), None)
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
            glob = str((exports / mart).resolve() / "*" / "data.parquet").replace("'", "''")
            bi.execute(
                f"create view {mart} as select * from "
                f"read_parquet('{glob}', hive_partitioning = true)"
            )
    target = exports / BI_DATABASE
    os.replace(tmp, target)
    return target
