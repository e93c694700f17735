"""Query results as Tinybird-shaped response bodies: JSON, NDJSON, CSV and TSV.

`csv` and `tsv` start with a header of column names (ClickHouse's CSVWithNames and
TSVWithNames, what Tinybird's `.csv` pipes return); `csv_plain` and `tsv_plain` have none
(`FORMAT CSV`, `FORMAT TSV`). TSV escapes tab, newline and backslash and writes NULL as `\\N`,
as ClickHouse does. JSON's `meta` names each column's type as Tinybird does (ClickHouse's
names: String, Int64, Float64, Date, DateTime64(6)...), from DuckDB's (`tinybird_type`).
"""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import date, datetime, time
from decimal import Decimal

import orjson

from music_analytics.server.pipes import QueryResult

FORMATS = ("json", "csv", "ndjson")  # the `.format` of a pipe's URL and `format=`
MEDIA_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "csv_plain": "text/csv; charset=utf-8",
    "tsv": "text/tab-separated-values; charset=utf-8",
    "tsv_plain": "text/tab-separated-values; charset=utf-8",
    "ndjson": "application/x-ndjson",
}
_SIMPLE_TYPES = {
    "VARCHAR": "String",
    "BLOB": "String",
    "UUID": "UUID",
    "BOOLEAN": "Bool",
    "TINYINT": "Int8",
    "SMALLINT": "Int16",
    "INTEGER": "Int32",
    "BIGINT": "Int64",
    "HUGEINT": "Int128",
    "UTINYINT": "UInt8",
    "USMALLINT": "UInt16",
    "UINTEGER": "UInt32",
    "UBIGINT": "UInt64",
    "UHUGEINT": "UInt128",
    "FLOAT": "Float32",
    "DOUBLE": "Float64",
    "DATE": "Date",
    "TIMESTAMP_S": "DateTime",
    "TIMESTAMP_MS": "DateTime64(3)",
    "TIMESTAMP": "DateTime64(6)",
    "TIMESTAMP_NS": "DateTime64(9)",
    "TIMESTAMP WITH TIME ZONE": "DateTime64(6, 'UTC')",
    "TIME": "String",
    "INTERVAL": "String",
    "NULL": "Nullable(Nothing)",
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


def tinybird_type(duckdb_type: str) -> str:
    """Tinybird's (ClickHouse's) name for a DuckDB column type: VARCHAR String, BIGINT Int64,
    DOUBLE Float64, DATE Date, TIMESTAMP DateTime64(6), DECIMAL(p,s) Decimal(p, s), T[]
    Array(T); a type with no counterpart keeps DuckDB's name."""
    name = duckdb_type.strip()
    if name.endswith("[]"):
        return f"Array({tinybird_type(name[:-2])})"
    if name.startswith("DECIMAL(") and name.endswith(")"):
        precision, _, scale = name[len("DECIMAL(") : -1].partition(",")
        return f"Decimal({precision.strip()}, {scale.strip() or 0})"
    if name.startswith("ENUM("):
        return "LowCardinality(String)"
    return _SIMPLE_TYPES.get(name.upper(), name)


def _tsv_field(value) -> str:
    """One TSV field as ClickHouse writes it: NULL as \\N; tab, newline, CR and backslash
    escaped; booleans as true/false; lists and objects as JSON."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (list, dict)):
        text = json.dumps(value, separators=(",", ":"))
    else:
        text = str(value)
    for raw, escaped in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
        text = text.replace(raw, escaped)
    return text


def _records(result: QueryResult) -> list[dict]:
    """The rows as objects; values still need `_plain` (the JSON encoders call it)."""
    names = [name for name, _ in result.columns]
    return [dict(zip(names, row)) for row in result.rows]


def _json(document) -> bytes:
    """Compact JSON, by orjson: dates, times, UUIDs and lists as `_plain` makes them natively,
    NaN and inf as null, and `_plain` for the rest (Decimal, bytes, INTERVAL...). A value orjson
    refuses (an integer past 64 bits) sends the document through the standard encoder."""
    try:
        return orjson.dumps(document, default=_plain, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        return json.dumps(_plain(document), separators=(",", ":"), allow_nan=False).encode()


def render(result: QueryResult, fmt: str, statistics: dict) -> bytes:
    """The body for `fmt`; JSON is {meta, data, rows, rows_before_limit_at_least, statistics}."""
    if fmt == "json":
        document = {
            "meta": [{"name": n, "type": tinybird_type(t)} for n, t in result.columns],
            "data": _records(result),
            "rows": len(result.rows),
            "rows_before_limit_at_least": result.rows_before_limit,
            "statistics": statistics,
        }
        return _json(document)
    if fmt == "ndjson":
        return b"".join(_json(r) + b"\n" for r in _records(result))
    header = fmt in ("csv", "tsv")
    if fmt in ("tsv", "tsv_plain"):
        lines = ["\t".join(_tsv_field(n) for n, _ in result.columns)] if header else []
        lines += ["\t".join(_tsv_field(_plain(v)) for v in row) for row in result.rows]
        return "".join(line + "\n" for line in lines).encode()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow([n for n, _ in result.columns])
    for row in result.rows:
        writer.writerow([_csv_field(_plain(v)) for v in row])
    return out.getvalue().encode()


def _csv_field(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return value
