"""What a Tinybird client puts around its SQL: a trailing `FORMAT <name>` clause, and `_`.

- `split_format(sql)`: Tinybird's Query API takes the output format from a ClickHouse-style
  clause at the end of the query (`SELECT ... FORMAT JSON`). DuckDB has no such clause, so it
  is taken off here, found with DuckDB's own tokenizer (a `FORMAT` inside a string or a
  comment is not one), and named as one of the renderings in formats.py.
- `over_rows(statement, result)`: `_` in a query is the result of a pipe (`pipeline=<pipe>` on
  /v0/sql, `q=` on a pipe): the rows are handed to DuckDB as a DataFrame registered on the
  request's own cursor and cast back to their column types, so the query reads `_` as a table.
"""

from __future__ import annotations

import duckdb

from music_analytics.server.pipe_specs import QueryResult

# Tinybird's (ClickHouse's) format names, case-insensitive, and the rendering of each.
FORMAT_CLAUSES = {
    "json": "json",
    "csv": "csv_plain",
    "csvwithnames": "csv",
    "tsv": "tsv_plain",
    "tabseparated": "tsv_plain",
    "tsvwithnames": "tsv",
    "tabseparatedwithnames": "tsv",
    "jsoneachrow": "ndjson",
    "ndjson": "ndjson",
}
PIPE_ROWS = "__pipe_rows"  # the registered DataFrame behind `_`


class FormatError(ValueError):
    """A FORMAT clause names a format this server does not write."""


def split_format(sql: str) -> tuple[str, str | None]:
    """The query without a trailing `FORMAT <name>` (and `;`), and the rendering it names
    (None when there is no clause). FormatError for an unknown name."""
    try:
        tokens = duckdb.tokenize(sql)
    except duckdb.Error:
        return sql, None  # check_select reports the syntax error
    ends = [start for start, _ in tokens[1:]] + [len(sql)]
    words = [
        (start, sql[start:end].strip())
        for (start, kind), end in zip(tokens, ends, strict=False)
        if kind != duckdb.token_type.comment and sql[start:end].strip() not in ("", ";")
    ]
    if len(words) < 3 or words[-2][1].lower() != "format":
        return sql, None
    name = words[-1][1].strip(";").strip()
    rendering = FORMAT_CLAUSES.get(name.lower())
    if rendering is None:
        known = "JSON, CSV, CSVWithNames, TSV, TSVWithNames, JSONEachRow"
        raise FormatError(f"FORMAT {name[:40]} is not supported: use one of {known}")
    return sql[: words[-2][0]].rstrip(), rendering


def over_rows(cursor: duckdb.DuckDBPyConnection, statement: str, result: QueryResult) -> str:
    """`statement` with `_` defined as `result`'s rows, registered on `cursor` (which only this
    request uses); the text to run on that cursor."""
    import pandas as pd  # only queries over a pipe need it

    frame = pd.DataFrame(
        {
            name: pd.Series([row[i] for row in result.rows], dtype=object)
            for i, (name, _) in enumerate(result.columns)
        }
    )
    cursor.register(PIPE_ROWS, frame)
    casts = ", ".join(f"cast({_quoted(n)} as {kind}) as {_quoted(n)}" for n, kind in result.columns)
    return f"with _ as (select {casts} from {PIPE_ROWS}) select * from (\n{statement}\n)"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
