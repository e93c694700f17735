"""Opening the warehouse file: wait out another writer's lock, fail at once on a broken file.

dagster-duckdb retries every `duckdb.IOException` ten times with growing waits (about two
minutes), which is right for DuckDB's file lock (another process is writing) and wrong for a
corrupt or truncated `warehouse.duckdb`, which no wait repairs. `connect_warehouse` retries the
lock only; any other failure to open raises WarehouseFileError at once, one line naming the
file, what DuckDB found and what to do, including which inputs a rebuild can reload
(`rebuild_advice`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

# DuckDB's messages for a file that is not (or no longer) a whole database file.
_BROKEN_MARKERS = (
    "not a valid duckdb database file",
    "could not read enough bytes",
    "corrupt database file",
    "checksum",
    "is not a database",
)
# A file that opens can still hold a damaged block: DuckDB says so when a query reads it.
_CORRUPT_BLOCK_MARKER = "corrupt database file"
_LOCK_MARKER = "could not set lock"
LOCK_WAITS_SECONDS = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 51.2)  # dagster-duckdb's


class WarehouseFileError(RuntimeError):
    """The warehouse file cannot be opened; the message says why and what to do.

    `reason`: broken (corrupt or truncated), locked (another process kept it), or unreadable
    (permissions, a newer DuckDB's file).
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        return _unpickle_error, (str(self), self.reason)


def _unpickle_error(message: str, reason: str) -> WarehouseFileError:
    return WarehouseFileError(message, reason=reason)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def is_lock_conflict(exc: BaseException) -> bool:
    """True for DuckDB's "Could not set lock on file": another process has the file open."""
    return _LOCK_MARKER in str(exc).lower()


def is_broken_file(exc: BaseException) -> bool:
    """True when DuckDB's error says the file is corrupt, truncated or not a database."""
    text = str(exc).lower()
    return any(marker in text for marker in _BROKEN_MARKERS)


def is_corrupt_block(message: str) -> bool:
    """True when a query's error says a block of the file failed its checksum."""
    return _CORRUPT_BLOCK_MARKER in message.lower()


@contextmanager
def corruption_as_warehouse_error(path: Path | str) -> Iterator[None]:
    """Turn DuckDB's error for a damaged block, raised by any query of the block, into the
    one-line WarehouseFileError (`broken_warehouse_error`); other errors pass unchanged."""
    try:
        yield
    except duckdb.Error as exc:
        if is_corrupt_block(str(exc)):
            raise broken_warehouse_error(Path(path), exc) from None
        raise


def rebuild_advice(home: Path) -> str:
    """Which inputs a rebuild from an empty warehouse can reload, and which it cannot.

    Event files stay in landing/events/ (loaded once, noted in its `.loaded` ledger); loaded
    DSP report ZIPs and Spotify exports are kept under archive/; polled Spotify plays live
    only in the warehouse (recently-played remembers the last 50).
    """
    home = Path(home)
    events = home / "landing" / "events"
    dsp = home / "archive" / "dsp"
    history = home / "archive" / "spotify_history"
    parts = []
    event_files = [p for p in events.glob("*") if p.is_file() and not p.name.startswith(".")]
    if event_files:
        parts.append(f"the {len(event_files)} event file(s) in {events} (delete its .loaded)")
    reports = list(dsp.glob("*/*/*.zip")) if dsp.is_dir() else []
    if reports:
        parts.append(
            f"the {len(reports)} DSP report ZIP(s) under {dsp} (copy them to landing/dsp/)"
        )
    exports = [p for p in history.glob("*") if p.is_file()] if history.is_dir() else []
    if exports:
        parts.append(
            f"the {len(exports)} Spotify export file(s) in {history} (move them to "
            "landing/spotify_history/)"
        )
    kept = "; ".join(parts) if parts else "nothing: no loaded input is kept on disk"
    return (
        f"a rebuild reloads {kept}; Spotify plays polled from recently-played (beyond its "
        "last 50) are only in the warehouse"
    )


def broken_warehouse_error(path: Path, exc: BaseException | str) -> WarehouseFileError:
    """The one-line error for a corrupt or truncated warehouse, with what a rebuild recovers
    (`exc`: DuckDB's error, or its message as another process reported it)."""
    path = Path(path)
    found = exc if isinstance(exc, str) else _first_line(exc)
    return WarehouseFileError(
        f"the warehouse {path} is corrupt or truncated (DuckDB: {found}): restore "
        f"it from a backup, or move it aside (mv {path} {path}.broken) and run `music-analytics "
        f"refresh` to rebuild it; {rebuild_advice(path.parent)}",
        reason="broken",
    )


def connect_warehouse(
    path: Path | str,
    *,
    read_only: bool = False,
    config: Mapping[str, Any] | None = None,
    lock_waits: tuple[float, ...] | None = None,
    sleep: Callable[[float], object] = time.sleep,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to the warehouse file, retrying only while another process holds
    its lock (`lock_waits`, default LOCK_WAITS_SECONDS). Raises WarehouseFileError at once for
    a broken file, and once the waits are used up for a lock that stays held."""
    path = Path(path)
    waits = iter(LOCK_WAITS_SECONDS if lock_waits is None else lock_waits)
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=dict(config or {}))
        except duckdb.Error as exc:
            if is_lock_conflict(exc):
                wait = next(waits, None)
                if wait is not None:
                    sleep(wait)
                    continue
                raise WarehouseFileError(
                    f"the warehouse {path} is locked by another process ({_first_line(exc)}): "
                    "wait for that run to finish, or stop the process named, then try again",
                    reason="locked",
                ) from None
            if is_broken_file(exc):
                raise broken_warehouse_error(path, exc) from None
            raise WarehouseFileError(
                f"the warehouse {path} cannot be opened (DuckDB: {_first_line(exc)}): check the "
                "file's permissions and that this DuckDB version can read it",
                reason="unreadable",
            ) from None


def check_warehouse(path: Path | str) -> None:
    """Open and close the warehouse once, so a broken file fails before any run starts.

    A missing file is fine (the first run creates it); so is one locked by a running writer
    (the runs wait for it as usual).
    """
    path = Path(path)
    if not path.exists():
        return
    try:
        conn = connect_warehouse(path, read_only=True, lock_waits=())
    except WarehouseFileError as exc:
        if exc.reason != "locked":
            raise
        return
    conn.close()
