"""The raw stream-event tables, fed by files in landing/events/."""

from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from music_analytics.defs.resources import DataFolders, open_warehouse
from music_analytics.lib.core.landing import landing_files, record_loaded, reject_file
from music_analytics.lib.core.markdown import markdown_table
from music_analytics.lib.core.warehouse import ensure_raw_tables, table_row_count
from music_analytics.lib.events.files import (
    EventFileError,
    FileLoadResult,
    load_event_files,
)

RAW_EVENTS = dg.AssetKey(["raw", "stream_events"])
RAW_EVENTS_QUARANTINE = dg.AssetKey(["raw", "stream_events_quarantine"])
QUARANTINE_CHECK = "quarantine_rate_below_threshold"


class EventFilesConfig(dg.Config):
    """Which files an ingest run loads."""

    paths: list[str] = Field(
        default_factory=list,
        description="Event files to load; empty loads every file waiting in landing/events/.",
    )


def _files_table(results: list[FileLoadResult], failures: dict[str, str]) -> str:
    rows = [
        (
            Path(r.source_file).name,
            r.status,
            r.lines,
            r.rows_loaded,
            r.rows_quarantined,
            f"{r.days_touched[0]}..{r.days_touched[-1]}" if r.days_touched else "",
        )
        for r in results
    ]
    rows += [(Path(f).name, f"failed: {why}", "", "", "", "") for f, why in failures.items()]
    return markdown_table(["file", "status", "lines", "loaded", "quarantined", "days"], rows)


def _preview(conn, sql: str, params: list) -> str:
    cursor = conn.execute(sql, params)
    return markdown_table([d[0] for d in cursor.description], cursor.fetchall())


@dg.multi_asset(
    name="stream_event_files",
    specs=[
        dg.AssetSpec(
            RAW_EVENTS,
            group_name="raw_events",
            kinds={"duckdb"},
            description=(
                "Valid music-stream events from NDJSON files in landing/events/, with lineage "
                "(file, line, load id, loaded_at). Append-only; a file already loaded is skipped."
            ),
        ),
        dg.AssetSpec(
            RAW_EVENTS_QUARANTINE,
            group_name="raw_events",
            kinds={"duckdb"},
            description=(
                "Every invalid line of an event file, verbatim, with the column and reason."
            ),
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            QUARANTINE_CHECK,
            asset=RAW_EVENTS,
            description="Warns when a run quarantines more than the configured share of lines.",
        )
    ],
    pool="duckdb",
)
def stream_event_files(
    context: dg.AssetExecutionContext,
    config: EventFilesConfig,
    warehouse: DuckDBResource,
    folders: DataFolders,
):
    """Load event files into raw.stream_events and raw.stream_events_quarantine.

    Files already loaded are skipped before they are read; the others are read in batches and
    each file is its own transaction, which also marks its days in the rebuild ledger. A file
    that cannot be read moves to landing/events/rejected/ with `<name>.error.txt`; the others
    load, and the metadata lists the rejection (`rejected`).
    """
    files = [Path(p) for p in config.paths] or landing_files(folders.events_landing, "events")
    results: list[FileLoadResult] = []
    failures: dict[str, str] = {}
    with open_warehouse(warehouse) as conn:
        ensure_raw_tables(conn)  # a run with no file yet still reports (empty) tables
        loads = load_event_files(conn, files, max_line_bytes=folders.event_max_line_bytes)
        for path, result in loads:
            if isinstance(result, EventFileError):
                # Handled: the file is set aside with its reason and the others still load.
                failures[str(path)] = str(result)
                if path.parent == folders.events_landing and path.exists():
                    target = reject_file(path, str(result))
                    context.log.warning(f"{result} (moved to {target.parent})")
                else:
                    context.log.warning(str(result))
                continue
            results.append(result)
            record_loaded(folders.events_landing, path)
            context.log.info(
                f"{path.name}: {result.status}, {result.rows_loaded} rows loaded, "
                f"{result.rows_quarantined} quarantined"
                + (f" (same content as {result.duplicate_of})" if result.duplicate_of else "")
            )
        loaded = [r for r in results if r.status == "loaded"]
        load_ids = [r.load_id for r in loaded]
        events_total = table_row_count(conn, "raw.stream_events")
        quarantine_total = table_row_count(conn, "raw.stream_events_quarantine")
        preview = _preview(
            conn,
            "select stream_id, user_id, track_id, genre, country, stream_start_time, "
            "stream_duration_seconds, completed from raw.stream_events "
            "where load_id in (select unnest(?)) limit 10",
            [load_ids],
        )
        quarantine_preview = _preview(
            conn,
            "select source_file, line_number, error_column, error from "
            "raw.stream_events_quarantine where load_id in (select unnest(?)) limit 10",
            [load_ids],
        )

    lines = sum(r.lines for r in loaded)
    rows_loaded = sum(r.rows_loaded for r in loaded)
    rows_quarantined = sum(r.rows_quarantined for r in loaded)
    days = sorted({d for r in loaded for d in r.days_touched})
    ratio = rows_quarantined / lines if lines else 0.0
    files_md = _files_table(results, failures)
    yield dg.MaterializeResult(
        asset_key=RAW_EVENTS,
        metadata={
            "files": dg.MetadataValue.md(files_md),
            "files_loaded": len(loaded),
            "files_skipped_duplicate": len(results) - len(loaded),
            "files_rejected": len(failures),
            "rejected": dg.MetadataValue.json(failures),
            "lines": lines,
            "rows_loaded": rows_loaded,
            "rows_quarantined": rows_quarantined,
            "days_touched": dg.MetadataValue.json([d.isoformat() for d in days]),
            "dagster/row_count": events_total,
            "preview": dg.MetadataValue.md(preview),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=QUARANTINE_CHECK,
                passed=ratio <= folders.quarantine_warn_ratio,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"quarantined_ratio": ratio, "threshold": folders.quarantine_warn_ratio},
            )
        ],
    )
    yield dg.MaterializeResult(
        asset_key=RAW_EVENTS_QUARANTINE,
        metadata={
            "rows_quarantined": rows_quarantined,
            "dagster/row_count": quarantine_total,
            "preview": dg.MetadataValue.md(quarantine_preview),
        },
    )
