"""Landing folders: where each source's files are dropped, the one scan of each folder, and
setting aside what cannot be loaded."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

REJECTED = "rejected"

# The files each landing folder takes (lower-case name endings).
LANDING_SUFFIXES: dict[str, tuple[str, ...]] = {
    "events": (".ndjson", ".jsonl", ".ndjson.gz", ".jsonl.gz"),
    "dsp": (".zip",),
    "spotify": (".json", ".zip"),
}
LANDING_FOLDERS = {"events": "events", "dsp": "dsp", "spotify": "spotify_history"}


def landing_folder(home: Path | str, source: str) -> Path:
    """Where files of `source` (events | dsp | spotify) are dropped under a home."""
    return Path(home) / "landing" / LANDING_FOLDERS[source]


def landing_files(folder: Path, source: str) -> list[Path]:
    """The files of `source` waiting directly in `folder`, oldest first (then by name).

    Only the top level: `rejected/` and other sub-folders are not entered. Names starting with
    a dot (copy and editor temporaries, the folder's ledger) are skipped.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    suffixes = LANDING_SUFFIXES[source]
    files = [
        path
        for path in folder.iterdir()
        if not path.name.startswith(".") and path.name.lower().endswith(suffixes) and path.is_file()
    ]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))


def reject_file(path: Path, reason: str) -> Path:
    """Move a file that cannot be loaded to `rejected/` beside it, with `<name>.error.txt`.

    The user sees why in the file next to it; the landing folder no longer offers it.
    """
    rejected = path.parent / REJECTED
    rejected.mkdir(exist_ok=True)
    target = rejected / path.name
    shutil.move(path, target)
    (rejected / f"{path.name}.error.txt").write_text(reason.rstrip() + "\n")
    return target


def settled_files(
    paths: list[Path], previous: dict[str, list[int]], stable_seconds: int
) -> tuple[list[Path], dict[str, list[int]]]:
    """Which files are completely written: same size and mtime as at the previous look, and
    at least `stable_seconds` old. Returns them and the signatures to remember for next time.
    """
    seen: dict[str, list[int]] = {}
    ready: list[Path] = []
    now_ns = time.time_ns()
    for path in paths:
        stat = path.stat()
        signature = [stat.st_size, stat.st_mtime_ns]
        seen[str(path)] = signature
        settled = now_ns - stat.st_mtime_ns >= stable_seconds * 1_000_000_000
        if previous.get(str(path)) == signature and settled:
            ready.append(path)
    return ready, seen


def file_run_key(path: Path) -> str:
    """A run key that is new whenever the file is new or rewritten: name, size and mtime."""
    stat = path.stat()
    return f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}"


LEDGER = ".loaded"  # in a landing folder: run keys of the files that were loaded (or skipped)


def record_loaded(folder: Path, path: Path) -> None:
    """Note in the folder's ledger that `path` (as it is now) was loaded, so its sensor does
    not start a run for it; runs started by `refresh` and by the sensor both write here."""
    if path.parent != folder or not path.exists():
        return
    with (folder / LEDGER).open("a") as ledger:  # one short O_APPEND write: safe across processes
        ledger.write(file_run_key(path) + "\n")


def loaded_keys(folder: Path) -> set[str]:
    """The run keys in a landing folder's ledger."""
    ledger = folder / LEDGER
    return set(ledger.read_text().split()) if ledger.exists() else set()
