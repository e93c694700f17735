"""The topology's services: their commands (the same as in deploy/systemd and docker-compose),
and starting, checking and stopping them as detached processes with pid files.

Each service runs in its own session (process group): stopping a service stops what it
started (the code server's run workers included). Dagster's webserver and daemon can take
~40 s to exit on SIGTERM; after `STOP_GRACE_SECONDS` the group gets SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from music_analytics.lib.core.settings import PROJECT_ROOT
from music_analytics.production.config import ProductionConfig

DEPLOY = PROJECT_ROOT / "deploy"
BIN = Path(sys.executable).parent
STOP_GRACE_SECONDS = 45
SERVICES = ("code-server", "daemon", "webserver", "serve")


class ServiceError(RuntimeError):
    """A service did not come up; the message names it and its log."""


@dataclass(frozen=True)
class Service:
    name: str
    argv: list[str]
    ready: Callable[[], bool]


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _grpc_ok(host: str, port: int) -> bool:
    from dagster._grpc.client import DagsterGrpcClient

    try:
        return DagsterGrpcClient(host=host, port=port).ping("up") is not None
    except Exception:  # noqa: BLE001 - any failure means: not serving yet
        return False


def _daemon_ok(config: ProductionConfig) -> bool:
    """The daemon's sensor and run-queue loops have sent heartbeats to the instance."""
    from dagster import DagsterInstance

    try:
        with DagsterInstance.from_config(str(config.dagster_home)) as instance:
            beats = instance.get_daemon_heartbeats()
    except Exception:  # noqa: BLE001 - the instance is not reachable yet
        return False
    return {"SENSOR", "QUEUED_RUN_COORDINATOR", "MONITORING"} <= set(beats)


def service(config: ProductionConfig, name: str) -> Service:
    """The command line of one service and how to tell that it serves."""
    workspace = str(DEPLOY / "workspace.yaml")
    if name == "code-server":
        argv = [str(BIN / "dagster"), "code-server", "start", "-h", config.code_server_host]
        argv += ["-p", str(config.code_server_port), "-m", "music_analytics.definitions"]
        argv += ["--location-name", "music_analytics", "-d", str(PROJECT_ROOT)]
        return Service(
            name, argv, lambda: _grpc_ok(config.code_server_host, config.code_server_port)
        )
    if name == "daemon":
        return Service(
            name, [str(BIN / "dagster-daemon"), "run", "-w", workspace], lambda: _daemon_ok(config)
        )
    if name == "webserver":
        argv = [str(BIN / "dagster-webserver"), "-w", workspace, "-h", config.webserver_host]
        argv += ["-p", str(config.webserver_port)]
        return Service(name, argv, lambda: _http_ok(f"{config.webserver_url}/server_info"))
    if name == "serve":
        argv = [str(BIN / "music-analytics"), "serve", "--port", str(config.serve_port)]
        return Service(
            name, argv, lambda: _http_ok(f"http://127.0.0.1:{config.serve_port}/healthz")
        )
    raise ValueError(f"unknown service {name!r}: expected one of {', '.join(SERVICES)}")


def service_env(config: ProductionConfig) -> dict[str, str]:
    """The services' environment: ours, the instance's variables, the venv first on PATH
    (the code server runs dbt), and Dagster's event batching (one write per batch)."""
    env = {**os.environ, **config.dagster_env()}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("DAGSTER_EVENT_BATCH_SIZE", "1000")
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    return env


def prepare_instance(config: ProductionConfig) -> Path:
    """DAGSTER_HOME with deploy/dagster.yaml (a dagster.yaml of the user's is kept)."""
    home = config.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if not target.exists():
        shutil.copyfile(DEPLOY / "dagster.yaml", target)
    return home


def pid_of(config: ProductionConfig, name: str) -> int | None:
    """The service's pid when it runs (its pid file names a live process), else None."""
    path = config.pids / f"{name}.pid"
    try:
        pid, started = path.read_text().split()
        process = psutil.Process(int(pid))
        if abs(process.create_time() - float(started)) < 1 and process.status() != "zombie":
            return int(pid)
    except (OSError, ValueError, psutil.Error):
        pass
    return None


def spawn(config: ProductionConfig, name: str) -> int:
    """Start the service detached (unless it runs), without waiting; returns its pid."""
    running = pid_of(config, name)
    if running:
        return running
    config.logs.mkdir(parents=True, exist_ok=True)
    config.pids.mkdir(parents=True, exist_ok=True)
    with (config.logs / f"{name}.log").open("ab") as out:
        process = subprocess.Popen(
            service(config, name).argv,
            cwd=PROJECT_ROOT,
            env=service_env(config),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    created = psutil.Process(process.pid).create_time()
    (config.pids / f"{name}.pid").write_text(f"{process.pid} {created}\n")
    return process.pid


def wait_ready(config: ProductionConfig, names: list[str], timeout: float = 180) -> None:
    """Wait until every service of `names` serves; ServiceError when one exits or is late."""
    checks = {name: service(config, name).ready for name in names}
    deadline = time.monotonic() + timeout
    while checks:
        for name in list(checks):
            if checks[name]():
                del checks[name]
            elif pid_of(config, name) is None:
                log = config.logs / f"{name}.log"
                raise ServiceError(f"{name} exited before it served: see {log}")
        if checks and time.monotonic() > deadline:
            logs = ", ".join(str(config.logs / f"{name}.log") for name in checks)
            raise ServiceError(
                f"{', '.join(checks)} did not come up in {timeout:.0f} s: see {logs}"
            )
        time.sleep(0.3)


def start(config: ProductionConfig, *names: str) -> dict[str, int]:
    """Start the services together and wait until each serves; their pids."""
    pids = {name: spawn(config, name) for name in names}
    wait_ready(config, list(names))
    return pids


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Send `sig` to the service's process group (the service and what it started)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def stop(config: ProductionConfig, name: str, grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM the service's group, SIGKILL it after `grace` seconds; remove the pid file."""
    pid = pid_of(config, name)
    if pid:
        signal_group(pid, signal.SIGTERM)
        with contextlib.suppress(psutil.TimeoutExpired, psutil.NoSuchProcess):
            psutil.Process(pid).wait(timeout=grace)
        signal_group(pid, signal.SIGKILL)
    (config.pids / f"{name}.pid").unlink(missing_ok=True)
