"""DSP reports in `music-analytics refresh`: fetch from the API concurrently, then load.

The Dagster daemon runs one `dsp_report_job` per (date, dsp) and the `dsp_api` pool lets their
fetches overlap. In-process there is one run at a time, so refresh fetches every report first
with the client's own thread pool (bounded by DSP_API_MAX_ACTIVE_REPORTS) and then runs
`dsp_report_job` per partition on the downloaded ZIP, as the landing sensor does. The marts
are built afterwards from the rebuild ledger, with every other source's days.
"""

import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import dagster as dg

from music_analytics.defs.dsp_reports.assets import RAW_DSP_RECORDS, dsp_report_zips
from music_analytics.defs.partitions import dsp_partition_key, partition_bounds
from music_analytics.defs.resources import build_dsp_api
from music_analytics.lib.core.settings import Settings
from music_analytics.lib.dsp.archive import incoming_path
from music_analytics.lib.dsp.catalog import dsp_by_id, dsp_by_key
from music_analytics.lib.dsp.landing import sort_landed_reports
from music_analytics.lib.dsp.report_zip import validate_report_zip
from music_analytics.run_results import failure_message

DSP_API_POOL = "dsp_api"
log = logging.getLogger("music_analytics.refresh")


@dataclass
class DspRefreshResult:
    """What the DSP part of a refresh did."""

    reports_loaded: int = 0
    records_loaded: int = 0
    failures: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _ReportToLoad:
    partition_key: str
    zip_path: str
    report_id: int | None = None


def _api_reports(
    settings: Settings, days: list[date], result: DspRefreshResult
) -> list[_ReportToLoad]:
    """Fetch every configured DSP's report of `days` at once; failures are listed, not raised."""
    if not days or not settings.dsp_api_configured:
        return []
    api = build_dsp_api(settings).process_config_and_initialize()
    wanted = [(dsp_by_key(key).dsp_id, day) for day in days for key in settings.dsps]
    log.info(f"fetching {len(wanted)} DSP report(s) from the analytics-reports API")
    with api.client(log=log) as client:
        outcomes = client.fetch_reports(
            wanted,
            lambda dsp_id, day: incoming_path(settings.dsp_archive, dsp_by_id(dsp_id).key, day),
            validate=lambda path: validate_report_zip(
                path, limits=settings.zip_limits, json_limits=settings.json_limits
            ),
        )
    reports = []
    for outcome in outcomes:
        dsp = dsp_by_id(outcome.dsp_id)
        if outcome.error is not None:
            result.failures.append(f"{dsp.name} report for {outcome.day}: {outcome.error}")
            continue
        key = dsp_partition_key(outcome.day, dsp.key)
        fetched = outcome.fetched
        reports.append(_ReportToLoad(key, str(fetched.path), fetched.report_id))
    return reports


def refresh_dsp_reports(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    settings: Settings,
    landed: list[Path],
    api_days: list[date],
    run_config: dict,
) -> DspRefreshResult:
    """Load the settled ZIPs `landed` in landing/dsp/ and the API's reports of `api_days`."""
    result = DspRefreshResult()
    first, last = partition_bounds(settings.start_date)
    landed_reports, result.rejected = sort_landed_reports(
        landed, settings.zip_limits, first, last, settings.json_limits
    )
    reports = [
        _ReportToLoad(dsp_partition_key(r.day, r.dsp), str(r.path)) for r in landed_reports
    ] + _api_reports(settings, api_days, result)
    job = defs.resolve_job_def("dsp_report_job")
    for report in reports:
        op_config = {"zip_path": report.zip_path, "report_id": report.report_id}
        run = job.execute_in_process(
            instance=instance,
            partition_key=report.partition_key,
            run_config={**run_config, "ops": {dsp_report_zips.op.name: {"config": op_config}}},
            raise_on_error=False,
        )
        if not run.success:
            result.failures.append(failure_message(run, report.partition_key))
            continue
        for event in run.get_asset_materialization_events():
            materialization = event.materialization
            if materialization.asset_key == RAW_DSP_RECORDS:
                result.reports_loaded += 1
                result.records_loaded += materialization.metadata["dagster/row_count"].value
    return result
