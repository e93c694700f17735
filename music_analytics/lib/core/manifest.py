"""What the dbt manifest says about the marts, for code that follows them (the exports)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Grain = Literal["day", "month"]
GRAINS: tuple[Grain, ...] = ("day", "month")


@dataclass(frozen=True)
class DailyMart:
    """How a mart is partitioned: its date column (the `unique_key`) and what one value of it
    stands for: a day, or a month (the column holds month starts; `meta: {export_grain: month}`)."""

    date_column: str
    grain: Grain = "day"


def daily_marts(manifest_path: Path) -> dict[str, DailyMart]:
    """Each incremental model of schema `marts`, with its date column and grain."""
    nodes = json.loads(Path(manifest_path).read_text())["nodes"].values()
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
