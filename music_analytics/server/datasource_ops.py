"""Tinybird's Data Sources API on the events data source (`music_streams` = raw.stream_events).

- `POST /v0/datasources?mode=append&name=music_streams&url=<url>[&format=csv|ndjson|parquet]`:
  a job that fetches the file (server/url_fetch.py rules), reads it as event lines
  (server/append_formats.py) and lands them like a /v0/events body (judged, then one file in
  the events landing folder that the pipeline loads and quarantines as any other).
  Without `url`, the request body is the file (what client libraries send), answered at once.
- `POST /v0/datasources/music_streams/truncate`: every row deleted (a job, waited for);
  `music_streams_quarantine/truncate` empties the quarantine (raw.stream_events_quarantine).
- `POST /v0/datasources/music_streams/delete` with `delete_condition` (query or form body) and
  `dry_run`: a job deleting the rows the checked condition selects (lib/core/delete_condition.py);
  with dry_run, the count at once.
- `GET /v0/jobs/{id}`: a job's status, kind, rows_affected and error (server/jobs.py).

Deletions and truncations write the warehouse (lib/events/datasource_rows.py) and mark the days
they touched for rebuild; the next mart build (`music-analytics refresh`, the sensors) brings
the marts, the exports and the server's snapshot in line. All need ADMIN or DATASOURCES:CREATE
(an append from a body also takes DATASOURCE:APPEND).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from music_analytics.lib.core.crash_points import crash_point
from music_analytics.lib.core.delete_condition import ConditionError, parse_condition
from music_analytics.lib.core.settings import Settings
from music_analytics.lib.core.warehouse import ensure_raw_tables
from music_analytics.lib.core.warehouse_file import WarehouseFileError, connect_warehouse
from music_analytics.lib.events.datasource_rows import (
    count_matching,
    delete_matching,
    finished_operation,
    redacted_user_condition,
    truncate_events,
    truncate_quarantine,
    user_of,
)
from music_analytics.lib.events.validation import VALID_COLUMNS
from music_analytics.server.append_formats import file_lines, guess_format
from music_analytics.server.auth import ApiError, authorise
from music_analytics.server.event_intake import DATASOURCES, IntakeError, judge, land_batch
from music_analytics.server.jobs import JobRunner, JobStore, job_answer
from music_analytics.server.request_body import read_capped_body
from music_analytics.server.url_fetch import FetchError, UrlPolicy, fetch

router = APIRouter(tags=["datasources"])
MAX_FORM_BYTES = 64 * 1024
_TRUE = ("1", "true", "yes", "on")


# --- the jobs' work ---------------------------------------------------------------------------


@contextmanager
def _warehouse(settings: Settings, *, read_only: bool = False):
    config = {"memory_limit": settings.duckdb_memory_limit} if settings.duckdb_memory_limit else {}
    conn = connect_warehouse(settings.warehouse_path, read_only=read_only, config=config)
    try:
        if not read_only:
            ensure_raw_tables(conn)
        yield conn
    finally:
        conn.close()


def _job_file(job: dict) -> str:
    return f"api-job-{job['id']}.ndjson"


def _landed(settings: Settings, name: str) -> bool:
    landing = settings.events_landing
    return (landing / name).exists() or (landing / "rejected" / name).exists()


def import_work(settings: Settings):
    """The import job: fetch, read, judge, land as one file named for the job (so a rerun
    after a crash sees that it already landed)."""

    def work(job: dict, update) -> dict:
        name = _job_file(job)
        if _landed(settings, name) and job.get("successful_rows") is not None:
            return {}
        policy = UrlPolicy(
            settings.append_url_hosts,
            settings.append_url_max_bytes,
            float(settings.append_url_timeout_seconds),
        )
        body = fetch(job["url"], policy)
        lines = file_lines(body, job["format"], settings.json_limits)
        if not lines:
            raise IntakeError(400, "the file holds no rows")
        judged = judge(lines)
        counts = {
            "successful_rows": judged.successful_rows,
            "quarantined_rows": judged.quarantined_rows,
            "quarantine_rows": judged.quarantined_rows,
            "errors": judged.errors,
            "rows_affected": judged.successful_rows,
        }
        update(**counts)
        land_batch(settings.events_landing, lines, name=name)
        crash_point("job_landed")
        return counts

    return work


def delete_work(settings: Settings):
    def work(job: dict, update) -> dict:
        with _warehouse(settings) as conn:
            done = finished_operation(conn, job["id"])
            condition = parse_condition(job["delete_condition"], VALID_COLUMNS)
            if done is None:
                removal = delete_matching(conn, condition, job["id"])
                done = {"rows_affected": removal.rows_affected, "days_touched": removal.days}
        user = user_of(condition)
        # a user's deletion does not leave the user's id in its job's record
        redacted = {} if user is None else {"delete_condition": redacted_user_condition(user)}
        return {**_finished(done), **redacted}

    return work


def truncate_work(settings: Settings):
    def work(job: dict, update) -> dict:
        with _warehouse(settings) as conn:
            done = finished_operation(conn, job["id"])
            if done is None:
                quarantine = job["datasource"]["name"] == QUARANTINE_DATASOURCE
                removal = (truncate_quarantine if quarantine else truncate_events)(conn, job["id"])
                done = {"rows_affected": removal.rows_affected, "days_touched": removal.days}
        return _finished(done)

    return work


def _finished(done: dict) -> dict:
    days = sorted(done["days_touched"] or [])
    return {
        "rows_affected": done["rows_affected"],
        "days_marked_for_rebuild": len(days),
        "first_day": days[0].isoformat() if days else None,
        "last_day": days[-1].isoformat() if days else None,
    }


def job_runner(settings: Settings) -> JobRunner:
    """The server's runner for the three kinds of job, on the home's job folder."""
    return JobRunner(
        JobStore(settings.jobs_dir),
        {
            "import": import_work(settings),
            "delete_data": delete_work(settings),
            "truncate": truncate_work(settings),
        },
    )


# --- the routes --------------------------------------------------------------------------------


def _runner(request: Request) -> JobRunner:
    return request.app.state.job_runner


def _base(request: Request) -> str:
    return str(request.base_url)


# Tinybird names a data source's quarantine `<name>_quarantine`; it can be truncated.
QUARANTINE_DATASOURCE = "music_streams_quarantine"


def _check_datasource(name: str) -> None:
    if name not in DATASOURCES:
        raise ApiError(404, f"no datasource named {name[:60]!r}; there is music_streams")


async def _params(request: Request) -> dict[str, str]:
    """Query-string parameters, with a form body's on top (Tinybird's clients send both)."""
    params = dict(request.query_params)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        refusal = f"the form body is over {MAX_FORM_BYTES} bytes"
        body = await read_capped_body(request, MAX_FORM_BYTES, refusal)
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return params


def _warehouse_error(exc: WarehouseFileError) -> ApiError:
    return ApiError(503, str(exc))


@router.post(
    "/v0/datasources",
    summary=(
        "mode=append&name=music_streams: append a file from `url` (a job; csv, ndjson or "
        "parquet; hosts in MUSIC_ANALYTICS_APPEND_URL_HOSTS only) or from the request body."
    ),
)
async def append(request: Request) -> JSONResponse:
    params = dict(request.query_params)
    name = params.get("name", "")
    mode = params.get("mode", "append")
    url = params.get("url")
    if url:
        authorise(
            request,
            lambda t: t.can_manage_datasources,
            "data-source operations (it needs DATASOURCES:CREATE)",
        )
    else:
        authorise(request, lambda t: t.can_append(name), f"appending to {name[:60]}")
    if mode != "append":
        raise ApiError(
            400,
            f"parameter 'mode': {mode[:20]!r} is not supported; only append "
            "(the data source's schema is fixed)",
        )
    _check_datasource(name)
    settings: Settings = request.app.state.settings
    try:
        fmt = guess_format(url or "", params.get("format"))
    except IntakeError as exc:
        raise ApiError(exc.status, str(exc)) from None
    if url:
        return _append_from_url(request, settings, name, url, fmt)
    return await _append_body(request, settings, name, fmt)


def _append_from_url(request: Request, settings: Settings, name: str, url: str, fmt: str):
    from music_analytics.server.url_fetch import check_url

    policy = UrlPolicy(settings.append_url_hosts, settings.append_url_max_bytes, 1.0)
    try:
        check_url(url, policy)  # refuse at once what the job would refuse for sure
    except FetchError as exc:
        raise ApiError(exc.status, str(exc)) from None
    runner = _runner(request)
    job = runner.store.create("import", name, url=url, format=fmt, mode="append")
    runner.submit(job)
    answer = job_answer(job, _base(request))
    return JSONResponse(
        {
            "id": job["id"],
            "import_id": job["id"],
            "job_id": job["id"],
            "job_url": answer["job_url"],
            "status": job["status"],
            "job": answer,
            "datasource": {"id": name, "name": name},
        }
    )


async def _append_body(request: Request, settings: Settings, name: str, fmt: str):
    from music_analytics.server.event_intake import decode_body

    limit = settings.api_max_body_bytes
    raw = await read_capped_body(request, limit, f"the body is larger than {limit} bytes")
    try:
        body = decode_body(raw, request.headers.get("content-encoding"), limit)
        delimiter = request.query_params.get("dialect_delimiter") or ","
        lines = await run_in_threadpool(file_lines, body, fmt, settings.json_limits, delimiter)
    except IntakeError as exc:
        raise ApiError(exc.status, str(exc)) from None
    if not lines:
        raise ApiError(400, "the body holds no rows")
    judged = await run_in_threadpool(judge, lines)
    path = await run_in_threadpool(land_batch, settings.events_landing, lines)
    return JSONResponse(
        {
            "import_id": Path(path).stem,
            "successful_rows": judged.successful_rows,
            "quarantine_rows": judged.quarantined_rows,
            "quarantined_rows": judged.quarantined_rows,
            "invalid_lines": 0,
            "errors": judged.errors,
            "error": None,
            "datasource": {"id": name, "name": name},
        }
    )


@router.post("/v0/datasources/{name}/truncate", summary="Delete every row of the data source.")
async def truncate(request: Request, name: str) -> JSONResponse:
    authorise(
        request,
        lambda t: t.can_manage_datasources,
        "data-source operations (it needs DATASOURCES:CREATE)",
    )
    if name != QUARANTINE_DATASOURCE:
        _check_datasource(name)
    runner = _runner(request)
    job = runner.store.create("truncate", name)
    job = await run_in_threadpool(lambda: runner.submit(job).result())
    if job["status"] != "done":
        raise ApiError(503, f"the truncate failed: {job.get('error')}")
    return JSONResponse(
        {
            "truncated": True,
            "result": job_answer(job, _base(request)),
            "job": job_answer(job, _base(request)),
        }
    )


@router.post(
    "/v0/datasources/{name}/delete",
    summary="Delete the rows matching `delete_condition` (a job); `dry_run=true` counts them.",
)
async def delete_rows(request: Request, name: str) -> JSONResponse:
    authorise(
        request,
        lambda t: t.can_manage_datasources,
        "data-source operations (it needs DATASOURCES:CREATE)",
    )
    _check_datasource(name)
    params = await _params(request)
    text = params.get("delete_condition", "")
    try:
        condition = parse_condition(text, VALID_COLUMNS)
    except ConditionError as exc:
        raise ApiError(400, str(exc)) from None
    runner = _runner(request)
    settings: Settings = request.app.state.settings
    if params.get("dry_run", "false").strip().lower() in _TRUE:

        def count() -> int:
            with _warehouse(settings, read_only=True) as conn:
                return count_matching(conn, condition)

        try:
            rows = await run_in_threadpool(count)
        except ConditionError as exc:
            raise ApiError(400, str(exc)) from None
        except WarehouseFileError as exc:
            raise _warehouse_error(exc) from None
        user = user_of(condition)
        shown = text if user is None else redacted_user_condition(user)
        job = runner.store.create(
            "delete_data",
            name,
            delete_condition=shown,
            dry_run=True,
            status="done",
            rows_affected=rows,
        )
    else:
        job = runner.store.create("delete_data", name, delete_condition=text, dry_run=False)
        runner.submit(job)
    answer = job_answer(job, _base(request))
    return JSONResponse(
        {
            "id": job["id"],
            "job_id": job["id"],
            "delete_id": job["id"],
            "job_url": answer["job_url"],
            "status": job["status"],
            "rows_affected": job["rows_affected"],
            "job": answer,
        }
    )


@router.get("/v0/jobs/{job_id}", summary="A data-source job: status, kind, rows_affected, error.")
def get_job(request: Request, job_id: str) -> JSONResponse:
    authorise(
        request,
        lambda t: t.can_manage_datasources or t.can_append("music_streams"),
        "jobs (it needs DATASOURCES:CREATE)",
    )
    job = _runner(request).store.get(job_id)
    if job is None:
        raise ApiError(404, f"no job {job_id[:40]!r}")
    return JSONResponse(job_answer(job, _base(request)))
