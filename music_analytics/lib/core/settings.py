"""Every user setting, read from the environment (and a `.env` beside pyproject.toml).

Only non-secret settings live here; secrets reach resources through `dagster.EnvVar`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from dotenv import load_dotenv

from music_analytics.lib.core.json_reader import JsonLimits
from music_analytics.lib.core.landing import landing_folder
from music_analytics.lib.core.zip_safety import ZipLimits

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

DEFAULT_START_DATE = date(2008, 1, 1)  # Spotify launched in 2008: lifetime exports fit
DEFAULTS = {
    "MUSIC_ANALYTICS_HOME": "./data",
    "MUSIC_ANALYTICS_START_DATE": DEFAULT_START_DATE.isoformat(),
    "MUSIC_ANALYTICS_DAILY_CRON": "0 2 * * *",
    "MUSIC_ANALYTICS_LOOKBACK_DAYS": "3",
    "MUSIC_ANALYTICS_FILE_STABLE_SECONDS": "5",
    "MUSIC_ANALYTICS_QUARANTINE_WARN_RATIO": "0.05",
    "MUSIC_ANALYTICS_DSPS": "spotify,youtube,apple_music",
    "MUSIC_ANALYTICS_DSP_CRON": "0 1 * * *",
    "DSP_API_BASE_URL": "",
    "DSP_API_POLL_TIMEOUT_SECONDS": "1800",
    "DSP_API_MAX_ACTIVE_REPORTS": "10",
    "DSP_REPORT_MAX_MB": "1024",
    "DSP_REPORT_MAX_RATIO": "100",
    "MUSIC_ANALYTICS_DUCKDB_MEMORY_LIMIT": "",
    "MUSIC_ANALYTICS_JSON_MAX_DEPTH": "64",
    "MUSIC_ANALYTICS_EVENT_MAX_LINE_KB": "16384",
    "MUSIC_ANALYTICS_JSON_MAX_RECORD_KB": "1024",
    "MUSIC_ANALYTICS_JSON_MAX_STRING_KB": "64",
    "SPOTIFY_CLIENT_ID": "",
    "SPOTIFY_API_BASE_URL": "https://api.spotify.com/v1/",
    "SPOTIFY_ACCOUNTS_BASE_URL": "https://accounts.spotify.com",
    "SPOTIFY_REDIRECT_URI": "http://127.0.0.1:8888/callback",
    "SPOTIFY_REFRESH_TOKEN_FILE": "",
    "SPOTIFY_RETRY_AFTER_CAP_SECONDS": "60",
    "MUSIC_ANALYTICS_SPOTIFY_POLL_MINUTES": "30",
    "MUSIC_ANALYTICS_SPOTIFY_USER": "me",
    "MUSIC_ANALYTICS_API_TOKENS_FILE": "",
    "MUSIC_ANALYTICS_API_MAX_BODY_MB": "10",
    "MUSIC_ANALYTICS_SQL_MAX_ROWS": "10000",
    "MUSIC_ANALYTICS_SQL_TIMEOUT_SECONDS": "10",
    "MUSIC_ANALYTICS_FRESHNESS_GRACE_MINUTES": "180",
    "MUSIC_ANALYTICS_APPEND_URL_HOSTS": "",
    "MUSIC_ANALYTICS_APPEND_URL_MAX_MB": "100",
    "MUSIC_ANALYTICS_APPEND_URL_TIMEOUT_SECONDS": "60",
    "MUSIC_ANALYTICS_SENSOR_INTERVAL_SECONDS": "0",
    "MUSIC_ANALYTICS_ENGINE": "duckdb",
    "MUSIC_ANALYTICS_RAW_LAYER_URI": "",
    "MUSIC_ANALYTICS_SPARK_WAREHOUSE_DIR": "",
}
ENGINES = ("duckdb", "spark")  # MUSIC_ANALYTICS_ENGINE: the engine dbt builds the marts on
# The API refuses a 21st active report; we stay at or under its limit.
DSP_API_ACTIVE_REPORT_LIMIT = 20


def dsp_archive(home: Path | str) -> Path:
    """Where every report ZIP that was loaded is kept, with its checksum."""
    return Path(home) / "archive" / "dsp"


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


def _get(name: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or DEFAULTS[name]


def _as_int(name: str, minimum: int = 0, maximum: int | None = None) -> int:
    raw = _get(name)
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise SettingsError(f"{name}={value} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{name}={value} must be at most {maximum}")
    return value


def _as_dsps(name: str) -> tuple[str, ...]:
    from music_analytics.lib.dsp.catalog import DSP_KEYS

    keys = tuple(k.strip() for k in _get(name).split(",") if k.strip())
    unknown = [k for k in keys if k not in DSP_KEYS]
    if unknown or not keys:
        raise SettingsError(
            f"{name}={_get(name)!r}: expected a comma-separated list of {', '.join(DSP_KEYS)}"
        )
    return keys


def _as_choice(name: str, choices: tuple[str, ...]) -> str:
    value = _get(name).lower()
    if value not in choices:
        raise SettingsError(f"{name}={_get(name)!r}: expected one of {', '.join(choices)}")
    return value


def _as_float(name: str) -> float:
    raw = _get(name)
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None


def _raw_layer_root(home: Path) -> str:
    """MUSIC_ANALYTICS_RAW_LAYER_URI as given when it is a URI; a folder made absolute like the
    home (relative to the project); unset: `<home>/raw`."""
    value = _get("MUSIC_ANALYTICS_RAW_LAYER_URI")
    authority = value.partition("://")[2].split("/", 1)[0] if "://" in value else ""
    if ":" in authority.rpartition("@")[0]:  # user:secret@ (abfs' container@account is fine)
        raise SettingsError(
            "MUSIC_ANALYTICS_RAW_LAYER_URI holds credentials (user:secret@): remove "
            "them and set the filesystem's own variables instead (AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY for s3://, GOOGLE_APPLICATION_CREDENTIALS for gs://)"
        )
    if "://" in value:
        return value.rstrip("/")
    folder = Path(value).expanduser() if value else home / "raw"
    return str(folder if folder.is_absolute() else (PROJECT_ROOT / folder).resolve())


def _spark_warehouse_dir(home: Path) -> Path:
    """MUSIC_ANALYTICS_SPARK_WAREHOUSE_DIR made absolute like the home; unset:
    `<home>/spark-warehouse`."""
    value = _get("MUSIC_ANALYTICS_SPARK_WAREHOUSE_DIR")
    if "://" in value:
        raise SettingsError(
            f"MUSIC_ANALYTICS_SPARK_WAREHOUSE_DIR={value!r}: the session target keeps its marts "
            "in a local folder (the exports read them from there); for a cluster's warehouse "
            "on object storage use the thrift or Connect target (README, Scale-out)"
        )
    folder = Path(value).expanduser() if value else home / "spark-warehouse"
    return folder if folder.is_absolute() else (PROJECT_ROOT / folder).resolve()


@dataclass(frozen=True)
class Settings:
    """The resolved settings; `home` is absolute so every process agrees on it."""

    home: Path
    start_date: date
    daily_cron: str
    lookback_days: int
    file_stable_seconds: int
    quarantine_warn_ratio: float
    dsps: tuple[str, ...]  # the DSPs whose reports the schedule and refresh request
    dsp_cron: str
    dsp_api_base_url: str  # empty: the API is not configured (ZIPs in landing/dsp/ still load)
    dsp_api_token_set: bool  # whether DSP_API_TOKEN is set; its value is read only via EnvVar
    dsp_poll_timeout_seconds: int
    dsp_max_active_reports: int
    dsp_report_max_bytes: int
    dsp_report_max_ratio: int
    duckdb_memory_limit: str  # e.g. "2GB" for the pipeline's connections; "" = DuckDB's default
    json_limits: JsonLimits  # the caps of every JSON reader (lib/core/json_reader.py)
    event_max_line_bytes: int  # a longer event line is quarantined (lib/events/careful_read.py)
    spotify_client_id: str
    spotify_secrets_set: bool  # SPOTIFY_CLIENT_SECRET and a refresh token (env or file) exist
    spotify_api_base_url: str
    spotify_accounts_base_url: str
    spotify_redirect_uri: str
    spotify_refresh_token_file: Path  # where `music-analytics spotify-auth` stores the token
    spotify_retry_after_cap_seconds: int
    spotify_poll_minutes: int
    spotify_user: str  # user_id of the Spotify plays in the marts
    api_tokens_file: Path  # the HTTP server's tokens (music-analytics api-token create)
    api_max_body_bytes: int  # POST /v0/events: larger bodies (raw or gunzipped) get 413
    sql_max_rows: int  # GET /v0/sql: rows past this are cut off
    sql_timeout_seconds: int  # GET /v0/sql: a query running longer is stopped
    alert_webhook_set: bool  # MUSIC_ANALYTICS_ALERT_WEBHOOK_URL is set; read only via EnvVar
    freshness_grace_minutes: int  # a mart is stale after the daily cron's interval + this
    append_url_hosts: tuple[str, ...]  # hosts an append from a URL may fetch; empty: none
    append_url_max_bytes: int  # an append's file larger than this is refused
    append_url_timeout_seconds: int  # an append's download taking longer is stopped
    sensor_interval_seconds: int  # every sensor's minimum interval; 0: each sensor's own
    engine: str  # duckdb | spark: the dbt target that builds the marts
    raw_layer_uri: str  # the raw Parquet layer's root: a local folder or a filesystem URI
    raw_layer_uri_set: bool  # MUSIC_ANALYTICS_RAW_LAYER_URI was given (not the default)
    spark_warehouse_dir: Path  # under spark: the marts' Parquet tables and the local metastore

    @property
    def raw_layer_enabled(self) -> bool:
        """The raw Parquet layer is written when Spark reads it, or when a root is given."""
        return self.engine == "spark" or self.raw_layer_uri_set

    @property
    def spotify_configured(self) -> bool:
        return bool(self.spotify_client_id) and self.spotify_secrets_set

    @property
    def spotify_history_landing(self) -> Path:
        return landing_folder(self.home, "spotify")

    @property
    def dsp_api_configured(self) -> bool:
        return bool(self.dsp_api_base_url) and self.dsp_api_token_set

    @property
    def dsp_landing(self) -> Path:
        return landing_folder(self.home, "dsp")

    @property
    def zip_limits(self) -> ZipLimits:
        return ZipLimits(self.dsp_report_max_bytes, float(self.dsp_report_max_ratio))

    @property
    def dsp_archive(self) -> Path:
        return dsp_archive(self.home)

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def events_landing(self) -> Path:
        return landing_folder(self.home, "events")

    @property
    def exports_dir(self) -> Path:
        return self.home / "exports"

    @property
    def jobs_dir(self) -> Path:
        """The Data Sources API's jobs, one JSON file each (server/jobs.py)."""
        return self.home / "jobs"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @classmethod
    def from_env(cls) -> Settings:
        """Read the settings; `.env` fills in what the environment does not set."""
        load_dotenv(PROJECT_ROOT / ".env", override=False)
        home = Path(_get("MUSIC_ANALYTICS_HOME")).expanduser()
        if not home.is_absolute():
            home = (PROJECT_ROOT / home).resolve()
        token_file = Path(
            _get("SPOTIFY_REFRESH_TOKEN_FILE") or home / "secrets" / "spotify_refresh_token"
        ).expanduser()
        tokens_file = Path(
            _get("MUSIC_ANALYTICS_API_TOKENS_FILE") or home / "secrets" / "api_tokens.json"
        ).expanduser()
        raw_start = _get("MUSIC_ANALYTICS_START_DATE")
        try:
            start_date = date.fromisoformat(raw_start)
        except ValueError:
            raise SettingsError(
                f"MUSIC_ANALYTICS_START_DATE={raw_start!r} is not a YYYY-MM-DD date"
            ) from None
        return cls(
            home=home,
            start_date=start_date,
            daily_cron=_get("MUSIC_ANALYTICS_DAILY_CRON"),
            lookback_days=_as_int("MUSIC_ANALYTICS_LOOKBACK_DAYS"),
            file_stable_seconds=_as_int("MUSIC_ANALYTICS_FILE_STABLE_SECONDS"),
            quarantine_warn_ratio=_as_float("MUSIC_ANALYTICS_QUARANTINE_WARN_RATIO"),
            dsps=_as_dsps("MUSIC_ANALYTICS_DSPS"),
            dsp_cron=_get("MUSIC_ANALYTICS_DSP_CRON"),
            dsp_api_base_url=_get("DSP_API_BASE_URL").rstrip("/"),
            dsp_api_token_set=bool(os.environ.get("DSP_API_TOKEN", "").strip()),
            dsp_poll_timeout_seconds=_as_int("DSP_API_POLL_TIMEOUT_SECONDS", minimum=1),
            dsp_max_active_reports=_as_int(
                "DSP_API_MAX_ACTIVE_REPORTS", minimum=1, maximum=DSP_API_ACTIVE_REPORT_LIMIT
            ),
            dsp_report_max_bytes=_as_int("DSP_REPORT_MAX_MB", minimum=1) * 1024 * 1024,
            dsp_report_max_ratio=_as_int("DSP_REPORT_MAX_RATIO", minimum=1),
            duckdb_memory_limit=_get("MUSIC_ANALYTICS_DUCKDB_MEMORY_LIMIT"),
            json_limits=JsonLimits(
                max_depth=_as_int("MUSIC_ANALYTICS_JSON_MAX_DEPTH", minimum=2, maximum=10_000),
                max_record_bytes=_as_int("MUSIC_ANALYTICS_JSON_MAX_RECORD_KB", minimum=1) * 1024,
                max_string_bytes=_as_int("MUSIC_ANALYTICS_JSON_MAX_STRING_KB", minimum=1) * 1024,
            ),
            event_max_line_bytes=_as_int(
                "MUSIC_ANALYTICS_EVENT_MAX_LINE_KB", minimum=1, maximum=256 * 1024
            )
            * 1024,
            spotify_client_id=_get("SPOTIFY_CLIENT_ID"),
            spotify_secrets_set=bool(os.environ.get("SPOTIFY_CLIENT_SECRET", "").strip())
            and (bool(os.environ.get("SPOTIFY_REFRESH_TOKEN", "").strip()) or token_file.is_file()),
            spotify_api_base_url=_get("SPOTIFY_API_BASE_URL"),
            spotify_accounts_base_url=_get("SPOTIFY_ACCOUNTS_BASE_URL").rstrip("/"),
            spotify_redirect_uri=_get("SPOTIFY_REDIRECT_URI"),
            spotify_refresh_token_file=token_file,
            spotify_retry_after_cap_seconds=_as_int("SPOTIFY_RETRY_AFTER_CAP_SECONDS"),
            spotify_poll_minutes=_as_int("MUSIC_ANALYTICS_SPOTIFY_POLL_MINUTES", minimum=1),
            spotify_user=_get("MUSIC_ANALYTICS_SPOTIFY_USER"),
            api_tokens_file=tokens_file,
            api_max_body_bytes=_as_int("MUSIC_ANALYTICS_API_MAX_BODY_MB", minimum=1) * 1024 * 1024,
            sql_max_rows=_as_int("MUSIC_ANALYTICS_SQL_MAX_ROWS", minimum=1),
            sql_timeout_seconds=_as_int("MUSIC_ANALYTICS_SQL_TIMEOUT_SECONDS", minimum=1),
            alert_webhook_set=bool(os.environ.get("MUSIC_ANALYTICS_ALERT_WEBHOOK_URL", "").strip()),
            freshness_grace_minutes=_as_int("MUSIC_ANALYTICS_FRESHNESS_GRACE_MINUTES", minimum=1),
            append_url_hosts=tuple(
                h.strip().lower()
                for h in _get("MUSIC_ANALYTICS_APPEND_URL_HOSTS").split(",")
                if h.strip()
            ),
            append_url_max_bytes=_as_int("MUSIC_ANALYTICS_APPEND_URL_MAX_MB", minimum=1)
            * 1024
            * 1024,
            append_url_timeout_seconds=_as_int(
                "MUSIC_ANALYTICS_APPEND_URL_TIMEOUT_SECONDS", minimum=1
            ),
            sensor_interval_seconds=_as_int("MUSIC_ANALYTICS_SENSOR_INTERVAL_SECONDS"),
            engine=_as_choice("MUSIC_ANALYTICS_ENGINE", ENGINES),
            raw_layer_uri=_raw_layer_root(home),
            raw_layer_uri_set=bool(_get("MUSIC_ANALYTICS_RAW_LAYER_URI")),
            spark_warehouse_dir=_spark_warehouse_dir(home),
        )

    def export_to_environment(self) -> None:
        """Pin the absolute home in the environment so dbt's profile resolves the same file
        (the raw layer's root and the Spark warehouse go to dbt with each build instead:
        defs/transform/dbt_build.py)."""
        os.environ["MUSIC_ANALYTICS_HOME"] = str(self.home)

    def ensure_folders(self) -> None:
        """Create the home, landing, archive and export folders a fresh machine lacks."""
        folders = (
            self.events_landing,
            self.dsp_landing,
            self.spotify_history_landing,
            self.dsp_archive,
            self.exports_dir,
        )
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
