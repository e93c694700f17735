"""In-process runs of the pipeline for the CLI: ingest what is waiting, rebuild changed days.

For users who run `music-analytics refresh` from cron instead of the Dagster daemon. Runs are
recorded in the Dagster instance at $DAGSTER_HOME (default $MUSIC_ANALYTICS_HOME/dagster), so
they appear in the UI beside the ones the daemon launches.
"""

import contextlib
import io
import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg

from music_analytics.defs.events.assets import RAW_EVENTS
from music_analytics.defs.orchestration.sensors import REFRESH_TAG, days_touched
from music_analytics.defs.partitions import partition_bounds, partition_range_tags
from music_analytics.lib.core.partition_ranges import clamp_days, contiguous_ranges
from music_analytics.lib.core.settings import Settings
from music_analytics.refresh_dsp import DSP_API_POOL, refresh_dsp_reports
from music_analytics.refresh_spotify import refresh_spotify

DAGSTER_YAML = """\
# Written by music-analytics. Every step that writes the DuckDB warehouse runs in the pool
# `duckdb`; a limit of 1 makes concurrent runs queue instead of failing on DuckDB's file lock.
# Steps wait for a pool slot (granularity op), so a run's API fetch can start while another
# run's load holds the warehouse. The `dsp_api` pool's limit is DSP_API_MAX_ACTIVE_REPORTS.
concurrency:
  pools:
    default_limit: 1
    granularity: op
telemetry:
  enabled: false
"""


def prepare_dagster_home(settings: Settings) -> Path:
    """Use $DAGSTER_HOME, or create $MUSIC_ANALYTICS_HOME/dagster with the pool limit set."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.dagster_home)
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def set_pool_limits(instance: dg.DagsterInstance, settings: Settings) -> None:
    """Allow DSP_API_MAX_ACTIVE_REPORTS API fetches at once; every other pool keeps limit 1."""
    instance.event_log_storage.set_concurrency_slots(DSP_API_POOL, settings.dsp_max_active_reports)


@dataclass
class RefreshSummary:
    """What a refresh did: the ingest run's counts and the day ranges rebuilt."""

    rows_loaded: int = 0
    rows_quarantined: int = 0
    files_loaded: int = 0
    ranges_built: list[tuple[date, date]] = field(default_factory=list)
    days_outside_partitions: list[date] = field(default_factory=list)
    dsp_reports_loaded: int = 0
    dsp_records_loaded: int = 0
    dsp_failures: list[str] = field(default_factory=list)
    spotify_history_plays: int = 0
    spotify_polled_plays: int = 0
    spotify_failures: list[str] = field(default_factory=list)


def _logging(level: str) -> dict:
    """Run config that sets the in-process console logger's level."""
    return {"loggers": {"console": {"config": {"log_level": level}}}}


def _ingest(
    defs: dg.Definitions, instance: dg.DagsterInstance, summary: RefreshSummary, log_level: str
) -> set[date]:
    result = defs.resolve_job_def("event_ingest_job").execute_in_process(
        instance=instance, raise_on_error=True, run_config=_logging(log_level), tags=REFRESH_TAG
    )
    days: set[date] = set()
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        if materialization.asset_key != RAW_EVENTS:
            continue
        metadata = materialization.metadata
        summary.rows_loaded += metadata["rows_loaded"].value
        summary.rows_quarantined += metadata["rows_quarantined"].value
        summary.files_loaded += metadata["files_loaded"].value
        days.update(days_touched(metadata))
    return days


@contextlib.contextmanager
def _dbt_output_unless_it_fails(quiet: bool):
    """dagster-dbt echoes every dbt log line to stdout; a quiet refresh shows them only when
    the run fails (the run's event log in the instance keeps them either way)."""
    if not quiet:
        yield
        return
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    except BaseException:
        sys.stderr.write(buffer.getvalue()[-20_000:])
        raise


def _days(first: date, last: date) -> list[date]:
    return [date.fromordinal(n) for n in range(first.toordinal(), last.toordinal() + 1)]


def refresh(
    start: date | None = None,
    end: date | None = None,
    *,
    settings: Settings | None = None,
    instance: dg.DagsterInstance | None = None,
    log_level: str = "DEBUG",
) -> RefreshSummary:
    """Ingest every waiting file, then rebuild the marts of the days that changed.

    Event files, DSP report ZIPs and Spotify exports waiting in landing/ are loaded, and
    recently-played is polled once when Spotify is connected. With start and end, the
    DSP reports of those days are also fetched from the API (when it is configured) for every
    DSP in MUSIC_ANALYTICS_DSPS, and that range of marts is rebuilt (with any day a load
    touched outside it). Each contiguous
    range of days is one run (one dbt invocation), however many days it holds. `log_level`
    filters what the runs print to the console (their event logs in the instance keep all).
    DSP reports that fail are listed in `dsp_failures`; the rest still load and build.
    """
    from music_analytics.definitions import build_definitions

    settings = settings or Settings.from_env()
    settings.ensure_folders()
    if instance is None:
        prepare_dagster_home(settings)
        instance = dg.DagsterInstance.get()
    set_pool_limits(instance, settings)
    defs = build_definitions(settings)
    first, last = partition_bounds()
    explicit = None
    if start or end:
        start, end = start or first, end or last
        if start > end:
            raise ValueError(f"--start {start} is after --end {end}")
        explicit = (max(start, first), min(end, last))
    summary = RefreshSummary()
    changed = _ingest(defs, instance, summary, log_level)
    # A day's report exists once the day is over: never ask the API for today.
    yesterday = date.fromordinal(datetime.now(UTC).date().toordinal() - 1)
    api_days = _days(explicit[0], min(explicit[1], yesterday)) if explicit else []
    dsp = refresh_dsp_reports(defs, instance, settings, api_days, _logging(log_level))
    summary.dsp_reports_loaded = dsp.reports_loaded
    summary.dsp_records_loaded = dsp.records_loaded
    summary.dsp_failures = dsp.failures
    changed |= dsp.days_touched
    spotify = refresh_spotify(defs, instance, settings, _logging(log_level))
    summary.spotify_history_plays = spotify.history_plays_loaded
    summary.spotify_polled_plays = spotify.polled_plays_new
    summary.spotify_failures = spotify.failures
    changed |= spotify.days_touched
    if explicit:  # the range asked for, and any day a load touched outside it
        changed |= set(_days(*explicit))
    inside, summary.days_outside_partitions = clamp_days(changed, first, last)
    ranges = contiguous_ranges(inside)
    marts_job = defs.resolve_job_def("daily_marts_job")
    for range_start, range_end in ranges:
        with _dbt_output_unless_it_fails(quiet=log_level not in ("DEBUG", "INFO")):
            marts_job.execute_in_process(
                instance=instance,
                tags=partition_range_tags(range_start, range_end),
                run_config=_logging(log_level),
            )
        summary.ranges_built.append((range_start, range_end))
    return summary
