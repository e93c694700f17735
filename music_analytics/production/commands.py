"""`music-analytics prod up|down|status` (what `make prod-up` / `make prod-down` run)."""

from __future__ import annotations

import argparse
import sys

from music_analytics.production import services
from music_analytics.production.config import ProductionConfig
from music_analytics.production.postgres import PostgresError


def cmd_prod(args: argparse.Namespace) -> int:
    from music_analytics.production import topology  # imports dagster: only for `prod`

    config = ProductionConfig.from_env()
    try:
        if args.action == "up":
            pids = topology.up(config)
            print(
                f"up: PostgreSQL on {config.pg_host}:{config.pg_port}, code server on "
                f"{config.code_server_host}:{config.code_server_port}, Dagster UI at "
                f"{config.webserver_url}, serve on http://127.0.0.1:{config.serve_port}; "
                f"logs in {config.logs}"
            )
            for name, pid in pids.items():
                print(f"  {name}: pid {pid}")
        elif args.action == "down":
            topology.down(config)
            print("down: every service and PostgreSQL stopped")
        else:
            for name, pid in topology.status(config).items():
                print(f"{name}\t{'running' if pid is not None else 'stopped'}")
    except (PostgresError, services.ServiceError) as exc:
        print(f"music-analytics prod: {exc}", file=sys.stderr)
        return 1
    return 0


def add_production_commands(commands: argparse._SubParsersAction) -> None:
    prod = commands.add_parser(
        "prod",
        help="the production topology on this machine: PostgreSQL, code server, daemon, "
        "webserver, serve",
    )
    prod.add_argument("action", choices=["up", "down", "status"])
    prod.set_defaults(handler=cmd_prod)
