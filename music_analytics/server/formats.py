"""Query results as Tinybird-shaped JSON, CSV or NDJSON response bodies."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import date, datetime, time
from decimal import Decimal

from music_analytics.server.pipes import QueryResult

FORMATS = ("json", "csv", "ndjson")
MEDIA_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "ndjson": "application/x-ndjson",
}


def _plain(value):
    """A JSON-ready value: dates as ISO strings, decimals as numbers, NaN and inf as null,
    anything else JSON cannot hold (UUID, INTERVAL) as its text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.hex()
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)  # UUID, INTERVAL (timedelta) and whatever else JSON has no type for


def _records(result: QueryResult) -> list[dict]:
    names = [name for name, _ in result.columns]
    return [{n: _plain(v) for n, v in zip(names, row)} for row in result.rows]


def render(result: QueryResult, fmt: str, statistics: dict) -> bytes:
    """The body for `fmt`; JSON is {meta, data, rows, rows_before_limit_at_least, statistics}."""
    if fmt == "json":
        document = {
            "meta": [{"name": n, "type": t} for n, t in result.columns],
            "data": _records(result),
            "rows": len(result.rows),
            "rows_before_limit_at_least": result.rows_before_limit,
            "statistics": statistics,
        }
        return json.dumps(document, separators=(",", ":"), allow_nan=False).encode()
    if fmt == "ndjson":
        return "".join(
            json.dumps(r, separators=(",", ":"), allow_nan=False) + "\n" for r in _records(result)
        ).encode()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([n for n, _ in result.columns])
    for row in result.rows:
        writer.writerow(["" if v is None else _plain(v) for v in row])
    return out.getvalue().encode()
