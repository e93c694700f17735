"""One `dbt build` of a plan's days, started so that dbt parses only what changed.

dbt re-parses the whole project (about 5 s here) whenever its command-line `--vars`, its
profile or its version differ from those its saved parse state (`partial_parse.msgpack`) was
made with. So:

- **The days go by environment variable**, not `--vars`: `DAY_RANGES_ENV` holds the plan's
  `[first, last]` pairs as JSON and macros/partition_window.sql reads it only while dbt
  executes (never while it parses), so a new set of days changes nothing dbt parsed.
  `dbt build --vars '{day_ranges: ...}'` by hand still works and takes precedence.
- **A failed build is one line** (`build_failure`): the failing model or test and the line of
  its error that says what is wrong, and where dbt's log is, instead of dagster-dbt's
  description, which repeats the whole command (every selected node) and dbt's output.
- **The parse state is kept per home** (`<home>/dbt/partial_parse.msgpack`): dbt's profile
  holds the warehouse path, so a state made for one home is useless to another. Each
  invocation gets its own target folder under `<home>/dbt/target/`, seeded with that state and
  copied back once dbt has parsed; only the newest `KEEP_TARGETS` folders are kept (dagster-dbt
  otherwise leaves one folder per run in dbt_project/target/ for ever).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliInvocation, DbtCliResource

from music_analytics.defs.resources import warehouse_failure
from music_analytics.lib.core.warehouse_file import broken_warehouse_error, is_corrupt_block

DAY_RANGES_ENV = "MUSIC_ANALYTICS_DBT_DAY_RANGES"
PARSE_STATE = "partial_parse.msgpack"
KEEP_TARGETS = 10


def dbt_state_dir(home: str | Path) -> Path:
    """Where a home keeps dbt's parse state and its invocations' target folders."""
    return Path(home) / "dbt"


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """os.environ updated with `values` for the block (dagster-dbt reads it and gives dbt a
    copy of it when it starts the process), then as before."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _new_target(state_dir: Path, name: str) -> Path:
    """A fresh target folder for one invocation, seeded with the home's parse state; older
    folders beyond the newest KEEP_TARGETS removed."""
    targets = state_dir / "target"
    targets.mkdir(parents=True, exist_ok=True)
    old = sorted(targets.iterdir())  # by name: the time each was made
    for folder in old[: max(0, len(old) - (KEEP_TARGETS - 1))]:
        shutil.rmtree(folder, ignore_errors=True)
    target = targets / f"{datetime.now(UTC):%Y%m%dT%H%M%S.%f}-{name}"
    target.mkdir()
    state = state_dir / PARSE_STATE
    if state.is_file():
        shutil.copyfile(state, target / PARSE_STATE)
    return target


def keep_parse_state(invocation: DbtCliInvocation, state_dir: Path) -> None:
    """Copy the parse state dbt wrote for this invocation to the home, atomically (a reader
    sees the old file or the new one); a missing one is left as it was."""
    written = invocation.target_path / PARSE_STATE
    if not written.is_file():
        return
    partial = state_dir / f".{PARSE_STATE}.{os.getpid()}"
    shutil.copyfile(written, partial)
    os.replace(partial, state_dir / PARSE_STATE)


def dbt_locations(raw_layer_uri: str, spark_warehouse_dir: str) -> dict[str, str]:
    """The environment dbt's spark target reads its locations from (profiles.yml,
    macros/raw_layer.sql): the resolved raw layer root and Spark warehouse, the ones given.
    Set per build rather than process-wide, so that one process's builds of two homes (tests)
    never hand one home's folders to the other."""
    values = {
        "MUSIC_ANALYTICS_RAW_LAYER_URI": raw_layer_uri,
        "MUSIC_ANALYTICS_SPARK_WAREHOUSE_DIR": spark_warehouse_dir,
    }
    return {name: value for name, value in values.items() if value}


def start_build(
    dbt: DbtCliResource,
    args: list[str],
    day_ranges: list[list[str]],
    *,
    home: str | Path,
    context,
    name: str,
    locations: dict[str, str] | None = None,
) -> DbtCliInvocation:
    """Start `dbt <args>` for the days `day_ranges` (a plan's pairs) in its own target folder
    under `home`, with `locations` (dbt_locations) in its environment; the caller streams it
    and then calls `keep_parse_state`.

    Tests are selected `cautious`ly: one that also reads a model outside the run (a Spotify
    mart reconciled with fct_streams, in an events run) waits for a run that builds both. It
    is dbt's environment variable, not the flag, so that dagster-dbt can still replace it
    with `empty` when the run selects only some of its models' checks (it then names the
    tests to run).
    """
    target = _new_target(dbt_state_dir(home), name)
    environment = {
        DAY_RANGES_ENV: json.dumps(day_ranges),
        "DBT_INDIRECT_SELECTION": "cautious",
        **(locations or {}),
    }
    with _environment(**environment):
        return dbt.cli(args, context=context, target_path=target)


_FAILED = ("error", "fail", "runtime error")
# dbt's first line of a node's error only names the node ("Runtime Error in model x (path)"):
# the engine's own reason is on the next line.
_WRAPPER_PREFIXES = ("Runtime Error in", "Compilation Error in", "Database Error in")


def _reason(message: str) -> str:
    lines = [line.strip() for line in (message or "").splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith(_WRAPPER_PREFIXES):
        lines = lines[1:]
    return lines[0] if lines else "no message"


def failed_nodes(target_path: Path) -> list[tuple[str, str, str]]:
    """The nodes of a finished invocation that errored or failed, from its run_results.json:
    (resource type, name, the line of dbt's message that says why)."""
    results = target_path / "run_results.json"
    try:
        found = json.loads(results.read_text())["results"]
    except (OSError, ValueError, KeyError):
        return []
    failed = []
    for result in found:
        if result.get("status") not in _FAILED:
            continue
        kind, _, name, *_ = result["unique_id"].split(".")  # test ids end in a hash
        kind = "data test" if kind == "test" else kind
        failed.append((kind, name, _reason(result.get("message"))))
    return failed


def build_failure(invocation: DbtCliInvocation, days: list, warehouse: str | Path) -> dg.Failure:
    """The step's failure for a dbt build that failed: one line naming the first failing node
    and why, how many others failed, that the days stay pending, and where dbt's log is; for
    a damaged block of the warehouse, the warehouse's own line (warehouse_file.py)."""
    failed = failed_nodes(invocation.target_path)
    for _, _, reason in failed:
        if is_corrupt_block(reason):
            return warehouse_failure(broken_warehouse_error(Path(warehouse), reason))
    if failed:
        kind, name, reason = failed[0]
        what = f"{kind} {name}: {reason}"
        if len(failed) > 1:
            what += f" (and {len(failed) - 1} more failing node(s))"
    else:
        what = f"dbt exited with code {invocation.process.returncode} before building a node"
    span = f"{days[0]}..{days[-1]}" if days else "no day"
    description = (
        f"dbt build of {span} failed: {what}; the days stay in the rebuild ledger: fix the "
        f"cause and run again (dbt log: {invocation.target_path / 'dbt.log'})"
    )
    return dg.Failure(description=" ".join(description.split()), allow_retries=False)
