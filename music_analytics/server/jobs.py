"""The Data Sources API's jobs: one JSON file each in `$MUSIC_ANALYTICS_HOME/jobs/`, run in a
background thread of the server process that accepted them, answered by `GET /v0/jobs/{id}`.

A job's file is replaced whole (temporary file, fsync, rename), so every worker process of
`serve --workers N` reads the same state and a crash never leaves half a file. A job records
the process running it (pid and that process's start time). When a server starts, every job
still `waiting` or `working` whose process is gone (SIGKILL, power cut) is taken over and run
again (`recover`): each kind's work first looks for what a previous attempt committed (the
operation's row in raw.datasource_operations, or the landed file of an import), so a job that
had finished its work before dying is only marked done, and one that had not does its work
once. A job that keeps dying is marked error after MAX_ATTEMPTS.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psutil

STATUSES = ("waiting", "working", "done", "error")
UNFINISHED = ("waiting", "working")
MAX_ATTEMPTS = 3
_ID = re.compile(r"^[0-9a-f]{32}$")
log = logging.getLogger(__name__)

Work = Callable[[dict, Callable[..., dict]], dict]  # (job, update) -> the fields when done


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _process_started() -> float:
    return psutil.Process().create_time()


def _owner_alive(job: dict) -> bool:
    pid, started = job.get("pid"), job.get("pid_started")
    if not isinstance(pid, int) or not isinstance(started, int | float):
        return False
    try:
        return abs(psutil.Process(pid).create_time() - started) < 1
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


class JobStore:
    """The job files of one home; safe to use from several threads and processes."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._lock = threading.Lock()

    def _path(self, job_id: str) -> Path:
        return self.folder / f"{job_id}.json"

    def get(self, job_id: str) -> dict | None:
        """The job, or None for an unknown (or malformed) id."""
        if not _ID.match(job_id or ""):
            return None
        try:
            return json.loads(self._path(job_id).read_text())
        except FileNotFoundError:
            return None

    def _write(self, job: dict) -> dict:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{job['id']}.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(tmp, "w") as handle:
            json.dump(job, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self._path(job["id"]))
        return job

    def create(self, kind: str, datasource: str, **fields) -> dict:
        """A new `waiting` job owned by this process."""
        job_id = uuid.uuid4().hex
        now = _now()
        job = {
            "id": job_id,
            "job_id": job_id,
            "kind": kind,
            "status": "waiting",
            "datasource": {"id": datasource, "name": datasource},
            "created_at": now,
            "updated_at": now,
            "rows_affected": None,
            "error": None,
            "attempts": 0,
            "pid": os.getpid(),
            "pid_started": _process_started(),
            **fields,
        }
        with self._lock:
            return self._write(job)

    def update(self, job_id: str, **fields) -> dict:
        """The job with `fields` changed, written whole."""
        with self._lock:
            job = self.get(job_id) or {}
            job.update(fields, updated_at=_now())
            return self._write(job)

    @contextmanager
    def _claiming(self):
        """One process at a time decides which dead jobs it takes over."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".recovery.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def claim_orphans(self) -> list[dict]:
        """The unfinished jobs whose process is gone, now owned by this process."""
        claimed = []
        with self._claiming():
            for path in sorted(self.folder.glob("*.json")):
                try:
                    job = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue
                if job.get("status") not in UNFINISHED or _owner_alive(job):
                    continue
                claimed.append(
                    self.update(job["id"], pid=os.getpid(), pid_started=_process_started())
                )
        return claimed


class JobRunner:
    """Runs jobs one after another in a background thread; `kinds` maps a kind to its work."""

    def __init__(self, store: JobStore, kinds: dict[str, Work]) -> None:
        self.store = store
        self.kinds = kinds
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="datasource-job")

    def submit(self, job: dict):
        return self._pool.submit(self.run, job["id"])

    def run(self, job_id: str) -> dict:
        """Do the job's work and record how it ended; never raises."""
        job = self.store.get(job_id)
        if job is None or job["status"] not in UNFINISHED:
            return job or {}
        attempts = int(job.get("attempts") or 0) + 1
        if attempts > MAX_ATTEMPTS:
            return self.store.update(
                job_id,
                status="error",
                error=f"the server stopped during this job {MAX_ATTEMPTS} times: send it again",
            )
        job = self.store.update(job_id, status="working", attempts=attempts, started_at=_now())
        try:
            result = self.kinds[job["kind"]](job, lambda **f: self.store.update(job_id, **f))
        except Exception as exc:  # the job's answer: one line, never the server's death
            message = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            log.warning("job %s (%s) failed: %s", job_id, job["kind"], message)
            return self.store.update(job_id, status="error", error=message)
        return self.store.update(job_id, status="done", finished_at=_now(), **result)

    def recover(self) -> list[str]:
        """Take over the jobs of dead processes and run them again; their ids."""
        orphans = self.store.claim_orphans()
        for job in orphans:
            self.submit(job)
        return [job["id"] for job in orphans]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)


def job_answer(job: dict, base_url: str) -> dict:
    """The job as Tinybird shows it: the job itself plus `job_url`."""
    public = {k: v for k, v in job.items() if k not in ("pid", "pid_started")}
    return {**public, "job_url": f"{base_url.rstrip('/')}/v0/jobs/{job['id']}"}
