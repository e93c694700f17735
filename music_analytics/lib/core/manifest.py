"""What the dbt manifest says about the marts, for code that follows them (the exports)."""

from __future__ import annotations

import json
from pathlib import Path


def daily_marts(manifest_path: Path) -> dict[str, str]:
    """Each incremental model of schema `marts` and its date column (its `unique_key`)."""
    nodes = json.loads(Path(manifest_path).read_text())["nodes"].values()
    return {
        node["name"]: node["config"]["unique_key"]
        for node in sorted(nodes, key=lambda n: n["name"])
        if node["resource_type"] == "model"
        and node["schema"].endswith("marts")
        and node["config"].get("materialized") == "incremental"
        and isinstance(node["config"].get("unique_key"), str)
    }
