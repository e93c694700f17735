"""exports/bi.duckdb as BI tools meet it: an older DuckDB, a moved home, SQLAlchemy, and a
reader querying while the pipeline rewrites the exports."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
import sqlalchemy

from music_analytics.lib.core.exports import (
    BI_STORAGE_NUMBER,
    connect_bi_database,
    export_mart_values,
    storage_number,
    write_bi_database,
)

DAYS = [date(2025, 3, 1) + timedelta(days=n) for n in range(10)]
MONTHS = [date(2025, 2, 1), date(2025, 3, 1)]
OLD_DUCKDB = "1.1.3"  # the oldest 1.x line with wheels for this Python; 1.x drivers read it
# A day's rows for each mart: (mart, date column, values, rows a value)
MARTS = [("top", "stream_date", DAYS, 30), ("users", "stream_date", DAYS, 5)]
MARTS += [("monthly", "month", MONTHS, 7)]


def _export_all(home: Path, scale: int = 1) -> Path:
    """A warehouse with three marts (two daily, one monthly) exported under home/exports."""
    exports = home / "exports"
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        conn.execute("create schema if not exists marts")
        for mart, column, values, per_value in MARTS:
            conn.execute(
                f"create or replace table marts.{mart} as select v.{column}, "
                f"'t' || i as track_id, (i * {scale})::bigint as streams "
                f"from unnest(?::date[]) v({column}), range({per_value}) r(i)",
                [values],
            )
            export_mart_values(conn, exports, mart=mart, date_column=column, values=values)
    write_bi_database(exports)
    return exports


EXPECTED = {mart: len(values) * per_value for mart, _, values, per_value in MARTS}

READ_EVERY_VIEW = """
import json, sys
import duckdb
conn = duckdb.connect(sys.argv[1], read_only=True)
conn.execute("set file_search_path = '" + sys.argv[2] + "'")
listed = conn.execute("select view_name from duckdb_views() where not internal")
views = [v for (v,) in listed.fetchall()]
rows = {v: conn.execute(f"select count(*) from {v}").fetchone()[0] for v in views}
print(json.dumps({"version": duckdb.__version__, "rows": rows}))
"""


def _venv_with_duckdb(version: str) -> Path:
    """A venv holding only duckdb==version, made once per machine (kept in the temp folder)."""
    venv = Path(tempfile.gettempdir()) / "music-analytics-test-venvs" / f"duckdb-{version}"
    python = venv / "bin" / "python"
    if python.exists() and (venv / ".complete").exists():
        return python
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH: cannot make a venv with an older duckdb")
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([uv, "venv", "-q", "-p", sys.executable, str(venv)], check=True, timeout=120)
    installed = subprocess.run(
        [uv, "pip", "install", "-q", "-p", str(python), f"duckdb=={version}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if installed.returncode != 0:
        if "connect" in installed.stderr.lower() or "network" in installed.stderr.lower():
            pytest.skip(f"PyPI unreachable, cannot install duckdb=={version}: {installed.stderr}")
        raise AssertionError(installed.stderr)
    (venv / ".complete").touch()
    return python


@pytest.fixture(scope="module")
def moved_home(tmp_path_factory):
    """A home exported in one folder, then moved to another: the first no longer exists."""
    base = tmp_path_factory.mktemp("bi")
    (base / "old").mkdir()
    _export_all(base / "old")
    shutil.move(base / "old", base / "new")
    assert not (base / "old").exists()
    return base / "new"


def test_an_older_duckdb_reads_every_view_of_the_moved_home(moved_home, tmp_path):
    bi = moved_home / "exports" / "bi.duckdb"
    assert storage_number(bi) == BI_STORAGE_NUMBER
    python = _venv_with_duckdb(OLD_DUCKDB)
    read = subprocess.run(
        [str(python), "-c", READ_EVERY_VIEW, str(bi), str(bi.parent)],
        cwd=tmp_path,  # not the exports: the views find their files by file_search_path
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert read.returncode == 0, read.stderr
    assert json.loads(read.stdout) == {"version": OLD_DUCKDB, "rows": EXPECTED}


def test_the_moved_home_reads_its_own_files_from_any_directory(moved_home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bi = moved_home / "exports" / "bi.duckdb"
    with connect_bi_database(bi) as conn:
        for mart, expected in EXPECTED.items():
            assert conn.execute(f"select count(*) from {mart}").fetchone() == (expected,)
    # without the search path the views fail, naming the pattern: they never read elsewhere
    bare = duckdb.connect(str(bi), read_only=True)
    with bare, pytest.raises(duckdb.IOException, match="No files found .*top/stream_date="):
        bare.execute("select count(*) from top")


def test_sqlalchemy_with_duckdb_engine_opens_the_uri_read_only_and_reads_every_view(moved_home):
    bi = moved_home / "exports" / "bi.duckdb"
    engine = sqlalchemy.create_engine(
        f"duckdb:///{bi}?access_mode=read_only&file_search_path={bi.parent}"
    )
    try:
        with engine.connect() as conn:
            names = sqlalchemy.inspect(conn).get_view_names()
            assert sorted(names) == sorted(EXPECTED)
            for mart in names:
                count = conn.execute(sqlalchemy.text(f"select count(*) from {mart}")).scalar()
                assert count == EXPECTED[mart]
            with pytest.raises(sqlalchemy.exc.DBAPIError, match="read-only"):
                conn.execute(sqlalchemy.text("create table x (a int)"))
    finally:
        engine.dispose()


READER_LOOP = """
import sys, pathlib
from music_analytics.lib.core.exports import connect_bi_database
bi, done = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
conn = connect_bi_database(bi)  # opened once, before the exports change
import os
if os.environ.get("NOCACHE"): conn.execute("set enable_external_file_cache = false")
queries = errors = 0
ready = pathlib.Path(sys.argv[3])
while True:
    finished = done.exists()
    for sql in ("select count(*), sum(streams) from top", "select count(*) from users",
                "select month, count(*) from monthly group by 1"):
        try:
            conn.execute(sql).fetchall()
        except Exception as exc:
            errors += 1
            print("error:", exc, file=sys.stderr)
        queries += 1
    ready.touch()
    if finished:
        break
print(queries, errors)
"""


def test_a_reader_querying_while_the_exports_are_rewritten_never_fails(tmp_path):
    """Days rewritten, emptied and filled again, a new mart added, bi.duckdb replaced: a
    reader that opened bi.duckdb before all of it gets no error; a new connection sees the
    new mart."""
    exports = _export_all(tmp_path)
    bi = exports / "bi.duckdb"
    done, ready = tmp_path / "done", tmp_path / "ready"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER_LOOP, str(bi), str(done), str(ready)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        while not ready.exists() and reader.poll() is None:
            time.sleep(0.05)
        with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
            for round_ in range(12):
                conn.execute("update marts.top set streams = streams + 1")
                if round_ % 3 == 1:  # a day loses its rows, then gets them back
                    conn.execute("delete from marts.top where stream_date = ?", [DAYS[0]])
                export_mart_values(
                    conn, exports, mart="top", date_column="stream_date", values=DAYS
                )
                if round_ % 3 == 1:
                    conn.execute("insert into marts.top select ?, 't0', 1", [DAYS[0]])
                if round_ == 6:  # a new mart
                    conn.execute("create table marts.extra as select * from marts.users")
                    export_mart_values(
                        conn, exports, mart="extra", date_column="stream_date", values=DAYS
                    )
                write_bi_database(exports)
        done.touch()
        out, err = reader.communicate(timeout=120)
    finally:
        if reader.poll() is None:
            reader.kill()
    assert reader.returncode == 0, err
    queries, errors = map(int, out.split())
    assert errors == 0, err
    assert queries >= 6  # it queried before and after the rewrites
    with connect_bi_database(bi) as fresh:
        assert fresh.execute("select count(*) from extra").fetchone() == (EXPECTED["users"],)
