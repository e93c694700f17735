"""Rows for DuckDB to insert, as a pandas DataFrame with explicit column types.

The DSP and Spotify loads hand DuckDB their parsed rows as a DataFrame (read by a replacement
scan of a local variable, or registered), typed here so that DuckDB does not guess the types
from a sample. One letter per column:

| letter | column | None becomes |
| --- | --- | --- |
| `i` | int32 | (not allowed) |
| `l` | int64 | (not allowed) |
| `L` | nullable int64 | NULL |
| `f` | float64 | NaN, which DuckDB reads as NULL |
| `b` | nullable boolean | NULL |
| `t` | timestamp (microseconds) | NaT, read as NULL |
| `s` | text, as Python objects (pandas converts no string) | NULL |
| `a` | a list of texts, as Python objects | NULL |

pandas is imported on first use: a refresh that loads no DSP report or Spotify file does not
pay for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def typed_frame(columns: Mapping[str, tuple[str, Sequence[Any]]]) -> pd.DataFrame:
    """{name: (letter, values)} as a DataFrame, columns in the mapping's order."""
    import numpy as np
    import pandas as pd

    def make(kind: str, values: Sequence[Any]):
        if kind == "i":
            return np.array(values, dtype=np.int32)
        if kind == "l":
            return np.array(values, dtype=np.int64)
        if kind == "L":
            return pd.array(values, dtype="Int64")
        if kind == "f":
            return np.array(values, dtype=np.float64)
        if kind == "b":
            return pd.array(values, dtype="boolean")
        if kind == "t":
            nat = np.datetime64("NaT", "us")
            return np.array([nat if v is None else v for v in values], dtype="datetime64[us]")
        if kind in ("s", "a"):
            return pd.Series(values, dtype=object)
        raise ValueError(f"column type letter {kind!r} is not one of i l L f b t s a")

    return pd.DataFrame({name: make(kind, values) for name, (kind, values) in columns.items()})


def rows_frame(rows: Sequence[tuple], names: Sequence[str], kinds: str) -> pd.DataFrame:
    """Row tuples as a DataFrame: `names[i]` typed by the letter `kinds[i]`."""
    return typed_frame(
        {
            name: (kind, [row[i] for row in rows])
            for i, (name, kind) in enumerate(zip(names, kinds, strict=True))
        }
    )
