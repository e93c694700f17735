"""The rules every raw write follows: load ids, content hashes, one transaction per load, and
the rebuild ledger written inside that transaction.

A loader (events, DSP reports, Spotify) opens `raw_transaction(...)`, inserts its rows, and
calls `RawWrite.touch(days)`: the days land in raw.pending_rebuilds (and in the raw Parquet
layer's own queue, lib/core/raw_layer_ledger.py) in the same commit as the rows, so a crash
after the commit never loses a day to rebuild and a crash before it never leaves a day without
its rows.
"""

from __future__ import annotations

import gzip
import hashlib
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from music_analytics.lib.core.crash_points import crash_point
from music_analytics.lib.core.raw_layer_ledger import record_layer_days
from music_analytics.lib.core.rebuild_ledger import record_pending

_HASH_CHUNK = 8 << 20


def utc_now() -> datetime:
    """Now as a naive UTC timestamp (how the raw tables store times)."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_load_id(at: datetime | None = None) -> str:
    """A time-ordered load id: each load's rows then sit in a narrow zone-map range, so the
    per-load look-ups skip the rest of a table."""
    at = at or utc_now()
    return f"{at:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"


def file_digest(path: Path, *, decompress_gzip: bool = False) -> tuple[str, int]:
    """SHA-256 and length of a file's bytes (of its decompressed content for `.gz` when asked),
    so a renamed copy, or a re-gzipped one, is recognised."""
    digest, size = hashlib.sha256(), 0
    gz = decompress_gzip and Path(path).name.lower().endswith(".gz")
    with (gzip.open if gz else open)(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def file_sha256(path: Path, *, decompress_gzip: bool = False) -> str:
    """SHA-256 of a file's bytes (see `file_digest`)."""
    return file_digest(path, decompress_gzip=decompress_gzip)[0]


@dataclass
class RawWrite:
    """One load in progress: its id and time, the days it touched so far, and the further
    loads committed in the same transaction (`another_load`)."""

    conn: duckdb.DuckDBPyConnection
    source: str
    load_id: str
    loaded_at: datetime
    days: set[date] = field(default_factory=set)
    more: list[RawWrite] = field(default_factory=list)

    def touch(self, days: Iterable[date]) -> None:
        """Note days whose marts must be rebuilt; written to the ledger at commit."""
        self.days.update(days)

    def another_load(self) -> RawWrite:
        """A further load in this transaction (the next file of a batch): its own load id and
        days, in the ledger at the same commit."""
        load = RawWrite(self.conn, self.source, new_load_id(self.loaded_at), self.loaded_at)
        self.more.append(load)
        return load

    def loads(self) -> list[RawWrite]:
        return [self, *self.more]


@contextmanager
def raw_transaction(
    conn: duckdb.DuckDBPyConnection,
    source: str,
    *,
    loaded_at: datetime | None = None,
    wrap_error: Callable[[duckdb.Error], Exception] | None = None,
) -> Iterator[RawWrite]:
    """One load (or several: `RawWrite.another_load`) as one transaction: rows, load records
    and ledger days commit together.

    Any exception rolls back and propagates (a loader ends a duplicate load by raising its
    own exception); a DuckDB error becomes the loader's error type through `wrap_error`.
    """
    loaded_at = loaded_at or utc_now()
    write = RawWrite(conn, source, new_load_id(loaded_at), loaded_at)
    conn.execute("begin transaction")
    try:
        yield write
        for load in write.loads():
            record_pending(conn, source, load.days, load.load_id, load.loaded_at)
        record_layer_days(conn, source, {d for load in write.loads() for d in load.days}, loaded_at)
        crash_point("raw_load")
        conn.execute("commit")
    except duckdb.Error as exc:
        conn.execute("rollback")
        if wrap_error is None:
            raise
        raise wrap_error(exc) from exc
    except BaseException:
        conn.execute("rollback")
        raise
