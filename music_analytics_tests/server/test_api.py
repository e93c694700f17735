"""The HTTP API over real marts: pipes, formats, tokens, injection, /v0/sql, events, docs."""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import json
import logging
import re
import shutil
import time
from pathlib import Path

import duckdb
import pytest
import requests
from fastapi.testclient import TestClient

from music_analytics.lib.core.exports import write_bi_database
from music_analytics.lib.core.landing import landing_files
from music_analytics.lib.events.files import load_event_file
from music_analytics.server.api_tokens import load_tokens
from music_analytics.server.app import build_app
from music_analytics.server.auth import redact_tokens
from music_analytics.server.pipes import PIPES
from music_analytics_tests.conftest import event

SHAPE = {"meta", "data", "rows", "rows_before_limit_at_least", "statistics"}
INJECTIONS = (
    "' OR 1=1 --",
    "x'); DROP TABLE top_tracks_daily; --",
    "2025-03-01' OR '1'='1",
    "1; select 1",
    '" OR ""="',
    "pop' UNION SELECT * FROM read_csv('/etc/passwd') --",
)


@pytest.mark.parametrize("pipe", list(PIPES))
def test_every_pipe_answers_in_the_tinybird_shape(api, pipe):
    response = api.get(f"/v0/pipes/{pipe}.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == SHAPE
    assert set(body["statistics"]) == {"elapsed", "rows_read", "bytes_read"}
    assert body["statistics"]["rows_read"] > 0 and body["statistics"]["bytes_read"] > 0
    assert body["data"], f"{pipe} returned no rows"
    assert body["rows"] == len(body["data"])
    assert body["rows_before_limit_at_least"] >= body["rows"]
    names = [column["name"] for column in body["meta"]]
    assert all(list(row) == names for row in body["data"])
    assert "__rows_before_limit" not in names


@pytest.mark.parametrize("pipe", list(PIPES))
def test_limit_cuts_the_rows_but_not_the_count_before_it(api, pipe):
    whole = api.get(f"/v0/pipes/{pipe}.json", start_date="2025-01-01", limit=1000).json()
    cut = api.get(f"/v0/pipes/{pipe}.json", start_date="2025-01-01", limit=1).json()
    assert cut["rows"] == 1
    assert cut["data"] == whole["data"][:1]
    assert cut["rows_before_limit_at_least"] == whole["rows_before_limit_at_least"] >= 1


@pytest.mark.parametrize("pipe", ["top_tracks", "genre_trends", "dsp_top_tracks"])
def test_csv_and_ndjson_carry_the_json_rows(api, pipe):
    params = {"start_date": "2025-01-01", "limit": 50}
    data = api.get(f"/v0/pipes/{pipe}.json", **params).json()
    as_csv = api.get(f"/v0/pipes/{pipe}.csv", **params)
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert rows[0] == [column["name"] for column in data["meta"]]
    expected = [["" if v is None else str(v) for v in row.values()] for row in data["data"]]
    assert rows[1:] == expected
    as_ndjson = api.get(f"/v0/pipes/{pipe}.ndjson", **params)
    assert as_ndjson.headers["content-type"].startswith("application/x-ndjson")
    assert [json.loads(line) for line in as_ndjson.text.splitlines()] == data["data"]


def test_sql_answers_in_every_format(api):
    q = "select genre, count(*) as n from top_tracks_daily group by 1 order by 1"
    data = api.get("/v0/sql", q=q).json()
    assert set(data) == SHAPE and data["rows"] == len(data["data"]) > 1
    ndjson = api.get("/v0/sql", q=q, format="ndjson").text.splitlines()
    assert [json.loads(line) for line in ndjson] == data["data"]
    rows = list(csv.reader(io.StringIO(api.get("/v0/sql", q=q, format="csv").text)))
    assert rows == [["genre", "n"]] + [[r["genre"], str(r["n"])] for r in data["data"]]


def test_top_tracks_filters_narrow_to_the_genre_and_country(api):
    genre = api.data("genre_trends")[0]["genre"]
    rows = api.data("top_tracks", genre=genre, limit=1000)
    assert rows and {r["genre"] for r in rows} == {genre}
    dates = {"start_date": "2025-03-01", "end_date": "2025-03-04"}
    every = api.data("top_tracks", limit=1000, **dates)
    us = api.data("top_tracks", country="US", limit=1000, **dates)
    expected = api.sql(
        "select track_id, cast(sum(stream_count) as bigint) as n from top_tracks_daily "
        "where country = 'US' and stream_date between '2025-03-01' and '2025-03-04' group by 1"
    )
    assert {r["track_id"]: r["stream_count"] for r in us} == {
        r["track_id"]: r["n"] for r in expected
    }
    assert sum(r["stream_count"] for r in us) < sum(r["stream_count"] for r in every)


def test_top_tracks_equal_plain_sql_over_the_marts(api):
    rows = api.data("top_tracks", start_date="2025-03-02", end_date="2025-03-03", limit=1000)
    expected = api.sql(
        "select track_id, cast(sum(stream_count) as bigint) as n from top_tracks_daily "
        "where stream_date between '2025-03-02' and '2025-03-03' group by 1 order by 2 desc, 1"
    )
    assert [(r["track_id"], r["stream_count"]) for r in rows] == [
        (r["track_id"], r["n"]) for r in expected
    ]


def test_dsp_and_isrc_filters_narrow(api):
    spotify = api.data("dsp_top_tracks", dsp="spotify", limit=1000)
    assert spotify and {r["dsp"] for r in spotify} == {"spotify"}
    assert len(spotify) < len(api.data("dsp_top_tracks", limit=1000))
    isrc = api.data("track_performance")[0]["isrc"]
    one = api.data("track_performance", isrc=isrc)
    assert [r["isrc"] for r in one] == [isrc]
    hyphenated = f"{isrc[:2]}-{isrc[2:5]}-{isrc[5:7]}-{isrc[7:]}".lower()
    assert api.data("track_performance", isrc=hyphenated) == one


def test_listening_history_by_hour_splits_the_days(api):
    days = api.data("listening_history")
    hours = api.data("listening_history", granularity="hour")
    assert "hour_of_day" in hours[0] and len(hours) > len(days)
    for day in days:
        plays = sum(h["plays"] for h in hours if h["stream_date"] == day["stream_date"])
        assert plays == day["plays"]


@pytest.mark.parametrize(
    "params, param",
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"start_date": "2025-03-04", "end_date": "2025-03-01"}, "start_date"),
        ({"genere": "pop"}, "genere"),
    ],
)
def test_a_bad_parameter_is_400_naming_it(api, params, param):
    response = api.get("/v0/pipes/top_tracks.json", **params)
    assert response.status_code == 400
    assert f"parameter '{param}'" in response.json()["error"]


def test_an_unknown_pipe_or_format_is_404_or_400(api):
    assert api.get("/v0/pipes/nope.json").status_code == 404
    assert api.get("/v0/pipes/top_tracks.xml").status_code in (400, 404)


def test_no_token_or_a_wrong_one_is_401(api):
    paths = ["/v0/pipes/top_tracks.json", "/v0/sql?q=select+1", "/v0/pipes", "/v0/filters"]
    for path in paths:
        assert api.get(path, token=None).status_code == 401
        wrong = {"Authorization": "Bearer not-a-valid-token-0123456789"}
        assert requests.get(api.url + path, headers=wrong, timeout=10).status_code == 401
        separator = "&" if "?" in path else "?"
        bad_query = f"{api.url}{path}{separator}token=not-a-valid-token-0123456789"
        assert requests.get(bad_query, timeout=10).status_code == 401
    response = api.post("/v0/events?name=music_streams", token=None, data=b"{}")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "not-a-valid" not in response.text


def test_a_token_in_the_query_string_works_too(api):
    url = f"{api.url}/v0/pipes/top_tracks.json?token={api.tokens['reader']}"
    assert requests.get(url, timeout=10).status_code == 200


def test_scopes_are_enforced_with_403(api):
    assert api.get("/v0/pipes/top_tracks.json", token="appender").status_code == 403
    assert api.get("/v0/sql", token="appender", q="select 1").status_code == 403
    assert api.get("/v0/pipes/top_tracks.json", token="top_tracks_only").status_code == 200
    assert api.get("/v0/pipes/genre_trends.json", token="top_tracks_only").status_code == 403
    assert api.get("/v0/sql", token="top_tracks_only", q="select 1").status_code == 403
    assert api.get("/v0/sql", token="reader", q="select 1").status_code == 200
    listed = api.get("/v0/pipes", token="top_tracks_only").json()["pipes"]
    assert [p["name"] for p in listed] == ["top_tracks"]
    events = api.post("/v0/events?name=music_streams", token="reader", data=b"{}")
    assert events.status_code == 403
    assert api.tokens["reader"] not in events.text


def test_injection_through_every_pipe_parameter_has_no_effect(api):
    before = api.get("/v0/pipes/top_tracks.json", start_date="2025-01-01", limit=1000).json()
    counts = api.sql("select count(*) as n from top_tracks_daily")
    for pipe in PIPES.values():
        for param in pipe.params:
            for payload in INJECTIONS:
                response = api.get(f"/v0/pipes/{pipe.name}.json", **{param.name: payload})
                where = f"{pipe.name}?{param.name}={payload!r}"
                assert response.status_code in (200, 400), where
                if response.status_code == 400:
                    assert f"parameter '{param.name}'" in response.json()["error"], where
                else:
                    assert response.json()["data"] == [], where
    after = api.get("/v0/pipes/top_tracks.json", start_date="2025-01-01", limit=1000).json()
    assert after["data"] == before["data"]
    assert api.sql("select count(*) as n from top_tracks_daily") == counts


def test_injection_through_sql_is_a_400_and_changes_nothing(api, tmp_path):
    counts = api.sql("select count(*) as n from top_tracks_daily")
    written = tmp_path / "x.csv"
    attached = tmp_path / "a.duckdb"
    attempts = [
        "select * from read_csv('/etc/passwd')",
        "select * from read_text('/etc/passwd')",
        f"select * from read_parquet('{api.url}/x.parquet')",
        "select 1; drop table top_tracks_daily",
        "drop table top_tracks_daily",
        f"copy top_tracks_daily to '{written}'",
        f"select * from query('copy top_tracks_daily to ''{written}''')",
        f"attach '{attached}' as a",
        "set enable_external_access = true",
        "install httpfs",
        "select getenv('HOME')",
        "pragma version",
    ]
    for q in attempts:
        response = api.get("/v0/sql", q=q)
        assert response.status_code == 400, q
        assert "error" in response.json()
    assert not written.exists() and not attached.exists()
    assert api.sql("select count(*) as n from top_tracks_daily") == counts
    assert api.get("/v0/sql", q="").status_code == 400


def test_sql_cuts_rows_at_the_servers_limit(api, live_server):
    limit = live_server.app.state.settings.sql_max_rows
    body = api.get("/v0/sql", q=f"select * from range({limit + 5})").json()
    assert body["rows"] == limit
    assert body["rows_before_limit_at_least"] > limit


def test_sql_renders_every_column_type(api):
    q = (
        "select interval 1 day as i, uuid() as u, 'nan'::double as n, 'a'::blob as b, "
        "[1, 2] as l, {'a': 1} as s, 1.5::decimal(38, 10) as d, 2::hugeint as h, "
        "date '2025-03-01' as day, timestamptz '2025-03-01 10:00:00+00' as at"
    )
    for fmt in ("json", "ndjson", "csv"):
        response = api.get("/v0/sql", q=q, format=fmt)
        assert response.status_code == 200, (fmt, response.text)
    row = api.sql(q)[0]
    assert row["n"] is None and row["b"] == "61" and row["l"] == [1, 2]
    assert row["s"] == {"a": 1} and row["d"] == 1.5 and row["h"] == 2
    assert row["day"] == "2025-03-01" and len(row["u"]) == 36 and isinstance(row["i"], str)


def test_sql_limits_come_from_the_settings(marts_settings):
    settings = dataclasses.replace(marts_settings, sql_max_rows=5, sql_timeout_seconds=1)
    app = build_app(settings)
    try:
        with TestClient(app) as client:
            client.headers.update(bearer(marts_settings, "reader"))
            body = client.get("/v0/sql", params={"q": "select * from top_tracks_daily"}).json()
            assert body["rows"] == 5 and body["rows_before_limit_at_least"] > 5
            slow = (
                "select count(*) from range(100000000) a, range(100000000) b "
                "where hash(a.range + b.range) = 0"
            )
            response = client.get("/v0/sql", params={"q": slow})
            assert response.status_code == 408
            assert "longer than 1 s" in response.json()["error"]
    finally:
        app.state.snapshots.close()


def test_reads_go_on_while_the_pipeline_holds_the_warehouse(api, marts_settings):
    with duckdb.connect(str(marts_settings.warehouse_path)) as writer:
        writer.execute("begin transaction")
        writer.execute("select count(*) from marts.top_tracks_daily").fetchall()
        for pipe in PIPES:
            assert api.data(pipe), pipe
        assert api.sql("select count(*) as n from top_tracks_daily")[0]["n"] > 0
        writer.execute("rollback")


def test_the_access_log_never_shows_a_token(api, live_server):
    logger = logging.getLogger("uvicorn.access")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        token = api.tokens["reader"]
        response = requests.get(
            f"{api.url}/v0/pipes/top_tracks.json?limit=1&token={token}", timeout=10
        )
        assert response.status_code == 200
        deadline = time.monotonic() + 5
        while not records and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert records, "uvicorn wrote no access log line"
    for record in records:
        shown = record.getMessage() + repr(record.args)
        assert token not in shown
        assert "token=***" in shown


@pytest.mark.parametrize(
    "text, expected",
    [
        ("GET /v0/sql?token=abc123&q=1", "GET /v0/sql?token=***&q=1"),
        ("/x?q=1&token=abc123", "/x?q=1&token=***"),
        ("/x?TOKEN=abc123 HTTP/1.1", "/x?TOKEN=*** HTTP/1.1"),
        ("Authorization: Bearer abc.def-123", "Authorization: Bearer ***"),
        ("/x?mytoken=abc", "/x?mytoken=abc"),
    ],
)
def test_redact_tokens(text, expected):
    assert redact_tokens(text) == expected


def test_openapi_lists_every_pipe_with_its_parameters(api):
    document = api.get("/openapi.json", token=None).json()
    for pipe in PIPES.values():
        operation = document["paths"][f"/v0/pipes/{pipe.name}.{{format}}"]["get"]
        by_name = {p["name"]: p for p in operation["parameters"]}
        assert {p.name for p in pipe.params} <= set(by_name)
        for param in pipe.params:
            schema = by_name[param.name]["schema"]
            assert schema["type"] == ("integer" if param.kind == "integer" else "string")
            if param.kind == "date":
                assert schema["format"] == "date"
            if param.kind == "enum":
                assert schema["enum"] == list(param.choices)
        assert by_name["limit"]["schema"]["maximum"] == pipe.max_limit
    assert "/v0/sql" in document["paths"] and "/v0/events" in document["paths"]


def test_the_docs_page_uses_only_local_assets(api):
    response = api.get("/docs", token=None)
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    assert "/static-offline-docs/" in response.text
    outside = [
        url
        for url in re.findall(r"https?://[^\s\"'<>)]+", response.text)
        if not url.startswith(api.url)
    ]
    assert outside == []
    for asset in re.findall(r"/static-offline-docs/[^\"']+", response.text):
        assert api.get(asset, token=None).status_code == 200, asset


# --- events -------------------------------------------------------------------------------


def mixed_batch() -> tuple[list[str], int]:
    """Lines of valid and invalid events, and how many are valid."""
    valid = [
        json.dumps(event(i, stream_start_time=f"2025-03-0{1 + i % 4} 1{i % 10}:00:00"))
        for i in range(12)
    ]
    missing = event(50)
    del missing["user_id"]
    invalid = [
        '{"broken',
        "[]",
        json.dumps(missing),
        json.dumps(event(51, completed="yes")),
        json.dumps(event(52, stream_duration_seconds=1.5)),
        json.dumps(event(53, stream_start_time="not a time")),
        json.dumps(event(54, country=7)),
    ]
    lines = valid[:6] + invalid[:3] + valid[6:] + invalid[3:]
    return lines, len(valid)


@pytest.fixture
def events_client(marts_settings, tmp_path):
    """A TestClient on an app whose home (and landing folder) is tmp_path."""
    settings = dataclasses.replace(marts_settings, home=tmp_path / "home")
    app = build_app(settings)
    with TestClient(app) as client:
        client.settings = settings
        client.headers.update(bearer(marts_settings, "appender"))
        yield client
    app.state.snapshots.close()


def bearer(settings, name: str) -> dict[str, str]:
    tokens = load_tokens(settings.api_tokens_file).tokens
    return {"Authorization": "Bearer " + next(t.token for t in tokens if t.name == name)}


def landed(settings) -> list[Path]:
    return landing_files(settings.events_landing, "events")


def test_a_mixed_batch_is_accounted_for_and_landed_whole(events_client):
    lines, valid = mixed_batch()
    response = events_client.post(
        "/v0/events?name=music_streams&wait=true", content="\n".join(lines) + "\n"
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["successful_rows"] == valid
    assert body["quarantined_rows"] == len(lines) - valid
    assert [e["line"] for e in body["errors"]] == [7, 8, 9, 16, 17, 18, 19]
    (path,) = landed(events_client.settings)
    assert body["file"] == path.name
    assert path.read_text().splitlines() == lines


def test_without_wait_the_batch_is_accepted_then_landed(events_client):
    lines, valid = mixed_batch()
    response = events_client.post("/v0/events?name=music_streams", content="\n".join(lines))
    assert response.status_code == 202
    assert response.json()["successful_rows"] == valid
    deadline = time.monotonic() + 10
    while not landed(events_client.settings) and time.monotonic() < deadline:
        time.sleep(0.05)
    (path,) = landed(events_client.settings)
    assert path.read_text().splitlines() == lines


def test_a_json_array_body_lands_one_line_per_element(events_client):
    rows = [event(i, stream_start_time="2025-03-02 10:00:00") for i in range(3)]
    response = events_client.post(
        "/v0/events?name=music_streams&wait=true",
        json=rows,
    )
    assert response.status_code == 200, response.text
    assert (response.json()["successful_rows"], response.json()["quarantined_rows"]) == (3, 0)
    (path,) = landed(events_client.settings)
    assert [json.loads(line) for line in path.read_text().splitlines()] == rows


def test_a_gzip_body_is_gunzipped(events_client):
    lines, valid = mixed_batch()
    response = events_client.post(
        "/v0/events?name=music_streams&wait=true",
        content=gzip.compress(("\n".join(lines) + "\n").encode()),
        headers={"Content-Encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["successful_rows"] == valid
    (path,) = landed(events_client.settings)
    assert path.read_text().splitlines() == lines


def test_the_seeds_pretty_printed_event_is_one_row(events_client):
    """The tutorial's `curl -d '{ ... }'`: one object over 13 lines, no format parameter."""
    row = event(1, stream_start_time="2025-03-02 10:00:00")
    response = events_client.post(
        "/v0/events?name=music_streams&wait=true", content=json.dumps(row, indent=4)
    )
    assert response.status_code == 200, response.text
    assert (response.json()["successful_rows"], response.json()["quarantined_rows"]) == (1, 0)
    (path,) = landed(events_client.settings)
    assert [json.loads(line) for line in path.read_text().splitlines()] == [row]


def test_format_json_and_compression_gzip_are_query_parameters(events_client):
    rows = [event(i, stream_start_time="2025-03-02 10:00:00") for i in range(3)]
    bodies = {
        "object": json.dumps(rows[0], indent=2).encode(),
        "array": json.dumps(rows, indent=2).encode(),
        "objects": b"\n".join(json.dumps(r, indent=1).encode() for r in rows),
    }
    for kind, body in bodies.items():
        response = events_client.post(
            "/v0/events?name=music_streams&wait=true&format=json&compression=gzip",
            content=gzip.compress(body),
        )
        assert response.status_code == 200, (kind, response.text)
        assert response.json()["quarantined_rows"] == 0, kind
        assert response.json()["successful_rows"] == (1 if kind == "object" else 3), kind
    bad = events_client.post("/v0/events?name=music_streams&format=xml", content=b"{}")
    assert bad.status_code == 400 and "format" in bad.json()["error"]
    not_json = events_client.post("/v0/events?name=music_streams&format=json", content=b"{x")
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["error"]
    plain = events_client.post(
        "/v0/events?name=music_streams&compression=gzip", content=bodies["object"]
    )
    assert plain.status_code == 400 and "gzip" in plain.json()["error"]


def test_bad_bodies_and_names_are_refused_and_nothing_lands(events_client):
    post = events_client.post
    assert post("/v0/events?name=music_streams", content=b"").status_code == 400
    assert post("/v0/events?name=music_streams", content=b"\n \n").status_code == 400
    assert post("/v0/events?name=music_streams", content=b"[1, 2").status_code == 400
    assert post("/v0/events?name=music_streams", content=b"\x1f\x8bxx").status_code == 400
    assert post("/v0/events", content=b"{}").status_code == 400  # no name
    assert (
        post(
            "/v0/events?name=music_streams", content=b"{}", headers={"Content-Encoding": "br"}
        ).status_code
        == 415
    )
    admin = bearer(events_client.settings, "admin")
    unknown = post("/v0/events?name=other_source", content=b"{}", headers=admin)
    assert unknown.status_code == 404
    assert post("/v0/events?name=other_source", content=b"{}").status_code == 403
    assert landed(events_client.settings) == []


def test_a_body_over_the_limit_is_413(marts_settings, tmp_path):
    settings = dataclasses.replace(marts_settings, home=tmp_path, api_max_body_bytes=1000)
    app = build_app(settings)
    url = "/v0/events?name=music_streams&wait=true"
    headers = bearer(marts_settings, "appender")
    big = "\n".join(json.dumps(event(i)) for i in range(20)).encode()
    assert len(big) > 1000
    try:
        with TestClient(app) as client:
            assert client.post(url, content=big, headers=headers).status_code == 413
            bomb = gzip.compress(b"\n" * 100_000)
            assert len(bomb) < 1000
            gz = {**headers, "Content-Encoding": "gzip"}
            assert client.post(url, content=bomb, headers=gz).status_code == 413

            def chunks():  # no Content-Length: the limit holds while streaming
                for _ in range(10):
                    yield b" " * 200

            assert client.post(url, content=chunks(), headers=headers).status_code == 413
            small = json.dumps(event(1)).encode()
            assert client.post(url, content=small, headers=headers).status_code == 200
    finally:
        app.state.snapshots.close()
    assert len(landing_files(settings.events_landing, "events")) == 1


def test_a_batch_sent_to_the_live_server_loads_with_the_same_counts(api, marts_settings, tmp_path):
    lines, valid = mixed_batch()
    response = api.post(
        "/v0/events?name=music_streams&wait=true",
        token="appender",
        data=("\n".join(lines) + "\n").encode(),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["successful_rows"] + body["quarantined_rows"] == len(lines)
    path = marts_settings.events_landing / body["file"]
    try:
        with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
            result = load_event_file(conn, path)
            quarantined = conn.execute(
                "select line_number, error_column, error from raw.stream_events_quarantine "
                "order by line_number"
            ).fetchall()
    finally:
        path.unlink()
    assert (result.rows_loaded, result.rows_quarantined) == (valid, len(lines) - valid)
    assert [{"line": n, "column": c, "error": e} for n, c, e in quarantined] == body["errors"]
    assert all(error for _, _, error in quarantined)


# --- the snapshot follows the exports --------------------------------------------------------


def test_new_exports_are_served_once_the_snapshot_catches_up(marts_settings, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(marts_settings.exports_dir, home / "exports")
    settings = dataclasses.replace(marts_settings, home=home)
    app = build_app(settings)
    params = {"start_date": "2025-03-02", "end_date": "2025-03-02", "limit": 1000}
    headers = bearer(marts_settings, "admin")
    try:
        with TestClient(app) as client:
            before = client.get("/v0/pipes/top_tracks.json", params=params, headers=headers)
            before = {r["track_id"]: r["stream_count"] for r in before.json()["data"]}
            # The day re-exported with ten times the streams, and so its day rollups (a day's
            # query reads no monthly rollup).
            for mart in ("top_tracks_daily", "top_tracks_by_day", "top_tracks_by_country_day"):
                day = home / "exports" / mart / "stream_date=2025-03-02"
                with duckdb.connect() as conn:
                    conn.execute(
                        f"copy (select * replace (stream_count * 10 as stream_count) "
                        f"from read_parquet('{day}/data.parquet')) to '{day}/new.parquet'"
                    )
                (day / "new.parquet").replace(day / "data.parquet")
            write_bi_database(home / "exports")
            app.state.snapshots.wait_until_current()
            after = client.get("/v0/pipes/top_tracks.json", params=params, headers=headers)
            after = {r["track_id"]: r["stream_count"] for r in after.json()["data"]}
    finally:
        app.state.snapshots.close()
    assert after == {track: count * 10 for track, count in before.items()}


def test_a_repeated_pipe_call_reuses_the_snapshots_answer(live_server):
    def reused() -> int:
        return requests.get(f"{live_server.url}/healthz", timeout=10).json()["pipe_answers"][
            "reused"
        ]

    headers = {"Authorization": f"Bearer {live_server.tokens['reader']}"}
    url = f"{live_server.url}/v0/pipes/top_tracks.json?genre=rock&limit=7"
    first = requests.get(url, headers=headers, timeout=10).json()
    before = reused()
    second = requests.get(url, headers=headers, timeout=10).json()
    assert reused() == before + 1
    assert second["data"] == first["data"] and second["rows"] == 7


def test_the_dashboard_page_may_run_only_its_own_files(live_server):
    response = requests.get(f"{live_server.url}/", timeout=10)
    assert response.status_code == 200 and "<html" in response.text.lower()
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "object-src 'none'" in policy
    assert response.headers["Cache-Control"] == "no-cache"
