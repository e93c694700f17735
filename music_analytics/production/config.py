"""Where the production processes listen and keep their state, read from the environment.

The same variables configure deploy/dagster.yaml (the PostgreSQL connection), deploy/
workspace.yaml (the code server's address), the systemd units and docker-compose.yml.
MUSIC_ANALYTICS_PG_PASSWORD is a secret: it is passed on in the services' environment and
never printed; `prod up` generates one (kept in a 0600 file) when it is not set.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from music_analytics.lib.core.settings import Settings, SettingsError

DEFAULTS = {
    "MUSIC_ANALYTICS_PG_HOST": "127.0.0.1",
    "MUSIC_ANALYTICS_PG_PORT": "18350",
    "MUSIC_ANALYTICS_PG_USER": "music_analytics",
    "MUSIC_ANALYTICS_PG_DB": "music_analytics",
    "MUSIC_ANALYTICS_PG_DATA": "",  # the throwaway cluster of `prod up`; "" = <prod>/postgres
    "MUSIC_ANALYTICS_CODE_SERVER_HOST": "127.0.0.1",
    "MUSIC_ANALYTICS_CODE_SERVER_PORT": "18300",
    "MUSIC_ANALYTICS_WEBSERVER_HOST": "127.0.0.1",
    "MUSIC_ANALYTICS_WEBSERVER_PORT": "18301",
    "MUSIC_ANALYTICS_SERVE_PORT": "18302",
}
PASSWORD = "MUSIC_ANALYTICS_PG_PASSWORD"


def _get(name: str) -> str:
    return os.environ.get(name, "").strip() or DEFAULTS[name]


def _port(name: str) -> int:
    raw = _get(name)
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SettingsError(f"{name}={raw!r} is not a TCP port (1-65535)")
    return int(raw)


@dataclass(frozen=True)
class ProductionConfig:
    """The topology's addresses and folders; `state` is <home>/prod (logs, pids, DAGSTER_HOME)."""

    settings: Settings
    pg_host: str
    pg_port: int
    pg_user: str
    pg_db: str
    pg_data: Path
    code_server_host: str
    code_server_port: int
    webserver_host: str
    webserver_port: int
    serve_port: int

    @classmethod
    def from_env(cls, settings: Settings | None = None) -> ProductionConfig:
        settings = settings or Settings.from_env()
        state = settings.home / "prod"
        return cls(
            settings=settings,
            pg_host=_get("MUSIC_ANALYTICS_PG_HOST"),
            pg_port=_port("MUSIC_ANALYTICS_PG_PORT"),
            pg_user=_get("MUSIC_ANALYTICS_PG_USER"),
            pg_db=_get("MUSIC_ANALYTICS_PG_DB"),
            pg_data=Path(_get("MUSIC_ANALYTICS_PG_DATA") or state / "postgres").expanduser(),
            code_server_host=_get("MUSIC_ANALYTICS_CODE_SERVER_HOST"),
            code_server_port=_port("MUSIC_ANALYTICS_CODE_SERVER_PORT"),
            webserver_host=_get("MUSIC_ANALYTICS_WEBSERVER_HOST"),
            webserver_port=_port("MUSIC_ANALYTICS_WEBSERVER_PORT"),
            serve_port=_port("MUSIC_ANALYTICS_SERVE_PORT"),
        )

    @property
    def state(self) -> Path:
        return self.settings.home / "prod"

    @property
    def dagster_home(self) -> Path:
        return self.state / "dagster"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def pids(self) -> Path:
        return self.state / "run"

    @property
    def password_file(self) -> Path:
        return self.state / "secrets" / "pg_password"

    @property
    def webserver_url(self) -> str:
        return f"http://{self.webserver_host}:{self.webserver_port}"

    def password(self) -> str:
        """MUSIC_ANALYTICS_PG_PASSWORD, else the one `prod up` generated (created on first use)."""
        if os.environ.get(PASSWORD):
            return os.environ[PASSWORD]
        path = self.password_file
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(24) + "\n")
        return path.read_text().strip()

    def dagster_env(self) -> dict[str, str]:
        """What deploy/dagster.yaml and deploy/workspace.yaml read (the password included)."""
        return {
            "DAGSTER_HOME": str(self.dagster_home),
            "MUSIC_ANALYTICS_HOME": str(self.settings.home),
            "MUSIC_ANALYTICS_PG_HOST": self.pg_host,
            "MUSIC_ANALYTICS_PG_PORT": str(self.pg_port),
            "MUSIC_ANALYTICS_PG_USER": self.pg_user,
            "MUSIC_ANALYTICS_PG_DB": self.pg_db,
            PASSWORD: self.password(),
            "MUSIC_ANALYTICS_CODE_SERVER_HOST": self.code_server_host,
            "MUSIC_ANALYTICS_CODE_SERVER_PORT": str(self.code_server_port),
        }
