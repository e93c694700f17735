"""Which event files were loaded before, so that they are skipped without being read.

Two look-ups in raw.event_file_loads, cheapest first: a file still as it was when it loaded
(same path, size and mtime_ns) is known without opening it; any other file is hashed (its
decompressed content, so a renamed or re-gzipped copy matches) and is known when content with
that hash loaded under any name. A file rewritten in place keeping its size and its mtime to the
nanosecond (only a deliberate `touch -d` does that) would pass for the one that loaded.

Hashing runs on threads ahead of the loader: hashlib and zlib release the GIL, so files hash
in parallel with each other and with DuckDB's work.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb

from music_analytics.lib.core.raw_writer import file_digest
from music_analytics.lib.core.warehouse import RAW_SCHEMA
from music_analytics.lib.events.file_results import EventFileError

HASH_THREADS = min(4, os.cpu_count() or 1)


@dataclass(frozen=True)
class FileDigest:
    """A file's content hash and size, both of its decompressed bytes."""

    sha256: str
    size: int


def content_digest(path: Path) -> FileDigest:
    """SHA-256 and size of the file's decompressed content (gzip by the `.gz` name)."""
    try:
        sha256, size = file_digest(path, decompress_gzip=True)
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise EventFileError(f"cannot read event file {path}: {exc}") from exc
    return FileDigest(sha256, size)


def digests_ahead(paths: list[Path]) -> Iterator[tuple[Path, FileDigest | EventFileError]]:
    """Each file's digest (or why it cannot be read), in order, hashed ahead on threads.

    Close the iterator (`contextlib.closing`) to cancel the hashing not yet started.
    """
    executor = ThreadPoolExecutor(max_workers=HASH_THREADS, thread_name_prefix="event-file-sha")
    try:
        futures = [(path, executor.submit(content_digest, path)) for path in paths]
        for path, future in futures:
            try:
                yield path, future.result()
            except EventFileError as exc:
                yield path, exc
    finally:
        executor.shutdown(wait=False, cancel_futures=True)


def loaded_unchanged(
    conn: duckdb.DuckDBPyConnection, files: dict[Path, os.stat_result]
) -> dict[Path, str]:
    """The files that loaded before and are unchanged since: path -> content hash."""
    if not files:
        return {}
    rows = conn.execute(
        f"select source_file, size_bytes, mtime_ns, content_sha256 "
        f"from {RAW_SCHEMA}.event_file_loads where source_file in (select unnest(?))",
        [sorted({str(path) for path in files})],
    ).fetchall()
    recorded = {(name, size, mtime): sha for name, size, mtime, sha in rows}
    found = {}
    for path, stat in files.items():
        sha = recorded.get((str(path), stat.st_size, stat.st_mtime_ns))
        if sha is not None:
            found[path] = sha
    return found


def loaded_content(conn: duckdb.DuckDBPyConnection, shas: list[str]) -> dict[str, str]:
    """Of these content hashes, those already loaded: hash -> the file they loaded from."""
    if not shas:
        return {}
    rows = conn.execute(
        f"select content_sha256, source_file from {RAW_SCHEMA}.event_file_loads "
        "where content_sha256 in (select unnest(?))",
        [sorted(set(shas))],
    ).fetchall()
    return dict(rows)
