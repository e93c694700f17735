"""`make bench`: one section after another, each printing one progress line per step (time since
the start, what it is doing) and its duration; then every figure, written to
bench/results/latest.json.

- **ingest**: the event-file loader's rate against DuckDB's bare read_json, and its memory.
- **year** (bench/year.py): issue 11's figures through `music-analytics refresh` as users run
  it: a year's backfill (10 million events in 365 files) against the floor (bench/floor.py),
  and one new day's refresh with a year of history against one with a day of history. The
  year's files, and a home built from them, are cached (bench/year_cache.py).
- **dsp**: the DSP report loader's rate and memory on a 10,000- and a 100,000-record report.
- **serve** (bench/serve_load.py): `music-analytics serve` under load over a copy of the cached
  year home.
- **json** (bench/json_readers.py): peak RSS of the DSP meta reader and the Spotify reader on
  a 10,000-deep file and on a 100 MB export.
- **orchestration** (bench/orchestration.py): a ten-year Spotify export through `refresh`
  (the dbt invocations it takes) and one event file dropped under `dagster dev` until its
  streams are in the mart exports.
- **spark** (bench/spark.py, opt-in: BENCH_ONLY=spark or BENCH_SPARK=1): the year's backfill
  through `refresh` on Spark local[2] next to DuckDB on the same files, at 1 M and 10 M events
  (BENCH_SPARK_EVENTS): wall seconds, peak RSS and their ratios.

Each measured load runs in a child process (its peak RSS is its own); the pipeline's commands'
output goes to log files in the work folder, printed (their tail) only when they fail.
BENCH_ONLY=year (or ingest, dsp, json, serve, orchestration, spark, or a comma list) runs only those
sections and writes bench/results/latest-<sections>.json instead. BENCH_YEAR_EVENTS (default
10000000) sizes the year, e.g. 200000 while developing; BENCH_CACHE moves the cache;
BENCH_KEEP_WORK=1 keeps the work folder (and its logs).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from bench.processes import progress

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "latest.json"
EVENTS = int(os.environ.get("BENCH_EVENTS", "2000000"))
SECTIONS = ("ingest", "year", "dsp", "json", "serve", "orchestration", "spark")
# The spark section (bench/spark.py) takes longer than the rest together: it runs only when
# asked for, by BENCH_ONLY=spark or BENCH_SPARK=1.
DEFAULT_SECTIONS = SECTIONS if os.environ.get("BENCH_SPARK", "") == "1" else SECTIONS[:-1]
ONLY = tuple(s.strip() for s in os.environ.get("BENCH_ONLY", "").split(",") if s.strip())
DSP_SMALL = int(os.environ.get("BENCH_DSP_SMALL", "10000"))
DSP_LARGE = int(os.environ.get("BENCH_DSP_LARGE", "100000"))
# DuckDB keeps a transaction's uncommitted rows in memory up to its memory_limit (by default
# 80% of RAM) and spills past it; the loads are measured under this limit, as a deployment
# sharing the machine would set it, and once more for the large report with DuckDB's default.
DSP_MEMORY_LIMIT = os.environ.get("BENCH_DSP_MEMORY_LIMIT", "256MB")

# Printed last by every child: its own peak RSS in MB. VmHWM is the high-water mark of the
# child's address space; ru_maxrss would also carry the parent's RSS at fork time over exec
# (Linux).
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

    progress("ingest", f"generating one file of {EVENTS:,} events")
    t = time.perf_counter()
    sample = generate_events(
        work / "events", start=date(2025, 6, 1), days=1, events_per_day=EVENTS, seed=1
    )
    generated_s = time.perf_counter() - t
    [path] = sample.files
    progress("ingest", f"{EVENTS:,} events generated; DuckDB's read_json, then the loader")
    (read_s, read_rows), read_rss = _child(CHILD_READ_JSON, str(work / "bare.duckdb"), str(path))
    (ingest_s, loaded, quarantined), ingest_rss = _child(
        CHILD_INGEST, str(work / "ingest.duckdb"), str(path)
    )
    lines = loaded + quarantined
    return {
        "events": EVENTS,
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
        progress("dsp", f"{label} records: {records / seconds:,.0f} records/s, {rss:.0f} MB")
    small, large = _label(DSP_SMALL), _label(DSP_LARGE)
    figures[f"dsp_load_peak_rss_{large}_vs_{small}"] = round(peaks[DSP_LARGE] / peaks[DSP_SMALL], 2)
    # The same large load with DuckDB's default memory_limit, for comparison.
    seconds, _, rss = _dsp_load(work, paths[DSP_LARGE], f"dsp_{large}_default", "")
    figures[f"dsp_load_{large}_default_limit_records_per_s"] = round(DSP_LARGE / seconds)
    figures[f"dsp_load_peak_rss_{large}_default_limit_mb"] = round(rss)
    return figures


def _sections() -> dict:
    """Each section's function, in the order they run (year before serve, which reads the
    year home the year section caches)."""
    from bench.json_readers import bench_json_readers
    from bench.orchestration import bench_orchestration
    from bench.serve_load import bench_serve
    from bench.spark import bench_spark
    from bench.year import bench_year

    return {
        "ingest": bench_ingest,
        "year": bench_year,
        "dsp": bench_dsp,
        "json": bench_json_readers,
        "serve": bench_serve,
        "orchestration": bench_orchestration,
        "spark": bench_spark,
    }


def _targets() -> str:
    from bench.orchestration import TARGETS as ORCHESTRATION_TARGETS
    from bench.serve_load import TARGETS as SERVE_TARGETS
    from bench.year import TARGETS as YEAR_TARGETS

    return (
        f"ingest_vs_read_json_ratio >= 0.5, {YEAR_TARGETS}, "
        f"dsp_load_peak_rss_{_label(DSP_LARGE)}_vs_{_label(DSP_SMALL)} <= 2, "
        f"{SERVE_TARGETS}, {ORCHESTRATION_TARGETS}"
    )


def main() -> None:
    unknown = set(ONLY) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"BENCH_ONLY: unknown section(s) {sorted(unknown)}; use {SECTIONS}")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    figures: dict = {}
    durations: dict[str, float] = {}
    # Other processes' CPU skews every figure on a small machine: the load when each started.
    loads: dict[str, float] = {}
    work = Path(tempfile.mkdtemp(prefix="music-analytics-bench-"))
    try:
        for name, section in _sections().items():
            if name not in (ONLY or DEFAULT_SECTIONS):
                continue
            loads[name] = round(os.getloadavg()[0], 2)
            progress(name, f"starting (work folder {work}, load average {loads[name]})")
            t = time.perf_counter()
            figures.update(section(work))
            durations[name] = round(time.perf_counter() - t, 1)
            progress(name, f"done in {durations[name]:.0f} s")
    finally:
        if os.environ.get("BENCH_KEEP_WORK", "").strip() in ("", "0"):
            shutil.rmtree(work, ignore_errors=True)
    figures["section_seconds"] = durations
    figures["section_load_average_1m"] = loads
    figures["bench_seconds"] = round(sum(durations.values()), 1)
    results = RESULTS if not ONLY else RESULTS.with_name(f"latest-{'-'.join(ONLY)}.json")
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    print(f"targets: {_targets()}; written to {results}")


if __name__ == "__main__":
    main()
