"""The daily schedule: yesterday's marts plus a look-back for late data, and what is pending."""

from datetime import timedelta

import dagster as dg

from music_analytics.defs.orchestration.jobs import daily_marts_job
from music_analytics.defs.partitions import partition_bounds
from music_analytics.lib.core.plans import days_between
from music_analytics.lib.core.settings import Settings


def build_daily_marts_schedule(settings: Settings) -> dg.ScheduleDefinition:
    """The schedule with the cron and look-back of `settings`."""

    @dg.schedule(
        name="daily_marts_schedule",
        job=daily_marts_job,
        cron_schedule=settings.daily_cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            "Rebuilds yesterday's marts and the MUSIC_ANALYTICS_LOOKBACK_DAYS before it, with "
            "every day still pending in the rebuild ledger, as one run (cron: "
            "MUSIC_ANALYTICS_DAILY_CRON, UTC)."
        ),
    )
    def daily_marts_schedule(context: dg.ScheduleEvaluationContext):
        """One run over [yesterday - look-back, yesterday] (clipped to the partitions) and the
        ledger's pending days."""
        yesterday = context.scheduled_execution_time.date() - timedelta(days=1)
        first_partition, _ = partition_bounds(settings.start_date, context.scheduled_execution_time)
        if yesterday < first_partition:
            return dg.SkipReason(f"no partition before {yesterday} exists yet")
        first = max(yesterday - timedelta(days=settings.lookback_days), first_partition)
        days = [day.isoformat() for day in days_between(first, yesterday)]
        return dg.RunRequest(
            run_key=f"daily:{yesterday.isoformat()}",
            partition_key=yesterday.isoformat(),
            run_config={"ops": {"dbt_daily_models": {"config": {"days": days}}}},
        )

    return daily_marts_schedule
