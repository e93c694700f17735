"""In-process runs of the pipeline for the CLI: ingest what is waiting, rebuild changed days.

For users who run `music-analytics refresh` from cron instead of the Dagster daemon. Runs are
recorded in the Dagster instance at $DAGSTER_HOME (default $MUSIC_ANALYTICS_HOME/dagster), so
they appear in the UI beside the ones the daemon launches.
"""

import contextlib
import io
import sys
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg

from music_analytics.defs.events.assets import RAW_EVENTS, stream_event_files
from music_analytics.defs.orchestration.jobs import marts_of_sources
from music_analytics.defs.orchestration.run_recovery import fail_dead_runs
from music_analytics.defs.partitions import partition_bounds
from music_analytics.defs.transform.assets import ALL_MODELS, plan_marts
from music_analytics.instance.home import prepare_dagster_home, set_pool_limits
from music_analytics.lib.core.landing import (
    file_run_key,
    landing_files,
    landing_folder,
    loaded_keys,
)
from music_analytics.lib.core.partition_ranges import contiguous_ranges
from music_analytics.lib.core.plans import (
    BuildPlan,
    days_between,
    outside_message,
    wait_until_settled,
)
from music_analytics.lib.core.raw_layer import sync_with_settings
from music_analytics.lib.core.rebuild_ledger import read_pending
from music_analytics.lib.core.settings import Settings
from music_analytics.lib.core.warehouse import ensure_raw_tables
from music_analytics.lib.core.warehouse_file import (
    check_warehouse,
    connect_warehouse,
    corruption_as_warehouse_error,
)
from music_analytics.refresh_dsp import refresh_dsp_reports
from music_analytics.refresh_spotify import refresh_spotify


@dataclass
class RefreshSummary:
    """What a refresh did: what each source loaded or rejected, and the days rebuilt."""

    rows_loaded: int = 0
    rows_quarantined: int = 0
    files_loaded: int = 0
    rejected: list[str] = field(default_factory=list)  # inputs moved to rejected/, with why
    still_being_written: list[str] = field(default_factory=list)  # left for the next refresh
    days_built: list[date] = field(default_factory=list)
    days_outside_partitions: list[date] = field(default_factory=list)
    outside_message: str = ""
    dead_runs_failed: list[str] = field(default_factory=list)
    dsp_reports_loaded: int = 0
    dsp_records_loaded: int = 0
    dsp_failures: list[str] = field(default_factory=list)
    spotify_history_plays: int = 0  # music plays imported from exports
    spotify_history_episodes: int = 0  # podcast episodes (video ones too), audiobook chapters
    spotify_history_excluded: int = 0  # rows naming nothing played: stored, in no mart
    spotify_polled_plays: int = 0
    spotify_failures: list[str] = field(default_factory=list)

    @property
    def ranges_built(self) -> list[tuple[date, date]]:
        return contiguous_ranges(self.days_built)

    @property
    def exit_code(self) -> int:
        """0: all loaded and built; 1: a source failed; 3: only inputs were rejected."""
        if self.dsp_failures or self.spotify_failures:
            return 1
        return 3 if self.rejected else 0


def _logging(level: str) -> dict:
    """Run config that sets the in-process console logger's level."""
    return {"loggers": {"console": {"config": {"log_level": level}}}}


def _settled(settings: Settings, source: str, summary: RefreshSummary) -> list[Path]:
    """The files of a landing folder that are completely written and not loaded yet, by the
    sensors' rule (lib/core/plans.wait_until_settled)."""
    folder = landing_folder(settings.home, source)
    loaded = loaded_keys(folder)
    files = [p for p in landing_files(folder, source) if file_run_key(p) not in loaded]
    ready, changing = wait_until_settled(files, settings.file_stable_seconds)
    summary.still_being_written += [str(p) for p in changing]
    return ready


def _ingest_events(defs, instance, paths: list[Path], summary: RefreshSummary, log_level: str):
    """The events job's raw step only: the marts are built once, after every source."""
    if not paths:
        return
    config = {"paths": [str(p) for p in paths]}
    result = defs.resolve_job_def("event_ingest_job").execute_in_process(
        instance=instance,
        raise_on_error=True,
        run_config={**_logging(log_level), "ops": {"stream_event_files": {"config": config}}},
        asset_selection=list(stream_event_files.keys),
    )
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        if materialization.asset_key != RAW_EVENTS:
            continue
        metadata = materialization.metadata
        summary.rows_loaded += metadata["rows_loaded"].value
        summary.rows_quarantined += metadata["rows_quarantined"].value
        summary.files_loaded += metadata["files_loaded"].value
        summary.rejected += list(metadata["rejected"].value.values())


def _plan_marts(
    defs: dg.Definitions, settings: Settings, explicit: list[date]
) -> tuple[BuildPlan, dg.JobDefinition]:
    """The build the marts run will make, and the job (or subset of it) that makes it.

    With days asked for, every model builds them and every pending day. Otherwise only the
    models fed by the sources with pending days (`marts_of_sources`): an events load rebuilds
    the event marts, not the DSP and Spotify ones, which it did not change.
    """
    first, last = partition_bounds(settings.start_date)
    with (
        connect_warehouse(settings.warehouse_path) as conn,
        corruption_as_warehouse_error(settings.warehouse_path),
    ):
        ensure_raw_tables(conn)
        pending = read_pending(conn)
    job = defs.resolve_job_def("daily_marts_job")
    models = ALL_MODELS
    if not explicit and pending:
        selection = marts_of_sources(pending.sources)
        graph = defs.resolve_asset_graph()
        keys = selection.resolve(graph)
        models = frozenset(key.path[-1] for key in keys)
        if models != ALL_MODELS:
            checks = selection.resolve_checks(graph)
            job = job.get_subset(asset_selection=keys, asset_check_selection=checks)
    plan = plan_marts(pending, first=first, last=last, selected_models=models, extra_days=explicit)
    return plan, job


@contextlib.contextmanager
def _dbt_output_unless_it_fails(quiet: bool):
    """dagster-dbt echoes every dbt log line to stdout; a quiet refresh shows them only when
    the run fails unexpectedly (a failed dbt build is one line, dg.Failure, naming dbt's log;
    the run's event log in the instance keeps them either way)."""
    if not quiet:
        yield
        return
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    except dg.Failure:
        raise
    except BaseException:
        sys.stderr.write(buffer.getvalue()[-20_000:])
        raise


def refresh(
    start: date | None = None,
    end: date | None = None,
    *,
    settings: Settings | None = None,
    instance: dg.DagsterInstance | None = None,
    log_level: str = "DEBUG",
) -> RefreshSummary:
    """Ingest every settled file, then build every pending day in one marts run.

    Runs of earlier commands whose process died are marked failed first (their pool slots
    freed). Event files, DSP report ZIPs and Spotify exports waiting in landing/ are loaded
    once they are completely written, and recently-played is polled once when Spotify is
    connected; unreadable files move to rejected/. With start and end, the DSP reports of
    those days are also fetched from the API (when it is configured) and those days are
    rebuilt too. The marts are built by one run on the newest planned day's partition (one dbt
    invocation for every day the rebuild ledger holds, however sparse), which also writes
    their exports; without start and end it builds only the models fed by the sources with
    pending days.
    `log_level` filters what the runs print (their event logs in the instance keep all).
    A corrupt or truncated warehouse raises WarehouseFileError before any run starts.
    """
    from music_analytics.definitions import build_definitions

    settings = settings or Settings.from_env()
    settings.ensure_folders()
    check_warehouse(settings.warehouse_path)
    if instance is None:
        prepare_dagster_home(settings)
        instance = dg.DagsterInstance.get()
    set_pool_limits(instance, settings)
    summary = RefreshSummary(dead_runs_failed=fail_dead_runs(instance))
    defs = build_definitions(settings)
    first, last = partition_bounds(settings.start_date)
    explicit: list[date] = []
    if start or end:
        start, end = start or first, end or last
        if start > end:
            raise ValueError(f"--start {start} is after --end {end}")
        explicit = days_between(max(start, first), min(end, last))
    _ingest_events(defs, instance, _settled(settings, "events", summary), summary, log_level)
    # A day's report exists once the day is over: never ask the API for today.
    yesterday = date.fromordinal(datetime.now(UTC).date().toordinal() - 1)
    api_days = [day for day in explicit if day <= yesterday]
    dsp = refresh_dsp_reports(
        defs, instance, settings, _settled(settings, "dsp", summary), api_days, _logging(log_level)
    )
    summary.dsp_reports_loaded = dsp.reports_loaded
    summary.dsp_records_loaded = dsp.records_loaded
    summary.dsp_failures = dsp.failures
    summary.rejected += dsp.rejected
    spotify = refresh_spotify(
        defs, instance, settings, _settled(settings, "spotify", summary), _logging(log_level)
    )
    summary.spotify_history_plays = spotify.history_plays_loaded
    summary.spotify_history_episodes = spotify.history_episodes
    summary.spotify_history_excluded = spotify.history_excluded
    summary.spotify_polled_plays = spotify.polled_plays_new
    summary.spotify_failures = spotify.failures
    summary.rejected += spotify.rejected
    plan, marts_job = _plan_marts(defs, settings, explicit)
    summary.days_outside_partitions = plan.outside
    if plan.outside:
        summary.outside_message = outside_message(plan.outside, first, last)
    if plan.days:
        config = {"days": [day.isoformat() for day in explicit]}
        with _dbt_output_unless_it_fails(quiet=log_level not in ("DEBUG", "INFO")):
            marts_job.execute_in_process(
                instance=instance,
                partition_key=plan.days[-1].isoformat(),  # the step builds every planned day
                run_config={**_logging(log_level), "ops": {"dbt_daily_models": {"config": config}}},
            )
        summary.days_built = plan.days
    elif settings.raw_layer_enabled:  # no build to sync it: the layer still follows the rows
        sync_with_settings(settings)
    return summary
