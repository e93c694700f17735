"""`music-analytics serve`: the marts over HTTP, as Tinybird serves its pipes, plus a dashboard.

Endpoints (all under a token but `/`, `/healthz`, `/openapi.json` and `/docs`):
- `GET /v0/pipes/<pipe>.{json,csv,ndjson}`: a published pipe (lib/pipes.py).
- `GET /v0/sql?q=SELECT ...`: one read-only SELECT over the marts.
- `POST /v0/events?name=music_streams[&wait=true]`: rows into the events landing folder.
- `GET /v0/pipes`, `GET /v0/filters`: what there is, for clients and the dashboard.

Readers use a read-only snapshot of the Parquet exports (lib/mart_snapshot.py), never the
warehouse, so the server answers while a backfill holds the warehouse's write lock.
"""

from __future__ import annotations

import logging
import re
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from music_analytics.lib.api_tokens import ApiToken, TokenSet, load_tokens
from music_analytics.lib.event_intake import (
    DATASOURCES,
    IntakeError,
    body_lines,
    decode_body,
    judge,
    land_batch,
)
from music_analytics.lib.log_redaction import install_redaction
from music_analytics.lib.mart_snapshot import SnapshotSource
from music_analytics.lib.pipes import (
    PIPES,
    NoDataError,
    Pipe,
    PipeParamError,
    QueryResult,
    parse_params,
    run_pipe,
    scanned,
)
from music_analytics.lib.read_only_sql import (
    SqlLimits,
    SqlRejected,
    SqlTimeout,
    run_sql,
    sql_scanned,
)
from music_analytics.lib.settings import Settings
from music_analytics.server.formats import MEDIA_TYPES, render

STATIC = Path(__file__).parent / "static"
log = logging.getLogger(__name__)

_TOKEN_IN_TEXT = re.compile(r"((?:^|[?&\s])token=)[^&\s\"']+", re.IGNORECASE)
_BEARER = re.compile(r"(Bearer\s+)\S+", re.IGNORECASE)


def redact_tokens(text: str) -> str:
    """Access-log lines and errors without token values (`?token=` or a Bearer header)."""
    return _BEARER.sub(r"\1***", _TOKEN_IN_TEXT.sub(r"\1***", text))


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def _presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.query_params.get("token")


def _authorise(request: Request, allowed, what: str) -> ApiToken:
    tokens: TokenSet = request.app.state.tokens
    presented = _presented_token(request)
    if not presented:
        raise ApiError(
            401,
            "a token is required: send 'Authorization: Bearer <token>' or ?token=",
            {"WWW-Authenticate": "Bearer"},
        )
    token = tokens.find(presented)
    if token is None:
        raise ApiError(401, "the token is not valid", {"WWW-Authenticate": "Bearer"})
    if not allowed(token):
        raise ApiError(403, f"token '{token.name}' has no scope for {what}")
    return token


def _respond(result: QueryResult, fmt: str, started: float, read: tuple[int, int]) -> Response:
    """The body; statistics.rows_read/bytes_read are the rows and uncompressed bytes of the
    mart days the query covered (for /v0/sql: of every mart it names)."""
    statistics = {
        "elapsed": round(time.perf_counter() - started, 6),
        "rows_read": read[0],
        "bytes_read": read[1],
    }
    return Response(render(result, fmt, statistics), media_type=MEDIA_TYPES[fmt])


def _pipe_openapi(pipe: Pipe) -> dict:
    schema_of = {
        "date": {"type": "string", "format": "date"},
        "integer": {"type": "integer"},
        "string": {"type": "string", "maxLength": 200},
    }
    parameters = []
    for param in pipe.params:
        schema = dict(schema_of.get(param.kind, {"type": "string"}))
        if param.kind == "enum":
            schema["enum"] = list(param.choices)
        if param.minimum is not None:
            schema["minimum"] = param.minimum
        if param.maximum is not None:
            schema["maximum"] = param.maximum
        if param.pattern:
            schema["pattern"] = f"^{param.pattern}$"
        if param.default is not None:
            schema["default"] = param.default
        parameters.append(
            {
                "name": param.name,
                "in": "query",
                "required": False,
                "description": param.description,
                "schema": schema,
            }
        )
    return {"parameters": parameters}


def _add_pipe_route(app: FastAPI, pipe: Pipe) -> None:
    def endpoint(request: Request, format: Literal["json", "csv", "ndjson"]) -> Response:
        started = time.perf_counter()
        _authorise(request, lambda t: t.can_read_pipe(pipe.name), f"pipe {pipe.name}")
        snapshot = request.app.state.snapshots.current()
        try:
            values = parse_params(pipe, dict(request.query_params), snapshot)
        except PipeParamError as exc:
            raise ApiError(400, str(exc)) from None
        except NoDataError as exc:
            raise ApiError(503, str(exc)) from None
        # A snapshot never changes, so an answer stays right for as long as it serves.
        key = (pipe.name, tuple(sorted(values.items())))
        result, _ = snapshot.answer(key, lambda: run_pipe(pipe, values, snapshot))
        return _respond(result, format, started, scanned(pipe, values, snapshot))

    app.add_api_route(
        f"/v0/pipes/{pipe.name}.{{format}}",
        endpoint,
        methods=["GET"],
        name=pipe.name,
        summary=pipe.description,
        tags=["pipes"],
        openapi_extra=_pipe_openapi(pipe),
        responses={
            200: {"description": "{meta, data, rows, rows_before_limit_at_least, statistics}"}
        },
    )


def create_app() -> FastAPI:
    """The app on the environment's settings: what each of `serve --workers N`'s processes runs."""
    return build_app(Settings.from_env())


def build_app(
    settings: Settings,
    *,
    tokens: TokenSet | None = None,
    snapshots: SnapshotSource | None = None,
) -> FastAPI:
    """The server's ASGI app. Tokens are read from settings.api_tokens_file unless given."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Build the first snapshot before taking requests, so none waits for it.
        await _in_thread(app.state.snapshots.current)
        yield
        app.state.snapshots.close()  # the snapshot files in the temp folder go with the server

    app = FastAPIOffline(
        lifespan=lifespan,
        title="music-analytics",
        version="0",
        description=(
            "The music-analytics marts as Tinybird-style pipes, read-only SQL and an events "
            "endpoint. Authenticate with `Authorization: Bearer <token>` or `?token=`."
        ),
    )
    app.state.settings = settings
    app.state.tokens = tokens if tokens is not None else load_tokens(settings.api_tokens_file)
    app.state.snapshots = snapshots or SnapshotSource(
        settings.exports_dir, memory_limit=settings.duckdb_memory_limit
    )
    sql_limits = SqlLimits(settings.sql_max_rows, float(settings.sql_timeout_seconds))
    install_redaction(["uvicorn.access", "uvicorn.error"], redact_tokens, per_argument=True)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors():
            where = error.get("loc", ())
            name = where[-1] if where else "request"
            problems.append(f"parameter '{name}': {error.get('msg', 'invalid')}")
        return JSONResponse({"error": "; ".join(problems)}, 400)

    @app.get("/healthz", tags=["server"], summary="Liveness and what the snapshot holds.")
    def healthz(request: Request) -> dict:
        snapshot = request.app.state.snapshots.current()
        return {
            "status": "ok",
            "marts": {name: info.rows for name, info in snapshot.marts.items()},
            "pipe_answers": {
                "computed": snapshot.answers_computed,
                "reused": snapshot.answers_reused,
            },
            "snapshot_error": request.app.state.snapshots.last_error,
        }

    @app.get("/v0/pipes", tags=["pipes"], summary="The published pipes and their parameters.")
    def list_pipes(request: Request) -> dict:
        token = _authorise(request, lambda t: t.can_read_any_pipe, "pipes")
        return {
            "pipes": [
                {
                    "name": pipe.name,
                    "description": pipe.description,
                    "mart": pipe.mart,
                    "endpoint": f"/v0/pipes/{pipe.name}.json",
                    "parameters": _pipe_openapi(pipe)["parameters"],
                }
                for pipe in PIPES.values()
                if token.can_read_pipe(pipe.name)
            ]
        }

    @app.get("/v0/filters", tags=["pipes"], summary="Dates, genres, countries and DSPs.")
    def filters(request: Request) -> dict:
        _authorise(request, lambda t: t.can_read_any_pipe, "pipes")
        return request.app.state.snapshots.current().filters

    for pipe in PIPES.values():
        _add_pipe_route(app, pipe)

    @app.get("/v0/pipes/{name}.{format}", include_in_schema=False)
    def unknown_pipe(name: str, format: str) -> Response:
        raise ApiError(404, f"no pipe named {name[:60]!r}; the pipes are {', '.join(PIPES)}")

    @app.get(
        "/v0/sql",
        tags=["sql"],
        summary="One read-only SELECT over the marts (tables named as the marts).",
    )
    def sql(
        request: Request, q: str = "", format: Literal["json", "csv", "ndjson"] = "json"
    ) -> Response:
        started = time.perf_counter()
        _authorise(request, lambda t: t.can_run_sql, "SQL (it needs PIPES:READ or ADMIN)")
        snapshot = request.app.state.snapshots.current()
        if snapshot.conn is None:
            raise ApiError(503, "no marts have been exported yet: build the marts first")
        try:
            result = run_sql(snapshot, q, sql_limits)
        except SqlRejected as exc:
            raise ApiError(400, str(exc)) from None
        except SqlTimeout as exc:
            raise ApiError(408, str(exc)) from None
        return _respond(result, format, started, sql_scanned(snapshot, q))

    @app.post(
        "/v0/events",
        tags=["events"],
        summary="Append NDJSON or a JSON array of events (gzip allowed) to a datasource.",
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
        request: Request, background: BackgroundTasks, name: str, wait: bool = False
    ) -> JSONResponse:
        _authorise(request, lambda t: t.can_append(name), f"appending to {name[:60]}")
        if name not in DATASOURCES:
            raise ApiError(404, f"no datasource named {name[:60]!r}; there is music_streams")
        limit = settings.api_max_body_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, f"the body is larger than {limit} bytes")
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > limit:
                raise ApiError(413, f"the body is larger than {limit} bytes")
        try:
            lines = body_lines(
                decode_body(bytes(raw), request.headers.get("content-encoding"), limit)
            )
        except IntakeError as exc:
            raise ApiError(exc.status, str(exc)) from None
        if not lines:
            raise ApiError(400, "the body holds no rows")
        judged = await _in_thread(judge, lines)
        answer = {
            "successful_rows": judged.successful_rows,
            "quarantined_rows": judged.quarantined_rows,
            "errors": judged.errors,
        }
        landing = settings.events_landing
        if wait:
            path = await _in_thread(land_batch, landing, lines)
            return JSONResponse({**answer, "file": path.name}, 200)
        background.add_task(land_batch, landing, lines)
        return JSONResponse(answer, 202)

    app.mount("/static", _RevalidatedStaticFiles(directory=STATIC, check_dir=False), name="static")
    _declare_bearer_auth(app)

    @app.get("/", include_in_schema=False)
    def dashboard() -> Response:
        index = STATIC / "index.html"
        if not index.is_file():
            raise ApiError(404, "the dashboard's files are missing from the package")
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    return app


class _RevalidatedStaticFiles(StaticFiles):
    """The dashboard's files, revalidated on every load so an upgrade is seen at once."""

    def file_response(self, *args, **kwargs) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


def _declare_bearer_auth(app: FastAPI) -> None:
    """OpenAPI names the token scheme, so /docs' Authorize button sends it on every call."""
    plain = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = plain()
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"},
                "token": {"type": "apiKey", "in": "query", "name": "token"},
            }
            for path, operations in schema["paths"].items():
                if path.startswith("/v0/"):
                    for operation in operations.values():
                        operation["security"] = [{"bearer": []}, {"token": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


async def _in_thread(function, *args):
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(function, *args)
