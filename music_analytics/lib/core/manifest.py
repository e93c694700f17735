"""What the dbt manifest says about the marts, for code that follows them (exports, builds)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

Grain = Literal["day", "month"]
GRAINS: tuple[Grain, ...] = ("day", "month")


@cache
def _manifest(manifest_path: Path) -> dict:
    return json.loads(Path(manifest_path).read_text())


@dataclass(frozen=True)
class DailyMart:
    """How a mart is partitioned: its date column (the `unique_key`) and what one value of it
    stands for: a day, or a month (the column holds month starts; `meta: {export_grain: month}`)."""

    date_column: str
    grain: Grain = "day"


def daily_marts(manifest_path: Path) -> dict[str, DailyMart]:
    """Each incremental model of schema `marts`, with its date column and grain."""
    nodes = _manifest(Path(manifest_path))["nodes"].values()
    marts = {}
    for node in sorted(nodes, key=lambda n: n["name"]):
        config = node["config"]
        if not (
            node["resource_type"] == "model"
            and node["schema"].endswith("marts")
            and config.get("materialized") == "incremental"
            and isinstance(config.get("unique_key"), str)
        ):
            continue
        grain = (config.get("meta") or {}).get("export_grain", "day")
        if grain not in GRAINS:
            raise ValueError(
                f"model {node['name']}: meta export_grain is {grain!r}; use one of {GRAINS}"
            )
        marts[node["name"]] = DailyMart(config["unique_key"], grain)
    return marts


def following_days(manifest_path: Path) -> dict[str, int]:
    """Models whose rows for a day read later days' inputs too (`meta.rebuild_following_days`):
    a change to day D also dates D+1..D+N of that model."""
    nodes = _manifest(Path(manifest_path))["nodes"].values()
    return {
        node["name"]: int(node["config"]["meta"]["rebuild_following_days"])
        for node in nodes
        if node["resource_type"] == "model"
        and (node["config"].get("meta") or {}).get("rebuild_following_days")
    }


def models_by_rebuild_source(manifest_path: Path) -> dict[str, frozenset[str]]:
    """Per ledger source (a raw source table's `meta.rebuild_source`), every model downstream
    of its tables: what a load of that source makes out of date."""
    manifest = _manifest(Path(manifest_path))
    children, result = manifest["child_map"], {}
    for unique_id, source in manifest["sources"].items():
        ledger_source = source.get("meta", {}).get("rebuild_source")
        if not ledger_source:
            continue
        found, todo = set(result.get(ledger_source, ())), list(children.get(unique_id, ()))
        while todo:
            child = todo.pop()
            if child.startswith("model.") and child not in found:
                found.add(child)
                todo.extend(children.get(child, ()))
        result[ledger_source] = found
    names = {uid: node["name"] for uid, node in manifest["nodes"].items()}
    return {source: frozenset(names[uid] for uid in ids) for source, ids in result.items()}
