"""`prod up` / `prod down`: the whole topology on this machine, in order.

up: the PostgreSQL cluster (created on first use), DAGSTER_HOME with deploy/dagster.yaml and
the pool limits, then the code server, the daemon, the webserver and `serve`, each waited for
until it serves. down: the same in reverse. A service that already runs is left running.
"""

from __future__ import annotations

import os

import dagster as dg

from music_analytics.instance.home import set_pool_limits
from music_analytics.production import services
from music_analytics.production.config import ProductionConfig
from music_analytics.production.postgres import PostgresCluster, PostgresError, check_connection


def cluster(config: ProductionConfig) -> PostgresCluster:
    return PostgresCluster(
        config.pg_data, config.pg_host, config.pg_port, config.pg_user, config.pg_db
    )


def use_instance_env(config: ProductionConfig) -> None:
    """Point this process at the production instance (for the readiness checks, pool limits)."""
    os.environ.update(config.dagster_env())


def up(config: ProductionConfig, names: tuple[str, ...] = services.SERVICES) -> dict[str, int]:
    """Start PostgreSQL and the services `names` (in the topology's order); their pids."""
    use_instance_env(config)
    config.settings.ensure_folders()
    postgres = cluster(config)
    postgres.init(config.password())
    postgres.start()
    check_connection(
        config.pg_host, config.pg_port, config.pg_user, config.password(), config.pg_db
    )
    services.prepare_instance(config)
    try:
        with dg.DagsterInstance.from_config(str(config.dagster_home)) as instance:
            set_pool_limits(instance, config.settings)
    except Exception as exc:  # noqa: BLE001 - reported as one line below, with its cause
        raise PostgresError(
            f"cannot use the Dagster instance on PostgreSQL {config.pg_host}:{config.pg_port} "
            f"(database {config.pg_db}, user {config.pg_user}): {_root_cause(exc)}; check "
            "MUSIC_ANALYTICS_PG_HOST/PORT/USER/DB/PASSWORD"
        ) from None
    # The code server first (the others load the code location from it), then the rest at once.
    pids = services.start(config, *[name for name in names if name == "code-server"])
    pids.update(services.start(config, *[name for name in services.SERVICES[1:] if name in names]))
    return pids


def _root_cause(exc: BaseException) -> str:
    """The first line of the innermost cause (psycopg2's message names no password)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    exc = getattr(exc, "orig", None) or exc
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def down(
    config: ProductionConfig,
    keep_postgres: bool = False,
    grace: float = services.STOP_GRACE_SECONDS,
) -> None:
    """Stop every service (serve, webserver, daemon, then the code server), then PostgreSQL;
    a service still there `grace` seconds after SIGTERM gets SIGKILL."""
    for name in reversed(services.SERVICES):
        services.stop(config, name, grace=grace)
    if not keep_postgres:
        cluster(config).stop()


def status(config: ProductionConfig) -> dict[str, int | None]:
    """Each service's pid (None: not running); `postgres` is 0 when it runs."""
    found: dict[str, int | None] = {"postgres": 0 if cluster(config).running() else None}
    found.update({name: services.pid_of(config, name) for name in services.SERVICES})
    return found
