"""The Dagster home (`$DAGSTER_HOME`) that `refresh`, `make dev` and the daemon share.

`prepare_dagster_home` writes dagster.yaml there unless the user wrote their own: the pool
limits every writer of the warehouse queues on, run monitoring, and the event log storage
that writes a run's asset events in bulk (`music_analytics.instance.event_log`).
"""

import os
from pathlib import Path

import dagster as dg

from music_analytics.lib.core.settings import Settings
from music_analytics.refresh_dsp import DSP_API_POOL

MARKER = "# Written by music-analytics."

DAGSTER_YAML = """\
# Written by music-analytics. Every step that writes the DuckDB warehouse runs in the pool
# `duckdb`; a limit of 1 makes concurrent runs queue instead of failing on DuckDB's file lock.
# Steps wait for a pool slot (granularity op), so a run's API fetch can start while another
# run's load holds the warehouse. The `dsp_api` pool's limit is DSP_API_MAX_ACTIVE_REPORTS.
concurrency:
  pools:
    default_limit: 1
    granularity: op
# Under the daemon: a run stuck in STARTING is failed after 3 minutes, and a finished run's
# pool slots are freed. A run whose worker was killed is failed by dead_runs_sensor (the
# default run launcher cannot tell Dagster that its worker died).
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  max_resume_run_attempts: 0
  poll_interval_seconds: 30
  free_slots_after_run_end_seconds: 30
# Dagster's SQLite event log (the same files), writing a batch of asset events in one
# transaction: a run's per-day materializations of a year take about a second, not minutes.
event_log_storage:
  module: music_analytics.instance.event_log
  class: BatchingSqliteEventLogStorage
  config:
    base_dir: {event_log_dir}
telemetry:
  enabled: false
"""


def prepare_dagster_home(settings: Settings) -> Path:
    """Use $DAGSTER_HOME, or create $MUSIC_ANALYTICS_HOME/dagster, and write its dagster.yaml
    (kept current when it is ours; a file of the user's is left alone)."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.dagster_home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text().startswith(MARKER):
        # Where Dagster's default storage keeps the event log, so earlier runs stay visible.
        config.write_text(DAGSTER_YAML.format(event_log_dir=home / "history" / "runs"))
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def set_pool_limits(instance: dg.DagsterInstance, settings: Settings) -> None:
    """Allow DSP_API_MAX_ACTIVE_REPORTS API fetches at once; every other pool keeps limit 1."""
    instance.event_log_storage.set_concurrency_slots(DSP_API_POOL, settings.dsp_max_active_reports)
