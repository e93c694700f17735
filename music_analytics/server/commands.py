"""The `serve` and `api-token` subcommands of `music-analytics`."""

from __future__ import annotations

import argparse
import sys

from music_analytics.lib.core.settings import Settings
from music_analytics.server.api_tokens import TokenFileError, create_token, load_tokens

DEFAULT_PORT = 8000
# uvicorn's supervisor kills a worker that does not answer its ping in time (default 5 s), and
# a worker only answers once its process is up: on a loaded machine one took longer, was killed
# and restarted over and over. A hung worker is still replaced, after this long.
WORKER_HEALTHCHECK_SECONDS = 60


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = Settings.from_env()
    if args.workers < 1:
        print("music-analytics serve: --workers must be at least 1", file=sys.stderr)
        return 2
    try:
        tokens = load_tokens(settings.api_tokens_file)  # fail here, not in every worker
    except TokenFileError as exc:
        print(f"music-analytics serve: {exc}", file=sys.stderr)
        return 2
    if not len(tokens):
        print(
            f"no API tokens in {settings.api_tokens_file}: every /v0 call will get 401. "
            "Create one with: music-analytics api-token create dashboard --scope PIPES:READ",
            file=sys.stderr,
        )
    print(
        f"serving {settings.exports_dir} on http://{args.host}:{args.port}/ "
        f"(dashboard /, API docs /docs) with {args.workers} worker process(es)",
        flush=True,
    )
    options = dict(
        host=args.host, port=args.port, log_level=args.log_level, access_log=args.access_log
    )
    if args.workers == 1:
        from music_analytics.server.app import build_app

        uvicorn.run(build_app(settings, tokens=tokens), **options)
    else:
        # Each process builds its own app (and snapshot) from the same environment.
        settings.export_to_environment()
        uvicorn.run(
            "music_analytics.server.app:create_app",
            factory=True,
            workers=args.workers,
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
            **options,
        )
    return 0


def cmd_api_token_create(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    try:
        token = create_token(settings.api_tokens_file, args.name, args.scope)
    except TokenFileError as exc:
        print(f"music-analytics api-token: {exc}", file=sys.stderr)
        return 2
    print(f"token {token.name!r} ({', '.join(token.scopes)}) saved in {settings.api_tokens_file}:")
    print(token.token)
    return 0


def cmd_api_token_list(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    try:
        tokens = load_tokens(settings.api_tokens_file)
    except TokenFileError as exc:
        print(f"music-analytics api-token: {exc}", file=sys.stderr)
        return 2
    if not len(tokens):
        print(f"no tokens in {settings.api_tokens_file}")
    for token in tokens.tokens:
        print(f"{token.name}\t{' '.join(token.scopes)}")
    return 0


def add_server_commands(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "serve", help="serve the marts over HTTP: pipes, /v0/sql, /v0/events and the dashboard"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes; one per core answers the most requests (default 1)",
    )
    serve.add_argument("--log-level", default="info", choices=["warning", "info", "debug"])
    serve.add_argument(
        "--no-access-log", dest="access_log", action="store_false", help="log no requests"
    )
    serve.set_defaults(handler=cmd_serve)

    token = commands.add_parser("api-token", help="create or list the HTTP API's tokens")
    actions = token.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create (or replace) a token and print it once")
    create.add_argument("name", help="a name for the token, e.g. dashboard")
    create.add_argument(
        "--scope",
        action="append",
        required=True,
        help=(
            "ADMIN, PIPES:READ[:<pipe>], DATASOURCE:APPEND[:music_streams] or "
            "DATASOURCES:CREATE; repeatable"
        ),
    )
    create.set_defaults(handler=cmd_api_token_create)
    listing = actions.add_parser("list", help="the tokens' names and scopes (not their values)")
    listing.set_defaults(handler=cmd_api_token_list)
