"""A year's event files through the ingest: a backfill into a fresh warehouse, then the same
folder again with one new file (the refresh case), each in a child process with its own peak
RSS (VmHWM).

    python -m bench.event_backfill FOLDER NEW_FILE [WORK_DIR]

FOLDER holds the year (e.g. `generate_events(FOLDER, start=date(2025, 1, 1), days=365,
events_per_day=27400, seed=7)`), NEW_FILE is one more day's file. The child uses
`load_event_files` when the imported package has it, else a loop over `load_event_file` (the
code before it), so `PYTHONPATH=<older checkout>` measures that code the same way.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import sys, time
from pathlib import Path
import duckdb
from music_analytics.lib.core.landing import landing_files
from music_analytics.lib.events import files

conn = duckdb.connect(sys.argv[1])
conn.execute("set enable_progress_bar = false")
paths = landing_files(Path(sys.argv[2]), "events")
t = time.perf_counter()
if hasattr(files, "load_event_files"):
    outcomes = [outcome for _, outcome in files.load_event_files(conn, paths)]
else:
    outcomes = [files.load_event_file(conn, path) for path in paths]
conn.execute("checkpoint")
seconds = time.perf_counter() - t
loaded = sum(getattr(o, "status", "") == "loaded" for o in outcomes)
rows = sum(getattr(o, "rows_loaded", 0) for o in outcomes)
with open("/proc/self/status") as status:
    peak = next(int(l.split()[1]) / 1024 for l in status if l.startswith("VmHWM:"))
print(round(seconds, 2), len(paths), loaded, rows, round(peak))
"""


def _ingest(warehouse: Path, folder: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(warehouse), str(folder)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    seconds, files, loaded, rows, peak = out[-5:]
    return {
        "seconds": float(seconds),
        "files": int(files),
        "files_loaded": int(loaded),
        "rows_loaded": int(rows),
        "peak_rss_mb": int(peak),
    }


def main(folder: Path, new_file: Path, work: Path) -> dict:
    landing = work / "landing"
    shutil.copytree(folder, landing, copy_function=os.link)  # same files, no copy
    warehouse = work / "warehouse.duckdb"
    backfill = _ingest(warehouse, landing)
    shutil.copy2(new_file, landing / new_file.name)
    again = _ingest(warehouse, landing)
    return {"backfill": backfill, "again_plus_one_new_file": again}


if __name__ == "__main__":
    args = [Path(a) for a in sys.argv[1:]]
    if len(args) == 3:
        args[2].mkdir(parents=True, exist_ok=True)
        print(json.dumps(main(*args), indent=2))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(main(args[0], args[1], Path(tmp)), indent=2))
