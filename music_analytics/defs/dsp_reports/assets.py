"""DSP analytics reports: the archived report ZIP of each (date, dsp), and its raw tables.

Two steps per partition so that they can sit in different pools: fetching from the API waits
on the API (pool `dsp_api`, several at once), loading writes the warehouse (pool `duckdb`,
one at a time).
"""

from datetime import date
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from music_analytics.defs.dsp_reports.checks import (
    COUNTRY_TOTALS_CHECK,
    RECORD_COUNT_CHECK,
    country_totals_result,
    record_count_result,
)
from music_analytics.defs.partitions import dsp_daily_partitions, dsp_partition
from music_analytics.defs.resources import DataFolders, DspApi, open_warehouse
from music_analytics.lib.core.landing import reject_file
from music_analytics.lib.dsp.api_errors import (
    DspApiError,
    DspApiUnavailable,
    DspDownloadError,
    DspReportTimeout,
)
from music_analytics.lib.dsp.archive import INCOMING, archive_report, current_report, incoming_path
from music_analytics.lib.dsp.catalog import Dsp
from music_analytics.lib.dsp.report_load import load_report_zip
from music_analytics.lib.dsp.report_zip import DspReportFileError, validate_report_zip

DSP_REPORT_ZIPS = dg.AssetKey(["archive", "dsp_report_zips"])
RAW_DSP_RECORDS = dg.AssetKey(["raw", "dsp_report_records"])
RAW_DSP_COUNTRIES = dg.AssetKey(["raw", "dsp_report_countries"])
RAW_DSP_BREAKDOWNS = dg.AssetKey(["raw", "dsp_report_breakdowns"])
RAW_DSP_QUARANTINE = dg.AssetKey(["raw", "dsp_report_quarantine"])
GROUP = "raw_dsp_reports"


class DspReportConfig(dg.Config):
    """Where a run's report comes from: the API (default) or a ZIP that is already here."""

    zip_path: str = Field(
        default="",
        description=(
            "A report ZIP to load instead of calling the API: set by the landing/dsp sensor "
            "and by `music-analytics refresh`, which fetches reports concurrently itself."
        ),
    )
    report_id: int | None = Field(
        default=None, description="The API report the ZIP at zip_path was downloaded from."
    )


def _fetch(context: dg.AssetExecutionContext, api: DspApi, folders: DataFolders, dsp, day):
    if not api.configured:
        raise dg.Failure(
            description=(
                f"cannot fetch the {dsp.name} report for {day}: DSP_API_BASE_URL and "
                "DSP_API_TOKEN are not both set. Set them, or drop a report ZIP into "
                f"{folders.dsp_landing} and the dsp_landing_sensor loads it."
            ),
            allow_retries=False,
        )
    incoming = incoming_path(folders.dsp_archive, dsp.key, day)
    metas = []

    def validate(path: Path):
        metas.append(
            validate_report_zip(
                path,
                limits=folders.zip_limits,
                json_limits=folders.json_limits,
                expected_dsp_id=dsp.dsp_id,
                expected_date=day,
            )
        )

    try:
        with api.client(log=context.log) as client:
            fetched = client.fetch_report(dsp.dsp_id, day, incoming, validate)
    except DspApiError as exc:
        # Step retries (the asset's retry policy) are for outages and slow reports; a report
        # the API failed, or a wrong token or DSP, fails now with the API's reason.
        transient = isinstance(exc, DspApiUnavailable | DspReportTimeout | DspDownloadError)
        raise dg.Failure(description=str(exc), allow_retries=transient and exc.retryable) from None
    except DspReportFileError as exc:  # downloaded twice and still unusable: a new report next
        raise dg.Failure(description=str(exc), allow_retries=True) from None
    return fetched.path, metas[-1], fetched.report_id


@dg.asset(
    key=DSP_REPORT_ZIPS,
    partitions_def=dsp_daily_partitions,
    group_name=GROUP,
    kinds={"zip"},
    pool="dsp_api",
    retry_policy=dg.RetryPolicy(max_retries=2, delay=60, backoff=dg.Backoff.EXPONENTIAL),
    description=(
        "The daily analytics report ZIP of one DSP, requested from the analytics-reports API "
        "(request, poll, download) or dropped by hand into landing/dsp/, validated and "
        "archived under archive/dsp/ with its sha256."
    ),
)
def dsp_report_zips(
    context: dg.AssetExecutionContext,
    config: DspReportConfig,
    dsp_api: DspApi,
    folders: DataFolders,
) -> dg.MaterializeResult:
    """Fetch (or take from landing/dsp/) the partition's report ZIP and archive it."""
    day, dsp = dsp_partition(context.partition_key)
    if config.zip_path:
        path, report_id = Path(config.zip_path), config.report_id
        source = "api" if report_id is not None else "landing"
        try:
            meta = validate_report_zip(
                path,
                limits=folders.zip_limits,
                json_limits=folders.json_limits,
                expected_dsp_id=dsp.dsp_id,
                expected_date=day,
            )
        except DspReportFileError as exc:
            if source == "landing" and path.parent == folders.dsp_landing:
                reject_file(path, str(exc))
            raise dg.Failure(description=str(exc), allow_retries=False) from None
    else:
        path, meta, report_id = _fetch(context, dsp_api, folders, dsp, day)
        source = "api"
    # The landing copy moves into the archive so that it is not loaded again.
    archived = archive_report(
        path,
        folders.dsp_archive,
        dsp=dsp.key,
        day=day,
        source=source,
        total_records=meta.total_records,
        report_id=report_id,
        move=path.parent in (folders.dsp_landing, folders.dsp_archive / INCOMING),
    )
    context.log.info(
        f"{dsp.name} report for {day}: {meta.total_records} records, archived as "
        f"{Path(archived.path).name} (from {source})"
    )
    return dg.MaterializeResult(
        metadata={
            "dsp": dsp.key,
            "report_date": day.isoformat(),
            "source": source,
            "report_id": report_id if report_id is not None else dg.MetadataValue.null(),
            "total_records": meta.total_records,
            "generated_at": meta.generated_at or "",
            "sha256": archived.sha256,
            "size_bytes": archived.size_bytes,
            "archive_path": dg.MetadataValue.path(archived.path),
        }
    )


def _raw_spec(key: dg.AssetKey, description: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        key,
        deps=[DSP_REPORT_ZIPS],
        group_name=GROUP,
        kinds={"duckdb"},
        partitions_def=dsp_daily_partitions,
        description=description,
    )


@dg.multi_asset(
    name="dsp_report_tables",
    specs=[
        _raw_spec(
            RAW_DSP_RECORDS,
            "One row per record of a DSP report, with the whole record kept as JSON. Loading a "
            "(date, dsp) partition replaces it atomically.",
        ),
        _raw_spec(RAW_DSP_COUNTRIES, "One row per (record, country) of country_stats."),
        _raw_spec(
            RAW_DSP_BREAKDOWNS,
            "One row per (record, dimension, key) of the nested breakdowns (demographics, "
            "devices, sources, regions, traffic sources, Shazam countries, ...).",
        ),
        _raw_spec(
            RAW_DSP_QUARANTINE, "Records that could not be loaded, as JSON, with the reason."
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            RECORD_COUNT_CHECK,
            asset=RAW_DSP_RECORDS,
            description="Records loaded plus quarantined equal the report's meta.total_records.",
        ),
        dg.AssetCheckSpec(
            COUNTRY_TOTALS_CHECK,
            asset=RAW_DSP_RECORDS,
            description=(
                "Per record, the per-country streams add up to the aggregated total "
                "(warns on a mismatch: DSPs may leave countries out)."
            ),
        ),
    ],
    partitions_def=dsp_daily_partitions,
    pool="duckdb",
)
def dsp_report_tables(
    context: dg.AssetExecutionContext, warehouse: DuckDBResource, folders: DataFolders
):
    """Load the partition's archived report ZIP into the raw DSP tables, replacing the partition."""
    day, dsp = dsp_partition(context.partition_key)
    archived = current_report(folders.dsp_archive, dsp.key, day)
    if archived is None:
        raise dg.Failure(
            description=(
                f"no archived {dsp.name} report for {day}: materialize "
                f"{DSP_REPORT_ZIPS.to_user_string()} for this partition first"
            ),
            allow_retries=False,
        )
    with open_warehouse(warehouse) as conn:
        try:
            result = load_report_zip(
                conn,
                Path(archived.path),
                source=archived.source,
                report_id=archived.report_id,
                limits=folders.zip_limits,
                json_limits=folders.json_limits,
                expected_dsp_id=dsp.dsp_id,
                expected_date=day,
            )
        except DspReportFileError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        checks = [record_count_result(conn, dsp, day), country_totals_result(conn, dsp, day)]
    context.log.info(
        f"{dsp.name} {day}: {result.records_loaded} records, {result.records_quarantined} "
        f"quarantined, {result.country_rows} country rows, {result.breakdown_rows} breakdown rows"
    )
    yield from _results(result, day, dsp, checks)


def _results(result, day: date, dsp: Dsp, checks: list[dg.AssetCheckResult]):
    common = {"dsp": dsp.key, "report_date": day.isoformat(), "load_id": result.load_id}
    yield dg.MaterializeResult(
        asset_key=RAW_DSP_RECORDS,
        metadata={
            **common,
            "total_records": result.total_records,
            "records_quarantined": result.records_quarantined,
            "replaced_rows": result.replaced_rows,
            "sha256": result.content_sha256,
            "days_touched": dg.MetadataValue.json([day.isoformat()]),
            "dagster/row_count": result.records_loaded,
        },
        check_results=checks,
    )
    yield dg.MaterializeResult(
        asset_key=RAW_DSP_COUNTRIES, metadata={**common, "dagster/row_count": result.country_rows}
    )
    yield dg.MaterializeResult(
        asset_key=RAW_DSP_BREAKDOWNS,
        metadata={**common, "dagster/row_count": result.breakdown_rows},
    )
    yield dg.MaterializeResult(
        asset_key=RAW_DSP_QUARANTINE,
        metadata={**common, "dagster/row_count": result.records_quarantined},
    )
