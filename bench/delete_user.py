"""The delete-by-condition job's time for one user, for the `serve` section of `make bench`.

On the running server: the busiest user of raw.stream_events (most streams) is deleted with
`POST /v0/datasources/music_streams/delete` (`delete_condition=user_id = '<id>'`), first as a
dry run (answered at once), then as the job, polled at `GET /v0/jobs/{id}` until done. The job
deletes the rows and their quarantined lines in one raw transaction and marks the user's days
for rebuild; the rebuild itself (the next `refresh`) is not part of this figure.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import urlencode

import duckdb

POLL_SECONDS = 0.05
JOB_TIMEOUT_SECONDS = 1800


def busiest_user(warehouse: Path) -> tuple[str, int]:
    """The user with the most streams in raw.stream_events, and that count."""
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.execute(
            "select user_id, count(*) from raw.stream_events group by 1 order by 2 desc, 1 limit 1"
        ).fetchone()


def bench_delete_user_job(client, warehouse: Path) -> dict:
    """Figures of deleting the busiest user through the Data Sources API; `client` is a
    keep-alive connection with `call(method, path, body, headers)` (bench/serve_load.Client)."""
    user_id, streams = busiest_user(warehouse)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    condition = f"user_id = '{user_id}'"

    started = time.perf_counter()
    status, raw = client.call(
        "POST",
        "/v0/datasources/music_streams/delete",
        urlencode({"delete_condition": condition, "dry_run": "true"}).encode(),
        form,
    )
    dry_seconds = time.perf_counter() - started
    if status != 200:
        raise RuntimeError(f"the dry run answered {status}: {raw[:300]!r}")
    would = json.loads(raw)["rows_affected"]

    started = time.perf_counter()
    status, raw = client.call(
        "POST",
        "/v0/datasources/music_streams/delete",
        urlencode({"delete_condition": condition}).encode(),
        form,
    )
    if status != 200:
        raise RuntimeError(f"the delete answered {status}: {raw[:300]!r}")
    job_id = json.loads(raw)["job_id"]
    while True:
        status, raw = client.call("GET", f"/v0/jobs/{job_id}")
        job = json.loads(raw)
        if job["status"] in ("done", "error"):
            break
        if time.perf_counter() - started > JOB_TIMEOUT_SECONDS:
            raise RuntimeError(f"the delete job {job_id} did not finish in time")
        time.sleep(POLL_SECONDS)
    seconds = time.perf_counter() - started
    if job["status"] != "done":
        raise RuntimeError(f"the delete job failed: {job.get('error')}")
    return {
        "serve_delete_user_streams": streams,
        "serve_delete_user_dry_run_seconds": round(dry_seconds, 3),
        "serve_delete_user_dry_run_rows": would,
        "serve_delete_user_job_seconds": round(seconds, 3),
        "serve_delete_user_rows_affected": job["rows_affected"],
        "serve_delete_user_days_marked": job.get("days_marked_for_rebuild"),
    }
