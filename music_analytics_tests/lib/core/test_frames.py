"""Typed DataFrames for DuckDB inserts (lib/core/frames.py)."""

from datetime import datetime

import duckdb
import pytest

from music_analytics.lib.core.frames import rows_frame, typed_frame


def test_each_letter_reaches_duckdb_as_its_type_and_none_as_null():
    frame = typed_frame(
        {
            "a": ("i", [1, 2]),
            "b": ("l", [2**40, 3]),
            "c": ("L", [None, 4]),
            "d": ("f", [None, 1.5]),
            "e": ("b", [True, None]),
            "f": ("t", [datetime(2025, 3, 1, 12, 0, 0, 123456), None]),
            "g": ("s", ["x", None]),
            "h": ("a", [["p", "q"], None]),
        }
    )
    with duckdb.connect() as conn:
        conn.register("frame", frame)
        rows = conn.execute("select * from frame").fetchall()
        types = [str(d[1]) for d in conn.execute("select * from frame").description]
    assert types[:6] == ["INTEGER", "BIGINT", "BIGINT", "DOUBLE", "BOOLEAN", "TIMESTAMP"]
    assert rows[0] == (
        1,
        2**40,
        None,
        None,
        True,
        datetime(2025, 3, 1, 12, 0, 0, 123456),
        "x",
        ["p", "q"],
    )
    assert rows[1] == (2, 3, 4, 1.5, None, None, None, None)


def test_rows_take_one_letter_per_column():
    frame = rows_frame([(1, "a"), (2, None)], ["n", "s"], "Ls")
    assert list(frame.columns) == ["n", "s"] and frame["n"].tolist() == [1, 2]
    with pytest.raises(ValueError):
        rows_frame([(1, "a")], ["n", "s"], "L")  # one letter short
    with pytest.raises(ValueError, match="letter 'x'"):
        typed_frame({"n": ("x", [1])})
