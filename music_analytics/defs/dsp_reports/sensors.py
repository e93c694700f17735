"""The DSP report job, and the sensor that loads report ZIPs dropped into landing/dsp/."""

import json

import dagster as dg

from music_analytics.defs.dsp_reports.assets import dsp_report_tables, dsp_report_zips
from music_analytics.defs.partitions import (
    dsp_partition_key,
    partition_bounds,
)
from music_analytics.defs.resources import DataFolders
from music_analytics.lib.core.landing import (
    file_run_key,
    landing_files,
    settled_files,
)
from music_analytics.lib.dsp.landing import sort_landed_reports

dsp_report_job = dg.define_asset_job(
    "dsp_report_job",
    selection=dg.AssetSelection.assets(dsp_report_zips, dsp_report_tables),
    description=(
        "Fetch (or pick up) one DSP's report for one day, archive it and load the raw DSP tables."
    ),
)


def landing_run_config(zip_path: str) -> dg.RunConfig:
    """Run config that makes dsp_report_job load a ZIP that is already here."""
    return dg.RunConfig(ops={dsp_report_zips.op.name: {"config": {"zip_path": zip_path}}})


@dg.sensor(
    job=dsp_report_job,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Loads each report ZIP dropped into landing/dsp/ into the (date, dsp) partition named by "
        "its meta, once the file has stopped changing. Unreadable ZIPs move to "
        "landing/dsp/rejected/."
    ),
)
def dsp_landing_sensor(context: dg.SensorEvaluationContext, folders: DataFolders):
    """Reads only each ZIP's `meta` here; the run validates the whole file before it archives it."""
    previous: dict[str, list[int]] = json.loads(context.cursor) if context.cursor else {}
    ready, seen = settled_files(
        landing_files(folders.dsp_landing, "dsp"), previous, folders.file_stable_seconds
    )
    first, last = partition_bounds(folders.first_day)
    reports, rejected = sort_landed_reports(
        ready, folders.zip_limits, first, last, folders.json_limits
    )
    for reason in rejected:
        context.log.warning(f"{reason} (moved to {folders.dsp_landing / 'rejected'})")
    for report in reports:
        yield dg.RunRequest(
            run_key=file_run_key(report.path),
            partition_key=dsp_partition_key(report.day, report.dsp),
            run_config=landing_run_config(str(report.path)),
            tags={"music_analytics/dsp_report_file": report.path.name},
        )
    context.update_cursor(json.dumps(seen))
