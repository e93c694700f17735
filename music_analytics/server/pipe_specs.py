"""What a published pipe is, as Tinybird publishes them: typed parameters, a query, a result.

A pipe declares its parameters (type, default, bounds) and builds its SQL from the parameters
that are present. Values are always bound as query parameters; only the *shape* of the SQL
(which filters exist) depends on the request, and that from a fixed set of strings.
`parse_params` validates a request's raw strings and raises `PipeParamError` naming the
parameter, or `NoDataError` when the snapshot lacks a table the pipe reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from music_analytics.server.snapshot import MartSnapshot

ParamKind = Literal["date", "string", "integer", "enum"]
MAX_STRING = 200
# Request parameters that belong to the server, not to a pipe: the token, SQL over the
# pipe's result (`q`), and /v0/sql's own when a query reads a pipe as `_`.
RESERVED = frozenset({"token", "q", "format", "pipeline"})
DAY_LAST_SECOND = time(23, 59, 59)


class PipeParamError(ValueError):
    """A request parameter is wrong; the message names it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"parameter '{param}': {message}")
        self.param = param


class NoDataError(LookupError):
    """A mart the pipe reads has not been exported yet (or not with the expected columns)."""


@dataclass(frozen=True)
class Param:
    name: str
    kind: ParamKind
    description: str
    default: Any = None
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    pattern: str | None = None

    def parse(self, raw: str) -> Any:
        if self.kind == "date":
            try:
                if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", raw):
                    return date.fromisoformat(raw)
                if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}", raw):
                    return datetime.fromisoformat(raw)  # Tinybird's DateTime
                raise ValueError(raw)
            except ValueError:
                raise PipeParamError(
                    self.name,
                    f"expected a date YYYY-MM-DD or a time YYYY-MM-DD HH:MM:SS, got {raw[:40]!r}",
                ) from None
        if self.kind == "integer":
            if not re.fullmatch(r"[+-]?[0-9]{1,12}", raw.strip()):
                raise PipeParamError(self.name, f"expected a whole number, got {raw[:40]!r}")
            value = int(raw)
            if self.minimum is not None and value < self.minimum:
                raise PipeParamError(self.name, f"must be at least {self.minimum}, got {value}")
            if self.maximum is not None and value > self.maximum:
                raise PipeParamError(self.name, f"must be at most {self.maximum}, got {value}")
            return value
        if self.kind == "enum":
            if raw not in self.choices:
                raise PipeParamError(
                    self.name, f"expected one of {', '.join(self.choices)}, got {raw[:40]!r}"
                )
            return raw
        if not raw or len(raw) > MAX_STRING:
            raise PipeParamError(self.name, f"expected 1 to {MAX_STRING} characters")
        if self.pattern and not re.fullmatch(self.pattern, raw):
            raise PipeParamError(self.name, f"{raw[:40]!r} does not match {self.pattern}")
        return raw


@dataclass(frozen=True)
class Query:
    sql: str
    params: list


@dataclass(frozen=True)
class QueryResult:
    columns: list[tuple[str, str]]  # (name, DuckDB type)
    rows: list[tuple]
    rows_before_limit: int


@dataclass(frozen=True)
class Pipe:
    name: str
    mart: str  # its days give the default dates and the response's statistics
    description: str
    default_days: int  # start_date defaults to this many days ending on end_date
    extra_params: tuple[Param, ...]
    build: Callable[[dict], Query]
    default_limit: int = 10
    max_limit: int = 10_000
    ranked: bool = False  # the rows come ranked: run_pipe numbers them in a first column `rank`
    finish: Callable[[QueryResult, MartSnapshot, dict], QueryResult] | None = None  # rows -> answer
    # `build`'s rows computed without SQL, or None to run the SQL (top_tracks_arrays.compute).
    compute: Callable[[dict, MartSnapshot], QueryResult | None] | None = None
    # The exported marts the query reads besides `mart`, and the columns it needs of each;
    # `reads_for_times` those it reads too when a DateTime cuts a day (the partial days).
    reads: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    reads_for_times: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def params(self) -> tuple[Param, ...]:
        return (
            Param(
                "start_date",
                "date",
                f"First day (YYYY-MM-DD), or first second (YYYY-MM-DD HH:MM:SS). Default: "
                f"{self.default_days} days ending on end_date.",
            ),
            Param(
                "end_date",
                "date",
                "Last day (YYYY-MM-DD), or last second (YYYY-MM-DD HH:MM:SS), inclusive. "
                "Default: the mart's latest day.",
            ),
            *self.extra_params,
            Param(
                "limit",
                "integer",
                "Most rows to return.",
                default=self.default_limit,
                minimum=1,
                maximum=self.max_limit,
            ),
        )


def result_columns(description) -> list[tuple[str, str]]:
    """(name, type) of a cursor's result columns. An ENUM (how the snapshot stores some id
    columns, see snapshot.ENUM_COLUMNS) is reported as the VARCHAR it stands for."""
    # (the type's id, not its text: an ENUM's text lists all of its values)
    return [(d[0], "VARCHAR" if d[1].id == "enum" else str(d[1])) for d in description]


def where_clause(date_column: str, values: dict, filters: dict[str, str]) -> tuple[str, list]:
    """`where` over the date range and the filters present (values bound, never pasted)."""
    return filtered(
        f"{date_column} between ? and ?",
        [values["start_date"], values["end_date"]],
        values,
        filters,
    )


def filtered(clause: str, bound: list, values: dict, filters: dict[str, str]) -> tuple[str, list]:
    """`clause` and the filters present ({parameter: column}), with their values bound."""
    clauses, bound = [clause], list(bound)
    for param, column in filters.items():
        if values.get(param) is not None:
            clauses.append(f"{column} = ?")
            bound.append(values[param])
    return " and ".join(clauses), bound


def _no_exports(mart: str) -> NoDataError:
    return NoDataError(
        f"mart {mart} has no exports yet: build the marts first "
        "(make demo, or music-analytics refresh)"
    )


def _check_reads(pipe: Pipe, snapshot: MartSnapshot, times: bool = False) -> None:
    """NoDataError naming the first mart the pipe reads that is missing or lacks a column."""
    reads = {**pipe.reads, **(pipe.reads_for_times if times else {})}
    for mart, columns in reads.items():
        info = snapshot.marts.get(mart)
        if info is None:
            raise _no_exports(mart)
        missing = [column for column in columns if column not in info.columns]
        if missing:
            raise NoDataError(
                f"the exports of {mart} do not have the expected columns (missing "
                f"{', '.join(missing)}): rebuild the marts with this version"
            )


def parse_params(pipe: Pipe, raw: Mapping[str, str], snapshot: MartSnapshot) -> dict:
    """Typed parameter values with defaults applied; dates default from the mart's data."""
    known = {p.name: p for p in pipe.params}
    for name in raw:
        if name not in known and name not in RESERVED:
            raise PipeParamError(name, f"unknown for pipe {pipe.name}; it takes {', '.join(known)}")
    values = {
        name: (param.parse(raw[name]) if name in raw else param.default)
        for name, param in known.items()
    }
    info = snapshot.marts.get(pipe.mart)
    if info is None or info.last_day is None:
        raise _no_exports(pipe.mart)
    _check_reads(pipe, snapshot)
    values["start_date"], values["start_at"] = _day_and_edge(values["start_date"], time.min)
    values["end_date"], values["end_at"] = _day_and_edge(values["end_date"], DAY_LAST_SECOND)
    if values["end_date"] is None:
        values["end_date"] = info.last_day
    if values["start_date"] is None:
        values["start_date"] = _days_before(values["end_date"], pipe.default_days - 1)
    if values["start_at"] or values["end_at"]:
        _check_reads(pipe, snapshot, times=True)
    first = values["start_at"] or datetime.combine(values["start_date"], time.min)
    last = values["end_at"] or datetime.combine(values["end_date"], DAY_LAST_SECOND)
    if first > last:
        start = values["start_at"] or values["start_date"]
        end = values["end_at"] or values["end_date"]
        raise PipeParamError("start_date", f"{start} is after end_date {end}")
    return values


def _day_and_edge(value: date | datetime | None, whole_day_at: time) -> tuple:
    """A date or DateTime parameter as (its day, the DateTime when it cuts the day): a time
    other than the day's first second (start) or last (end) makes that day a partial one."""
    if isinstance(value, datetime):
        return value.date(), (None if value.time() == whole_day_at else value)
    return value, None


def _days_before(day: date, days: int) -> date:
    """`day` minus `days` days, or the first date there is (end_date=0001-01-01)."""
    try:
        return day - timedelta(days=days)
    except OverflowError:
        return date.min
