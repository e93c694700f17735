"""Resources: the DuckDB warehouse, dbt, the DSP analytics API, the data folders.

Built from Settings. The one secret, DSP_API_TOKEN, is passed as `dg.EnvVar`, so the UI and the
run config show the variable's name, never its value.
"""

import logging
import shutil
import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource, DbtProject
from dagster_duckdb import DuckDBResource
from pydantic import Field

from music_analytics.lib.dsp_api_client import DEFAULT_POLL_DELAYS, DspReportClient
from music_analytics.lib.dsp_pending_reports import PendingReports
from music_analytics.lib.dsp_report_zip import ZipLimits
from music_analytics.lib.settings import (
    DBT_PROJECT_DIR,
    Settings,
    dsp_archive,
    dsp_landing,
    events_landing,
)

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
dbt_project.prepare_if_dev()


def dbt_executable() -> str:
    """The dbt beside the running interpreter: console scripts run without an activated venv."""
    # sys.prefix is the virtualenv even when sys.executable resolves to the base interpreter
    for folder in (Path(sys.executable).parent, Path(sys.prefix) / "bin"):
        if (folder / "dbt").exists():
            return str(folder / "dbt")
    return shutil.which("dbt") or "dbt"


class DataFolders(dg.ConfigurableResource):
    """Where inputs land and outputs go, under MUSIC_ANALYTICS_HOME."""

    home: str
    file_stable_seconds: int = 5
    quarantine_warn_ratio: float = 0.05
    dsp_report_max_bytes: int = 1024 * 1024 * 1024
    dsp_report_max_ratio: int = 100

    @property
    def events_landing(self) -> Path:
        return events_landing(self.home)

    @property
    def dsp_landing(self) -> Path:
        return dsp_landing(self.home)

    @property
    def dsp_archive(self) -> Path:
        return dsp_archive(self.home)

    @property
    def zip_limits(self) -> ZipLimits:
        return ZipLimits(
            max_uncompressed_bytes=self.dsp_report_max_bytes,
            max_ratio=float(self.dsp_report_max_ratio),
        )


class DspApi(dg.ConfigurableResource):
    """The analytics-reports API: base URL, Bearer token (an EnvVar) and polling limits."""

    base_url: str = ""
    token: str = ""
    poll_timeout_seconds: int = 1800
    max_active_reports: int = 10
    pending_dir: str = ""
    poll_delays_seconds: list[float] = Field(
        default_factory=lambda: list(DEFAULT_POLL_DELAYS),
        description="Waits between status polls; the last one repeats (documented: 1 minute).",
    )

    @property
    def configured(self) -> bool:
        return bool(self.base_url) and bool(self.token)

    def client(self, log: logging.Logger | None = None) -> DspReportClient:
        """A client that remembers created reports under `pending_dir` so retries resume them."""
        return DspReportClient(
            self.base_url,
            self.token,
            pending=PendingReports(Path(self.pending_dir)),
            poll_timeout_seconds=self.poll_timeout_seconds,
            max_active_reports=self.max_active_reports,
            poll_delays=self.poll_delays_seconds,
            log=log,
        )


def build_dsp_api(settings: Settings, **overrides) -> DspApi:
    """The DSP API resource; the token is an EnvVar when DSP_API_TOKEN is set."""
    fields = dict(
        base_url=settings.dsp_api_base_url,
        token=dg.EnvVar("DSP_API_TOKEN") if settings.dsp_api_token_set else "",
        poll_timeout_seconds=settings.dsp_poll_timeout_seconds,
        max_active_reports=settings.dsp_max_active_reports,
        pending_dir=str(settings.dsp_archive / "pending"),
    )
    return DspApi(**{**fields, **overrides})


def build_resources(settings: Settings) -> dict[str, object]:
    """The resources of the code location, all pointing at `settings.home`.

    Pins the absolute home in the environment first: dbt's profile resolves the warehouse
    file from it in its own process.
    """
    settings.export_to_environment()
    return {
        "warehouse": DuckDBResource(
            database=str(settings.warehouse_path),
            connection_config=(
                {"memory_limit": settings.duckdb_memory_limit}
                if settings.duckdb_memory_limit
                else {}
            ),
        ),
        "dbt": DbtCliResource(
            project_dir=dbt_project,
            profiles_dir=str(DBT_PROJECT_DIR),
            dbt_executable=dbt_executable(),
        ),
        "folders": DataFolders(
            home=str(settings.home),
            file_stable_seconds=settings.file_stable_seconds,
            quarantine_warn_ratio=settings.quarantine_warn_ratio,
            dsp_report_max_bytes=settings.dsp_report_max_bytes,
            dsp_report_max_ratio=settings.dsp_report_max_ratio,
        ),
        "dsp_api": build_dsp_api(settings),
    }
