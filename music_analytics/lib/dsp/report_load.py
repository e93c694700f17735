"""Loading one DSP analytics-report ZIP into the raw tables, replacing its (dsp, date) partition.

The ZIP is read a record at a time (`iter_report_records`) and inserted in batches, so the
Python side's memory stays flat whatever the report's size (DuckDB keeps the uncommitted rows
within its memory_limit and spills the rest). Each record becomes a row of
raw.dsp_report_records (the whole record kept as JSON), one row per country of its
country_stats, and one row per key of every nested breakdown (`section.sub` objects such as
demographics.age_groups), found generically so that sections a DSP adds later load without a
code change. Records without a usable track_id, or for another day, go to
raw.dsp_report_quarantine with the reason.

A report is one transaction: the partition's old rows are deleted, the new ones inserted in
batches, the record count checked against meta.total_records and the load recorded; any error
rolls back, leaving the previous load of the partition as it was.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from music_analytics.lib.core.frames import rows_frame
from music_analytics.lib.core.json_reader import DEFAULT_JSON_LIMITS, JsonLimits
from music_analytics.lib.core.raw_writer import file_sha256, raw_transaction
from music_analytics.lib.core.warehouse import RAW_SCHEMA, ensure_raw_tables
from music_analytics.lib.core.zip_safety import DEFAULT_LIMITS, ZipLimits
from music_analytics.lib.dsp.catalog import dsp_by_key
from music_analytics.lib.dsp.report_records import RecordBatch, add_record
from music_analytics.lib.dsp.report_zip import (
    ReportMeta,
    check_record_count,
    iter_report_records,
    read_report_meta,
)

PARTITION_TABLES = (
    "dsp_report_records",
    "dsp_report_countries",
    "dsp_report_breakdowns",
    "dsp_report_quarantine",
)


@dataclass(frozen=True)
class DspLoadResult:
    """What loading one report did; `replaced_rows` counts the partition's previous rows in all
    four partition tables (records, countries, breakdowns, quarantine)."""

    load_id: str
    dsp: str
    report_date: date
    total_records: int
    records_loaded: int
    records_quarantined: int
    country_rows: int
    breakdown_rows: int
    content_sha256: str
    replaced_rows: int


def _insert_rows(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    rows: list[tuple],
    names: str,
    dtypes: str,
    constants: dict[str, Any],
) -> None:
    """INSERT ... SELECT from the rows as a DataFrame, with (dsp, report_date) first and
    (load_id, loaded_at) last bound as parameters instead of repeated per row.

    The frame is found by DuckDB's replacement scan of local variables; `conn.register` would
    create a view, and a view dropped inside a transaction keeps its frame alive until the
    commit, so memory would grow with the report.
    """
    if not rows:
        return
    dsp_report_batch_rows = rows_frame(rows, names.split(), dtypes)  # noqa: F841 (read by name)
    listed = ", ".join(names.split())
    conn.execute(
        f"insert into {RAW_SCHEMA}.{table} (dsp, report_date, {listed}, load_id, loaded_at) "
        f"select $dsp, $day, {listed}, $load_id, $loaded_at from dsp_report_batch_rows",
        constants,
    )


@dataclass
class _Counts:
    loaded: int = 0
    quarantined: int = 0
    countries: int = 0
    breakdowns: int = 0


def _flush(
    conn: duckdb.DuckDBPyConnection, batch: RecordBatch, constants: dict[str, Any], counts: _Counts
) -> None:
    """Insert the batch's rows into the four tables."""
    _insert_rows(
        conn,
        "dsp_report_records",
        batch.records,
        "record_index record_id track_id track_name album_id album_name isrc dsp_track_ref record",
        "iLlsLssss",
        constants,
    )
    _insert_rows(
        conn,
        "dsp_report_countries",
        batch.countries,
        "record_index track_id country stats",
        "ilss",
        constants,
    )
    _insert_rows(
        conn,
        "dsp_report_breakdowns",
        batch.breakdowns,
        "record_index track_id dimension key value",
        "ilssf",
        constants,
    )
    _insert_rows(
        conn,
        "dsp_report_quarantine",
        batch.quarantine,
        "record_index record error",
        "iss",
        constants,
    )
    counts.loaded += len(batch.records)
    counts.quarantined += len(batch.quarantine)
    counts.countries += len(batch.countries)
    counts.breakdowns += len(batch.breakdowns)


def _load_records(
    conn: duckdb.DuckDBPyConnection,
    path: Path,
    meta: ReportMeta,
    limits: ZipLimits,
    json_limits: JsonLimits,
    batch_records: int,
    constants: dict[str, Any],
) -> _Counts:
    """Stream the report's records into the tables, `batch_records` records per insert."""
    ref_field = dsp_by_key(meta.dsp).track_ref_field
    counts = _Counts()
    batch = RecordBatch()
    with closing(iter_report_records(path, limits=limits, json_limits=json_limits)) as records:
        for index, record in enumerate(records):
            add_record(batch, index, record, meta.report_date, ref_field)
            if len(batch) >= batch_records:
                _flush(conn, batch, constants, counts)
                batch = RecordBatch()
    _flush(conn, batch, constants, counts)
    return counts


def _delete_partition(conn: duckdb.DuckDBPyConnection, dsp: str, day: date) -> int:
    """Delete the partition from the four partition tables; the number of rows deleted."""
    deleted = 0
    for table in PARTITION_TABLES:
        deleted += conn.execute(
            f"delete from {RAW_SCHEMA}.{table} where dsp = ? and report_date = ?", [dsp, day]
        ).fetchone()[0]
    return deleted


def load_report_zip(
    conn: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    source: str,
    report_id: int | None = None,
    archive_path: str | None = None,
    limits: ZipLimits = DEFAULT_LIMITS,
    json_limits: JsonLimits = DEFAULT_JSON_LIMITS,
    expected_dsp_id: int | None = None,
    expected_date: date | None = None,
    batch_records: int = 2000,
) -> DspLoadResult:
    """Load one report ZIP into the raw DSP tables, replacing its (dsp, report_date) partition.

    `source` (api | landing), `report_id` and `archive_path` (default: `path`) are recorded in
    raw.dsp_report_loads. Raises DspReportFileError for a bad file (checked against
    `expected_dsp_id` / `expected_date` when given) or a record count that differs from
    meta.total_records; on any error nothing is written.
    """
    path = Path(path)
    if batch_records < 1:
        raise ValueError(f"batch_records must be at least 1, got {batch_records}")
    meta = read_report_meta(
        path,
        limits=limits,
        json_limits=json_limits,
        expected_dsp_id=expected_dsp_id,
        expected_date=expected_date,
    )
    sha = file_sha256(path)
    ensure_raw_tables(conn)
    # The report's day is rebuilt whatever the report holds: an empty report empties it.
    with raw_transaction(conn, "dsp") as write:
        load_id, loaded_at = write.load_id, write.loaded_at
        constants = {
            "dsp": meta.dsp,
            "day": meta.report_date,
            "load_id": load_id,
            "loaded_at": loaded_at,
        }
        replaced = _delete_partition(conn, meta.dsp, meta.report_date)
        counts = _load_records(conn, path, meta, limits, json_limits, batch_records, constants)
        check_record_count(path, meta, counts.loaded + counts.quarantined)
        conn.execute(
            f"insert into {RAW_SCHEMA}.dsp_report_loads (load_id, dsp, report_date, dsp_id, "
            "report_id, source, archive_path, content_sha256, generated_at, total_records, "
            "records_loaded, records_quarantined, country_rows, breakdown_rows, loaded_at) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                load_id,
                meta.dsp,
                meta.report_date,
                meta.dsp_id,
                report_id,
                source,
                archive_path if archive_path is not None else str(path),
                sha,
                meta.generated_at,
                meta.total_records,
                counts.loaded,
                counts.quarantined,
                counts.countries,
                counts.breakdowns,
                loaded_at,
            ],
        )
        write.touch([meta.report_date])
    return DspLoadResult(
        load_id=load_id,
        dsp=meta.dsp,
        report_date=meta.report_date,
        total_records=meta.total_records,
        records_loaded=counts.loaded,
        records_quarantined=counts.quarantined,
        country_rows=counts.countries,
        breakdown_rows=counts.breakdowns,
        content_sha256=sha,
        replaced_rows=replaced,
    )
