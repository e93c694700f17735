"""The DSP report job, and the sensor that loads report ZIPs dropped into landing/dsp/."""

import json

import dagster as dg

from music_analytics.defs.dsp_reports.assets import dsp_report_tables, dsp_report_zips
from music_analytics.defs.partitions import (
    dsp_daily_partitions,
    dsp_partition_key,
    partition_bounds,
)
from music_analytics.defs.resources import DataFolders
from music_analytics.lib.core.landing import (
    file_run_key,
    list_report_zips,
    reject_file,
    settled_files,
)
from music_analytics.lib.dsp.report_zip import DspReportFileError, read_report_meta

dsp_report_job = dg.define_asset_job(
    "dsp_report_job",
    selection=dg.AssetSelection.assets(dsp_report_zips, dsp_report_tables),
    partitions_def=dsp_daily_partitions,
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
        list_report_zips(folders.dsp_landing), previous, folders.file_stable_seconds
    )
    first, last = partition_bounds()
    for path in ready:
        try:
            meta = read_report_meta(path, limits=folders.zip_limits)
        except DspReportFileError as exc:
            context.log.warning(f"{exc} (moved to {folders.dsp_landing / 'rejected'})")
            reject_file(path, str(exc))
            continue
        if not first <= meta.report_date <= last:
            reason = (
                f"{path.name}: report date {meta.report_date} is outside the partitions "
                f"{first}..{last}; see MUSIC_ANALYTICS_START_DATE"
            )
            context.log.warning(reason)
            reject_file(path, reason)
            continue
        yield dg.RunRequest(
            run_key=file_run_key(path),
            partition_key=dsp_partition_key(meta.report_date, meta.dsp),
            run_config=landing_run_config(str(path)),
            tags={"music_analytics/dsp_report_file": path.name},
        )
    context.update_cursor(json.dumps(seen))
