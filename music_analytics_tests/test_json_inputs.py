"""Every JSON input against the generated hostile corpus (music_analytics_tests/json_corpus.py):
each bad record is rejected or quarantined with a reason naming it, the good inputs beside it
load, the warehouse is otherwise unchanged, and the readers finish under an address-space
limit whatever the nesting or the size."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from music_analytics.defs.resources import build_resources
from music_analytics.defs.spotify.assets import spotify_history_files
from music_analytics.lib.core.settings import DEFAULTS
from music_analytics.lib.core.zip_safety import DEFAULT_LIMITS
from music_analytics.lib.dsp.landing import sort_landed_reports
from music_analytics.lib.dsp.report_load import load_report_zip
from music_analytics.lib.dsp.report_zip import DspReportFileError
from music_analytics.lib.dsp.sample import write_report_zip
from music_analytics.lib.dsp.sample_report import build_report
from music_analytics.server.event_intake import IntakeError, body_lines, judge
from music_analytics_tests.conftest import query
from music_analytics_tests.json_corpus import SHARED, Case, splice, time_case
from music_analytics_tests.lib.spotify.test_history import EXTENDED_ROW

DAY = date(2026, 3, 28)
MEMBER = "analytics-report-2026-03-28.json"

# --- DSP report ZIPs ----------------------------------------------------------------------------

DSP_CASES = SHARED + (
    Case(
        "deep_meta",
        lambda r, k: json.dumps(r),
        "rejected",
        "nests deeper than 64 levels (the limit is MUSIC_ANALYTICS_JSON_MAX_DEPTH)",
    ),
    time_case("date_utc", "data_date", f"{DAY}T00:00:00Z", "loaded"),
    time_case("date_fraction", "data_date", f"{DAY}T23:59:59.999999Z", "loaded"),
    time_case("date_offset", "data_date", f"{DAY}T10:00:00+02:00", "loaded"),
    time_case("date_1969", "data_date", "1969-12-31", "quarantined", "not on the report date"),
    time_case("date_2150", "data_date", "2150-01-01", "quarantined", "not on the report date"),
)


def dsp_report(records: list[str], *, deep_meta: bool = False) -> bytes:
    meta = json.dumps({"dsp_id": 1, "date": str(DAY), "total_records": len(records)})
    if deep_meta:
        meta = meta[:-1] + ', "x": ' + "[" * 40_000 + "]" * 40_000 + "}"
    return b'{"meta": ' + meta.encode() + b', "data": ' + splice(records) + b"}"


def tables(conn) -> dict[str, list[tuple]]:
    names = [r[0] for r in conn.execute(
        "select table_name from information_schema.tables where table_schema = 'raw' "
        "and table_name like 'dsp_report%' order by 1"
    ).fetchall()]  # fmt: skip
    # Reloading the good file replaces its partition: the same rows under a new load_id.
    return {
        t: conn.execute(
            f"select * exclude (load_id, loaded_at) from raw.{t} order by all"
        ).fetchall()
        if t != "dsp_report_loads"
        else conn.execute(f"select distinct dsp, report_date from raw.{t} order by all").fetchall()
        for t in names
    }


@pytest.mark.parametrize("case", DSP_CASES, ids=lambda c: c.name)
def test_dsp_report_case(tmp_path: Path, case: Case) -> None:
    landing = tmp_path / "landing"
    good_report = build_report("youtube", DAY, records=5, seed=1)
    good = write_report_zip(landing / "good.zip", good_report)
    fine = [json.dumps(r) for r in build_report("spotify", DAY, records=3, seed=2)["data"]]
    bad_record = case.record(json.loads(fine[0]), "track_id")
    body = dsp_report([fine[1], bad_record, fine[2]], deep_meta=case.name == "deep_meta")
    bad = landing / "bad.zip"
    with zipfile.ZipFile(bad, "w", zipfile.ZIP_STORED) as archive:  # ratio 1: under the cap
        archive.writestr(MEMBER, body)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        load_report_zip(conn, good, source="landing")
        before = tables(conn)
        reports, rejected = sort_landed_reports(
            [bad, good], DEFAULT_LIMITS, date(2008, 1, 1), date(2100, 1, 1)
        )
        for report in reports:  # as the landing sensor's runs do: one file at a time
            try:
                load_report_zip(conn, report.path, source="landing")
            except DspReportFileError as exc:
                rejected.append(str(exc))
        after = tables(conn)
        youtube = conn.execute(
            "select count(*) from raw.dsp_report_records where dsp = 'youtube'"
        ).fetchone()[0]
    assert youtube == 5  # the good file of the batch loaded (again: its partition replaced)
    if case.outcome == "rejected":
        [reason] = rejected
        assert reason.startswith("DSP report bad.zip: ") and case.fragment in reason, reason
        if "limit is" in case.fragment:
            place = "meta (at byte " if case.name == "deep_meta" else f"in {MEMBER}, record 2 "
            assert place in reason, reason
        assert after == before  # the bad file changed nothing
        return
    assert not rejected
    spotify = [row for row in after["dsp_report_records"] if row[0] == "spotify"]
    quarantine = after["dsp_report_quarantine"]
    if case.outcome == "quarantined":
        assert len(spotify) == 2 and len(quarantine) == 1
        assert quarantine[0][2] == 1 and case.fragment in quarantine[0][-1]  # record_index, error
    else:
        assert len(spotify) == 3 and not quarantine
    assert [r for r in after["dsp_report_records"] if r[0] == "youtube"] == [
        r for r in before["dsp_report_records"] if r[0] == "youtube"
    ]


# --- Spotify export files and ZIPs ------------------------------------------------------------

SPOTIFY_CASES = SHARED + (
    time_case("ts_z", "ts", "2024-03-01T12:34:56Z", "loaded"),
    time_case("ts_fraction", "ts", "2024-03-01T12:34:56.789Z", "loaded"),
    time_case("ts_offset", "ts", "2024-03-01T14:34:56+02:00", "loaded"),
    time_case("ts_1969", "ts", "1969-12-31T23:59:59Z", "quarantined", "before Spotify existed"),
    time_case("ts_2150", "ts", "2150-01-01T00:00:00Z", "quarantined", "in the future"),
)


def spotify_rows(i: int) -> list[dict]:
    """Three distinct good plays for file `i` (distinct times: distinct play keys)."""
    return [
        {**EXTENDED_ROW, "ts": f"2024-03-{1 + n:02d}T{i % 24:02d}:{i // 24:02d}:00Z"}
        for n in range(3)
    ]


def spotify_file(case: Case, i: int) -> bytes:
    rows = spotify_rows(i)
    return splice([json.dumps(rows[0]), case.record(rows[1], "ms_played"), json.dumps(rows[2])])


def test_spotify_export_cases_in_one_batch(settings) -> None:
    """One run over every case as a loose .json and inside a ZIP, beside a good file."""
    landing = settings.spotify_history_landing
    good = landing / "Streaming_History_Audio_2023_0.json"
    good.write_text(json.dumps(spotify_rows(99)))
    expected = {}
    for i, case in enumerate(SPOTIFY_CASES):
        loose = landing / f"Streaming_History_Audio_2024_{i}.json"
        loose.write_bytes(spotify_file(case, i))
        packed = landing / f"case_{i}.zip"
        with zipfile.ZipFile(packed, "w", zipfile.ZIP_STORED) as archive:  # other plays
            archive.writestr(
                f"Spotify Extended Streaming History/{loose.name}", spotify_file(case, i + 50)
            )
        expected[loose.name] = expected[packed.name] = case
    result = dg.materialize(
        [spotify_history_files], resources=build_resources(settings), raise_on_error=False
    )
    assert result.success
    [history, _] = result.asset_materializations_for_node(spotify_history_files.op.name)
    rejected = {Path(k).name: v for k, v in history.metadata["rejected"].value.items()}
    # Plays per file, stored or already stored from another file (the time cases write one
    # instant in several ways, and a play counts once).
    stored = {
        Path(source).name: plays
        for source, plays in query(
            settings,
            "select source_file, sum(plays_loaded + plays_already_loaded) "
            "from raw.spotify_history_files group by 1",
        )
    }
    quarantined = {
        Path(source).name: error
        for source, error in query(
            settings, "select source_file, error from raw.spotify_history_quarantine"
        )
    }
    assert stored[good.name] == 3  # the good file of the batch
    for name, case in expected.items():
        if case.outcome == "rejected":
            assert case.fragment in rejected.get(name, ""), (case.name, name, rejected.get(name))
            assert name in rejected[name] and name not in stored
            assert (landing / "rejected" / f"{name}.error.txt").exists()
            continue
        assert name not in rejected, (case.name, rejected[name])
        if case.outcome == "quarantined":
            assert stored[name] == 2 and case.fragment in quarantined[name], case.name
        else:
            assert stored[name] == 3 and name not in quarantined, case.name


def test_spotify_offsets_are_converted_to_utc(tmp_path: Path) -> None:
    from music_analytics.lib.spotify.history import read_history_file

    path = tmp_path / "Streaming_History_Audio_2024_0.json"
    path.write_text(json.dumps([{**EXTENDED_ROW, "ts": "2024-03-01T14:34:56.5+02:00"}]))
    [parsed] = read_history_file(path)
    assert parsed.plays[0].ended_at == datetime(2024, 3, 1, 12, 34, 56, 500000, tzinfo=UTC)


# --- event bodies (POST /v0/events) -----------------------------------------------------------

EVENT = {
    "stream_id": "s1", "user_id": "u1", "track_id": "t1", "artist_id": "a1", "album_id": "b1",
    "genre": "pop", "stream_start_time": "2025-03-01 10:00:00", "stream_duration_seconds": 180,
    "completed": 1, "device_type": "mobile", "country": "US",
}  # fmt: skip
EVENT_CASES = SHARED + (
    time_case("time_z", "stream_start_time", "2025-03-01T10:00:00Z", "loaded"),
    time_case("time_fraction", "stream_start_time", "2025-03-01T10:00:00.25Z", "loaded"),
    time_case("time_offset", "stream_start_time", "2025-03-01T12:00:00+02:00", "loaded"),
)


@pytest.mark.parametrize("case", EVENT_CASES, ids=lambda c: c.name)
def test_event_body_case(case: Case) -> None:
    good = [json.dumps({**EVENT, "stream_id": f"s{i}"}) for i in range(3)]
    body = splice([good[0], case.record(EVENT, "stream_duration_seconds"), good[2]])
    if case.outcome == "rejected":
        with pytest.raises(IntakeError) as caught:
            body_lines(body)
        assert caught.value.status == 400 and case.fragment in str(caught.value)
        if "limit is" in case.fragment:
            assert str(caught.value).startswith("the body's JSON array: record 2 ")
        assert judge(body_lines(splice(good))).successful_rows == 3  # the next body is fine
        return
    judged = judge(body_lines(body))
    if case.outcome == "quarantined":
        assert (judged.successful_rows, judged.quarantined_rows) == (2, 1)
        assert judged.errors[0]["line"] == 2 and judged.errors[0]["error"]
    else:
        assert (judged.successful_rows, judged.quarantined_rows) == (3, 0)


# --- memory: the readers under an address-space limit -----------------------------------------

LIMIT_MB = 400
READERS = """
import json, resource, sys
from pathlib import Path
limit = int(sys.argv[1]) * 1024 * 1024
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from music_analytics.lib.dsp.report_zip import DspReportFileError, validate_report_zip
from music_analytics.lib.spotify.history import read_history_file
from music_analytics.lib.spotify.history_shapes import SpotifyHistoryError
from music_analytics.server.event_intake import IntakeError, body_lines
from music_analytics.lib.core.zip_safety import ZipLimits
out = {}
for path in sys.argv[2:]:
    p = Path(path)
    try:
        if p.suffix == ".zip" and p.name.startswith("dsp"):
            validate_report_zip(p, limits=ZipLimits(max_ratio=1e9))
        elif p.suffix == ".body":
            body_lines(p.read_bytes())
        else:
            read_history_file(p)
        out[p.name] = "read"
    except (DspReportFileError, SpotifyHistoryError, IntakeError) as exc:
        out[p.name] = str(exc)
print(json.dumps(out))
"""


def test_readers_finish_under_an_address_space_limit(tmp_path: Path) -> None:
    """The issue's files (an 80 KB and a 200 KB stored ZIP of `[`, a Spotify file 200,000
    deep) and 30 MB of one string, each read in a child limited to LIMIT_MB of address space."""
    deep_meta = b'{"meta": ' + b"[" * 100_000 + b"]" * 100_000 + b', "data": []}'
    files = []
    for name, member in (
        ("dsp_deep_80k.zip", deep_meta[:40_000] + deep_meta[-40_000:]),
        ("dsp_deep_200k.zip", deep_meta),
        ("dsp_long_string.zip", b'{"meta": {"x": "' + b"y" * 30_000_000 + b'"}, "data": []}'),
    ):
        path = tmp_path / name
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr(MEMBER, member)
        files.append(path)
    deep = tmp_path / "Streaming_History_Audio_2024_0.json"
    deep.write_bytes(b"[" * 200_000 + b"]" * 200_000)
    long = tmp_path / "Streaming_History_Audio_2024_1.json"
    long.write_bytes(b'[{"ts": "' + b"9" * 30_000_000 + b'"}]')
    body = tmp_path / "events.body"
    body.write_bytes(b"[" * 5_000_000 + b"]" * 5_000_000)
    files += [deep, long, body]
    done = subprocess.run(
        [sys.executable, "-c", READERS, str(LIMIT_MB), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    reasons = json.loads(done.stdout)
    for path in files:
        assert "the limit is MUSIC_ANALYTICS_JSON_MAX_" in reasons[path.name], reasons[path.name]
    assert "longer than 65536 bytes" in reasons["dsp_long_string.zip"]
    assert reasons["events.body"].startswith("the body's JSON array: record 1 nests deeper")
    assert DEFAULTS["MUSIC_ANALYTICS_JSON_MAX_DEPTH"] == "64"


IMPORTER = """
import json, resource, sys
from pathlib import Path
import duckdb
import music_analytics.lib.spotify.history_load as history_load
from music_analytics.lib.core.warehouse import ensure_raw_tables
from music_analytics.lib.spotify.history import read_history_file
history_load.STAGING_MEMORY_LIMIT = "64MB"
path, database = Path(sys.argv[1]), sys.argv[2]
conn = duckdb.connect(database)
ensure_raw_tables(conn)
staging = history_load.HistoryStaging(conn)
[history] = read_history_file(path, sink=staging.add)
result = history_load.import_history_file(conn, history, staging=staging)
staging.close()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print(json.dumps({"plays": result.plays_loaded, "held": len(history.plays), "peak_mb": peak}))
"""


def _export(path: Path, megabytes: int) -> int:
    """A Streaming_History_Audio file of about `megabytes` of distinct music plays."""
    row = {"platform": "android", "ms_played": 201000, "conn_country": "DE",
           "master_metadata_track_name": "Golden Waves",
           "master_metadata_album_artist_name": "Chloe Marchand",
           "master_metadata_album_album_name": "Blue Skyline",
           "spotify_track_uri": "spotify:track:4uLU6hMCjMI75M1A2tKUQC",
           "reason_start": "clickrow", "reason_end": "trackdone", "shuffle": True}  # fmt: skip
    rows, written = 0, 0
    with path.open("w") as out:
        out.write("[")
        while written < megabytes << 20:
            day, second = divmod(rows, 86_400)
            row["ts"] = (
                f"2015-{1 + day // 28 % 12:02d}-{1 + day % 28:02d}T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"  # noqa: E501
            )
            line = ("," if rows else "") + json.dumps(row)
            written += out.write(line)
            rows += 1
        out.write("]")
    return rows


def test_a_spotify_export_imports_in_memory_that_does_not_grow_with_it(tmp_path: Path) -> None:
    """The import stages a file's rows in DuckDB as they are parsed (history_load.py): with
    DuckDB's cap at 64 MB, an export three times larger peaks within a few MB of the other
    (holding the parsed plays, as before, cost about 5 MB of memory per MB of export)."""
    peaks = {}
    for megabytes in (20, 60):
        path = tmp_path / f"{megabytes}" / "Streaming_History_Audio_2015_0.json"
        path.parent.mkdir()
        rows = _export(path, megabytes)
        done = subprocess.run(
            [sys.executable, "-c", IMPORTER, str(path), str(path.parent / "w.duckdb")],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        out = json.loads(done.stdout.splitlines()[-1])
        assert out["plays"] == rows and out["held"] == 0
        peaks[megabytes] = out["peak_mb"]
    assert peaks[60] - peaks[20] < 30, peaks
