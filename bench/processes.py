"""What every `make bench` section needs to run the pipeline as users do: the environment of a
user's process on a home, a command run with its output in a log file (timed, with the peak
RSS of its process tree), and the one-line progress messages.

Child output never reaches the terminal: it goes to the log file, and only a failure prints
its tail.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
_STARTED = time.monotonic()


def progress(section: str, message: str) -> None:
    """One line: time since the bench started, the section, what it is doing."""
    elapsed = int(time.monotonic() - _STARTED)
    print(f"[{elapsed // 60:2d}:{elapsed % 60:02d}] {section}: {message}", flush=True)


def tail(log: Path, chars: int = 4000) -> str:
    """The end of a child's log, for the error that says it failed."""
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no output)"


def user_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a user's process on `home`: venv first on PATH, DAGSTER_HOME under
    the home (as `music-analytics dagster-home` makes it), no inherited MUSIC_ANALYTICS_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUSIC_ANALYTICS_")}
    env.pop("DAGSTER_HOME", None)
    env.update(
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        MUSIC_ANALYTICS_HOME=str(home),
        DAGSTER_HOME=str(home / "dagster"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        **extra,
    )
    return env


class TreeRss:
    """Samples the summed RSS of a process and its descendants; keeps the peak (MB)."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        import psutil

        self._proc = psutil.Process(pid)
        self.interval = interval
        self.peak_mb = 0.0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                procs = [self._proc, *self._proc.children(recursive=True)]
                total = 0
                for proc in procs:
                    with contextlib.suppress(psutil.Error):
                        total += proc.memory_info().rss
                self.peak_mb = max(self.peak_mb, total / 2**20)
                self.samples += 1
            except psutil.Error:
                return
            self._stop.wait(self.interval)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.peak_mb


@dataclass(frozen=True)
class Finished:
    """A command that exited 0: its wall seconds, the peak RSS of its tree, its log."""

    seconds: float
    peak_rss_mb: float
    log: Path


def run_logged(argv: list[str], env: dict[str, str], log: Path) -> Finished:
    """Run `argv` from the repository with stdout and stderr in `log`; time it and sample its
    process tree's RSS every 0.1 s. Raises RuntimeError with the log's tail if it fails."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        t = time.perf_counter()
        child = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        rss = TreeRss(child.pid, interval=0.1)
        returncode = child.wait()
        seconds = time.perf_counter() - t
        peak = rss.stop()
    if returncode:
        raise RuntimeError(
            f"`{' '.join(Path(a).name if i == 0 else a for i, a in enumerate(argv))}` exited "
            f"{returncode} (log: {log}):\n{tail(log)}"
        )
    return Finished(seconds=seconds, peak_rss_mb=peak, log=log)


def music_analytics(*args: str) -> list[str]:
    """The argv of the `music-analytics` console script of this venv."""
    return [str(BIN / "music-analytics"), *args]
