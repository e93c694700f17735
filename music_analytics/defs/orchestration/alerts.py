"""Alerts: a failed run, or a mart the daily schedule should have refreshed and did not.

Both post to the webhook of MUSIC_ANALYTICS_ALERT_WEBHOOK_URL (Slack-compatible JSON, see
lib/core/alerts.py), passed as `dg.EnvVar`, so the UI and run config show the variable's
name, never the URL. Without it both sensors are defined but stopped (they say why in their
description, and a tick that runs anyway says why it sends nothing). Messages that cannot be
delivered wait in `<home>/alerts/outbox/` and are sent at the next alert or the next tick of
`mart_freshness_sensor`.

Freshness: every mart carries a `FreshnessPolicy.time_window` (shown in the UI, evaluated by
the daemon's freshness loop): it fails when the mart's last materialization is older than
the daily schedule's interval plus MUSIC_ANALYTICS_FRESHNESS_GRACE_MINUTES.
`mart_freshness_sensor` applies the same window to the same materializations and alerts once
per stale spell of a mart (again only after it was updated and went stale again).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
from dagster._utils.schedules import get_smallest_cron_interval

from music_analytics.lib.core import alerts
from music_analytics.lib.core.settings import Settings

WEBHOOK_ENV = "MUSIC_ANALYTICS_ALERT_WEBHOOK_URL"


class AlertWebhook(dg.ConfigurableResource):
    """Where alerts go: the webhook URL (an EnvVar; empty: alerts are off) and the outbox
    folder of messages not delivered yet."""

    url: str = ""
    outbox: str = ""

    @property
    def configured(self) -> bool:
        return bool(self.url.strip())

    def send(self, message: dict, log: logging.Logger) -> bool:
        """Deliver `message` (and any queued before it); False when some wait for a retry."""
        return alerts.deliver(self.url, message, Path(self.outbox), log)

    def retry_queued(self, log: logging.Logger) -> int:
        return alerts.flush(self.url, Path(self.outbox), log)


def build_alert_webhook(settings: Settings) -> AlertWebhook:
    """The alert resource; the URL is an EnvVar when the variable is set."""
    return AlertWebhook(
        url=dg.EnvVar(WEBHOOK_ENV) if settings.alert_webhook_set else "",
        outbox=str(settings.home / "alerts" / "outbox"),
    )


def freshness_window(settings: Settings) -> timedelta:
    """How old a mart's last update may be: the daily schedule's interval plus the grace."""
    interval = get_smallest_cron_interval(settings.daily_cron)
    return interval + timedelta(minutes=settings.freshness_grace_minutes)


def with_mart_freshness(assets: Sequence, window: timedelta) -> list:
    """The assets with a freshness policy of `window` on every model in the marts schema."""
    policy = dg.FreshnessPolicy.time_window(fail_window=window)

    def add(spec: dg.AssetSpec) -> dg.AssetSpec:
        return dg.apply_freshness_policy(spec, policy) if spec.key.path[0] == "marts" else spec

    return [
        asset.map_asset_specs(add)
        if isinstance(asset, dg.AssetsDefinition) and any(k.path[0] == "marts" for k in asset.keys)
        else asset
        for asset in assets
    ]


def _partition_of(run: dg.DagsterRun) -> str:
    tags = run.tags
    first = tags.get("dagster/asset_partition_range_start")
    if first:
        return f"{first}..{tags.get('dagster/asset_partition_range_end', '')}"
    return tags.get("dagster/partition", "(none)")


def _innermost(error) -> object:
    while getattr(error, "cause", None) is not None:
        error = error.cause
    return error


def failure_message(context: dg.RunFailureSensorContext) -> dict:
    """The alert for a failed run: job, partition (or range), failed step(s), the error's first
    line (the innermost cause: the exception the step raised), scrubbed of secrets."""
    run = context.dagster_run
    steps = context.get_step_failure_events()
    if steps:
        error = _innermost(steps[0].event_specific_data.error)
        qualified, _, rest = error.message.partition(": ")
        short = error.cls_name and qualified.endswith(error.cls_name) and rest
        text = f"{error.cls_name}: {rest}" if short else error.message  # not the module path
        step = ", ".join(event.step_key or "?" for event in steps)
    else:  # the run failed outside a step (its process died, it was marked failed)
        text, step = context.failure_event.message or "", "(no step failed)"
    return alerts.slack_message(
        f"music-analytics: run of {run.job_name} failed",
        [
            ("job", run.job_name),
            ("partition", _partition_of(run)),
            ("failed step", step),
            ("error", alerts.first_line(text)[:500]),
            ("run", run.run_id),
        ],
        alerts.secret_values(),
    )


def _default_status(settings: Settings) -> dg.DefaultSensorStatus:
    """Both alert sensors run by default when the webhook is set, and are stopped otherwise."""
    if settings.alert_webhook_set:
        return dg.DefaultSensorStatus.RUNNING
    return dg.DefaultSensorStatus.STOPPED


def _off_note(settings: Settings) -> str:
    return "" if settings.alert_webhook_set else f" (off: {WEBHOOK_ENV} is not set)"


def build_run_failure_alert(settings: Settings) -> dg.SensorDefinition:
    """The run-failure sensor: running by default when the webhook is set, stopped otherwise."""

    @dg.run_failure_sensor(
        name="run_failure_alert",
        monitor_all_code_locations=False,
        minimum_interval_seconds=30,
        default_status=_default_status(settings),
        description=(
            f"Posts each failed run (job, partition, failed step, error) to {WEBHOOK_ENV}"
            + _off_note(settings)
        ),
    )
    def run_failure_alert(context: dg.RunFailureSensorContext, alert_webhook: AlertWebhook):
        if not alert_webhook.configured:
            return dg.SkipReason(f"{WEBHOOK_ENV} is not set: no alert sent")
        sent = alert_webhook.send(failure_message(context), context.log)
        state = "sent" if sent else "queued (the webhook failed; retried at the next tick)"
        return dg.SkipReason(f"alert for run {context.dagster_run.run_id} {state}")

    return run_failure_alert


def stale_marts(
    instance: dg.DagsterInstance, keys: Iterable[dg.AssetKey], window: timedelta, now: datetime
) -> dict[dg.AssetKey, float]:
    """The marts whose last materialization is older than `window`: key -> its timestamp.
    A mart never materialized is not stale (nothing was built yet)."""
    stale = {}
    for record in instance.get_asset_records(list(keys)):
        last = record.asset_entry.last_materialization
        if last is not None and now.timestamp() - last.timestamp > window.total_seconds():
            stale[record.asset_entry.asset_key] = last.timestamp
    return stale


def stale_message(stale: dict[dg.AssetKey, float], window: timedelta, now: datetime) -> dict:
    """The alert for stale marts: each with its last update and how long ago."""
    fields = []
    for key, at in sorted(stale.items(), key=lambda item: item[0].to_user_string()):
        hours = (now.timestamp() - at) / 3600
        when = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        fields.append((key.to_user_string(), f"last updated {when} ({hours:.1f} h ago)"))
    fields.append(("expected", f"an update within {window.total_seconds() / 3600:g} h"))
    title = f"music-analytics: {len(stale)} mart(s) stale"
    return alerts.slack_message(title, fields, alerts.secret_values())


def build_mart_freshness_sensor(
    settings: Settings, mart_keys: Sequence[dg.AssetKey]
) -> dg.SensorDefinition:
    """The sensor that alerts on marts past their freshness window (and retries queued
    alerts): running by default when the webhook is set."""
    window = freshness_window(settings)

    @dg.sensor(
        name="mart_freshness_sensor",
        minimum_interval_seconds=300,
        default_status=_default_status(settings),
        description=(
            f"Posts to {WEBHOOK_ENV} when a mart was last updated more than the daily "
            "schedule's interval plus MUSIC_ANALYTICS_FRESHNESS_GRACE_MINUTES ago, once per "
            "stale spell; resends alerts the webhook did not accept" + _off_note(settings)
        ),
    )
    def mart_freshness_sensor(context: dg.SensorEvaluationContext, alert_webhook: AlertWebhook):
        if not alert_webhook.configured:
            return dg.SkipReason(f"{WEBHOOK_ENV} is not set: no alert sent")
        alert_webhook.retry_queued(context.log)
        now = datetime.now(UTC)
        alerted = json.loads(context.cursor) if context.cursor else {}  # key -> timestamp
        stale = stale_marts(context.instance, mart_keys, window, now)
        new = {k: at for k, at in stale.items() if alerted.get(k.to_user_string()) != at}
        if not new:
            return dg.SkipReason(f"{len(stale)} stale mart(s), all alerted already")
        sent = alert_webhook.send(stale_message(new, window, now), context.log)
        context.update_cursor(json.dumps({k.to_user_string(): at for k, at in stale.items()}))
        state = "sent" if sent else "queued (the webhook failed; retried at the next tick)"
        return dg.SkipReason(f"alert on {len(new)} stale mart(s) {state}")

    return mart_freshness_sensor
