"""The dbt resource skips dagster-dbt's start-up work without changing what dbt is told."""

import re
import subprocess

from music_analytics.defs.resources import DbtCli, dbt_executable, dbt_project


def test_the_version_is_the_one_dbt_reports():
    resource = DbtCli(project_dir=dbt_project, dbt_executable=dbt_executable())
    printed = subprocess.check_output([dbt_executable(), "--version"], text=True)
    assert str(resource._cli_version) == re.search(r"(\d+\.\d+\.\d+)", printed).group(1)


def test_no_adapter_is_opened_in_process():
    resource = DbtCli(project_dir=dbt_project, dbt_executable=dbt_executable())
    assert resource._initialize_dbt_core_adapter(["build"]) is None
