"""The raw writer's rules: load ids, hashes, one transaction per load with its ledger days."""

import gzip
import hashlib
from datetime import date, datetime

import duckdb
import pytest

from music_analytics.lib.core.raw_writer import file_sha256, new_load_id, raw_transaction
from music_analytics.lib.core.rebuild_ledger import clear_pending, read_pending, record_pending
from music_analytics.lib.core.warehouse import ensure_raw_tables

D1, D2, D3 = date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 9)


@pytest.fixture
def conn(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        ensure_raw_tables(conn)
        conn.execute("create table raw.t (x int)")
        yield conn


def test_file_sha256_matches_hashlib_and_sees_through_gzip(tmp_path):
    data = b"abc" * 100_000
    plain, packed = tmp_path / "x.ndjson", tmp_path / "x.ndjson.gz"
    plain.write_bytes(data)
    packed.write_bytes(gzip.compress(data))
    assert file_sha256(plain) == hashlib.sha256(data).hexdigest()
    assert file_sha256(packed, decompress_gzip=True) == file_sha256(plain)
    assert file_sha256(packed) != file_sha256(plain)


def test_load_ids_are_time_ordered_and_unique():
    ids = [new_load_id() for _ in range(50)]
    assert ids == sorted(ids) and len(set(ids)) == 50


def test_rows_and_ledger_days_commit_together(conn):
    with raw_transaction(conn, "events") as write:
        conn.execute("insert into raw.t values (1)")
        write.touch([D1, D2, D1])
    pending = read_pending(conn)
    assert pending.days_by_source == {"events": frozenset({D1, D2})}
    assert conn.execute("select count(*) from raw.t").fetchone()[0] == 1


def test_a_failed_load_writes_neither_rows_nor_ledger_days(conn):
    with pytest.raises(RuntimeError), raw_transaction(conn, "dsp") as write:
        conn.execute("insert into raw.t values (1)")
        write.touch([D1])
        raise RuntimeError("boom")
    assert not read_pending(conn)
    assert conn.execute("select count(*) from raw.t").fetchone()[0] == 0


def test_duckdb_errors_become_the_loaders_error(conn):
    with (
        pytest.raises(ValueError, match="cannot store"),
        raw_transaction(conn, "spotify", wrap_error=lambda exc: ValueError(f"cannot store: {exc}")),
    ):
        conn.execute("insert into raw.missing values (1)")
    assert not read_pending(conn)


def test_clear_removes_only_what_the_build_read(conn):
    record_pending(conn, "events", [D1, D2], "load-1", datetime(2025, 3, 3))
    seen = read_pending(conn)
    # a load that lands while the build runs
    record_pending(conn, "events", [D2, D3], "load-2", datetime(2025, 3, 4))
    record_pending(conn, "dsp", [D1], "load-3", datetime(2025, 3, 4))
    assert clear_pending(conn, ["events"], seen.days, seen.up_to) == 2
    after = read_pending(conn)
    assert after.days_by_source == {"events": frozenset({D2, D3}), "dsp": frozenset({D1})}


def test_unknown_source_is_refused(conn):
    with pytest.raises(ValueError, match="unknown ledger source"):
        record_pending(conn, "kafka", [D1], "x", datetime(2025, 1, 1))
