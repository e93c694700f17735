"""Resources: the DuckDB warehouse, dbt, and the data folders. Built from Settings.

Nothing here holds a secret yet; when one arrives (API tokens) it is read with dg.EnvVar.
"""

import shutil
import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource, DbtProject
from dagster_duckdb import DuckDBResource

from music_analytics.lib.settings import DBT_PROJECT_DIR, Settings, events_landing

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

    @property
    def events_landing(self) -> Path:
        return events_landing(self.home)


def build_resources(settings: Settings) -> dict[str, object]:
    """The resources of the code location, all pointing at `settings.home`.

    Pins the absolute home in the environment first: dbt's profile resolves the warehouse
    file from it in its own process.
    """
    settings.export_to_environment()
    return {
        "warehouse": DuckDBResource(database=str(settings.warehouse_path)),
        "dbt": DbtCliResource(
            project_dir=dbt_project,
            profiles_dir=str(DBT_PROJECT_DIR),
            dbt_executable=dbt_executable(),
        ),
        "folders": DataFolders(
            home=str(settings.home),
            file_stable_seconds=settings.file_stable_seconds,
            quarantine_warn_ratio=settings.quarantine_warn_ratio,
        ),
    }
