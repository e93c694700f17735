"""Events sent over HTTP (`POST /v0/events`): read the body, judge each row, land it as a file.

The rows are judged by `event_validation_sql`, the same SQL the event-file loader runs, so the
counts the caller gets back are the counts the pipeline will load and quarantine. The whole
batch is then written as one NDJSON file in the events landing folder (to a hidden temporary
name, flushed to disk, then renamed), where the events sensor picks it up like any dropped
file: the valid rows reach raw.stream_events and the rest raw.stream_events_quarantine with
their reasons. A batch sent twice lands twice but loads once (the loader skips a file whose
content it has loaded before).
"""

from __future__ import annotations

import io
import json
import os
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import ijson

from music_analytics.lib.core.json_reader import (
    DEFAULT_JSON_LIMITS,
    BoundedJsonStream,
    JsonLimitError,
    JsonLimits,
    iter_array_lines,
    json_error_text,
    json_line,
)
from music_analytics.lib.events.validation import event_validation_sql

DATASOURCES = ("music_streams",)  # the seed's datasource name: raw.stream_events
MAX_ERRORS_SHOWN = 10


class IntakeError(ValueError):
    """The request cannot be taken; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Judgement:
    lines: list[str]
    successful_rows: int
    quarantined_rows: int
    errors: list[dict] = field(default_factory=list)  # the first few: line, column, error


def decode_body(raw: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """The body, gunzipped when `Content-Encoding: gzip` (or gzip magic); 413 past max_bytes."""
    if len(raw) > max_bytes:
        raise IntakeError(413, f"the body is larger than {max_bytes} bytes")
    encoding = (content_encoding or "").strip().lower()
    if encoding not in ("", "identity", "gzip"):
        raise IntakeError(415, f"Content-Encoding {encoding!r} is not supported (use gzip)")
    if encoding == "gzip" or raw[:2] == b"\x1f\x8b":
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            body = inflater.decompress(raw, max_bytes + 1)
            if len(body) > max_bytes or inflater.unconsumed_tail:
                raise IntakeError(413, f"the body is larger than {max_bytes} bytes gunzipped")
            if not inflater.eof:
                raise IntakeError(400, "the gzip body is truncated")
        except zlib.error as exc:
            raise IntakeError(400, f"the body is not valid gzip: {exc}") from None
        return body
    return raw


def json_array_lines(body: bytes, limits: JsonLimits = DEFAULT_JSON_LIMITS) -> list[str]:
    """Each element of a JSON-array body as one line, read by the bounded JSON reader: a body
    nested too deep or with too large a row or string is refused (400) naming the row."""
    stream = BoundedJsonStream(io.BytesIO(body), limits, records_depth=1)
    try:
        return list(iter_array_lines(stream))
    except JsonLimitError as exc:
        raise IntakeError(400, f"the body's JSON array: {exc.problem}") from None
    except ijson.JSONError as exc:
        raise IntakeError(
            400, f"the body starts with '[' but is not a JSON array: {json_error_text(exc)}"
        ) from None


def json_document_lines(body: bytes, limits: JsonLimits = DEFAULT_JSON_LIMITS) -> list[str]:
    """`format=json`: a JSON object (one row), an array of objects, or objects one after the
    other, pretty-printed or not; each row as one line. Read by the bounded JSON reader."""
    if body.lstrip()[:1] == b"[":
        return json_array_lines(body, limits)
    stream = BoundedJsonStream(io.BytesIO(body), limits, records_depth=0)
    try:
        values = list(ijson.items(stream, "", use_float=True, multiple_values=True))
    except JsonLimitError as exc:
        raise IntakeError(400, f"the body's JSON: {exc.problem}") from None
    except ijson.JSONError as exc:
        raise IntakeError(400, f"the body is not JSON: {json_error_text(exc)}") from None
    return [json_line(value) for value in values]


def body_lines(
    body: bytes, limits: JsonLimits = DEFAULT_JSON_LIMITS, body_format: str = "ndjson"
) -> list[str]:
    """The rows of the body: NDJSON (one row per line) by default, or with `body_format`
    "json" a JSON document (`json_document_lines`). A body starting with `[` is a JSON array
    either way, and an NDJSON body that is one object spread over several lines (what a
    `curl -d '{ ... }'` of a pretty-printed event sends) is read as that object."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IntakeError(400, f"the body is not UTF-8: {exc}") from None
    if body_format == "json" or text.lstrip().startswith("["):
        return json_document_lines(body, limits)
    # Split on \n only, as the file loader does (str.splitlines would also split on U+2028).
    lines = [line.rstrip("\r") for line in text.split("\n") if line.strip()]
    if len(lines) > 1 and lines[0].lstrip().startswith("{") and not _is_json(lines[0]):
        try:
            return json_document_lines(body, limits)
        except IntakeError:
            pass  # not one document either: each line is judged (and quarantined) on its own
    return lines


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


_NUMBERED = (
    "(select i + 1 as line_number, l[i + 1] as line "
    "from (select $lines::varchar[] as l) s, range(len(l)) t(i))"
)


def judge(lines: list[str]) -> Judgement:
    """Count the valid and the quarantined rows, exactly as the event-file loader will."""
    with duckdb.connect() as conn:
        conn.execute("set enable_external_access = false")
        counts = conn.execute(
            f"""
            with judged as ({event_validation_sql(_NUMBERED)})
            select count(*) filter (where error is null),
                   count(*) filter (where error is not null),
                   list({{'line': line_number, 'column': error_column, 'error': error}}
                        order by line_number) filter (where error is not null)
            from judged""",
            {"lines": lines},
        ).fetchone()
    valid, quarantined, errors = counts
    return Judgement(lines, valid, quarantined, (errors or [])[:MAX_ERRORS_SHOWN])


def land_batch(
    folder: Path, lines: list[str], *, durable: bool = True, name: str | None = None
) -> Path:
    """Write the rows as `api-<UTC time>-<id>.ndjson` (or `name`), whole or not at all (rename
    into place).

    With `durable`, the file and the folder entry are flushed to disk before returning.
    """
    folder.mkdir(parents=True, exist_ok=True)
    name = name or f"api-{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.ndjson"
    tmp = folder / f".{name}.part"
    data = ("\n".join(lines) + "\n").encode("utf-8")
    with open(tmp, "wb") as handle:
        handle.write(data)
        if durable:
            handle.flush()
            os.fsync(handle.fileno())
    target = folder / name
    os.replace(tmp, target)
    if durable:
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return target
