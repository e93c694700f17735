"""`POST /v0/events?name=music_streams`: rows judged like event files, landed as one file."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from music_analytics.server.auth import ApiError, authorise
from music_analytics.server.event_intake import (
    DATASOURCES,
    IntakeError,
    body_lines,
    decode_body,
    judge,
    land_batch,
)
from music_analytics.server.request_body import read_capped_body

router = APIRouter()


@router.post(
    "/v0/events",
    tags=["events"],
    summary=(
        "Append NDJSON, or with format=json a JSON object or array, of events (gzip allowed: "
        "compression=gzip or Content-Encoding) to a datasource."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            },
        }
    },
)
async def events(
    request: Request,
    background: BackgroundTasks,
    name: str,
    wait: bool = False,
    format: Literal["ndjson", "json"] = "ndjson",
    compression: Literal["none", "gzip"] = "none",
) -> JSONResponse:
    """Judge the rows, land them as one file, answer how many load and how many quarantine.

    `format` and `compression` are Tinybird's query parameters: NDJSON or a JSON document
    (object, array), plain or gzip (as `Content-Encoding: gzip` also says)."""
    authorise(request, lambda t: t.can_append(name), f"appending to {name[:60]}")
    if name not in DATASOURCES:
        raise ApiError(404, f"no datasource named {name[:60]!r}; there is music_streams")
    settings = request.app.state.settings
    limit = settings.api_max_body_bytes
    raw = await read_capped_body(request, limit, f"the body is larger than {limit} bytes")
    try:
        encoding = "gzip" if compression == "gzip" else request.headers.get("content-encoding")
        body = decode_body(raw, encoding, limit)
        lines = body_lines(body, settings.json_limits, format)
    except IntakeError as exc:
        raise ApiError(exc.status, str(exc)) from None
    if not lines:
        raise ApiError(400, "the body holds no rows")
    judged = await run_in_threadpool(judge, lines)
    answer = {
        "successful_rows": judged.successful_rows,
        "quarantined_rows": judged.quarantined_rows,
        "errors": judged.errors,
    }
    landing = settings.events_landing
    if wait:
        path = await run_in_threadpool(land_batch, landing, lines)
        return JSONResponse({**answer, "file": path.name}, 200)
    background.add_task(land_batch, landing, lines)
    return JSONResponse(answer, 202)
