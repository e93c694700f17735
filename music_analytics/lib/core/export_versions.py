"""Immutable names for the versions of an exported day's file, for readers that must not see
a file change under them.

DuckDB reads a Parquet file's footer and its column chunks in separate opens of its path: if
the path is replaced between the two (an export rewriting the day), the read fails ("Prefetch
registered for bytes outside file", "TProtocolException: Invalid data") or, with files of a
similar size, may read the wrong bytes. So each version of a day's `data.parquet` also gets a
name that never changes content, `.v-<ns>.parquet` beside it (a hard link: same bytes, no
copy), where `<ns>` is when it was written. exports/bi.duckdb's views list those names; glob
readers (pandas/pyarrow skip dot files, the server's snapshot pins by hard link) keep reading
`data.parquet`. A version superseded more than `SUPERSEDED_KEEP_SECONDS` ago is removed by
the next export of that day: a reader that opened bi.duckdb before then still finds every
file its views name.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

VERSION_PREFIX = ".v-"
SUPERSEDED_KEEP_SECONDS = 6 * 3600  # a BI connection older than this reconnects (README)


def version_name(written_ns: int) -> str:
    """The immutable file name of a version written at `written_ns` (zero-padded: names sort
    as times)."""
    return f"{VERSION_PREFIX}{written_ns:020d}.parquet"


def _written_ns(name: str) -> int | None:
    digits = name.removeprefix(VERSION_PREFIX).removesuffix(".parquet")
    if not name.startswith(VERSION_PREFIX) or not digits.isdigit():
        return None
    return int(digits)


def link_version(data_file: Path, folder: Path) -> Path:
    """Give `data_file` (about to become, or already, `folder`'s data file) its immutable name
    inside `folder`, as a hard link; a name later than any already there."""
    written = time.time_ns()
    existing = [n for n in map(_written_ns, os.listdir(folder)) if n is not None]
    written = max([written, *(n + 1 for n in existing)])
    link = folder / version_name(written)
    os.link(data_file, link)
    return link


def current_version(folder: Path, data_file_name: str) -> Path | None:
    """The immutable name of the day's current data file (the version that is the same file),
    made now for a day exported before versions existed; None when the day has no data file."""
    data_file = folder / data_file_name
    try:
        current = data_file.stat()
    except FileNotFoundError:
        return None
    for name in sorted(os.listdir(folder), reverse=True):
        if _written_ns(name) is not None and os.stat(folder / name).st_ino == current.st_ino:
            return folder / name
    return link_version(data_file, folder)


def remove_superseded(folder: Path, data_file_name: str, keep_seconds: float) -> int:
    """Remove the day's versions superseded (by a later version) more than `keep_seconds`
    ago; never the current one. Returns how many were removed."""
    current = current_version(folder, data_file_name)
    versions = sorted(
        (n, folder / name) for name in os.listdir(folder) if (n := _written_ns(name)) is not None
    )
    cutoff = time.time_ns() - int(keep_seconds * 1e9)
    removed = 0
    for (_, path), (superseded_at, _) in zip(versions, versions[1:], strict=False):
        if path != current and superseded_at < cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
