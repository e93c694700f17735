"""Events over HTTP before the server: body decoding, splitting, judging and landing."""

from __future__ import annotations

import gzip
import json
import os

import duckdb
import pytest

from music_analytics.lib.core.landing import landing_files
from music_analytics.lib.events.files import load_event_file
from music_analytics.server.event_intake import (
    IntakeError,
    body_lines,
    decode_body,
    judge,
    land_batch,
)
from music_analytics_tests.conftest import event

LIMIT = 10_000


def gzip_lines(lines: list[str]) -> bytes:
    return gzip.compress(("\n".join(lines) + "\n").encode())


def status_of(call, *args) -> int:
    with pytest.raises(IntakeError) as caught:
        call(*args)
    return caught.value.status


def test_a_plain_body_is_returned_as_it_is():
    assert decode_body(b'{"a": 1}\n', None, LIMIT) == b'{"a": 1}\n'
    assert decode_body(b'{"a": 1}\n', "identity", LIMIT) == b'{"a": 1}\n'


def test_a_gzip_body_is_gunzipped_with_or_without_the_header():
    packed = gzip_lines(['{"a": 1}', '{"a": 2}'])
    assert decode_body(packed, "gzip", LIMIT) == b'{"a": 1}\n{"a": 2}\n'
    assert decode_body(packed, " GZIP ", LIMIT) == b'{"a": 1}\n{"a": 2}\n'
    assert decode_body(packed, None, LIMIT) == b'{"a": 1}\n{"a": 2}\n'


def test_a_raw_body_over_the_limit_is_413():
    assert status_of(decode_body, b"x" * (LIMIT + 1), None, LIMIT) == 413


def test_a_gzip_bomb_is_413_without_inflating_it_all():
    bomb = gzip.compress(b"\n" * 50_000_000)  # 50 MB of newlines in ~50 kB
    assert len(bomb) < LIMIT * 10
    assert status_of(decode_body, bomb, "gzip", len(bomb) + 1) == 413


def test_a_gzip_body_just_under_the_limit_passes():
    body = b"y" * LIMIT
    assert decode_body(gzip.compress(body), "gzip", LIMIT) == body
    assert status_of(decode_body, gzip.compress(body + b"y"), "gzip", LIMIT) == 413


def test_a_truncated_or_corrupt_gzip_body_is_400():
    packed = gzip_lines([json.dumps(event(i)) for i in range(50)])
    assert status_of(decode_body, packed[: len(packed) // 2], "gzip", LIMIT) == 400
    assert status_of(decode_body, b"not gzip at all", "gzip", LIMIT) == 400


@pytest.mark.parametrize("encoding", ["br", "deflate", "zstd", "gzip, br"])
def test_an_unsupported_encoding_is_415(encoding):
    assert status_of(decode_body, b"{}", encoding, LIMIT) == 415


def test_ndjson_lines_skip_blank_lines_and_strip_carriage_returns():
    body = b'{"a": 1}\r\n\n   \n{"a": 2}\n\t\n{"a": 3}'
    assert body_lines(body) == ['{"a": 1}', '{"a": 2}', '{"a": 3}']


def test_a_json_array_becomes_one_line_per_element():
    body = json.dumps([{"a": 1}, {"b": "x\ny"}, 3, "s"]).encode()
    lines = body_lines(b"  \n" + body)
    assert [json.loads(line) for line in lines] == [{"a": 1}, {"b": "x\ny"}, 3, "s"]
    assert all("\n" not in line for line in lines)


@pytest.mark.parametrize("body", [b"[1, 2", b'[{"a": 1}] [2]', b"[{'a': 1}]"])
def test_an_invalid_array_is_400(body):
    assert status_of(body_lines, body) == 400


def test_a_body_that_is_not_utf8_is_400():
    assert status_of(body_lines, b'{"a": "\xff"}\n') == 400


def test_a_line_separator_inside_a_json_string_is_not_a_line_break():
    line = json.dumps(event(1, genre="po\u2028p\u2029\x85"), ensure_ascii=False)
    assert "\u2028" in line
    assert body_lines((line + "\n").encode()) == [line]
    array = json.dumps([event(1, genre="a\u2028b")], ensure_ascii=False).encode()
    assert len(body_lines(array)) == 1


def mixed_lines() -> list[str]:
    good = [
        json.dumps(event(i, stream_start_time=f"2025-03-0{1 + i % 4} 10:{i:02d}:00"))
        for i in range(8)
    ]
    missing = event(20)
    del missing["track_id"]
    return [
        *good,
        '{"broken',
        "[1, 2]",
        "42",
        json.dumps(missing),
        json.dumps(event(21, stream_duration_seconds="148")),
        json.dumps(event(22, completed=7)),
        json.dumps(event(23, stream_start_time="yesterday")),
        json.dumps(event(24, genre="")),
        json.dumps(event(25, stream_duration_seconds=-1)),
        json.dumps(event(26, user_id=None)),
        json.dumps(event(27, genre="line\u2028sep"), ensure_ascii=False),
    ]


def test_judge_counts_every_line_and_explains_the_first_errors():
    lines = mixed_lines()
    judged = judge(lines)
    assert judged.successful_rows + judged.quarantined_rows == len(lines)
    assert (judged.successful_rows, judged.quarantined_rows) == (9, 10)
    assert len(judged.errors) == 10
    assert [e["line"] for e in judged.errors] == list(range(9, 19))
    by_line = {e["line"]: e for e in judged.errors}
    assert by_line[12]["column"] == "track_id"
    assert "missing required field track_id" in by_line[12]["error"]
    assert by_line[13]["column"] == "stream_duration_seconds"
    assert by_line[14]["column"] == "completed"


def test_judge_shows_at_most_ten_errors():
    judged = judge(["nope"] * 25)
    assert judged.quarantined_rows == 25 and len(judged.errors) == 10


def test_judge_counts_equal_what_the_file_loader_loads(tmp_path):
    lines = mixed_lines()
    judged = judge(lines)
    path = land_batch(tmp_path / "landing", lines)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        loaded = load_event_file(conn, path)
        reasons = conn.execute(
            "select line_number, error_column, error from raw.stream_events_quarantine "
            "order by line_number"
        ).fetchall()
    assert (loaded.rows_loaded, loaded.rows_quarantined) == (
        judged.successful_rows,
        judged.quarantined_rows,
    )
    assert [{"line": n, "column": c, "error": e} for n, c, e in reasons] == judged.errors


def test_a_landed_batch_is_one_whole_ndjson_file(tmp_path):
    folder = tmp_path / "landing" / "events"
    lines = [json.dumps(event(1)), json.dumps(event(2), ensure_ascii=False)]
    path = land_batch(folder, lines)
    assert path.parent == folder
    assert path.name.startswith("api-") and path.name.endswith(".ndjson")
    assert path.read_text(encoding="utf-8") == "\n".join(lines) + "\n"
    assert [p.name for p in folder.iterdir()] == [path.name]  # no .part left behind
    assert landing_files(folder, "events") == [path]


def test_two_batches_get_two_names(tmp_path):
    first = land_batch(tmp_path, ["{}"], durable=False)
    second = land_batch(tmp_path, ["{}"], durable=False)
    assert first != second
    assert {p.name for p in landing_files(tmp_path, "events")} == {first.name, second.name}


def test_a_batch_still_being_written_is_not_listed(tmp_path, monkeypatch):
    seen = {}
    real_replace = os.replace

    def look_then_replace(src, dst):
        seen["listed"] = landing_files(tmp_path, "events")
        seen["present"] = sorted(p.name for p in tmp_path.iterdir())
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", look_then_replace)
    path = land_batch(tmp_path, [json.dumps(event(1))])
    assert seen["listed"] == []
    assert seen["present"] == [f".{path.name}.part"]
    assert landing_files(tmp_path, "events") == [path]
