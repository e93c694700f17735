"""The daily request of yesterday's report from every configured DSP."""

from datetime import timedelta

import dagster as dg

from music_analytics.defs.dsp_reports.sensors import dsp_report_job
from music_analytics.defs.partitions import dsp_partition_key, partition_bounds
from music_analytics.lib.core.settings import Settings


def build_dsp_reports_schedule(settings: Settings) -> dg.ScheduleDefinition:
    """One run per configured DSP for yesterday; runs fetch in parallel (pool `dsp_api`) and
    load one at a time (pool `duckdb`). Skips while the API is not configured."""

    @dg.schedule(
        name="dsp_reports_schedule",
        job=dsp_report_job,
        cron_schedule=settings.dsp_cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            "Requests yesterday's analytics report of every DSP in MUSIC_ANALYTICS_DSPS "
            "(cron: MUSIC_ANALYTICS_DSP_CRON, UTC)."
        ),
    )
    def dsp_reports_schedule(context: dg.ScheduleEvaluationContext):
        if not settings.dsp_api_configured:
            return dg.SkipReason("DSP_API_BASE_URL and DSP_API_TOKEN are not both set")
        yesterday = context.scheduled_execution_time.date() - timedelta(days=1)
        first, _ = partition_bounds(settings.start_date, context.scheduled_execution_time)
        if yesterday < first:
            return dg.SkipReason(f"no partition before {yesterday} exists yet")
        return [
            dg.RunRequest(
                run_key=f"dsp:{dsp}:{yesterday.isoformat()}",
                partition_key=dsp_partition_key(yesterday, dsp),
            )
            for dsp in settings.dsps
        ]

    return dsp_reports_schedule
