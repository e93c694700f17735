"""`make bench`: ingest rate vs DuckDB's bare read_json, ingest memory, mart build scaling.

Prints the figures and writes them to bench/results/latest.json. Each measured load runs in a
child process so its peak RSS is its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "latest.json"
EVENTS = int(os.environ.get("BENCH_EVENTS", "2000000"))
HISTORY_EVENTS_PER_DAY = int(os.environ.get("BENCH_EVENTS_PER_DAY", "20000"))

CHILD_READ_JSON = """
import duckdb, sys, time
conn = duckdb.connect(sys.argv[1])
conn.execute("set enable_progress_bar = false")
t = time.perf_counter()
path = sys.argv[2].replace("'", "''")
conn.execute(
    f"create table t as select * from "
    f"read_json('{path}', format='newline_delimited', ignore_errors=true)"
)
conn.execute("checkpoint")
print(time.perf_counter() - t, conn.execute("select count(*) from t").fetchone()[0])
import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""

CHILD_INGEST = """
import duckdb, sys, time
from pathlib import Path
from music_analytics.lib.event_files import load_event_file
conn = duckdb.connect(sys.argv[1])
conn.execute("set enable_progress_bar = false")
t = time.perf_counter()
result = load_event_file(conn, Path(sys.argv[2]))
conn.execute("checkpoint")
print(time.perf_counter() - t, result.rows_loaded, result.rows_quarantined)
import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def _child(code: str, *args: str) -> tuple[list[float], float]:
    """Run code in a fresh interpreter; return its printed numbers and its own peak RSS in MB."""
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"benchmark step failed:\n{done.stderr[-2000:]}")
    out = done.stdout
    *numbers, peak_mb = [float(x) for x in out.split()]
    return numbers, peak_mb


def bench_ingest(work: Path) -> dict:
    from music_analytics.lib.sample_events import generate_events

    t = time.perf_counter()
    sample = generate_events(
        work / "events", start=date(2025, 6, 1), days=1, events_per_day=EVENTS, seed=1
    )
    generated_s = time.perf_counter() - t
    [path] = sample.files
    (read_s, read_rows), read_rss = _child(CHILD_READ_JSON, str(work / "bare.duckdb"), str(path))
    (ingest_s, loaded, quarantined), ingest_rss = _child(
        CHILD_INGEST, str(work / "ingest.duckdb"), str(path)
    )
    lines = loaded + quarantined
    return {
        "events_file_lines": int(lines),
        "events_file_mb": round(path.stat().st_size / 2**20, 1),
        "generate_events_per_s": round(EVENTS / generated_s),
        "read_json_rows_per_s": round(read_rows / read_s),
        "read_json_seconds": round(read_s, 2),
        "read_json_peak_rss_mb": round(read_rss),
        "ingest_rows_per_s": round(lines / ingest_s),
        "ingest_seconds": round(ingest_s, 2),
        "ingest_vs_read_json_ratio": round((lines / ingest_s) / (read_rows / read_s), 3),
        "ingest_peak_rss_mb": round(ingest_rss),
        "rows_quarantined": int(quarantined),
    }


def _time_one_day_build(work: Path, history_days: int) -> float:
    """Seconds to rebuild the last day of every mart over `history_days` days of events."""
    import dagster as dg

    from music_analytics.definitions import build_definitions
    from music_analytics.defs.partitions import partition_range_tags
    from music_analytics.lib.sample_events import generate_events
    from music_analytics.lib.settings import Settings
    from music_analytics.refresh import refresh

    os.environ["MUSIC_ANALYTICS_HOME"] = str(work / f"history_{history_days}")
    settings = Settings.from_env()
    settings.ensure_folders()
    last = date(2025, 9, 30)
    first = last - timedelta(days=history_days - 1)
    generate_events(
        settings.events_landing,
        start=first,
        days=history_days,
        events_per_day=HISTORY_EVENTS_PER_DAY,
        seed=2,
    )
    instance = dg.DagsterInstance.ephemeral()
    refresh(settings=settings, instance=instance)  # builds every day once, untimed
    job = build_definitions(settings).resolve_job_def("daily_marts_job")
    t = time.perf_counter()
    job.execute_in_process(instance=instance, tags=partition_range_tags(last, last))
    return time.perf_counter() - t


def bench_marts(work: Path) -> dict:
    one = _time_one_day_build(work, 1)
    sixty = _time_one_day_build(work, 60)
    return {
        "mart_day_events_per_day": HISTORY_EVENTS_PER_DAY,
        "mart_day_1d_history_seconds": round(one, 2),
        "mart_day_60d_history_seconds": round(sixty, 2),
        "mart_day_60d_vs_1d_ratio": round(sixty / one, 3),
    }


def main() -> None:
    import logging

    logging.getLogger("dagster").setLevel(logging.WARNING)
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    with tempfile.TemporaryDirectory(prefix="music-analytics-bench-") as tmp:
        work = Path(tmp)
        figures = {"events": EVENTS}
        figures.update(bench_ingest(work))
        print(json.dumps(figures, indent=2), flush=True)
        figures.update(bench_marts(work))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    print(
        f"targets: ingest_vs_read_json_ratio >= 0.5, mart_day_60d_vs_1d_ratio <= 1.5; "
        f"written to {RESULTS}"
    )


if __name__ == "__main__":
    main()
