"""`music-analytics`: the command line for people who run the pipeline without the daemon."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from music_analytics.lib.core.settings import Settings, SettingsError
from music_analytics.lib.core.warehouse_file import WarehouseFileError
from music_analytics.production.commands import add_production_commands
from music_analytics.server.commands import add_server_commands

DEMO_MARKER = ".music-analytics-demo"


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a YYYY-MM-DD date") from None


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def cmd_refresh(args: argparse.Namespace) -> int:
    """Exit status: 0 all loaded and built; 1 a source failed, or a run stopped on a handled
    error; 3 inputs were rejected; 4 the warehouse is broken (it cannot be opened, main; or a
    run found a damaged block)."""
    import dagster as dg

    from music_analytics.defs.resources import WAREHOUSE_ERROR
    from music_analytics.refresh import refresh

    try:
        summary = refresh(args.start, args.end, log_level="INFO" if args.verbose else "WARNING")
    except dg.Failure as exc:  # a handled error that stopped a run: its reason, one line
        print(f"music-analytics: {exc.description}", file=sys.stderr)
        reason = exc.metadata.get(WAREHOUSE_ERROR)
        return 4 if reason is not None and reason.value == "broken" else 1
    built = ", ".join(f"{a}..{b}" for a, b in summary.ranges_built) or "nothing to rebuild"
    print(
        f"loaded {summary.rows_loaded} rows from {summary.files_loaded} new event file(s), "
        f"quarantined {summary.rows_quarantined}; {summary.dsp_reports_loaded} DSP report(s) "
        f"with {summary.dsp_records_loaded} records; marts rebuilt: {built}"
    )
    imported = (
        summary.spotify_history_plays
        + summary.spotify_history_episodes
        + summary.spotify_history_excluded
    )
    if imported or summary.spotify_polled_plays:
        print(
            f"Spotify: {summary.spotify_history_plays} play(s), "
            f"{summary.spotify_history_episodes} episode(s) and "
            f"{summary.spotify_history_excluded} excluded row(s) (naming nothing played) "
            f"imported from exports, {summary.spotify_polled_plays} new polled play(s)"
        )
    for run_id in summary.dead_runs_failed:
        print(f"note: run {run_id} had died (its process is gone): marked failed")
    for path in summary.still_being_written:
        print(f"note: {path} is still being written: the next refresh loads it")
    for reason in summary.rejected:
        print(f"rejected: {reason} (moved to rejected/ with a .error.txt)", file=sys.stderr)
    for failure in summary.dsp_failures:
        print(f"error: DSP report not loaded: {failure}", file=sys.stderr)
    for failure in summary.spotify_failures:
        print(f"error: Spotify: {failure}", file=sys.stderr)
    if summary.outside_message:
        print(f"warning: {summary.outside_message}", file=sys.stderr)
    return summary.exit_code


def cmd_delete_user(args: argparse.Namespace) -> int:
    """Remove a user from raw, the marts and the exports; print what went, table by table."""
    from music_analytics.user_deletion import delete_user

    deletion = delete_user(Settings.from_env(), args.user_id, rebuild=not args.no_rebuild)
    for line in deletion.lines():
        print(line)
    if not deletion.rebuilt:
        print("the marts and exports still hold the user until `music-analytics refresh` runs")
    left = {t: n for t, n in deletion.marts_left.items() if n}
    if deletion.rebuilt and left:
        print(f"error: rows of the user are left in {', '.join(left)}", file=sys.stderr)
        return 1
    print(
        "still holding the user: the event files in landing/events/ and Dagster's run logs "
        "(see the README, 'Deleting a user')"
    )
    return 0


def cmd_spotify_auth(args: argparse.Namespace) -> int:
    """The one-time OAuth authorization-code flow, for a machine without a browser."""
    import os

    from music_analytics.lib.spotify.errors import SpotifyApiError
    from music_analytics.lib.spotify.oauth import (
        DEFAULT_SCOPES,
        authorization_url,
        exchange_code,
        new_state,
    )

    settings = Settings.from_env()
    secret = os.environ.get("SPOTIFY_CLIENT_SECRET", "").strip()
    if not settings.spotify_client_id or not secret:
        print(
            "music-analytics: set SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET first (in the "
            "environment or .env); see the README's 'Connect Spotify'.",
            file=sys.stderr,
        )
        return 2
    state = new_state()
    url = authorization_url(
        settings.spotify_client_id,
        settings.spotify_redirect_uri,
        DEFAULT_SCOPES,
        state,
        accounts_base_url=settings.spotify_accounts_base_url,
    )
    print(
        "1. Open this URL in any browser, log in to Spotify and approve:\n\n"
        f"   {url}\n\n"
        f"2. The browser then goes to {settings.spotify_redirect_uri}?code=... and shows an "
        "error page (nothing listens there): that is expected.\n"
        "3. Copy that whole address from the browser's address bar and paste it here."
    )
    redirected = args.redirected_url or input("Redirected URL: ").strip()
    try:
        token = exchange_code(
            settings.spotify_client_id,
            secret,
            settings.spotify_redirect_uri,
            redirected,
            state=state if not args.redirected_url else None,
            accounts_base_url=settings.spotify_accounts_base_url,
        )
    except (SpotifyApiError, ValueError) as exc:
        print(f"music-analytics: {exc}", file=sys.stderr)
        return 1
    path = settings.spotify_refresh_token_file
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(token + "\n")
    print(
        f"Connected. The refresh token is stored in {path} (readable by you only), where the "
        "pipeline reads it; keep it out of the repository. Restart `make dev` and turn on "
        "spotify_poll_schedule in the UI (Automation)."
    )
    return 0


def cmd_sample_data(args: argparse.Namespace) -> int:
    from music_analytics.lib.events.sample import generate_events

    start = args.start or (datetime.now(UTC).date() - timedelta(days=args.days))
    result = generate_events(
        args.out, start=start, days=args.days, events_per_day=args.events_per_day, seed=args.seed
    )
    print(
        f"wrote {len(result.files)} file(s) to {args.out}: {result.events} events, "
        f"{result.malformed_lines} malformed lines, {result.duplicate_lines} duplicate stream_ids"
    )
    return 0


def cmd_dagster_home(args: argparse.Namespace) -> int:
    import dagster as dg

    from music_analytics.instance.home import prepare_dagster_home, set_pool_limits

    settings = Settings.from_env()
    home = prepare_dagster_home(settings)
    set_pool_limits(dg.DagsterInstance.get(), settings)
    print(home)
    return 0


def _fresh_home(home: Path) -> None:
    """Empty a demo home; refuse to touch a folder the demo did not create."""
    if home.exists() and any(home.iterdir()):
        if not (home / DEMO_MARKER).exists():
            raise SystemExit(
                f"{home} holds data that the demo did not create; point MUSIC_ANALYTICS_HOME "
                "at an empty or demo folder (make demo uses ./data/demo)."
            )
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    (home / DEMO_MARKER).write_text("created by `music-analytics demo`; safe to delete\n")


def cmd_demo(args: argparse.Namespace) -> int:
    from music_analytics.demo import print_demo_summary
    from music_analytics.lib.dsp.sample import generate_dsp_reports
    from music_analytics.lib.events.sample import generate_events
    from music_analytics.lib.spotify.sample import generate_history_export
    from music_analytics.refresh import refresh

    settings = Settings.from_env()
    began = time.monotonic()
    _fresh_home(settings.home)
    settings.ensure_folders()
    start = datetime.now(UTC).date() - timedelta(days=args.days)
    sample = generate_events(
        settings.events_landing,
        start=start,
        days=args.days,
        events_per_day=args.events_per_day,
        seed=args.seed,
        gzip_every=7,
    )
    print(
        f"generated {sample.events} events in {len(sample.files)} files under "
        f"{settings.events_landing}"
    )
    # The DSP reports cover the last days of the same period, as if downloaded by hand.
    reports = generate_dsp_reports(
        settings.dsp_landing,
        start=start + timedelta(days=args.days - args.dsp_days),
        days=args.dsp_days,
        records_per_report=args.dsp_records,
        seed=args.seed,
    )
    print(f"generated {len(reports)} DSP report ZIPs under {settings.dsp_landing}")
    export = generate_history_export(
        settings.spotify_history_landing,
        start=start,
        days=args.days,
        plays_per_day=args.spotify_plays_per_day,
        seed=args.seed,
    )
    print(f"generated a Spotify streaming-history export: {export}")
    print("loading everything and building every mart (one dbt run)...", flush=True)
    summary = refresh(settings=settings, log_level="WARNING")
    print_demo_summary(settings, summary, elapsed=time.monotonic() - began)
    return 0


def cmd_raw_layer_sync(args: argparse.Namespace) -> int:
    """Exit status: 0 the layer matches the raw tables; 1 it cannot be written (one line)."""
    from music_analytics.lib.core.raw_layer import sync_with_settings
    from music_analytics.lib.core.raw_layer_names import RawLayerError

    settings = Settings.from_env()
    settings.ensure_folders()
    started = time.monotonic()
    try:
        summary = sync_with_settings(settings, whole=args.all, log=print)
    except RawLayerError as exc:
        print(f"music-analytics: {exc}", file=sys.stderr)
        return 1
    print(f"{summary.line()} in {time.monotonic() - started:.1f}s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="music-analytics",
        description="Music-listening data into daily analytics marts (Dagster + dbt + DuckDB).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    refresh = commands.add_parser(
        "refresh", help="ingest waiting files and rebuild the marts of the days that changed"
    )
    refresh.add_argument("--start", type=_date, help="first day to rebuild (YYYY-MM-DD)")
    refresh.add_argument("--end", type=_date, help="last day to rebuild (YYYY-MM-DD)")
    refresh.add_argument("-v", "--verbose", action="store_true", help="print the runs' logs")
    refresh.set_defaults(handler=cmd_refresh)

    sample = commands.add_parser("sample-data", help="generate realistic NDJSON stream events")
    sample.add_argument("out", type=Path, help="folder to write the event files into")
    sample.add_argument("--days", type=_positive, default=30)
    sample.add_argument("--events-per-day", type=_positive, default=2000)
    sample.add_argument("--seed", type=int, default=42)
    sample.add_argument("--start", type=_date, help="first day (default: --days ago)")
    sample.set_defaults(handler=cmd_sample_data)

    demo = commands.add_parser(
        "demo", help="sample data into a fresh MUSIC_ANALYTICS_HOME, ingest, build, summarize"
    )
    demo.add_argument("--days", type=_positive, default=60)
    demo.add_argument("--events-per-day", type=_positive, default=3000)
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--dsp-days", type=_positive, default=7, help="days of DSP reports")
    demo.add_argument("--dsp-records", type=_positive, default=300, help="records per report")
    demo.add_argument(
        "--spotify-plays-per-day", type=_positive, default=40, help="plays in the sample export"
    )
    demo.set_defaults(handler=cmd_demo)

    auth = commands.add_parser(
        "spotify-auth", help="connect a Spotify account (one-time OAuth flow, no browser needed)"
    )
    auth.add_argument(
        "--redirected-url",
        help="the URL Spotify redirected to (skips the prompt and the state check; for scripts)",
    )
    auth.set_defaults(handler=cmd_spotify_auth)

    delete = commands.add_parser(
        "delete-user",
        help="delete a user's events and quarantined lines, then rebuild the days they were on",
    )
    delete.add_argument("user_id", help="the user_id to remove")
    delete.add_argument(
        "--no-rebuild", action="store_true", help="only mark the days; the next refresh rebuilds"
    )
    delete.set_defaults(handler=cmd_delete_user)

    raw_layer = commands.add_parser(
        "raw-layer", help="the raw Parquet layer Spark reads (MUSIC_ANALYTICS_RAW_LAYER_URI)"
    ).add_subparsers(dest="raw_layer_command", required=True)
    sync = raw_layer.add_parser(
        "sync", help="bring the layer to the raw tables: the changed days, or every day (--all)"
    )
    sync.add_argument(
        "--all",
        action="store_true",
        help="compare every day and list the whole layer (after switching an existing "
        "warehouse to Spark, or files removed by hand)",
    )
    sync.set_defaults(handler=cmd_raw_layer_sync)

    home = commands.add_parser(
        "dagster-home", help="print (and create) the DAGSTER_HOME the CLI and `make dev` share"
    )
    home.set_defaults(handler=cmd_dagster_home)
    add_server_commands(commands)
    add_production_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `music-analytics` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except SettingsError as exc:
        print(f"music-analytics: {exc}", file=sys.stderr)
        return 2
    except WarehouseFileError as exc:
        print(f"music-analytics: {exc}", file=sys.stderr)
        return 4


if __name__ == "__main__":
    sys.exit(main())
