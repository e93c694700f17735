"""Resources: the DuckDB warehouse, dbt, the DSP analytics API, the data folders.

Built from Settings. The one secret, DSP_API_TOKEN, is passed as `dg.EnvVar`, so the UI and the
run config show the variable's name, never its value.
"""

import importlib.metadata
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from functools import cached_property
from pathlib import Path

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource, DbtProject
from dagster_dbt.dbt_project import using_dagster_dev
from dagster_duckdb import DuckDBResource
from packaging import version
from pydantic import Field

from music_analytics.lib.core.json_reader import DEFAULT_JSON_LIMITS, JsonLimits
from music_analytics.lib.core.landing import landing_folder
from music_analytics.lib.core.settings import (
    DBT_PROJECT_DIR,
    DEFAULT_START_DATE,
    Settings,
    dsp_archive,
)
from music_analytics.lib.core.warehouse_file import (
    WarehouseFileError,
    connect_warehouse,
    corruption_as_warehouse_error,
)
from music_analytics.lib.core.zip_safety import ZipLimits
from music_analytics.lib.dsp.api_client import DspReportClient
from music_analytics.lib.dsp.api_polling import DEFAULT_POLL_DELAYS
from music_analytics.lib.dsp.pending_reports import PendingReports
from music_analytics.lib.events.file_batch import MAX_LINE_BYTES
from music_analytics.lib.spotify.client import SpotifyPlaysClient


def manifest_is_stale(manifest: Path) -> bool:
    """True when the manifest is missing or older than a model, macro, test or config file."""
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    return any(
        path.stat().st_mtime > built
        for pattern in ("*.sql", "*.yml")
        for path in DBT_PROJECT_DIR.rglob(pattern)
        if "target" not in path.parts and "logs" not in path.parts
    )


dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# Under `dagster dev`, parse the dbt project only when a dbt file is newer than the manifest.
# dagster-dbt's prepare_if_dev() parses in every process that loads the code (the code
# server, every run worker), which added most of a minute to each run's start.
if using_dagster_dev() and manifest_is_stale(dbt_project.manifest_path):
    dbt_project.preparer.prepare(dbt_project)


def dbt_executable() -> str:
    """The dbt beside the running interpreter: console scripts run without an activated venv."""
    # sys.prefix is the virtualenv even when sys.executable resolves to the base interpreter
    for folder in (Path(sys.executable).parent, Path(sys.prefix) / "bin"):
        if (folder / "dbt").exists():
            return str(folder / "dbt")
    return shutil.which("dbt") or "dbt"


class DbtCli(DbtCliResource):
    """dagster-dbt's dbt CLI resource, without two start-up costs it pays in each run's process.

    - dagster-dbt loads dbt's profile, project and adapter in the calling process before every
      invocation, for `fetch_row_counts`/`fetch_column_metadata`, which this project does not
      use: skipped.
    - It learns dbt's version by running `dbt --version` (a whole dbt start-up, ~3 s): the
      dbt beside this interpreter (`dbt_executable`) is the installed dbt-core, whose version
      the package metadata gives.
    (dagster-dbt 0.29's private hooks, see its core/resource.py; dbt itself runs in its
    subprocess as before.)
    """

    def _initialize_dbt_core_adapter(self, args):
        return None

    @cached_property
    def _cli_version(self) -> version.Version:
        if self.dbt_executable != dbt_executable():
            return super()._cli_version
        return version.parse(importlib.metadata.version("dbt-core"))


class WarehouseResource(DuckDBResource):
    """dagster-duckdb's resource, opening the file through `connect_warehouse`: it waits out
    another writer's lock as dagster-duckdb does, but fails at once, in one line, on a corrupt
    or truncated file instead of retrying it for two minutes."""

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        config = {"custom_user_agent": "dagster", **self.connection_config}
        conn = connect_warehouse(self.database, config=config)
        try:
            yield conn
        finally:
            conn.close()


WAREHOUSE_ERROR = "warehouse_error"  # dg.Failure metadata: a WarehouseFileError's reason


def warehouse_failure(exc: WarehouseFileError) -> dg.Failure:
    """The step failure for a warehouse that cannot be used: its one line, not retried, and
    its reason in the metadata (`refresh` exits 4 for a broken file, as before any run)."""
    return dg.Failure(
        description=str(exc), allow_retries=False, metadata={WAREHOUSE_ERROR: exc.reason}
    )


@contextmanager
def open_warehouse(warehouse: DuckDBResource) -> Iterator[duckdb.DuckDBPyConnection]:
    """`warehouse.get_connection()`, closed even when the block raises (dagster-duckdb's own
    context manager skips the close on an exception, keeping the file open in this process).

    A warehouse that cannot be opened, or whose block a query finds damaged, fails the step
    with its one-line reason (dg.Failure), not retried: no retry repairs a broken file."""
    try:
        opened = warehouse.get_connection()
        conn = opened.__enter__()
    except WarehouseFileError as exc:
        raise warehouse_failure(exc) from None
    try:
        with corruption_as_warehouse_error(warehouse.database):
            yield conn
    except WarehouseFileError as exc:  # a damaged block, found by a query of the step
        raise warehouse_failure(exc) from None
    finally:
        conn.close()
        opened.__exit__(None, None, None)


class DataFolders(dg.ConfigurableResource):
    """Where inputs land and outputs go, under MUSIC_ANALYTICS_HOME."""

    home: str
    start_date: str = DEFAULT_START_DATE.isoformat()  # MUSIC_ANALYTICS_START_DATE
    file_stable_seconds: int = 5
    quarantine_warn_ratio: float = 0.05
    dsp_report_max_bytes: int = 1024 * 1024 * 1024
    dsp_report_max_ratio: int = 100
    json_max_depth: int = DEFAULT_JSON_LIMITS.max_depth
    json_max_record_bytes: int = DEFAULT_JSON_LIMITS.max_record_bytes
    json_max_string_bytes: int = DEFAULT_JSON_LIMITS.max_string_bytes
    event_max_line_bytes: int = MAX_LINE_BYTES  # MUSIC_ANALYTICS_EVENT_MAX_LINE_KB
    raw_layer_uri: str = ""  # the raw Parquet layer's root; "" = the layer is off
    engine: str = "duckdb"  # MUSIC_ANALYTICS_ENGINE: under spark a layer that fails fails the build
    spark_warehouse_dir: str = ""  # MUSIC_ANALYTICS_SPARK_WAREHOUSE_DIR: the Spark marts' files

    @property
    def events_landing(self) -> Path:
        return landing_folder(self.home, "events")

    @property
    def dsp_landing(self) -> Path:
        return landing_folder(self.home, "dsp")

    @property
    def dsp_archive(self) -> Path:
        return dsp_archive(self.home)

    @property
    def spotify_history_landing(self) -> Path:
        return landing_folder(self.home, "spotify")

    @property
    def first_day(self) -> date:
        """The first daily partition."""
        return date.fromisoformat(self.start_date)

    @property
    def warehouse_path(self) -> Path:
        return Path(self.home) / "warehouse.duckdb"

    @property
    def spotify_history_archive(self) -> Path:
        return Path(self.home) / "archive" / "spotify_history"

    @property
    def zip_limits(self) -> ZipLimits:
        return ZipLimits(
            max_uncompressed_bytes=self.dsp_report_max_bytes,
            max_ratio=float(self.dsp_report_max_ratio),
        )

    @property
    def json_limits(self) -> JsonLimits:
        return JsonLimits(
            self.json_max_depth, self.json_max_record_bytes, self.json_max_string_bytes
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


class SpotifyApi(dg.ConfigurableResource):
    """The listener's Spotify account: app credentials and refresh token (EnvVars), base URLs.

    The refresh token comes from SPOTIFY_REFRESH_TOKEN or, when that is unset, from the file
    `music-analytics spotify-auth` wrote (SPOTIFY_REFRESH_TOKEN_FILE).
    """

    client_id: str = ""
    client_secret: str = ""
    refresh_token: str = ""
    refresh_token_file: str = ""
    api_base_url: str = "https://api.spotify.com/v1/"
    accounts_base_url: str = "https://accounts.spotify.com"
    retry_after_cap_seconds: int = 60

    def _refresh_token(self) -> str:
        if self.refresh_token:
            return self.refresh_token
        path = Path(self.refresh_token_file) if self.refresh_token_file else None
        return path.read_text().strip() if path and path.is_file() else ""

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret and self._refresh_token())

    def client(self, log: logging.Logger | None = None) -> SpotifyPlaysClient:
        """A spotipy-based client; the access token is refreshed from the refresh token."""
        return SpotifyPlaysClient(
            self.client_id,
            self.client_secret,
            self._refresh_token(),
            api_base_url=self.api_base_url,
            accounts_base_url=self.accounts_base_url,
            retry_after_cap=float(self.retry_after_cap_seconds),
            log=log,
        )


def build_spotify_api(settings: Settings, **overrides) -> SpotifyApi:
    """The Spotify resource; secrets are EnvVars when set in the environment."""

    def env(name: str):
        return dg.EnvVar(name) if os.environ.get(name, "").strip() else ""

    fields = dict(
        client_id=settings.spotify_client_id,
        client_secret=env("SPOTIFY_CLIENT_SECRET"),
        refresh_token=env("SPOTIFY_REFRESH_TOKEN"),
        refresh_token_file=str(settings.spotify_refresh_token_file),
        api_base_url=settings.spotify_api_base_url,
        accounts_base_url=settings.spotify_accounts_base_url,
        retry_after_cap_seconds=settings.spotify_retry_after_cap_seconds,
    )
    return SpotifyApi(**{**fields, **overrides})


def build_resources(settings: Settings) -> dict[str, object]:
    """The resources of the code location, all pointing at `settings.home`.

    Pins the absolute home in the environment first: dbt's profile resolves the warehouse
    file from it in its own process.
    """
    settings.export_to_environment()
    return {
        "warehouse": WarehouseResource(
            database=str(settings.warehouse_path),
            connection_config=(
                {"memory_limit": settings.duckdb_memory_limit}
                if settings.duckdb_memory_limit
                else {}
            ),
        ),
        "dbt": DbtCli(
            project_dir=dbt_project,
            profiles_dir=str(DBT_PROJECT_DIR),
            dbt_executable=dbt_executable(),
            target=settings.engine,  # profiles.yml has one target per engine
        ),
        "folders": DataFolders(
            home=str(settings.home),
            start_date=settings.start_date.isoformat(),
            file_stable_seconds=settings.file_stable_seconds,
            quarantine_warn_ratio=settings.quarantine_warn_ratio,
            dsp_report_max_bytes=settings.dsp_report_max_bytes,
            dsp_report_max_ratio=settings.dsp_report_max_ratio,
            json_max_depth=settings.json_limits.max_depth,
            json_max_record_bytes=settings.json_limits.max_record_bytes,
            json_max_string_bytes=settings.json_limits.max_string_bytes,
            event_max_line_bytes=settings.event_max_line_bytes,
            raw_layer_uri=settings.raw_layer_uri if settings.raw_layer_enabled else "",
            engine=settings.engine,
            spark_warehouse_dir=str(settings.spark_warehouse_dir),
        ),
        "dsp_api": build_dsp_api(settings),
        "spotify": build_spotify_api(settings),
    }
