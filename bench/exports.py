"""Export timing: a year of a daily mart and of a monthly mart, exported to Parquet.

`.venv/bin/python -m bench.exports [exports_module.py]` builds a DuckDB file with a synthetic
`marts.top_tracks_daily` (BENCH_EXPORT_ROWS_PER_DAY rows a day, default 1,000, for 365 days)
and `marts.top_tracks_by_month` (the same rows by month start), rows in no particular order (as
dbt's aggregates leave them), then times exporting all 365 days, all of them again (every file
replaced), one day, and writing exports/bi.duckdb. Given the path of another copy of
lib/core/exports.py (e.g. `git show <rev>:music_analytics/lib/core/exports.py > old.py`), it
times that one instead, to compare two versions on the same data. Prints JSON.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb

DAYS = 365
ROWS_PER_DAY = int(os.environ.get("BENCH_EXPORT_ROWS_PER_DAY", "1000"))
FIRST = date(2025, 1, 1)


def _exports_module(path: str | None):
    if path is None:
        from music_analytics.lib.core import exports

        return exports
    spec = importlib.util.spec_from_file_location("exports_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect(str(path))
    conn.execute("set enable_progress_bar = false")
    conn.execute("create schema marts")
    conn.execute(
        f"""create table marts.top_tracks_daily as
        select date '{FIRST}' + (i // {ROWS_PER_DAY})::int as stream_date,
            'trk_' || (i % {ROWS_PER_DAY}) as track_id, 'art_' || (i % 97) as artist_id,
            'alb_' || (i % 311) as album_id, 'genre_' || (i % 12) as genre,
            'C' || (i % 30) as country, (i % 50) + 1 as stream_count,
            (i % 5000) * 1.5 as total_duration_seconds, (i % 300) * 1.0 as avg_duration_seconds,
            i % 40 as completed_streams, i % 20 as unique_listeners
        from range({DAYS * ROWS_PER_DAY}) t(i)
        order by hash(i)"""
    )
    conn.execute(
        "create table marts.top_tracks_by_month as select date_trunc('month', stream_date)::date"
        " as month, * exclude (stream_date) from marts.top_tracks_daily"
    )
    conn.execute("checkpoint")
    return conn


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return round(time.perf_counter() - start, 2)


def main() -> None:
    exports_module = _exports_module(sys.argv[1] if len(sys.argv) > 1 else None)
    days = [FIRST + timedelta(days=n) for n in range(DAYS)]
    with tempfile.TemporaryDirectory() as work:
        conn = _warehouse(Path(work) / "warehouse.duckdb")
        exports = Path(work) / "exports"

        def export(mart: str, date_column: str, grain: str, values: list[date]) -> None:
            exports_module.export_mart_values(
                conn,
                exports,
                mart=mart,
                date_column=date_column,
                values=exports_module.partition_values(values, grain),
            )

        figures = {
            "rows_per_day": ROWS_PER_DAY,
            "daily_365_days_seconds": _timed(
                lambda: export("top_tracks_daily", "stream_date", "day", days)
            ),
            "daily_365_days_again_seconds": _timed(
                lambda: export("top_tracks_daily", "stream_date", "day", days)
            ),
            "daily_1_day_seconds": _timed(
                lambda: export("top_tracks_daily", "stream_date", "day", days[-1:])
            ),
            "monthly_365_days_seconds": _timed(
                lambda: export("top_tracks_by_month", "month", "month", days)
            ),
            "monthly_1_day_seconds": _timed(
                lambda: export("top_tracks_by_month", "month", "month", days[-1:])
            ),
            "bi_database_seconds": _timed(lambda: exports_module.write_bi_database(exports)),
            "files": len(list(exports.rglob("data.parquet"))),
        }
        conn.close()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
