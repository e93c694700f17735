"""Tinybird's Query API on the live server: FORMAT clauses, POST, `pipeline=` and a pipe's `q=`."""

import csv
import io
from datetime import date, timedelta

import pytest

from music_analytics.server.formats import tinybird_type
from music_analytics.server.sql_clauses import FormatError, split_format

Q = "select genre, count(*) as n from top_tracks_daily group by 1 order by 1"


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("select 1 FORMAT JSON", ("select 1", "json")),
        ("select 1\nformat CSVWithNames;", ("select 1", "csv")),
        ("select 1 FORMAT TabSeparated", ("select 1", "tsv_plain")),
        ("select 1 FORMAT JSONEachRow -- rows", ("select 1", "ndjson")),
        ("select 'x FORMAT JSON'", ("select 'x FORMAT JSON'", None)),
        ("select 1 -- FORMAT CSV", ("select 1 -- FORMAT CSV", None)),
        ("select 1 as format", ("select 1 as format", None)),
    ],
)
def test_the_format_clause_is_found_by_duckdbs_tokenizer(sql, expected):
    assert split_format(sql) == expected


def test_an_unknown_format_is_named():
    with pytest.raises(FormatError, match="FORMAT XML is not supported"):
        split_format("select 1 FORMAT XML")


@pytest.mark.parametrize(
    ("duckdb_type", "name"),
    [
        ("VARCHAR", "String"),
        ("BIGINT", "Int64"),
        ("UBIGINT", "UInt64"),
        ("DOUBLE", "Float64"),
        ("DATE", "Date"),
        ("TIMESTAMP", "DateTime64(6)"),
        ("TIMESTAMP_S", "DateTime"),
        ("DECIMAL(18,3)", "Decimal(18, 3)"),
        ("VARCHAR[]", "Array(String)"),
        ("BOOLEAN", "Bool"),
    ],
)
def test_meta_types_have_tinybirds_names(duckdb_type, name):
    assert tinybird_type(duckdb_type) == name


def test_each_format_clause_gives_its_body(api):
    data = api.get("/v0/sql", q=f"{Q} FORMAT JSON").json()
    assert data["meta"] == [{"name": "genre", "type": "String"}, {"name": "n", "type": "Int64"}]
    expected = [[r["genre"], str(r["n"])] for r in data["data"]]
    assert len(expected) > 1
    bodies = {
        clause: api.get("/v0/sql", q=f"{Q} FORMAT {clause}")
        for clause in ("CSV", "CSVWithNames", "TSV", "TSVWithNames", "JSONEachRow")
    }
    assert all(r.status_code == 200 for r in bodies.values()), {
        k: r.text for k, r in bodies.items()
    }
    assert list(csv.reader(io.StringIO(bodies["CSV"].text))) == expected
    assert list(csv.reader(io.StringIO(bodies["CSVWithNames"].text))) == [["genre", "n"], *expected]
    assert [line.split("\t") for line in bodies["TSV"].text.splitlines()] == expected
    tsv = [line.split("\t") for line in bodies["TSVWithNames"].text.splitlines()]
    assert tsv == [["genre", "n"], *expected]
    assert bodies["TSV"].headers["content-type"].startswith("text/tab-separated-values")
    assert len(bodies["JSONEachRow"].text.splitlines()) == len(expected)
    # the clause wins over format=, and an unknown one is a 400 naming it
    assert api.get("/v0/sql", q=f"{Q} FORMAT CSV", format="json").text.startswith(expected[0][0])
    bad = api.get("/v0/sql", q=f"{Q} FORMAT Parquet")
    assert bad.status_code == 400 and "FORMAT Parquet" in bad.json()["error"]


def test_sql_by_post_as_a_form_or_as_the_body(api):
    expected = api.sql(Q)
    form = api.post("/v0/sql", data={"q": Q})
    assert form.status_code == 200, form.text
    assert form.json()["data"] == expected
    raw = api.post("/v0/sql", data=f"{Q} FORMAT JSON", headers={"Content-Type": "text/plain"})
    assert raw.status_code == 200 and raw.json()["data"] == expected
    csv_body = api.post("/v0/sql", data={"q": f"{Q} FORMAT CSVWithNames"})
    assert csv_body.text.splitlines()[0] == "genre,n"
    huge = api.post("/v0/sql", data={"q": "select 1 -- " + "x" * 70_000})
    assert huge.status_code == 413
    assert api.post("/v0/sql", token="appender", data={"q": "select 1"}).status_code == 403


def test_pipeline_makes_the_pipe_readable_as_underscore(api):
    pipe_rows = api.data("top_tracks", limit=5)
    body = api.get(
        "/v0/sql",
        q="select count(*) as n, max(rank) as last from _",
        pipeline="top_tracks",
        limit=5,
    ).json()
    assert body["data"] == [{"n": len(pipe_rows), "last": len(pipe_rows)}]
    # `_` keeps the pipe's column types, and may be joined with the marts
    meta = api.get("/v0/sql", q="select * from _ limit 1", pipeline="top_tracks").json()["meta"]
    assert {"name": "rank", "type": "Int64"} in meta
    joined = api.sql_with(
        "select count(*) as n from _ join (select distinct track_id from top_tracks_daily) "
        "using (track_id)",
        pipeline="top_tracks",
        limit=5,
    )
    assert joined == [{"n": len(pipe_rows)}]
    missing = api.get("/v0/sql", q="select 1 from _", pipeline="no_such_pipe")
    assert missing.status_code == 404 and "no_such_pipe" in missing.json()["error"]


def test_q_on_a_pipe_runs_over_its_result_only(api):
    rows = api.data("top_tracks", limit=5)
    over = api.get("/v0/pipes/top_tracks.json", q="select count(*) as n from _", limit=5)
    assert over.status_code == 200, over.text
    assert over.json()["data"] == [{"n": len(rows)}]
    top = api.get("/v0/pipes/top_tracks.csv", q="select track_id from _ order by rank limit 1")
    assert top.text.splitlines() == ["track_id", rows[0]["track_id"]]
    # a token for this one pipe reads `_` and nothing else: the marts are not there
    only = api.get("/v0/pipes/top_tracks.json", token="top_tracks_only", q="select count(*) from _")
    assert only.status_code == 200, only.text
    other = api.get(
        "/v0/pipes/top_tracks.json",
        token="top_tracks_only",
        q="select count(*) from top_tracks_daily",
    )
    assert other.status_code == 400 and "top_tracks_daily" in other.json()["error"]
    files = api.get("/v0/pipes/top_tracks.json", q="select * from read_parquet('/etc/passwd')")
    assert files.status_code == 400


def test_with_a_genre_filter_every_row_is_labelled_with_that_genre(api):
    genres = api.get("/v0/filters").json()["genres"]
    labels = {g: {r["genre"] for r in api.data("top_tracks", genre=g, limit=1000)} for g in genres}
    assert {g: seen for g, seen in labels.items() if seen - {g}} == {}
    # without a filter the label is the first of the track's genres, and the counts are over
    # all of them: a track in two genres counts the streams of both
    overall = {r["track_id"]: r for r in api.data("top_tracks", limit=1000)}
    by_genre: dict[str, int] = {}
    for genre in genres:
        for row in api.data("top_tracks", genre=genre, limit=1000):
            by_genre[row["track_id"]] = by_genre.get(row["track_id"], 0) + row["stream_count"]
    assert {t: r["stream_count"] for t, r in overall.items()} == {t: by_genre[t] for t in overall}


def test_top_tracks_has_the_seeds_duration_columns(api):
    rows = api.data("top_tracks", limit=20)
    assert rows and all(r["total_duration"] == r["total_duration_seconds"] for r in rows)
    assert all(r["avg_duration"] == round(r["total_duration"] / r["stream_count"], 4) for r in rows)


@pytest.mark.parametrize(
    "dates",
    [
        {"end_date": "9999-12-31"},
        {"end_date": "0001-01-01"},
        {"start_date": "0001-01-01"},
        {"start_date": "0001-01-01", "end_date": "9999-12-31"},
        {"start_date": "9999-12-31", "end_date": "9999-12-31"},
    ],
)
def test_extreme_dates_answer_without_a_server_error(api, dates):
    from music_analytics.server.pipes import PIPES

    for pipe in PIPES:
        response = api.get(f"/v0/pipes/{pipe}.json", **dates)
        assert response.status_code == 200, (pipe, dates, response.text)


def _fct_top(api, start: str, end: str, genre: str | None = None) -> list[tuple[str, int]]:
    where = f"stream_start_time between '{start}' and '{end}'"
    if genre:
        where += f" and genre = '{genre}'"
    rows = api.sql(
        f"select track_id, count(*) as n from fct_streams where {where} "
        "group by track_id order by n desc, track_id limit 1000"
    )
    return [(r["track_id"], r["n"]) for r in rows]


@pytest.mark.parametrize(
    ("start_time", "end_time", "days"),
    [
        ("14:30:00", "09:15:00", 3),  # two partial days around whole ones
        ("06:00:00", "18:00:00", 0),  # one partial day
        ("00:00:00", "12:00:00", 1),  # whole first day, partial last
    ],
)
def test_datetime_windows_count_exactly_the_streams_inside(api, start_time, end_time, days):
    [first_day] = api.sql("select min(stream_date) as d from fct_streams")
    first = date.fromisoformat(first_day["d"]) + timedelta(days=1)
    start = f"{first} {start_time}"
    end = f"{first + timedelta(days=days)} {end_time}"
    for genre in (None, "pop"):
        params = {"start_date": start, "end_date": end, "limit": 1000}
        if genre:
            params["genre"] = genre
        rows = api.data("top_tracks", **params)
        assert [(r["track_id"], r["stream_count"]) for r in rows] == _fct_top(
            api, start, end, genre
        )
        assert rows, "the window should hold streams"


def test_the_seeds_datetime_defaults_equal_whole_days(api):
    [last] = api.sql("select max(stream_date) as d from top_tracks_daily")
    day = date.fromisoformat(last["d"])
    as_days = api.data("top_tracks", start_date=str(day - timedelta(days=6)), end_date=str(day))
    as_times = api.data(
        "top_tracks",
        start_date=f"{day - timedelta(days=6)} 00:00:00",
        end_date=f"{day} 23:59:59",
    )
    assert as_times == as_days
    backwards = api.get(
        "/v0/pipes/top_tracks.json", start_date=f"{day} 12:00:00", end_date=f"{day} 11:00:00"
    )
    assert backwards.status_code == 400 and "start_date" in backwards.json()["error"]
