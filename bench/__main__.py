"""`make bench`: ingest rate vs DuckDB's bare read_json, ingest memory, mart build scaling, the
DSP report loader's rate and memory on a 10,000- and a 100,000-record report, and the HTTP
server (`music-analytics serve`) under load over a year of marts (bench/serve_load.py), and the
orchestration as users run it (bench/orchestration.py): a ten-year Spotify export through
`music-analytics refresh` (dbt invocations it takes) and one event file dropped under
`dagster dev` until its streams are in the mart exports.

Prints the figures and writes them to bench/results/latest.json. Each measured load runs in a
child process so its peak RSS is its own. BENCH_ONLY=dsp (or ingest, marts, serve,
orchestration, or a comma list) runs only those sections and writes
bench/results/latest-<sections>.json instead.
BENCH_SKIP_SERVE=1 skips the serve section (its first run builds a year of marts from 10 million
events; BENCH_SERVE_HOME keeps that home for the next runs).
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
SECTIONS = ("ingest", "marts", "dsp", "serve", "orchestration")
ONLY = tuple(s.strip() for s in os.environ.get("BENCH_ONLY", "").split(",") if s.strip())
DSP_SMALL = int(os.environ.get("BENCH_DSP_SMALL", "10000"))
DSP_LARGE = int(os.environ.get("BENCH_DSP_LARGE", "100000"))
# DuckDB keeps a transaction's uncommitted rows in memory up to its memory_limit (by default
# 80% of RAM) and spills past it; the loads are measured under this limit, as a deployment
# sharing the machine would set it, and once more for the large report with DuckDB's default.
DSP_MEMORY_LIMIT = os.environ.get("BENCH_DSP_MEMORY_LIMIT", "256MB")

# Printed last by every child: its own peak RSS in MB. VmHWM is the high-water mark of the
# child's address space; ru_maxrss would also carry the parent's RSS at fork time over exec
# (Linux), which the in-process mart benchmark inflates.
PRINT_PEAK_RSS = """
def _peak_rss_mb():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(_peak_rss_mb())
"""

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
"""

CHILD_INGEST = """
import duckdb, sys, time
from pathlib import Path
from music_analytics.lib.events.files import load_event_file
conn = duckdb.connect(sys.argv[1])
conn.execute("set enable_progress_bar = false")
t = time.perf_counter()
result = load_event_file(conn, Path(sys.argv[2]))
conn.execute("checkpoint")
print(time.perf_counter() - t, result.rows_loaded, result.rows_quarantined)
"""


CHILD_DSP_LOAD = """
import duckdb, sys, time
from pathlib import Path
from music_analytics.lib.dsp.report_load import load_report_zip
conn = duckdb.connect(sys.argv[1])
conn.execute("set enable_progress_bar = false")
if sys.argv[3]:
    conn.execute(f"set memory_limit = '{sys.argv[3]}'")
t = time.perf_counter()
result = load_report_zip(conn, Path(sys.argv[2]), source="landing")
conn.execute("checkpoint")
print(time.perf_counter() - t, result.records_loaded, result.country_rows, result.breakdown_rows)
"""


def _child(code: str, *args: str) -> tuple[list[float], float]:
    """Run code in a fresh interpreter; return its printed numbers and its own peak RSS in MB."""
    done = subprocess.run(
        [sys.executable, "-c", code + PRINT_PEAK_RSS, *args], capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"benchmark step failed:\n{done.stderr[-2000:]}")
    out = done.stdout
    *numbers, peak_mb = [float(x) for x in out.split()]
    return numbers, peak_mb


def bench_ingest(work: Path) -> dict:
    from music_analytics.lib.events.sample import generate_events

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
    from music_analytics.lib.core.settings import Settings
    from music_analytics.lib.events.sample import generate_events
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


def _label(records: int) -> str:
    return f"{records // 1000}k" if records % 1000 == 0 else str(records)


def _dsp_load(work: Path, path: Path, name: str, memory_limit: str) -> tuple[float, int, float]:
    """Load one report ZIP into a fresh DuckDB file in a child: seconds, rows, peak RSS MB."""
    (seconds, records, countries, breakdowns), rss = _child(
        CHILD_DSP_LOAD, str(work / f"{name}.duckdb"), str(path), memory_limit
    )
    return seconds, int(records + countries + breakdowns), rss


def bench_dsp(work: Path) -> dict:
    """Spotify reports of DSP_SMALL and DSP_LARGE records: load rate and the loader's memory."""
    import zipfile

    from music_analytics.lib.dsp.sample import generate_dsp_reports

    figures: dict = {"dsp_memory_limit": DSP_MEMORY_LIMIT}
    peaks, paths = {}, {}
    for records in (DSP_SMALL, DSP_LARGE):
        label = _label(records)
        t = time.perf_counter()
        [path] = generate_dsp_reports(
            work / f"dsp_{label}",
            start=date(2025, 6, 1),
            days=1,
            records_per_report=records,
            seed=1,
            dsps=["spotify"],
        )
        generated_s = time.perf_counter() - t
        with zipfile.ZipFile(path) as archive:
            json_mb = archive.infolist()[0].file_size / 2**20
        seconds, rows, rss = _dsp_load(work, path, f"dsp_{label}", DSP_MEMORY_LIMIT)
        peaks[records], paths[records] = rss, path
        figures.update(
            {
                f"dsp_{label}_zip_mb": round(path.stat().st_size / 2**20, 1),
                f"dsp_{label}_json_mb": round(json_mb, 1),
                f"dsp_{label}_generate_records_per_s": round(records / generated_s),
                f"dsp_load_{label}_seconds": round(seconds, 2),
                f"dsp_load_{label}_records_per_s": round(records / seconds),
                f"dsp_load_{label}_rows_per_s": round(rows / seconds),
                f"dsp_load_peak_rss_{label}_mb": round(rss),
            }
        )
        print(json.dumps(figures, indent=2), flush=True)
    small, large = _label(DSP_SMALL), _label(DSP_LARGE)
    figures[f"dsp_load_peak_rss_{large}_vs_{small}"] = round(peaks[DSP_LARGE] / peaks[DSP_SMALL], 2)
    # The same large load with DuckDB's default memory_limit, for comparison.
    seconds, _, rss = _dsp_load(work, paths[DSP_LARGE], f"dsp_{large}_default", "")
    figures[f"dsp_load_{large}_default_limit_records_per_s"] = round(DSP_LARGE / seconds)
    figures[f"dsp_load_peak_rss_{large}_default_limit_mb"] = round(rss)
    return figures


def main() -> None:
    import logging

    from bench.orchestration import TARGETS as ORCHESTRATION_TARGETS
    from bench.serve_load import TARGETS as SERVE_TARGETS

    unknown = set(ONLY) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"BENCH_ONLY: unknown section(s) {sorted(unknown)}; use {SECTIONS}")
    run = ONLY or SECTIONS
    logging.getLogger("dagster").setLevel(logging.WARNING)
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    figures: dict = {}
    with tempfile.TemporaryDirectory(prefix="music-analytics-bench-") as tmp:
        work = Path(tmp)
        if "ingest" in run:
            figures["events"] = EVENTS
            figures.update(bench_ingest(work))
            print(json.dumps(figures, indent=2), flush=True)
        if "marts" in run:
            figures.update(bench_marts(work))
        if "dsp" in run:
            figures.update(bench_dsp(work))
        if "serve" in run:
            if os.environ.get("BENCH_SKIP_SERVE", "").strip() not in ("", "0"):
                print("serve: skipped (BENCH_SKIP_SERVE is set)", flush=True)
            else:
                from bench.serve_load import bench_serve

                figures.update(bench_serve(work))
        if "orchestration" in run:
            from bench.orchestration import bench_orchestration

            figures.update(bench_orchestration(work))
    if not figures:  # only skipped sections: keep the last results
        print("nothing was measured; no results written")
        return
    results = RESULTS if not ONLY else RESULTS.with_name(f"latest-{'-'.join(ONLY)}.json")
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    print(
        "targets: ingest_vs_read_json_ratio >= 0.5, mart_day_60d_vs_1d_ratio <= 1.5, "
        f"dsp_load_peak_rss_{_label(DSP_LARGE)}_vs_{_label(DSP_SMALL)} <= 2, "
        f"{SERVE_TARGETS}, {ORCHESTRATION_TARGETS}; written to {results}"
    )


if __name__ == "__main__":
    main()
