"""The Data Sources API end to end: a real `music-analytics serve` subprocess on a home built by
the real pipeline, the warehouse and exports it changes, and `music-analytics refresh` after.

One home for the module (two users' events over two days, and quarantined lines naming one of
them); the tests run in file order, each leaving the home as the next expects.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import requests

from music_analytics.refresh import refresh
from music_analytics.server.api_tokens import create_token, load_tokens
from music_analytics_tests.conftest import event, module_home, write_lines
from music_analytics_tests.server.file_server import file_server
from music_analytics_tests.server.serve_process import ServeProcess

ALICE, BOB, CAROL = "alice-7f3q", "bob-2c9w", "carol-5k1z"
DAYS = ("2025-03-01", "2025-03-02")
PIPE = "/v0/pipes/top_tracks.json"
WINDOW = {"start_date": DAYS[0], "end_date": DAYS[1], "genre": "pop", "country": "US"}


def _rows(first: int, count: int) -> list[dict]:
    return [
        event(
            n,
            stream_id=f"s{n}",
            user_id=(ALICE, BOB, BOB, BOB, CAROL)[n % 5] if n % 3 else ALICE,
            track_id=f"track_{n % 4}",
            genre="pop",
            country="US",
            stream_start_time=f"{DAYS[n % 2]} {n % 24:02d}:{n % 60:02d}:00",
        )
        for n in range(first, first + count)
    ]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    with module_home(
        tmp_path_factory,
        "datasources",
        MUSIC_ANALYTICS_START_DATE="2025-01-01",
        MUSIC_ANALYTICS_FILE_STABLE_SECONDS="0",
        MUSIC_ANALYTICS_APPEND_URL_HOSTS="127.0.0.1",
        MUSIC_ANALYTICS_SQL_TIMEOUT_SECONDS="1",  # a replaced snapshot's files go after 3 s
    ) as settings:
        write_lines(
            settings.events_landing / "day.ndjson",
            [
                *_rows(0, 60),
                json.dumps({"stream_id": "bad1", "user_id": ALICE, "stream_start_time": "soon"}),
                f"not json at all, {ALICE} typed here",
                json.dumps({"stream_id": "bad2", "user_id": BOB, "genre": 7}),
                json.dumps({"stream_id": "bad3", "user_id": CAROL, "completed": "no"}),
            ],
        )
        refresh(settings=settings, instance=dg.DagsterInstance.ephemeral(), log_level="WARNING")
        for name, scope in (
            ("admin", "ADMIN"),
            ("ops", "DATASOURCES:CREATE"),
            ("reader", "PIPES:READ"),
        ):
            create_token(settings.api_tokens_file, name, [scope])
        yield settings


@pytest.fixture(scope="module")
def tokens(home) -> dict[str, str]:
    return {t.name: t.token for t in load_tokens(home.api_tokens_file).tokens}


@pytest.fixture(scope="module")
def server(home, tmp_path_factory):
    process = ServeProcess(tmp_path_factory.mktemp("serve") / "serve.log")
    yield process
    process.stop()


def _auth(tokens, name="ops") -> dict:
    return {"Authorization": f"Bearer {tokens[name]}"}


def _warehouse(home, sql: str, params=None) -> list[tuple]:
    with duckdb.connect(str(home.warehouse_path), read_only=True) as conn:
        return conn.execute(sql, params or []).fetchall()


def _wait_job(url: str, tokens, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = requests.get(f"{url}/v0/jobs/{job_id}", headers=_auth(tokens), timeout=10).json()
        if job["status"] in ("done", "error") or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


def _tracks(url: str, tokens) -> dict[str, int]:
    response = requests.get(url + PIPE, params=WINDOW, headers=_auth(tokens, "reader"), timeout=10)
    assert response.status_code == 200, response.text
    return {row["track_id"]: row["stream_count"] for row in response.json()["data"]}


def _wait_tracks_change(url: str, tokens, before: dict, timeout: float = 90) -> dict:
    """The pipe's answer once the server's snapshot has moved on from `before`."""
    deadline = time.monotonic() + timeout
    while (now := _tracks(url, tokens)) == before and time.monotonic() < deadline:
        time.sleep(0.3)
    return now


def _delete(url, tokens, condition: str, dry_run: bool = False, token="ops"):
    return requests.post(
        f"{url}/v0/datasources/music_streams/delete",
        data={"delete_condition": condition, "dry_run": str(dry_run).lower()},
        headers=_auth(tokens, token),
        timeout=30,
    )


@pytest.mark.parametrize(
    ("condition", "named"),
    [
        ("user_id in (select user_id from raw.stream_events)", "subquery"),
        ("1=1; drop table raw.stream_events", "not one SQL condition"),
        ("read_parquet('x') is null", "read_parquet"),
        ("secret = 1", "no column 'secret'"),
        ("user_id = 1", "cannot be evaluated"),  # a varchar compared with a number, when run
    ],
)
def test_hostile_conditions_get_a_400_naming_the_problem(server, tokens, condition, named):
    response = _delete(server.url, tokens, condition, dry_run=True)
    assert response.status_code == 400, response.text
    assert named in response.json()["error"]


def test_the_scope_is_needed(server, tokens):
    assert _delete(server.url, tokens, "user_id = 'x'", token="reader").status_code == 403
    response = requests.post(
        f"{server.url}/v0/datasources/music_streams/truncate",
        headers=_auth(tokens, "reader"),
        timeout=10,
    )
    assert response.status_code == 403


def _wait_dead(process, timeout: float) -> None:
    """Wait until `process` (not our child, so only its parent can reap it) has died:
    gone, or a zombie its parent has yet to reap."""
    import psutil

    deadline = time.monotonic() + timeout
    while True:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        assert time.monotonic() < deadline, f"worker {process.pid} still alive after SIGKILL"
        time.sleep(0.05)


def test_two_worker_processes_answer_alike_and_share_the_jobs(home, server, tokens, tmp_path):
    """`serve --workers 2` (one per core, as the README deploys it): both processes build a
    snapshot and answer the same, a job accepted by one is seen by the other, a SIGKILLed
    worker is replaced while the other answers, and SIGTERM takes every process and snapshot
    with it."""
    import psutil

    expected = _tracks(server.url, tokens)
    temp = tmp_path / "tmp"
    temp.mkdir()
    pair = ServeProcess(tmp_path / "workers.log", workers=2, TMPDIR=str(temp))
    try:
        workers = psutil.Process(pair.process.pid).children()
        assert len([w for w in workers if w.is_running()]) >= 2
        deadline = time.monotonic() + 60  # each worker builds its snapshot before it listens
        while len(list(temp.glob("music-analytics-serve-*/snapshot-*.duckdb"))) < 2:
            assert time.monotonic() < deadline, list(temp.rglob("*"))
            time.sleep(0.2)
        # A fresh connection each time, so the calls go to either process.
        assert all(_tracks(pair.url, tokens) == expected for _ in range(16))
        answer = _delete(pair.url, tokens, "user_id = 'nobody-at-all'").json()
        jobs = [_wait_job(pair.url, tokens, answer["job_id"]) for _ in range(12)]
        assert {(j["status"], j["rows_affected"]) for j in jobs} == {("done", 0)}
        # SIGKILL one worker: the other answers meanwhile, uvicorn starts a replacement, and
        # the replacement removes the dead worker's snapshot folder.
        owners = {
            int(o.read_text().split()[0]): o.parent
            for o in temp.glob("music-analytics-serve-*/owner")
        }
        assert set(owners) <= {w.pid for w in workers} and len(owners) == 2
        victim_pid, dead_folder = sorted(owners.items())[0]
        victim = psutil.Process(victim_pid)
        victim.kill()
        _wait_dead(victim, timeout=30)
        assert _tracks(pair.url, tokens) == expected
        # uvicorn reaps and replaces it on its next health check; a check that was waiting
        # on the victim's pipe when it died waits out the 60 s ping timeout first.
        deadline = time.monotonic() + 180
        while dead_folder.exists() or len(list(temp.glob("music-analytics-serve-*"))) < 2:
            assert time.monotonic() < deadline, list(temp.rglob("*"))
            time.sleep(0.2)
        workers = psutil.Process(pair.process.pid).children()
        assert victim.pid not in {w.pid for w in workers} and len(workers) >= 2
        while len(list(temp.glob("music-analytics-serve-*/snapshot-*.duckdb"))) < 2:
            assert time.monotonic() < deadline, list(temp.rglob("*"))
            time.sleep(0.2)
        assert all(_tracks(pair.url, tokens) == expected for _ in range(8))
    finally:
        pair.stop()
    _, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive, [w.cmdline() for w in alive]
    assert not list(temp.glob("music-analytics-serve-*/snapshot-*.duckdb"))


def test_delete_by_condition_then_refresh_changes_the_pipe(home, server, tokens):
    before = _tracks(server.url, tokens)
    assert before["track_1"] > 0
    expected = _warehouse(home, "select count(*) from raw.stream_events where track_id = 'track_1'")
    dry = _delete(server.url, tokens, "track_id = 'track_1'", dry_run=True).json()
    assert dry["job"]["status"] == "done" and dry["rows_affected"] == expected[0][0] > 0
    assert _warehouse(home, "select count(*) from raw.stream_events where track_id = 'track_1'")
    answer = _delete(server.url, tokens, "track_id = 'track_1'").json()
    assert answer["job_url"].endswith(f"/v0/jobs/{answer['job_id']}")
    job = _wait_job(server.url, tokens, answer["job_id"])
    assert (job["status"], job["kind"], job["rows_affected"]) == (
        "done",
        "delete_data",
        expected[0][0],
    )
    assert job["days_marked_for_rebuild"] == 1  # track_1's streams are all on the second day
    pending = _warehouse(home, "select distinct day::varchar from raw.pending_rebuilds order by 1")
    assert [d for (d,) in pending] == [DAYS[1]]
    refresh(settings=home, instance=dg.DagsterInstance.ephemeral(), log_level="WARNING")
    after = _wait_tracks_change(server.url, tokens, before)
    assert "track_1" not in after
    assert {k: v for k, v in before.items() if k != "track_1"} == after


def test_a_delete_job_killed_mid_transaction_is_done_once_by_the_next_server(
    home, tokens, tmp_path
):
    """SIGKILL inside the delete's raw transaction; the next server start finishes the job."""
    crashing = ServeProcess(tmp_path / "crash.log", MUSIC_ANALYTICS_CRASH_AT="raw_load")
    expected = _warehouse(home, "select count(*) from raw.stream_events where track_id = 'track_2'")
    try:
        answer = _delete(crashing.url, tokens, "track_id = 'track_2'").json()
        assert crashing.wait_killed() == -9
    finally:
        crashing.stop()
    stored = json.loads((home.jobs_dir / f"{answer['job_id']}.json").read_text())
    assert stored["status"] == "working"
    # the transaction died uncommitted: the rows are all still there
    assert (
        _warehouse(home, "select count(*) from raw.stream_events where track_id = 'track_2'")
        == expected
    )
    restarted = ServeProcess(tmp_path / "restart.log")
    try:
        job = _wait_job(restarted.url, tokens, answer["job_id"])
    finally:
        restarted.stop()
    assert (job["status"], job["rows_affected"], job["attempts"]) == ("done", expected[0][0], 2)
    assert _warehouse(
        home, "select count(*) from raw.stream_events where track_id = 'track_2'"
    ) == [(0,)]
    operations = _warehouse(
        home,
        "select count(*) from raw.datasource_operations where operation_id = ?",
        [answer["job_id"]],
    )
    assert operations == [(1,)]


def _csv(rows: list[dict]) -> bytes:
    names = list(rows[0])
    lines = [",".join(names)] + [",".join(str(r[n]) for n in names) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def _parquet(rows: list[dict], tmp_path: Path) -> bytes:
    path = tmp_path / "rows.parquet"
    with duckdb.connect() as conn:
        conn.execute(
            "create table r as select * from read_json(?)",
            [str(write_lines(tmp_path / "rows.ndjson", rows))],
        )
        conn.execute("copy r to ? (format parquet)", [str(path)])
    return path.read_bytes()


def test_append_from_url_in_each_format_lands_rows_like_events(home, server, tokens, tmp_path):
    rows = _rows(1000, 6)
    bad = {**_rows(2000, 1)[0], "completed": "maybe"}
    files = {
        "/rows.csv": _csv(rows[:2] + [bad]),
        "/rows.ndjson": ("\n".join(json.dumps(r) for r in rows[2:4]) + "\n").encode(),
        "/rows.parquet": _parquet(rows[4:], tmp_path),
    }
    with file_server(files) as base:
        jobs = {}
        for name in files:
            response = requests.post(
                f"{server.url}/v0/datasources",
                params={"mode": "append", "name": "music_streams", "url": base + name},
                headers=_auth(tokens),
                timeout=30,
            )
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "waiting"
            jobs[name] = _wait_job(server.url, tokens, response.json()["job_id"])
        refused = requests.post(
            f"{server.url}/v0/datasources",
            params={
                "mode": "append",
                "name": "music_streams",
                "url": base.replace("127.0.0.1", "localhost") + "/rows.csv",
            },
            headers=_auth(tokens),
            timeout=30,
        )
        redirected = requests.post(
            f"{server.url}/v0/datasources",
            params={
                "mode": "append",
                "name": "music_streams",
                "url": base + "/redirect-other/rows.csv",
            },
            headers=_auth(tokens),
            timeout=30,
        ).json()
        redirected_job = _wait_job(server.url, tokens, redirected["job_id"])
    assert refused.status_code == 403 and "MUSIC_ANALYTICS_APPEND_URL_HOSTS" in refused.text
    assert redirected_job["status"] == "error" and "another host" in redirected_job["error"]
    counts = {
        n: (j["status"], j["successful_rows"], j["quarantined_rows"]) for n, j in jobs.items()
    }
    assert counts == {
        "/rows.csv": ("done", 2, 1),
        "/rows.ndjson": ("done", 2, 0),
        "/rows.parquet": ("done", 2, 0),
    }
    refresh(settings=home, instance=dg.DagsterInstance.ephemeral(), log_level="WARNING")
    loaded = _warehouse(
        home,
        "select stream_id from raw.stream_events where stream_id in (select unnest(?)) order by 1",
        [[r["stream_id"] for r in rows]],
    )
    assert [r[0] for r in loaded] == sorted(r["stream_id"] for r in rows)
    quarantined = _warehouse(
        home, "select error_column from raw.stream_events_quarantine where contains(line, 's2000')"
    )
    assert quarantined == [("completed",)]


def test_an_import_killed_after_landing_is_done_once_by_the_next_server(home, tokens, tmp_path):
    """SIGKILL after the job's file landed, before the job was marked done: the next start
    marks it done with its counts and lands nothing twice."""
    rows = [{**r, "user_id": ALICE} for r in _rows(3000, 3)]  # still waiting at delete-user
    with file_server({"/more.ndjson": "\n".join(json.dumps(r) for r in rows).encode()}) as base:
        crashing = ServeProcess(tmp_path / "crash.log", MUSIC_ANALYTICS_CRASH_AT="job_landed")
        try:
            answer = requests.post(
                f"{crashing.url}/v0/datasources",
                params={"mode": "append", "name": "music_streams", "url": base + "/more.ndjson"},
                headers=_auth(tokens),
                timeout=30,
            ).json()
            assert crashing.wait_killed() == -9
        finally:
            crashing.stop()
    landed = sorted(home.events_landing.glob(f"*{answer['job_id']}*"))
    assert [p.name for p in landed] == [f"api-job-{answer['job_id']}.ndjson"]
    restarted = ServeProcess(tmp_path / "restart.log")
    try:
        job = _wait_job(restarted.url, tokens, answer["job_id"])
    finally:
        restarted.stop()
    assert (job["status"], job["successful_rows"], job["attempts"]) == ("done", 3, 2)
    assert sorted(home.events_landing.glob(f"*{answer['job_id']}*")) == landed


def _user_hits(home, user_id: str) -> list[str]:
    """Every DuckDB table column (warehouse and exports' bi.duckdb) and Parquet export file
    that holds `user_id` anywhere in its text."""
    hits = []
    with duckdb.connect(str(home.warehouse_path), read_only=True) as conn:
        columns = conn.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "join information_schema.tables using (table_catalog, table_schema, table_name) "
            "where table_type = 'BASE TABLE'"
        ).fetchall()
        for schema, table, column in columns:
            found = conn.execute(
                f'select count(*) from "{schema}"."{table}" '
                f'where contains(cast("{column}" as varchar), ?)',
                [user_id],
            ).fetchone()[0]
            if found:
                hits.append(f"{schema}.{table}.{column}")
    with duckdb.connect() as conn:
        for path in sorted(home.exports_dir.rglob("*.parquet")):
            columns = [
                r[0]
                for r in conn.execute(
                    "describe select * from read_parquet(?)", [str(path)]
                ).fetchall()
            ]
            text = " || ' ' || ".join(f"coalesce(cast(\"{c}\" as varchar), '')" for c in columns)
            found = conn.execute(
                f"select count(*) from read_parquet(?) where contains({text}, ?)",
                [str(path), user_id],
            ).fetchone()[0]
            if found:
                hits.append(str(path.relative_to(home.exports_dir)))
    return hits


def test_delete_user_removes_the_user_everywhere_and_keeps_the_other(home, server, tokens):
    """ALICE by `music-analytics delete-user`, CAROL by a delete condition through the API."""
    assert _user_hits(home, ALICE) and _user_hits(home, BOB) and _user_hits(home, CAROL)
    answer = _delete(server.url, tokens, f"user_id = '{CAROL}'").json()
    job = _wait_job(server.url, tokens, answer["job_id"])
    assert job["status"] == "done" and job["rows_affected"] > 0
    assert CAROL not in json.dumps(job)  # the record keeps a hash of the id
    assert _warehouse(
        home, "select count(*) from raw.stream_events_quarantine where contains(line, ?)", [CAROL]
    ) == [(0,)]
    bob_before = _warehouse(home, "select count(*) from raw.stream_events where user_id = ?", [BOB])
    before = _tracks(server.url, tokens)
    done = subprocess.run(
        [sys.executable, "-m", "music_analytics.cli", "delete-user", ALICE],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    # the seed's two lines, and the CSV append's bad row (s2000 is ALICE's)
    assert "raw.stream_events:" in done.stdout and "raw.stream_events_quarantine: 3" in done.stdout
    assert "marts.user_activity_daily" in done.stdout
    after = _wait_tracks_change(server.url, tokens, before)  # the server's snapshot moved on
    assert sum(after.values()) < sum(before.values())
    deadline = time.monotonic() + 30  # the replaced snapshot's files go after its readers'
    while (hits := _user_hits(home, ALICE)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert hits == []
    assert _user_hits(home, CAROL) == []
    assert (
        _warehouse(home, "select count(*) from raw.stream_events where user_id = ?", [BOB])
        == bob_before
    )
    assert _user_hits(home, BOB)
    users = requests.get(
        f"{server.url}/v0/sql",
        params={"q": "select distinct user_id from user_activity_daily order by 1"},
        headers=_auth(tokens, "reader"),
        timeout=10,
    ).json()["data"]
    assert ALICE not in [u["user_id"] for u in users]


def test_truncate_empties_the_data_source_and_its_days(home, server, tokens):
    response = requests.post(
        f"{server.url}/v0/datasources/music_streams/truncate", headers=_auth(tokens), timeout=60
    )
    assert response.status_code == 200, response.text
    assert response.json()["truncated"] is True
    assert _warehouse(home, "select count(*) from raw.stream_events") == [(0,)]
    refresh(settings=home, instance=dg.DagsterInstance.ephemeral(), log_level="WARNING")
    assert _warehouse(home, "select count(*) from marts.fct_streams where source = 'events'") == [
        (0,)
    ]


def test_the_quarantine_is_a_data_source_of_its_own_to_truncate(home, server, tokens):
    """As in Tinybird, `<name>_quarantine`: truncating music_streams keeps the quarantine;
    truncating music_streams_quarantine empties it and touches no mart day."""
    [(lines,)] = _warehouse(home, "select count(*) from raw.stream_events_quarantine")
    assert lines > 0  # BOB's broken line, kept by the truncate of music_streams
    response = requests.post(
        f"{server.url}/v0/datasources/music_streams_quarantine/truncate",
        headers=_auth(tokens),
        timeout=60,
    )
    assert response.status_code == 200, response.text
    job = response.json()["job"]
    assert job["rows_affected"] == lines and job["days_marked_for_rebuild"] == 0
    assert _warehouse(home, "select count(*) from raw.stream_events_quarantine") == [(0,)]
    other = requests.post(
        f"{server.url}/v0/datasources/other_quarantine/truncate", headers=_auth(tokens), timeout=60
    )
    assert other.status_code == 404
