"""The newest read-only snapshot of the exports, rebuilt in the background as they change.

`SnapshotSource.current()` hands out the newest snapshot (snapshot.build_snapshot). When
`exports/bi.duckdb` changes (every export run rewrites it or moves its mtime on), the next call
starts building a new snapshot on a background thread and keeps serving the old one until the
new one is ready; requests never wait on a rebuild after the first.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import psutil

from music_analytics.lib.core.exports import BI_DATABASE
from music_analytics.server.snapshot import PINS_FOLDER, MartSnapshot, build_snapshot, empty_filters

log = logging.getLogger(__name__)
OWNER_FILE = "owner"  # in a server's temp folder: "<pid> <process start time>"


class SnapshotSource:
    """Keeps the newest snapshot of `exports`, rebuilt in the background when it changes."""

    def __init__(
        self,
        exports: Path,
        *,
        memory_limit: str = "",
        check_interval: float = 1.0,
        retire_seconds: float = 12.0,
        prepare: Callable[[MartSnapshot], None] | None = None,
    ) -> None:
        self.exports = Path(exports)
        self.prepare = prepare  # run on each new snapshot before it serves
        # How long a replaced snapshot's pinned files stay for the requests still reading it
        # (no request runs longer than the SQL timeout): then they go, so rows deleted from
        # the exports (a user's) are gone from the server's disk too.
        self.retire_seconds = retire_seconds
        self.memory_limit = memory_limit
        self.check_interval = check_interval
        self._work = Path(tempfile.mkdtemp(prefix="music-analytics-serve-"))
        (self._work / OWNER_FILE).write_text(f"{os.getpid()} {psutil.Process().create_time()}")
        self._pins_root = self.exports / PINS_FOLDER
        self._retired: MartSnapshot | None = None  # the snapshot before the current one
        _remove_stale_pins(self._pins_root)
        self._lock = threading.Lock()
        self._snapshot: MartSnapshot | None = None
        self._building: tuple | None = None
        self._failed: tuple | None = (
            None  # exports whose rebuild failed: not retried until they change
        )
        self._checked_at = 0.0
        self._count = 0
        self.last_error: str | None = None

    def _version(self) -> tuple:
        try:
            stat = (self.exports / BI_DATABASE).stat()
        except FileNotFoundError:
            return ()
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def _build(self, version: tuple) -> MartSnapshot:
        self._count += 1
        target = self._work / f"snapshot-{self._count}.duckdb"
        pins = self._pins_root / f"{self._work.name}-{self._count}"
        for attempt in (1, 2):
            try:
                snapshot = build_snapshot(
                    self.exports,
                    target,
                    memory_limit=self.memory_limit,
                    version=version,
                    pins=pins,
                )
                snapshot.pins = pins
                if self.prepare is not None:
                    self.prepare(snapshot)
                return snapshot
            except (duckdb.IOException, duckdb.InvalidInputException) as exc:
                # An export run removed a day between the listing and the read: try again.
                target.unlink(missing_ok=True)
                shutil.rmtree(pins, ignore_errors=True)
                if attempt == 2:
                    raise
                log.info("rebuilding the mart snapshot once more: %s", exc)
        raise AssertionError("unreachable")

    def _swap(self, snapshot: MartSnapshot) -> None:
        with self._lock:
            old, self._snapshot = self._snapshot, snapshot
            retired, self._retired = self._retired, old
        if old is not None and old.path is not None:
            # Requests still on the old snapshot keep its inode; its disk is freed when they end.
            old.path.unlink(missing_ok=True)
        # A query opens its Parquet files as it runs, so the old snapshot's pinned files stay
        # until the next swap: requests on it have long finished by then.
        if retired is not None and retired.pins is not None:
            shutil.rmtree(retired.pins, ignore_errors=True)
        if old is not None and old.pins is not None:
            timer = threading.Timer(
                self.retire_seconds, shutil.rmtree, (old.pins,), {"ignore_errors": True}
            )
            timer.daemon = True
            timer.start()
        with self._lock:  # the rebuild is over once its clean-up is
            self._building = None

    def _rebuild_in_background(self, version: tuple) -> None:
        def work() -> None:
            try:
                self._swap(self._build(version))
                self.last_error = None
            except Exception as exc:  # keep serving the old snapshot; say why
                log.exception("cannot rebuild the mart snapshot")
                self.last_error = f"cannot rebuild the mart snapshot: {exc}"
                with self._lock:
                    self._building, self._failed = None, version

        threading.Thread(target=work, name="mart-snapshot", daemon=True).start()

    def current(self) -> MartSnapshot:
        """The newest snapshot; the first call builds one, later ones never wait."""
        now = time.monotonic()
        with self._lock:
            snapshot = self._snapshot
            due = now - self._checked_at >= self.check_interval
            if snapshot is not None and not due:
                return snapshot
            self._checked_at = now
        version = self._version()
        if snapshot is None:
            with self._lock:
                if self._snapshot is None:
                    self._snapshot = self._empty(version) if not version else self._build(version)
                return self._snapshot
        if version != snapshot.version and version != self._failed:
            with self._lock:
                start = self._building != version
                if start:
                    self._building = version
            if start:
                self._rebuild_in_background(version)
        return snapshot

    def _empty(self, version: tuple) -> MartSnapshot:
        return MartSnapshot(None, {}, version, time.time(), filters=empty_filters())  # type: ignore[arg-type]

    def wait_until_current(self, timeout: float = 30.0) -> MartSnapshot:
        """Block until the snapshot matches the exports (tests and benchmarks use this)."""
        deadline = time.monotonic() + timeout
        while True:
            self._checked_at = 0.0
            snapshot = self.current()
            if snapshot.version == self._version() and self._building is None:
                return snapshot
            if time.monotonic() > deadline:
                raise TimeoutError(f"the mart snapshot did not catch up: {self.last_error}")
            time.sleep(0.05)

    def close(self) -> None:
        with self._lock:
            snapshot, self._snapshot = self._snapshot, None
        if snapshot is not None and snapshot.conn is not None:
            snapshot.conn.close()
        shutil.rmtree(self._work, ignore_errors=True)
        for pinned in (snapshot, self._retired):
            if pinned is not None and pinned.pins is not None:
                shutil.rmtree(pinned.pins, ignore_errors=True)


def _owner_gone(work: Path) -> bool:
    """Whether the server process that made the temp folder `work` is gone (a SIGKILLed one
    leaves its folder behind; its owner file names its pid and start time)."""
    if not work.exists():
        return True
    try:
        pid, started = (work / OWNER_FILE).read_text().split()
        return abs(psutil.Process(int(pid)).create_time() - float(started)) >= 1
    except (OSError, ValueError):
        return False  # no owner file (yet): leave it
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return True


def _remove_stale_pins(root: Path) -> None:
    """Pin folders (and temp folders) of servers that are gone: their temp folder no longer
    exists, or the process that made it has died."""
    if not root.is_dir():
        return
    for folder in root.iterdir():
        work = Path(tempfile.gettempdir()) / folder.name.rsplit("-", 1)[0]
        if _owner_gone(work):
            shutil.rmtree(folder, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)
