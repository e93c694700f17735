"""What the dbt manifest says about the marts, for code that follows them (exports, builds)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path


@cache
def _manifest(manifest_path: Path) -> dict:
    return json.loads(Path(manifest_path).read_text())


def daily_marts(manifest_path: Path) -> dict[str, str]:
    """Each incremental model of schema `marts` and its date column (its `unique_key`)."""
    nodes = _manifest(Path(manifest_path))["nodes"].values()
    return {
        node["name"]: node["config"]["unique_key"]
        for node in sorted(nodes, key=lambda n: n["name"])
        if node["resource_type"] == "model"
        and node["schema"].endswith("marts")
        and node["config"].get("materialized") == "incremental"
        and isinstance(node["config"].get("unique_key"), str)
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
