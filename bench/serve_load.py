"""The `serve` section of `make bench`: `music-analytics serve` under load from another process.

The server runs on a copy of the cached year home (bench/year.py: the marts `refresh` built
from 10 million events over 365 days, built once per code version), as its own process, and
this process loads it: 8 clients (a keep-alive connection and a thread each)
call the top_tracks pipe with parameters drawn from a seeded RNG for BENCH_SERVE_SECONDS after a
2 s warm-up, then one client alone for the baseline; then 10,000-row NDJSON batches are POSTed
to /v0/events (sequentially, then from 4 clients); last, the busiest user is deleted by a
delete-by-condition job (bench/delete_user.py). The server's peak RSS is sampled throughout.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import random
import shutil
import socket
import subprocess
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlencode

from bench.delete_user import bench_delete_user_job
from bench.processes import REPO, TreeRss, music_analytics, progress, user_env
from bench.year import year_home
from bench.year_cache import Year, copy_home

SERVE_SECONDS = float(os.environ.get("BENCH_SERVE_SECONDS", "20"))
SERVE_BASELINE_SECONDS = float(os.environ.get("BENCH_SERVE_BASELINE_SECONDS", "10"))
SERVE_CLIENTS = int(os.environ.get("BENCH_SERVE_CLIENTS", "8"))
# Server processes (`serve --workers`): one per core, as the README's deployment runs it (on
# the 2-core machine one process answered 309 requests/s, p50 24 ms, and two 445/s, 16 ms).
SERVE_WORKERS = int(os.environ.get("BENCH_SERVE_WORKERS") or os.cpu_count() or 1)
WARMUP_SECONDS = 2.0
SEED = 11
# Range lengths in days and their weights: mostly short ranges, a few full years.
RANGE_WEIGHTS = {7: 40, 1: 25, 30: 20, 90: 10, 365: 5}
LIMITS = (10, 50, 100)
# The share of queries in the seed's DateTime form (`2025-01-01 13:05:00`): their edge days are
# counted from fct_streams between the times; reported apart (`*_datetime`).
DATETIME_SHARE = 0.25
EVENT_BATCH_ROWS = 10_000
EVENT_BATCHES = 20
EVENT_CLIENTS = 4
TARGETS = "serve_top_tracks_p50_ms <= 20, serve_top_tracks_p99_ms <= 100"


# --- the server ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _vm_hwm_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Server:
    """`music-analytics serve` on a free port, as a process of its own."""

    def __init__(self, home: Path, year: Year, log_path: Path, tmp: Path) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 (open while the server runs)
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(
            music_analytics(
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
                "--workers",
                str(SERVE_WORKERS),
                "--log-level",
                "warning",
            ),
            cwd=REPO,
            # The snapshot goes to a temporary folder the server leaves behind: keep it in ours.
            env=user_env(home, **year.env(), TMPDIR=str(tmp)),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.rss = TreeRss(self.proc.pid, interval=0.2)

    def wait_ready(self, timeout: float = 900) -> dict:
        """Poll /healthz until 200; the first answered request builds the snapshot."""
        deadline = time.perf_counter() + timeout
        listening_at = None
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.log_path.read_text()[-3000:]}")
            if time.perf_counter() > deadline:
                raise RuntimeError("the server did not answer /healthz in time")
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            try:
                conn.connect()
            except OSError:
                time.sleep(0.05)
                continue
            listening_at = listening_at or time.perf_counter()
            try:
                conn.request("GET", "/healthz")
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException):
                time.sleep(0.05)
                continue
            finally:
                conn.close()
            answered = time.perf_counter()
            if response.status == 200:
                health = json.loads(body)
                return {
                    # The server builds its snapshot before it listens, so this includes it.
                    "serve_start_to_listening_seconds": round(listening_at - self.started_at, 2),
                    "serve_start_to_first_healthz_seconds": round(answered - self.started_at, 2),
                    "health": health,
                }
            time.sleep(0.1)

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the server has used so far."""
        import psutil

        root = psutil.Process(self.proc.pid)
        total = 0.0
        for process in [root, *root.children(recursive=True)]:  # --workers N: N children
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def stop(self) -> dict:
        hwm = _vm_hwm_mb(self.proc.pid) if self.proc.poll() is None else None
        sampled = self.rss.stop()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return {
            "serve_peak_rss_mb": round(hwm if hwm is not None else sampled),
            "serve_peak_rss_sampled_mb": round(sampled),
        }


class _CpuShares:
    """CPU used (in % of one core) from now to `percentages()`: server, this process, others."""

    def __init__(self, server: Server) -> None:
        import psutil

        self._psutil, self._server = psutil, server
        self._own = psutil.Process()
        self._start = self._read()

    def _read(self) -> tuple[float, float, float, float]:
        total = self._psutil.cpu_times()
        busy = sum(total) - total.idle - getattr(total, "iowait", 0.0)
        own = self._own.cpu_times()
        return time.perf_counter(), busy, self._server.cpu_seconds(), own.user + own.system

    def percentages(self) -> dict:
        end = self._read()
        wall, busy, server, own = (b - a for a, b in zip(self._start, end, strict=True))
        self.server_seconds = server
        return {
            "serve_cpu_cores": os.cpu_count(),
            "serve_server_cpu_percent": round(100 * server / wall),
            "serve_clients_cpu_percent": round(100 * own / wall),
            "serve_other_cpu_percent": round(100 * max(0.0, busy - server - own) / wall),
        }


# --- the clients --------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of values (p in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


class Client:
    """One keep-alive HTTP/1.1 connection (reconnects if the server closes it)."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.headers = {"Authorization": f"Bearer {token}"}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method: str, path: str, body: bytes | None = None, headers=None):
        all_headers = {**self.headers, **(headers or {})}
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=all_headers)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


def _query_maker(filters: dict, seed: int):
    """A function that draws the next top_tracks query: (its kind, e.g. `7d` or `7d_datetime`,
    and its path)."""
    rng = random.Random(seed)
    first = date.fromisoformat(filters["date_range"]["min"])
    last = date.fromisoformat(filters["date_range"]["max"])
    genres, countries = filters["genres"], filters["countries"]
    lengths, weights = list(RANGE_WEIGHTS), list(RANGE_WEIGHTS.values())
    span = (last - first).days + 1

    def next_query() -> tuple[str, str]:
        length = rng.choices(lengths, weights)[0]
        length_in_data = min(length, span)
        # The whole range lies within the data, so a 365-day query reads a full year.
        end = first + timedelta(days=rng.randrange(length_in_data - 1, span))
        start = end - timedelta(days=length_in_data - 1)
        params = {"start_date": start.isoformat(), "end_date": end.isoformat()}
        kind = f"{length}d"
        if rng.random() < DATETIME_SHARE:  # the seed's DateTime form: both edge days cut
            params = {
                "start_date": f"{start} {rng.randrange(12):02d}:{rng.randrange(60):02d}:00",
                "end_date": f"{end} {12 + rng.randrange(12):02d}:{rng.randrange(60):02d}:59",
            }
            kind += "_datetime"
        params["limit"] = rng.choice(LIMITS)
        if genres and rng.random() < 0.3:
            params["genre"] = rng.choice(genres)
        if countries and rng.random() < 0.3:
            params["country"] = rng.choice(countries)
        return kind, f"/v0/pipes/top_tracks.json?{urlencode(params)}"

    return next_query


def _load(port: int, token: str, filters: dict, clients: int, seconds: float) -> dict:
    """`clients` threads calling top_tracks back to back; figures for the measured window."""
    start = time.perf_counter()
    measure_from = start + WARMUP_SECONDS
    measure_to = measure_from + seconds
    records: list[list[tuple]] = [[] for _ in range(clients)]
    failures: list[str] = []

    def run(index: int) -> None:
        client = Client(port, token)
        next_query = _query_maker(filters, SEED * 1000 + clients * 100 + index)
        mine = records[index]
        try:
            while time.perf_counter() < measure_to:
                kind, path = next_query()
                t = time.perf_counter()
                status, body = client.call("GET", path)
                done = time.perf_counter()
                mine.append((t, done, done - t, status, kind))
                if status != 200 and len(failures) < 5:
                    failures.append(f"{status} {path}: {body[:200]!r}")
        except Exception as exc:  # counted, and the run goes on with the other clients
            failures.append(f"client {index}: {exc!r}")
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    window = [r for rs in records for r in rs if r[0] >= measure_from and r[1] <= measure_to]
    latencies = [r[2] * 1000 for r in window]
    errors = sum(1 for r in window if r[3] != 200)
    by_length = {}
    kinds = sorted({r[4] for r in window}, key=lambda k: (int(k.split("d")[0]), k))
    groups = [(kind, lambda k, kind=kind: k == kind) for kind in kinds] + [
        ("datetime", lambda k: k.endswith("_datetime")),
        ("date", lambda k: not k.endswith("_datetime")),
    ]
    for name, member in groups:
        mine = [r[2] * 1000 for r in window if member(r[4])]
        by_length[name] = {
            "requests": len(mine),
            "p50_ms": round(percentile(mine, 50), 1),
            "p99_ms": round(percentile(mine, 99), 1),
        }
    return {
        "all_requests": sum(len(rs) for rs in records),
        "requests": len(window),
        "errors": errors,
        "failures": failures,
        "rps": len(window) / seconds,
        "p50_ms": percentile(latencies, 50),
        "p90_ms": percentile(latencies, 90),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies, default=float("nan")),
        "by_length": by_length,
    }


def _event_batch(rng: random.Random, batch: int) -> bytes:
    """EVENT_BATCH_ROWS valid events in the seed's schema, as NDJSON."""
    from music_analytics.lib.events.sample_catalogue import COUNTRY_WEIGHTS, GENRE_WEIGHTS

    genres, countries = list(GENRE_WEIGHTS), list(COUNTRY_WEIGHTS)
    devices = ("mobile", "desktop", "smart_speaker", "tablet", "tv")
    day = date(2026, 1, 1) + timedelta(days=batch % 28)
    lines = []
    for i in range(EVENT_BATCH_ROWS):
        seconds = rng.randrange(86_400)
        lines.append(
            json.dumps(
                {
                    "stream_id": f"stream_bench_{batch:04d}_{i:05d}",
                    "user_id": f"user_{rng.randrange(5000):05d}",
                    "track_id": f"track_{rng.randrange(2000):05d}",
                    "artist_id": f"artist_{rng.randrange(400):04d}",
                    "album_id": f"album_{rng.randrange(700):04d}",
                    "genre": rng.choice(genres),
                    "stream_start_time": f"{day} {seconds // 3600:02d}:"
                    f"{seconds // 60 % 60:02d}:{seconds % 60:02d}",
                    "stream_duration_seconds": rng.randrange(5, 400),
                    "completed": rng.randrange(2),
                    "device_type": rng.choice(devices),
                    "country": rng.choice(countries),
                },
                separators=(",", ":"),
            )
        )
    return ("\n".join(lines) + "\n").encode()


def _post_events(port: int, token: str, batches: list[bytes], clients: int) -> dict:
    """POST every batch with wait=true from `clients` threads; rows/s over the wall time."""
    answers: list[tuple[float, int, dict | str]] = []
    lock = threading.Lock()
    todo = list(enumerate(batches))

    def run() -> None:
        client = Client(port, token)
        try:
            while True:
                with lock:
                    if not todo:
                        return
                    _, body = todo.pop(0)
                t = time.perf_counter()
                status, raw = client.call(
                    "POST",
                    "/v0/events?name=music_streams&wait=true",
                    body=body,
                    headers={"Content-Type": "application/x-ndjson"},
                )
                elapsed = time.perf_counter() - t
                answer = json.loads(raw) if status == 200 else raw[:200].decode(errors="replace")
                with lock:
                    answers.append((elapsed, status, answer))
        finally:
            client.close()

    t = time.perf_counter()
    threads = [threading.Thread(target=run) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - t
    good = [a for _, s, a in answers if s == 200 and a["successful_rows"] == EVENT_BATCH_ROWS]
    rows = sum(a["successful_rows"] for _, s, a in answers if s == 200)
    return {
        "batches": len(answers),
        "bad_batches": len(answers) - len(good),
        "failures": [f"{s} {a}" for _, s, a in answers if s != 200 or a not in good][:3],
        "rows_per_s": rows / wall,
        "batch_p50_ms": percentile([e * 1000 for e, _, _ in answers], 50),
        "batch_max_ms": max((e * 1000 for e, _, _ in answers), default=float("nan")),
    }


# --- the section --------------------------------------------------------------------------


def bench_serve(work: Path) -> dict:
    from music_analytics.server.api_tokens import create_token

    year = Year()
    cached, built = year_home(work, year)
    progress("serve", "copying the year home (the server and the posted events write to it)")
    home = copy_home(cached, work / "serve_home")
    figures: dict = {
        "serve_events": year.events,
        "serve_days": year.days,
        "serve_marts_build_seconds": built["seconds"],
    }
    token = create_token(home / "secrets" / "api_tokens.json", "bench", ["ADMIN"]).token
    server = Server(home, year, work / "serve.log", work / "serve_tmp")
    try:
        ready = server.wait_ready()
        health = ready.pop("health")
        figures.update(ready)
        figures["serve_top_tracks_daily_rows"] = health["marts"].get("top_tracks_daily")
        figures["serve_snapshot_error"] = health.get("snapshot_error")
        setup = Client(server.port, token)
        status, raw = setup.call("GET", "/v0/filters")
        setup.close()
        if status != 200:
            raise RuntimeError(f"/v0/filters answered {status}: {raw[:300]!r}")
        filters = json.loads(raw)
        figures["serve_date_range"] = filters["date_range"]
        progress(
            "serve",
            f"server ready after {ready['serve_start_to_first_healthz_seconds']} s; "
            f"{SERVE_CLIENTS} clients call top_tracks for {SERVE_SECONDS:.0f} s",
        )

        # CPU of the server, of these clients and of anything else on the machine during the
        # load: the figures mean little if other processes took a core meanwhile.
        cpu = _CpuShares(server)
        load = _load(server.port, token, filters, SERVE_CLIENTS, SERVE_SECONDS)
        figures.update(cpu.percentages())
        if load["all_requests"]:  # warm-up included, as in the CPU figures
            figures["serve_server_cpu_ms_per_request"] = round(
                1000 * cpu.server_seconds / load["all_requests"], 2
            )
        figures.update(
            {
                "serve_clients": SERVE_CLIENTS,
                "serve_workers": SERVE_WORKERS,
                "serve_seconds": SERVE_SECONDS,
                "serve_top_tracks_requests": load["requests"],
                "serve_top_tracks_errors": load["errors"],
                "serve_top_tracks_rps": round(load["rps"], 1),
                "serve_top_tracks_p50_ms": round(load["p50_ms"], 1),
                "serve_top_tracks_p90_ms": round(load["p90_ms"], 1),
                "serve_top_tracks_p99_ms": round(load["p99_ms"], 1),
                "serve_top_tracks_max_ms": round(load["max_ms"], 1),
            }
        )
        for kind, stats in load["by_length"].items():  # 7d, 7d_datetime, ..., datetime, date
            figures[f"serve_top_tracks_{kind}_requests"] = stats["requests"]
            figures[f"serve_top_tracks_{kind}_p50_ms"] = stats["p50_ms"]
            figures[f"serve_top_tracks_{kind}_p99_ms"] = stats["p99_ms"]
        if load["failures"]:
            figures["serve_top_tracks_failures"] = load["failures"]
        # The server remembers each snapshot's pipe answers: how many requests reused one.
        probe = Client(server.port, token)
        status, raw = probe.call("GET", "/healthz")
        probe.close()
        if status == 200:
            answers = json.loads(raw).get("pipe_answers", {})
            figures["serve_top_tracks_answers_reused"] = answers.get("reused")
            figures["serve_top_tracks_answers_computed"] = answers.get("computed")
        progress(
            "serve",
            f"p50 {figures['serve_top_tracks_p50_ms']} ms, p99 "
            f"{figures['serve_top_tracks_p99_ms']} ms; now one client alone",
        )
        alone = _load(server.port, token, filters, 1, SERVE_BASELINE_SECONDS)
        figures.update(
            {
                "serve_top_tracks_1client_requests": alone["requests"],
                "serve_top_tracks_1client_errors": alone["errors"],
                "serve_top_tracks_1client_rps": round(alone["rps"], 1),
                "serve_top_tracks_1client_p50_ms": round(alone["p50_ms"], 1),
                "serve_top_tracks_1client_p99_ms": round(alone["p99_ms"], 1),
            }
        )
        for kind, stats in alone["by_length"].items():
            figures[f"serve_top_tracks_1client_{kind}_p50_ms"] = stats["p50_ms"]

        progress(
            "serve",
            f"one client: p50 {figures['serve_top_tracks_1client_p50_ms']} ms; "
            f"POSTing {2 * EVENT_BATCHES} batches of {EVENT_BATCH_ROWS:,} events",
        )
        rng = random.Random(SEED)
        batches = [_event_batch(rng, b) for b in range(2 * EVENT_BATCHES)]
        figures["serve_events_batch_rows"] = EVENT_BATCH_ROWS
        figures["serve_events_batch_kb"] = round(len(batches[0]) / 1024)
        for clients, chunk in (
            (1, batches[:EVENT_BATCHES]),
            (EVENT_CLIENTS, batches[EVENT_BATCHES:]),
        ):
            posted = _post_events(server.port, token, chunk, clients)
            key = "serve_events" if clients == 1 else f"serve_events_{clients}clients"
            figures.update(
                {
                    f"{key}_batches": posted["batches"],
                    f"{key}_bad_batches": posted["bad_batches"],
                    f"{key}_rows_per_s": round(posted["rows_per_s"]),
                    f"{key}_batch_p50_ms": round(posted["batch_p50_ms"], 1),
                    f"{key}_batch_max_ms": round(posted["batch_max_ms"], 1),
                }
            )
            if posted["failures"]:
                figures[f"{key}_failures"] = posted["failures"]

        progress("serve", "deleting the busiest user through the Data Sources API (a job)")
        deleter = Client(server.port, token)
        try:
            figures.update(bench_delete_user_job(deleter, home / "warehouse.duckdb"))
        finally:
            deleter.close()
        progress(
            "serve",
            f"delete job: {figures['serve_delete_user_job_seconds']} s for "
            f"{figures['serve_delete_user_rows_affected']:,} rows",
        )
    finally:
        figures.update(server.stop())
        shutil.rmtree(home, ignore_errors=True)
    return figures
