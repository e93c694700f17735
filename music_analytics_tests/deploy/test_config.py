"""The production instance's files and settings, without starting anything."""

import pytest
import sqlalchemy
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster_postgres.utils import pg_config, pg_url_from_config

from music_analytics.lib.core.settings import SettingsError
from music_analytics.production.config import ProductionConfig
from music_analytics.production.postgres import PostgresError, check_connection
from music_analytics.production.services import DEPLOY, service


@pytest.fixture
def pg_env(monkeypatch):
    values = {
        "MUSIC_ANALYTICS_PG_HOST": "db.internal",
        "MUSIC_ANALYTICS_PG_PORT": "6543",
        "MUSIC_ANALYTICS_PG_USER": "music_analytics",
        "MUSIC_ANALYTICS_PG_DB": "music_analytics",
        "MUSIC_ANALYTICS_PG_PASSWORD": "s3cret/with:odd@chars",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def test_the_production_instance_is_postgres_with_psycopg2_queue_and_run_monitoring(pg_env):
    config, _ = dagster_instance_config(str(DEPLOY))
    resolved = process_config(pg_config(), config["storage"]["postgres"])
    assert resolved.success, resolved.errors
    url = sqlalchemy.make_url(pg_url_from_config(resolved.value))
    # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which is not installed.
    assert url.drivername == "postgresql+psycopg2"
    assert (url.host, url.port, url.password) == (
        "db.internal",
        6543,
        pg_env["MUSIC_ANALYTICS_PG_PASSWORD"],
    )
    assert "s3cret" not in (DEPLOY / "dagster.yaml").read_text()
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["concurrency"]["pools"] == {"default_limit": 1, "granularity": "op"}
    monitoring = config["run_monitoring"]
    assert monitoring["enabled"] and monitoring["max_resume_run_attempts"] == 0
    assert config["telemetry"] == {"enabled": False}


def test_a_bad_port_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("MUSIC_ANALYTICS_CODE_SERVER_PORT", "40x0")
    with pytest.raises(SettingsError, match="MUSIC_ANALYTICS_CODE_SERVER_PORT='40x0'"):
        ProductionConfig.from_env()


def test_an_unreachable_postgres_is_one_line_without_the_password():
    password = "never-printed-7f3a"
    with pytest.raises(PostgresError) as caught:
        check_connection("127.0.0.1", 1, "music_analytics", password, "music_analytics")
    message = str(caught.value)
    assert "127.0.0.1" in message and "MUSIC_ANALYTICS_PG_HOST" in message
    assert password not in message and "\n" not in message


def test_the_services_load_the_code_location_from_the_grpc_server(settings):
    config = ProductionConfig.from_env(settings)
    workspace = (DEPLOY / "workspace.yaml").read_text()
    assert "grpc_server:" in workspace and "MUSIC_ANALYTICS_CODE_SERVER_PORT" in workspace
    code_server = service(config, "code-server").argv
    assert code_server[1:3] == ["code-server", "start"]
    assert str(config.code_server_port) in code_server
    for name in ("daemon", "webserver"):
        assert str(DEPLOY / "workspace.yaml") in service(config, name).argv
