"""`make bench`'s orchestration section: the pipeline as users run it, as real processes.

- **lifetime export**: a Spotify extended streaming history spread over ten years (one ZIP
  of per-year `Streaming_History_Audio_*.json` files, as Spotify mails it) is imported by
  `music-analytics refresh` in a subprocess on a fresh home. Figures: its seconds, and how
  many dbt invocations it took (`daily_marts_job` runs and `dbt_daily_models` steps in the
  Dagster instance; the target is 1), the days built, the ledger left (0) and the years of
  `fct_streams` covered.
- **drop to mart**: `make dev`'s command (`dagster dev` with the daemon) on a fresh home; one
  event file for yesterday is dropped into landing/events/ (`.part`, then renamed) and the
  seconds until its stream ids are in the `fct_streams` export and its streams in the
  `top_tracks_daily` export are measured (the exports are polled every second; the warehouse
  is never opened). The run's event log gives where the time went: sensor wait, queue,
  run start (process and code load), ingest step, dbt, exports.

Subprocess output goes to files under the bench's work folder; only a failure prints its
tail. Progress is one line per step.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bench.processes import BIN, REPO, progress, tail, user_env

LIFETIME_YEARS = int(os.environ.get("BENCH_LIFETIME_YEARS", "10"))
# A week a year (it was four): ten sparse years show as well whether they take one dbt
# invocation (the figure), with a quarter of the days to build.
LIFETIME_DAYS_PER_YEAR = int(os.environ.get("BENCH_LIFETIME_DAYS_PER_YEAR", "7"))
LIFETIME_PLAYS_PER_DAY = int(os.environ.get("BENCH_LIFETIME_PLAYS_PER_DAY", "30"))
DROP_EVENTS = int(os.environ.get("BENCH_DROP_EVENTS", "2000"))
DEV_START_TIMEOUT_S = 300
DROP_TIMEOUT_S = int(os.environ.get("BENCH_DROP_TIMEOUT_SECONDS", "480"))
TARGETS = "lifetime_export_builds == 1, drop_to_mart_seconds <= 120"


def _progress(message: str) -> None:
    progress("orchestration", message)


def _instance(home: Path):
    import dagster as dg

    return dg.DagsterInstance.from_config(str(home / "dagster"))


# --- the lifetime export -------------------------------------------------------------------


def _write_lifetime_export(work: Path, landing: Path) -> tuple[set[date], int]:
    """One listener's ten years, a week each year, as one `my_spotify_data.zip`; returns
    the UTC days with a play and the number of rows."""
    from music_analytics.lib.spotify.sample import EXTENDED_FOLDER, generate_history_export

    parts = work / "export_parts"
    last_year = datetime.now(UTC).year - 1
    for n, year in enumerate(range(last_year - LIFETIME_YEARS + 1, last_year + 1)):
        start = date(year, 1 + n % 12, 1 + (7 * n) % 28)  # a different season each year
        generate_history_export(
            parts,
            start=start,
            days=LIFETIME_DAYS_PER_YEAR,
            plays_per_day=LIFETIME_PLAYS_PER_DAY,
            seed=7,
            as_zip=False,
        )
    folder = parts / EXTENDED_FOLDER
    days: set[date] = set()
    rows = 0
    partial = landing / "my_spotify_data.zip.part"
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, f"{EXTENDED_FOLDER}/{path.name}")
            if path.name.startswith("Streaming_History_Audio_"):
                plays = json.loads(path.read_text())
                rows += len(plays)
                days |= {date.fromisoformat(p["ts"][:10]) for p in plays}
    os.replace(partial, landing / "my_spotify_data.zip")
    return days, rows


def _dbt_steps(instance, run_ids: list[str]) -> int:
    """How many times the dbt step started in these runs: one `dbt build` each."""
    import dagster as dg

    return sum(
        1
        for run_id in run_ids
        for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)
        if entry.step_key == "dbt_daily_models"
    )


def _days_built(instance, run_ids: list[str]) -> int:
    """The days the dbt steps said they built ("dbt build of N day(s) ...")."""
    total = 0
    for run_id in run_ids:
        for entry in instance.all_logs(run_id):
            if entry.user_message.startswith("dbt build of "):
                total += int(entry.user_message.split()[3])
    return total


def _marts_run_split(instance, run_id: str) -> dict:
    """The marts run's seconds: all, dbt (step start to dbt's last event), the exports (to
    their materializations) and the events the run logged."""
    entries = sorted(instance.all_logs(run_id), key=lambda e: e.timestamp)
    step = [e for e in entries if e.step_key == "dbt_daily_models"]
    export = next((i for i, e in enumerate(step) if _is_export(e)), None)
    split = {"run": round(entries[-1].timestamp - entries[0].timestamp, 1), "events": len(entries)}
    ran = next((e.timestamp for e in step if e.message.startswith("Running dbt command")), None)
    done = next((e.timestamp for e in step if e.message.startswith("Finished dbt command")), None)
    if step and ran and done:
        split["dbt_prepare"] = round(ran - step[0].timestamp, 1)  # dagster-dbt before dbt
        # dbt's run, with the events the step yields meanwhile (a materialization per mart
        # and day built outside the run's partition, written to the event log as they come)
        split["dbt_command"] = round(done - ran, 1)
    if step and export:
        split["exports"] = round(step[export].timestamp - step[export - 1].timestamp, 1)
    return split


def _is_export(entry) -> bool:
    event = entry.dagster_event
    return bool(
        event
        and event.event_type_value == "ASSET_MATERIALIZATION"
        and event.asset_key.path[0] == "exports"
    )


def bench_lifetime_export(work: Path) -> dict:
    import dagster as dg
    import duckdb

    home = work / "lifetime_home"
    landing = home / "landing" / "spotify_history"
    landing.mkdir(parents=True)
    play_days, rows = _write_lifetime_export(work, landing)
    years = sorted({d.year for d in play_days})
    _progress(
        f"lifetime export: {rows} plays on {len(play_days)} days in {len(years)} years "
        f"({years[0]}..{years[-1]}); running `music-analytics refresh`"
    )
    log = work / "lifetime_refresh.log"
    env = user_env(home, MUSIC_ANALYTICS_FILE_STABLE_SECONDS="0")
    t = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(
            [str(BIN / "music-analytics"), "refresh"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    seconds = time.perf_counter() - t
    if done.returncode:
        raise RuntimeError(f"refresh exited {done.returncode}:\n{tail(log)}")
    with _instance(home) as instance:
        runs = instance.get_runs()
        marts = [r.run_id for r in runs if r.job_name == "daily_marts_job"]
        dbt_steps = _dbt_steps(instance, [r.run_id for r in runs])
        days_built = _days_built(instance, [r.run_id for r in runs])
        failed = [r.run_id for r in runs if r.status != dg.DagsterRunStatus.SUCCESS]
        split = _marts_run_split(instance, marts[0]) if marts else {}
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        pending = conn.execute("select count(*) from raw.pending_rebuilds").fetchone()[0]
        fct_days, fct_years = conn.execute(
            "select count(distinct stream_date), count(distinct year(stream_date)) "
            "from marts.fct_streams where source = 'spotify_history'"
        ).fetchone()
    if failed:
        raise RuntimeError(f"refresh left failed runs {failed}:\n{tail(log)}")
    figures = {
        "lifetime_export_plays": rows,
        "lifetime_export_play_days": len(play_days),
        "lifetime_export_years": len(years),
        "lifetime_export_seconds": round(seconds, 1),
        "lifetime_export_builds": len(marts),
        "lifetime_export_dbt_invocations": dbt_steps,
        "lifetime_export_days_built": days_built,
        "lifetime_export_pending_after": int(pending),
        "lifetime_export_fct_streams_days": int(fct_days),
        "lifetime_export_fct_streams_years": int(fct_years),
        "lifetime_export_marts_run_seconds": split,
    }
    _progress(
        f"lifetime export: {seconds:.1f} s, {len(marts)} marts run(s), {dbt_steps} dbt "
        f"invocation(s), {days_built} days built, {pending} pending after, fct_streams on "
        f"{fct_days} days in {fct_years} years"
    )
    return figures


# --- drop to mart under `dagster dev` ------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _daemon_up(home: Path) -> bool:
    """The sensor daemon and the run queue's daemon have sent heartbeats to the instance."""
    with _instance(home) as instance:
        beats = instance.get_daemon_heartbeats()
    return {"SENSOR", "QUEUED_RUN_COORDINATOR"} <= set(beats)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the dev server's process group; SIGKILL it if it has not gone in 45 s."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=45)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # its children (daemon, code servers, runs)
    process.wait()


def _expected_stream_ids(path: Path) -> list[str]:
    """The stream ids the loader accepts from the file (loaded into a throw-away DuckDB)."""
    import duckdb

    from music_analytics.lib.events.files import load_event_file

    with duckdb.connect(":memory:") as conn:
        load_event_file(conn, path)
        rows = conn.execute("select distinct stream_id from raw.stream_events").fetchall()
    return [row[0] for row in rows]


def _marts_have(exports: Path, day: date, ids: list[str]) -> tuple[bool, bool]:
    """(every id is in the fct_streams export of `day`, top_tracks_daily counts them all)."""
    import duckdb

    fct = exports / "fct_streams" / f"stream_date={day}" / "data.parquet"
    top = exports / "top_tracks_daily" / f"stream_date={day}" / "data.parquet"
    in_fct = in_top = False
    with duckdb.connect(":memory:") as conn:
        if fct.exists():
            conn.execute("create table want as select unnest(?::varchar[]) as stream_id", [ids])
            found = conn.execute(
                "select count(distinct stream_id) from read_parquet(?) "
                "where stream_id in (select stream_id from want)",
                [str(fct)],
            ).fetchone()[0]
            in_fct = found == len(ids)
        if top.exists():
            streams = conn.execute(
                "select coalesce(sum(stream_count), 0) from read_parquet(?)", [str(top)]
            ).fetchone()[0]
            in_top = streams >= len(ids)
    return in_fct, in_top


def _fail_on_failed_runs(home: Path, log: Path) -> None:
    import dagster as dg

    with _instance(home) as instance:
        failed = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
        if failed:
            why = [e.message for e in instance.all_logs(failed[0].run_id)][-3:]
            raise RuntimeError(f"run {failed[0].run_id} failed: {why}\n{tail(log)}")


def _breakdown(instance, run_id: str, dropped_at: float) -> dict:
    """Where the time of the ingest run went, from its run record and event log."""
    import dagster as dg

    [record] = instance.get_run_records(dg.RunsFilter(run_ids=[run_id]))
    entries = sorted(instance.all_logs(run_id), key=lambda e: e.timestamp)

    def first(event_type: str | None = None, step: str | None = None, text: str = ""):
        for e in entries:
            kind = e.dagster_event.event_type_value if e.dagster_event else None
            if (
                (event_type is None or kind == event_type)
                and step in (None, e.step_key)
                and e.message.startswith(text)
            ):
                return e.timestamp
        return None

    created = record.create_timestamp.timestamp()
    step_events = [e for e in entries if e.step_key == "dbt_daily_models"]
    exported = next((e.timestamp for e in step_events if _is_export(e)), None)
    marks = {
        "sensor_wait": dropped_at,  # drop -> the sensor created the run
        "planning": created,  # -> enqueued (the run's planned-materialization events written)
        "queued": first("PIPELINE_ENQUEUED"),  # -> the run coordinator launched it
        "worker_start": first("PIPELINE_STARTING"),  # -> the worker process logs its pid
        "code_load": first("ENGINE_EVENT", text="Started process for run"),  # -> RUN_START
        "to_ingest_step": first("PIPELINE_START"),
        "ingest_step": first("STEP_START", "stream_event_files"),
        "between_steps": first("STEP_SUCCESS", "stream_event_files"),
        "dbt_prepare": first("STEP_START", "dbt_daily_models"),  # dagster-dbt before dbt runs
        "dbt_command": first(step="dbt_daily_models", text="Running dbt command"),
        "exports": first(step="dbt_daily_models", text="Finished dbt command"),
        "ledger_and_step_end": exported,
        "run_end": first("STEP_SUCCESS", "dbt_daily_models"),
        "": first("PIPELINE_SUCCESS"),
    }
    names, times = list(marks), list(marks.values())
    breakdown = {
        name: round(b - a, 1) if a is not None and b is not None else None
        for name, a, b in zip(names[:-1], times[:-1], times[1:], strict=True)
    }
    return {
        "breakdown": breakdown,
        "run_starting_seconds": round(record.start_time - created, 1)
        if record.start_time
        else None,
        "run_end": record.end_time,
    }


def bench_drop_to_mart(work: Path) -> dict:
    from music_analytics.lib.events.sample import generate_events

    home = work / "dev_home"
    home.mkdir()
    env = user_env(home)
    subprocess.run(  # as `make dev` does: write dagster.yaml, set the pool limits
        [str(BIN / "music-analytics"), "dagster-home"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    # On a home whose marts were never built, an events run's dbt step fails: fct_streams
    # reads int_spotify__plays_unified, which only a build of every model creates. Build
    # every model once (on an empty day, a week ago) before measuring.
    week_ago = (datetime.now(UTC).date() - timedelta(days=7)).isoformat()
    init_log = work / "dev_home_init.log"
    with init_log.open("w") as out:
        init = subprocess.run(
            [str(BIN / "music-analytics"), "refresh", "--start", week_ago, "--end", week_ago],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if init.returncode:
        raise RuntimeError(f"refresh of {week_ago} failed:\n{tail(init_log)}")
    day = datetime.now(UTC).date() - timedelta(days=1)
    staged = generate_events(
        work / "drop", start=day, days=1, events_per_day=DROP_EVENTS, seed=11
    ).files[0]
    ids = _expected_stream_ids(staged)
    port = _free_port()
    log = work / "dagster_dev.log"
    _progress(f"drop to mart: every model built once; starting `dagster dev` on port {port}")
    t = time.monotonic()
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-p", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        webserver = daemon = False
        while not (webserver and daemon):
            if process.poll() is not None or time.monotonic() - t > DEV_START_TIMEOUT_S:
                raise RuntimeError(
                    f"dagster dev did not come up (webserver answers: {webserver}, daemon "
                    f"heartbeats: {daemon}):\n{tail(log)}"
                )
            time.sleep(1)
            webserver = webserver or _answers(f"http://127.0.0.1:{port}/server_info")
            daemon = daemon or _daemon_up(home)
        startup = time.monotonic() - t
        _progress(f"drop to mart: webserver and daemon up after {startup:.0f} s; dropping a file")
        landing = home / "landing" / "events"
        landing.mkdir(parents=True, exist_ok=True)
        partial = landing / f"{staged.name}.part"
        shutil.copyfile(staged, partial)
        os.replace(partial, landing / staged.name)
        dropped_at = time.time()
        t = time.monotonic()
        in_fct_at = in_top_at = None
        while in_fct_at is None or in_top_at is None:
            if time.monotonic() - t > DROP_TIMEOUT_S:
                raise RuntimeError(
                    f"the dropped file's streams were not in the exports after "
                    f"{DROP_TIMEOUT_S} s:\n{tail(log)}"
                )
            if process.poll() is not None:
                raise RuntimeError(f"dagster dev exited:\n{tail(log)}")
            time.sleep(1)
            if int(time.monotonic() - t) % 10 == 0:
                _fail_on_failed_runs(home, log)
            in_fct, in_top = _marts_have(home / "exports", day, ids)
            now = time.monotonic() - t
            in_fct_at = in_fct_at if in_fct_at is not None or not in_fct else now
            in_top_at = in_top_at if in_top_at is not None or not in_top else now
        seconds = max(in_fct_at, in_top_at)
        _progress(f"drop to mart: {len(ids)} streams of {day} in the exports after {seconds:.0f} s")
        with _instance(home) as instance:
            runs = [r for r in instance.get_runs() if r.job_name == "event_ingest_job"]
            if len(runs) != 1:
                raise RuntimeError(f"expected one event_ingest_job run, found {len(runs)}")
            timing = _breakdown(instance, runs[0].run_id, dropped_at)
    finally:
        _stop(process)
    _progress(f"drop to mart: dagster dev stopped; breakdown {timing['breakdown']}")
    figures = {
        "drop_to_mart_events": len(ids),
        "drop_to_mart_seconds": round(seconds, 1),
        "drop_to_mart_fct_streams_seconds": round(in_fct_at, 1),
        "drop_to_mart_run_starting_seconds": timing["run_starting_seconds"],
        "drop_to_mart_breakdown_seconds": timing["breakdown"],
        "drop_to_mart_seen_after_run_end_seconds": round(
            dropped_at + seconds - timing["run_end"], 1
        )
        if timing["run_end"]
        else None,
        "dagster_dev_startup_seconds": round(startup, 1),
    }
    return figures


def bench_orchestration(work: Path) -> dict:
    work = work / "orchestration"
    work.mkdir()
    figures = {"orchestration_load_average_1m": round(os.getloadavg()[0], 2)}
    figures.update(bench_lifetime_export(work))
    figures.update(bench_drop_to_mart(work))
    figures["orchestration_load_average_1m_after"] = round(os.getloadavg()[0], 2)
    return figures
