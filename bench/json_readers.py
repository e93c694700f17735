"""`make bench` section **json**: peak RSS of the bounded JSON readers (issue 12), figures
not asserts.

Each reader runs in a fresh child that prints its seconds and its own peak RSS (VmHWM): the
DSP meta reader (`read_report_meta`) and the Spotify reader (`read_history_file`) on a file
nested 10,000 deep (refused at the depth cap), and on a 100 MB export: a DSP report of about
100 MB of JSON with `data` before `meta` (the meta reader skips all of data), and a 100 MB
Spotify extended-history file: read alone (the reader then keeps the file's typed plays, so
its memory grows with the plays), and imported as the asset imports it (`spotify_import`:
rows staged in DuckDB as they are parsed, DuckDB capped at history_load.STAGING_MEMORY_LIMIT,
into a fresh warehouse); the JSON reader alone, iterating the same file's rows, is measured
beside it, and plain unbounded ijson for what the checks cost. BENCH_JSON_MB (default 100)
sizes the large files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from datetime import date
from pathlib import Path

from bench.processes import progress

EXPORT_MB = int(os.environ.get("BENCH_JSON_MB", "100"))
DEPTH = 10_000
MEMBER = "analytics-report-2026-03-28.json"

CHILD = """
import sys, time
from pathlib import Path
reader, path = sys.argv[1], Path(sys.argv[2])
t = time.perf_counter()
outcome = "read"
try:
    if reader == "dsp_meta":
        from music_analytics.lib.core.zip_safety import ZipLimits
        from music_analytics.lib.dsp.report_zip import read_report_meta
        read_report_meta(path, limits=ZipLimits(max_ratio=1e9))
    elif reader == "spotify":
        from music_analytics.lib.spotify.history import read_history_file
        read_history_file(path)
    elif reader == "spotify_import":  # as the asset imports: rows staged in DuckDB as parsed
        import duckdb
        from music_analytics.lib.core.warehouse import ensure_raw_tables
        from music_analytics.lib.spotify.history import read_history_file
        from music_analytics.lib.spotify.history_load import HistoryStaging, import_history_file
        conn = duckdb.connect(str(path.with_suffix(".duckdb")))
        conn.execute("set enable_progress_bar = false")  # it writes to stdout
        ensure_raw_tables(conn)
        staging = HistoryStaging(conn)
        for history in read_history_file(path, sink=staging.add):
            import_history_file(conn, history, staging=staging)
        staging.close()
        conn.close()
        path.with_suffix(".duckdb").unlink()
    elif reader == "rows":
        from music_analytics.lib.core.json_reader import BoundedJsonStream, iter_array_items
        with path.open("rb") as raw:
            sum(1 for _ in iter_array_items(BoundedJsonStream(raw)))
    else:  # plain ijson, unbounded: what the bounded reader's checks cost beside it
        import ijson
        with path.open("rb") as raw:
            sum(1 for _ in ijson.items(raw, "item", use_float=True, buf_size=256 * 1024))
except ValueError as exc:  # DspReportFileError, SpotifyHistoryError: refused with a reason
    outcome = "refused"
seconds = time.perf_counter() - t
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
print(seconds, 1 if outcome == "read" else 0, peak)
"""


def _measure(reader: str, path: Path) -> tuple[float, bool, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, reader, str(path)], capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"json reader bench ({reader} {path.name}) failed:\n{done.stderr}")
    seconds, read, peak = (float(x) for x in done.stdout.splitlines()[-1].split())
    return seconds, bool(read), peak


def _stored_zip(path: Path, member: bytes) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(MEMBER, member)
    return path


def _dsp_report(path: Path, megabytes: int) -> Path:
    """A Spotify report of about `megabytes` of JSON, data before meta, stored (ratio 1)."""
    from music_analytics.lib.dsp.sample_report import build_report

    chunk = build_report("spotify", date(2026, 3, 28), records=1000, seed=1)
    records = json.dumps(chunk["data"])[1:-1].encode()
    copies = max(1, megabytes * 2**20 // len(records))
    meta = {**chunk["meta"], "total_records": 1000 * copies}
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive,
        archive.open(MEMBER, "w", force_zip64=True) as out,
    ):
        out.write(b'{"data": [')
        for i in range(copies):
            out.write(records if i == 0 else b", " + records)
        out.write(b'], "meta": ' + json.dumps(meta).encode() + b"}")
    return path


def _spotify_export(path: Path, megabytes: int) -> Path:
    """A Streaming_History_Audio file of about `megabytes`, one distinct play per row."""
    row = {
        "ts": "", "platform": "android", "ms_played": 201000, "conn_country": "DE",
        "ip_addr": "203.0.113.7", "master_metadata_track_name": "Golden Waves",
        "master_metadata_album_artist_name": "Chloe Marchand",
        "master_metadata_album_album_name": "Blue Skyline",
        "spotify_track_uri": "spotify:track:4uLU6hMCjMI75M1A2tKUQC", "episode_name": None,
        "episode_show_name": None, "spotify_episode_uri": None, "audiobook_title": None,
        "audiobook_uri": None, "audiobook_chapter_uri": None, "audiobook_chapter_title": None,
        "reason_start": "clickrow", "reason_end": "trackdone", "shuffle": True,
        "skipped": False, "offline": False, "offline_timestamp": 0, "incognito_mode": False,
    }  # fmt: skip
    target = megabytes * 2**20
    written = 0
    with path.open("wb") as out:
        out.write(b"[")
        i = 0
        while written < target:
            day, second = divmod(i, 86_400)
            row["ts"] = f"2015-{1 + day // 28 % 12:02d}-{1 + day % 28:02d}T" + (
                f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"
            )
            line = (b"" if i == 0 else b",\n") + json.dumps(row).encode()
            out.write(line)
            written += len(line)
            i += 1
        out.write(b"]")
    return path


def bench_json_readers(work: Path) -> dict:
    """Peak RSS and seconds of each reader on a 10,000-deep file and on a 100 MB export."""
    folder = work / "json_readers"
    folder.mkdir(parents=True, exist_ok=True)
    deep = b"[" * DEPTH + b"]" * DEPTH
    files = {
        "dsp_meta_deep": ("dsp_meta", _stored_zip(folder / "deep.zip", b'{"meta": ' + deep + b"}")),
        "spotify_deep": ("spotify", folder / "Streaming_History_Audio_2015_0.json"),
    }
    files["spotify_deep"][1].write_bytes(deep)
    progress("json", f"writing a {EXPORT_MB} MB DSP report and a {EXPORT_MB} MB Spotify export")
    big = f"{EXPORT_MB}mb"
    files[f"dsp_meta_{big}"] = ("dsp_meta", _dsp_report(folder / "big.zip", EXPORT_MB))
    export = _spotify_export(folder / "Streaming_History_Audio_2015_1.json", EXPORT_MB)
    files[f"spotify_{big}"] = ("spotify", export)
    files[f"spotify_import_{big}"] = ("spotify_import", export)
    files[f"json_reader_only_{big}"] = ("rows", export)
    files[f"plain_ijson_{big}"] = ("ijson", export)
    figures: dict = {}
    for name, (reader, path) in files.items():
        seconds, read, peak = _measure(reader, path)
        figures[f"{name}_peak_rss_mb"] = round(peak)
        figures[f"{name}_seconds"] = round(seconds, 2)
        figures[f"{name}_outcome"] = "read" if read else "refused"
        mb = path.stat().st_size / 2**20
        progress("json", f"{name}: {mb:.0f} MB file, {peak:.0f} MB peak RSS, {seconds:.1f} s")
    return figures
