"""An appended file (CSV, NDJSON or Parquet, as Tinybird's Data Sources API takes) as event lines.

Every format becomes NDJSON lines, which then go the way of `/v0/events` bodies: judged by
`event_intake.judge` (the loader's own validation SQL) and landed by `land_batch`, so a row
from a URL is loaded or quarantined exactly as the same row posted to /v0/events would be.
- NDJSON: `event_intake.body_lines` (the bounded JSON reader for arrays and documents).
- CSV: a header row naming the columns, or none (columns in the schema's order, as
  Tinybird); number columns' cells that read as numbers become JSON numbers, the rest strings.
- Parquet: read by DuckDB from a private temporary file, each row as JSON.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
from pathlib import Path

import duckdb

from music_analytics.lib.core.json_reader import DEFAULT_JSON_LIMITS, JsonLimits
from music_analytics.lib.events.validation import EVENT_FIELDS
from music_analytics.server.event_intake import IntakeError, body_lines

FORMATS = ("csv", "ndjson", "parquet")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")
_KINDS = dict(EVENT_FIELDS)
_MAX_CSV_FIELD = 1 << 20


def guess_format(url: str, given: str | None) -> str:
    """`format=` when given, else from the URL's file name; CSV by default (as Tinybird)."""
    if given:
        if given not in FORMATS:
            raise IntakeError(
                400, f"parameter 'format': {given[:20]!r} is not csv, ndjson or parquet"
            )
        return given
    path = url.split("?")[0].lower()
    for suffix, fmt in (
        (".parquet", "parquet"),
        (".ndjson", "ndjson"),
        (".jsonl", "ndjson"),
        (".json", "ndjson"),
    ):
        if path.endswith(suffix):
            return fmt
    return "csv"


def file_lines(
    body: bytes, fmt: str, limits: JsonLimits = DEFAULT_JSON_LIMITS, delimiter: str = ","
) -> list[str]:
    """The file's rows as NDJSON lines; IntakeError (400) when it cannot be read as `fmt`."""
    if fmt == "ndjson":
        return body_lines(body, limits, "ndjson")
    if fmt == "csv":
        return csv_lines(body, delimiter)
    if fmt == "parquet":
        return parquet_lines(body)
    raise IntakeError(400, f"parameter 'format': {fmt[:20]!r} is not csv, ndjson or parquet")


def _cell(column: str, value: str):
    if _KINDS.get(column) in ("whole_number", "flag") and _NUMBER.match(value.strip()):
        number = float(value)
        return int(number) if number.is_integer() and "." not in value else number
    return value


def csv_lines(body: bytes, delimiter: str = ",") -> list[str]:
    """CSV rows as JSON objects; a row with the wrong number of cells is kept as its cells
    (the validation quarantines it for the columns it lacks). `delimiter` is Tinybird's
    `dialect_delimiter`: one character."""
    if len(delimiter) != 1 or delimiter in '\r\n"':
        raise IntakeError(
            400,
            f"parameter 'dialect_delimiter': {delimiter[:5]!r} is not one "
            "character (other than a quote or a line break)",
        )
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IntakeError(400, f"the CSV file is not UTF-8: {exc}") from None
    if "\x00" in text:
        raise IntakeError(400, "the CSV file holds a NUL byte")
    csv.field_size_limit(_MAX_CSV_FIELD)
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise IntakeError(400, f"the CSV file cannot be read: {exc}") from None
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        return []
    names = [name for name, _ in EVENT_FIELDS]
    header = [cell.strip() for cell in rows[0]]
    if set(header) & set(names):
        columns, rows = header, rows[1:]
    else:
        columns = names
    return [
        json.dumps(
            {c: _cell(c, v) for c, v in zip(columns, row, strict=False) if c}, ensure_ascii=False
        )
        for row in rows
    ]


def parquet_lines(body: bytes) -> list[str]:
    """Parquet rows as JSON objects, read by DuckDB from a temporary copy of the bytes."""
    with tempfile.TemporaryDirectory(prefix="music-analytics-append-") as folder:
        path = Path(folder) / "append.parquet"
        path.write_bytes(body)
        try:
            with duckdb.connect() as conn:
                rows = conn.execute(
                    "select to_json(p)::varchar from read_parquet(?) p", [str(path)]
                ).fetchall()
        except duckdb.Error as exc:
            first = (str(exc).strip().splitlines() or ["unreadable"])[0][:200]
            raise IntakeError(400, f"the Parquet file cannot be read: {first}") from None
    return [row[0] for row in rows]
