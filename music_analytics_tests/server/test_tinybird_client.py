"""A published Tinybird client (verdin, from PyPI) against a real `music-analytics serve`.

Every call goes through the client's own code, as an application written for Tinybird would:
events, appends (NDJSON and CSV bodies), a pipe with DateTime parameters and `q` (also long
enough that the client POSTs it), SQL with FORMAT and with `pipeline=`, a delete by condition
(verdin has no call for it: its authenticated session posts it) and truncate.
"""

from __future__ import annotations

import time

import dagster as dg
import duckdb
import pytest
from verdin.client import Client

from music_analytics.lib.events.validation import EVENT_FIELDS
from music_analytics.refresh import refresh
from music_analytics.server.api_tokens import create_token, load_tokens
from music_analytics_tests.conftest import event, module_home, write_lines
from music_analytics_tests.server.serve_process import ServeProcess

WINDOW = {
    "start_date": "2025-03-01 00:00:00",
    "end_date": "2025-03-02 23:59:59",
    "genre": "pop",
    "country": "US",
    "limit": "50",
}


def _row(n: int, **overrides) -> dict:
    return event(
        n,
        stream_id=f"v{n}",
        genre="pop",
        country="US",
        track_id=f"vt_{n % 3}",
        stream_start_time=f"2025-03-0{1 + n % 2} 10:{n % 60:02d}:00",
        **overrides,
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    with module_home(
        tmp_path_factory,
        "verdin",
        MUSIC_ANALYTICS_START_DATE="2025-01-01",
        MUSIC_ANALYTICS_FILE_STABLE_SECONDS="0",
    ) as settings:
        write_lines(settings.events_landing / "seed.ndjson", [_row(n) for n in range(30)])
        refresh(settings=settings, instance=dg.DagsterInstance.ephemeral(), log_level="WARNING")
        create_token(settings.api_tokens_file, "app", ["DATASOURCES:CREATE", "PIPE:READ"])
        yield settings


@pytest.fixture(scope="module")
def client(home, tmp_path_factory):
    server = ServeProcess(tmp_path_factory.mktemp("verdin-serve") / "serve.log")
    token = load_tokens(home.api_tokens_file).tokens[0].token
    yield Client(token, api=server.url)
    server.stop()


def _count(home, sql: str) -> int:
    with duckdb.connect(str(home.warehouse_path), read_only=True) as conn:
        return conn.execute(sql).fetchone()[0]


def test_appends_through_the_client_land_and_load(home, client):
    source = client.datasource("music_streams")
    sent = source.send_events([_row(n) for n in range(100, 104)], wait=True)
    assert (sent.successful_rows, sent.quarantined_rows) == (4, 0)
    ndjson = source.append_ndjson([_row(n) for n in range(200, 203)] + [{"stream_id": "broken"}])
    assert ndjson.status_code == 200, ndjson.text
    assert (ndjson.json()["successful_rows"], ndjson.json()["quarantine_rows"]) == (3, 1)
    names = [name for name, _ in EVENT_FIELDS]
    csv = source.append_csv([[_row(n)[c] for c in names] for n in range(300, 302)], delimiter=";")
    assert csv.status_code == 200 and csv.json()["successful_rows"] == 2, csv.text
    refresh(settings=home, instance=dg.DagsterInstance.ephemeral(), log_level="WARNING")
    assert _count(home, "select count(*) from raw.stream_events") == 30 + 4 + 3 + 2


def _wait_for(predicate, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while not (value := predicate()) and time.monotonic() < deadline:
        time.sleep(0.3)
    return value


def test_pipe_with_datetime_parameters_and_q(home, client):
    expected = _count(home, "select count(*) from raw.stream_events")
    pipe = client.pipe("top_tracks")

    def total():
        rows = pipe.query(WINDOW).data
        return sum(r["stream_count"] for r in rows) == expected and rows

    rows = _wait_for(total)  # the server's snapshot catches up with the refresh
    assert rows and {r["track_id"] for r in rows} == {"vt_0", "vt_1", "vt_2"}
    counted = client.api.pipes.query(
        "top_tracks", query="select count() as n from _", parameters=WINDOW
    )
    assert counted.data == [{"n": 3}]
    # over 8 kB the client POSTs the call: the same answer
    long_q = (
        "select count() as n from _ where track_id not in (" + ", ".join(["'nope'"] * 1500) + ")"
    )
    assert client.api.pipes.query("top_tracks", query=long_q, parameters=WINDOW).data == [{"n": 3}]


def test_sql_with_format_and_pipeline(home, client):
    sql = "select track_id, count(*) as n from fct_streams group by 1 order by 1"
    as_json = client.sql(sql).json()
    assert [r["track_id"] for r in as_json.data] == ["vt_0", "vt_1", "vt_2"]
    assert {m["name"] for m in as_json.meta} == {"track_id", "n"}
    csv = client.api.query.query(sql, format="CSVWithNames")
    assert [r["track_id"] for r in csv.data] == ["vt_0", "vt_1", "vt_2"]
    each_row = client.api.query.query(sql, format="JSONEachRow")
    assert [r["track_id"] for r in each_row.data] == ["vt_0", "vt_1", "vt_2"]
    over_pipe = client.api.query.query(
        "select count() as n from _", pipeline="top_tracks", parameters=WINDOW
    )  # the client POSTs with parameters
    assert over_pipe.data == [{"n": 3}]


def test_delete_and_truncate_through_the_client(home, client):
    api = client.api.datasources
    expected = _count(home, "select count(*) from raw.stream_events where track_id = 'vt_0'")
    dry = api.session.post(
        f"{api.host}/v0/datasources/music_streams/delete",
        data={"delete_condition": "track_id = 'vt_0'", "dry_run": "true"},
    )
    assert dry.status_code == 200 and dry.json()["rows_affected"] == expected > 0, dry.text
    job = api.session.post(
        f"{api.host}/v0/datasources/music_streams/delete",
        data={"delete_condition": "track_id = 'vt_0'"},
    ).json()
    status = _wait_for(
        lambda: (j := api.session.get(job["job_url"]).json())["status"] in ("done", "error") and j
    )
    assert (status["status"], status["rows_affected"]) == ("done", expected)
    client.datasource("music_streams").truncate()
    assert _count(home, "select count(*) from raw.stream_events") == 0
