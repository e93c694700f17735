"""`music-analytics serve`: the marts over HTTP, as Tinybird serves its pipes, plus a dashboard.

Endpoints (all under a token but `/`, `/healthz`, `/openapi.json` and `/docs`):
- `GET /v0/pipes/<pipe>.{json,csv,ndjson}`: a published pipe (server/pipes.py).
- `GET|POST /v0/sql?q=SELECT ... [FORMAT CSV]`: one read-only SELECT over the marts; with
  `pipeline=<pipe>`, `_` is the pipe's result.
- `POST /v0/events?name=music_streams[&wait=true]`: rows into the events landing folder.
- `GET /v0/pipes`, `GET /v0/filters`: what there is, for clients and the dashboard.
- `POST /v0/datasources?mode=append`, `POST /v0/datasources/<name>/truncate|delete`,
  `GET /v0/jobs/<id>`: Tinybird's Data Sources API (server/datasource_ops.py, jobs.py).

Readers use a read-only snapshot of the Parquet exports (server/snapshot.py), never the
warehouse, so the server answers while a backfill holds the warehouse's write lock. Tokens and
scopes are checked in auth.py, the events endpoint lives in events.py, and openapi.py adds the
pipes' parameters and the token schemes to /openapi.json.
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from music_analytics.lib.core.log_redaction import install_redaction
from music_analytics.lib.core.settings import Settings
from music_analytics.server.api_tokens import TokenSet, load_tokens
from music_analytics.server.auth import ApiError, authorise, redact_tokens
from music_analytics.server.datasource_ops import job_runner
from music_analytics.server.datasource_ops import router as datasources_router
from music_analytics.server.events import router as events_router
from music_analytics.server.formats import FORMATS, MEDIA_TYPES, render
from music_analytics.server.openapi import declare_token_auth, pipe_parameters
from music_analytics.server.pipes import (
    PIPES,
    NoDataError,
    Pipe,
    PipeParamError,
    QueryResult,
    parse_params,
    run_pipe,
    scanned,
)
from music_analytics.server.pipes import (
    prepare as prepare_pipes,
)
from music_analytics.server.read_only_sql import (
    SqlLimits,
    SqlRejected,
    SqlTimeout,
    run_sql,
    sql_scanned,
)
from music_analytics.server.request_body import read_capped_body
from music_analytics.server.snapshot_source import SnapshotSource
from music_analytics.server.sql_clauses import FormatError, split_format

STATIC = Path(__file__).parent / "static"
MAX_SQL_BODY_BYTES = 64 * 1024
# The page runs only its own files: no inline script, no other host, even if data were hostile.
DASHBOARD_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
}


def _respond(result: QueryResult, fmt: str, started: float, read: tuple[int, int]) -> Response:
    """The body; statistics.rows_read/bytes_read are the rows and uncompressed bytes of the
    mart days the query covered (for /v0/sql: of every mart it names)."""
    statistics = {
        "elapsed": round(time.perf_counter() - started, 6),
        "rows_read": read[0],
        "bytes_read": read[1],
    }
    return Response(render(result, fmt, statistics), media_type=MEDIA_TYPES[fmt])


def _pipe_answer(
    request: Request, pipe: Pipe, snapshot, params: dict | None = None
) -> tuple[QueryResult, dict]:
    """The pipe's result for `params` (default: the query string), and the typed parameters."""
    try:
        values = parse_params(
            pipe, dict(request.query_params) if params is None else params, snapshot
        )
    except PipeParamError as exc:
        raise ApiError(400, str(exc)) from None
    except NoDataError as exc:
        raise ApiError(503, str(exc)) from None
    # A snapshot never changes, so an answer stays right for as long as it serves.
    key = (pipe.name, tuple(sorted(values.items())))
    result, _ = snapshot.answer(key, lambda: run_pipe(pipe, values, snapshot))
    return result, values


async def _form_params(request: Request) -> dict[str, str]:
    """The query string's parameters with a form body's on top (clients POST long calls)."""
    refusal = f"the body is over {MAX_SQL_BODY_BYTES} bytes"
    body = await read_capped_body(request, MAX_SQL_BODY_BYTES, refusal)
    params = dict(request.query_params)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    elif body and "q" not in params:
        params["q"] = body.decode("utf-8", "replace")  # the SQL as the whole body
    return params


def _add_pipe_route(app: FastAPI, pipe: Pipe, sql_limits: SqlLimits) -> None:
    def endpoint(
        request: Request, format: Literal["json", "csv", "ndjson"], q: str | None = None
    ) -> Response:
        return answer(request, format, q, None)

    async def post_endpoint(request: Request, format: Literal["json", "csv", "ndjson"]):
        params = await _form_params(request)
        q = params.pop("q", None)
        return await run_in_threadpool(answer, request, format, q, params)

    def answer(request: Request, format: str, q: str | None, params: dict | None) -> Response:
        started = time.perf_counter()
        authorise(request, lambda t: t.can_read_pipe(pipe.name), f"pipe {pipe.name}")
        snapshot = request.app.state.snapshots.current()
        if params is None:
            params = {k: v for k, v in request.query_params.items() if k != "q"}
        result, values = _pipe_answer(request, pipe, snapshot, params)
        if q:  # SQL over the pipe's result, `_`, and nothing else
            try:
                result = run_sql(None, split_format(q)[0], sql_limits, pipe_result=result)
            except SqlRejected as exc:
                raise ApiError(400, str(exc)) from None
            except FormatError as exc:
                raise ApiError(400, f"parameter 'q': {exc}") from None
            except SqlTimeout as exc:
                raise ApiError(408, str(exc)) from None
        return _respond(result, format, started, scanned(pipe, values, snapshot))

    app.add_api_route(
        f"/v0/pipes/{pipe.name}.{{format}}",
        endpoint,
        methods=["GET"],
        name=pipe.name,
        summary=pipe.description,
        tags=["pipes"],
        openapi_extra=pipe_parameters(pipe),
        responses={
            200: {"description": "{meta, data, rows, rows_before_limit_at_least, statistics}"}
        },
    )
    app.add_api_route(
        f"/v0/pipes/{pipe.name}.{{format}}",
        post_endpoint,
        methods=["POST"],
        name=f"{pipe.name}_post",
        summary=f"{pipe.description} POST: the parameters (and `q`) in a form body.",
        tags=["pipes"],
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
        await run_in_threadpool(app.state.snapshots.current)
        app.state.job_runner.recover()  # jobs a killed server left unfinished
        yield
        app.state.job_runner.close()
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
        settings.exports_dir,
        memory_limit=settings.duckdb_memory_limit,
        retire_seconds=settings.sql_timeout_seconds + 2.0,
        prepare=prepare_pipes,
    )
    app.state.job_runner = job_runner(settings)
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
        token = authorise(request, lambda t: t.can_read_any_pipe, "pipes")
        return {
            "pipes": [
                {
                    "name": pipe.name,
                    "description": pipe.description,
                    "mart": pipe.mart,
                    "endpoint": f"/v0/pipes/{pipe.name}.json",
                    "parameters": pipe_parameters(pipe)["parameters"],
                }
                for pipe in PIPES.values()
                if token.can_read_pipe(pipe.name)
            ]
        }

    @app.get("/v0/filters", tags=["pipes"], summary="Dates, genres, countries and DSPs.")
    def filters(request: Request) -> dict:
        authorise(request, lambda t: t.can_read_any_pipe, "pipes")
        return request.app.state.snapshots.current().filters

    for pipe in PIPES.values():
        _add_pipe_route(app, pipe, sql_limits)

    @app.get("/v0/pipes/{name}.{format}", include_in_schema=False)
    def unknown_pipe(name: str, format: str) -> Response:
        raise ApiError(404, f"no pipe named {name[:60]!r}; the pipes are {', '.join(PIPES)}")

    def sql(
        request: Request,
        q: str,
        format: str | None,
        pipeline: str | None,
        params: dict | None = None,
    ) -> Response:
        started = time.perf_counter()
        authorise(request, lambda t: t.can_run_sql, "SQL (it needs PIPES:READ or ADMIN)")
        try:
            q, clause = split_format(q)
        except FormatError as exc:
            raise ApiError(400, str(exc)) from None
        fmt = clause or format or "json"
        if fmt not in MEDIA_TYPES:
            raise ApiError(
                400, f"parameter 'format': {fmt[:20]!r} is not one of {', '.join(FORMATS)}"
            )
        snapshot = request.app.state.snapshots.current()
        if snapshot.conn is None:
            raise ApiError(503, "no marts have been exported yet: build the marts first")
        over = None
        if pipeline:
            pipe = PIPES.get(pipeline)
            if pipe is None:
                raise ApiError(404, f"parameter 'pipeline': no pipe named {pipeline[:60]!r}")
            authorise(request, lambda t: t.can_read_pipe(pipe.name), f"pipe {pipe.name}")
            over, _ = _pipe_answer(request, pipe, snapshot, params)
        try:
            result = run_sql(snapshot, q, sql_limits, pipe_result=over)
        except SqlRejected as exc:
            raise ApiError(400, str(exc)) from None
        except SqlTimeout as exc:
            raise ApiError(408, str(exc)) from None
        return _respond(result, fmt, started, sql_scanned(snapshot, q))

    sql_summary = (
        "One read-only SELECT over the marts (tables named as the marts), as Tinybird's Query "
        "API: a trailing `FORMAT JSON|CSV|CSVWithNames|TSV|TSVWithNames|JSONEachRow` clause "
        "or `format=` picks the output; with `pipeline=<pipe>`, `_` is that pipe's result "
        "(its parameters from the query string)."
    )

    @app.get("/v0/sql", tags=["sql"], summary=sql_summary)
    def sql_get(
        request: Request, q: str = "", format: str | None = None, pipeline: str | None = None
    ) -> Response:
        return sql(request, q, format, pipeline)

    @app.post("/v0/sql", tags=["sql"], summary=sql_summary + " POST: `q` in a form body.")
    async def sql_post(request: Request) -> Response:
        params = await _form_params(request)
        return await run_in_threadpool(
            sql,
            request,
            params.get("q", ""),
            params.get("format"),
            params.get("pipeline"),
            params,
        )

    app.include_router(events_router)
    app.include_router(datasources_router)

    app.mount("/static", _RevalidatedStaticFiles(directory=STATIC, check_dir=False), name="static")
    declare_token_auth(app)

    @app.get("/", include_in_schema=False)
    def dashboard() -> Response:
        index = STATIC / "index.html"
        if not index.is_file():
            raise ApiError(404, "the dashboard's files are missing from the package")
        return FileResponse(index, headers=DASHBOARD_HEADERS)

    return app


class _RevalidatedStaticFiles(StaticFiles):
    """The dashboard's files, revalidated on every load so an upgrade is seen at once."""

    def file_response(self, *args, **kwargs) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response
