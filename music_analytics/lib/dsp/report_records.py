"""One DSP report record into the rows of the raw tables: typed fields, countries, the nested
breakdowns (found generically), or the reason it is quarantined. Pure Python, no database."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

# Sections that are not breakdowns: country_stats has its own table, aggregated_data is totals.
_NOT_BREAKDOWNS = frozenset({"country_stats", "aggregated_data"})
_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_FLOAT_INT_MAX = 2**1023  # integers below this convert to a finite double
_BIGINT_MIN, _BIGINT_MAX = -(2**63), 2**63 - 1
_JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean",
               type(None): "null"}  # fmt: skip
_dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


def _as_int(value: Any) -> int | None:
    """A BIGINT from an int, an integral float (5012.0) or an integer string ("5012")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        value = int(value) if value.is_integer() else None
    elif isinstance(value, str):
        value = int(value) if _INT_TEXT.fullmatch(value.strip()) else None
    if isinstance(value, int) and _BIGINT_MIN <= value <= _BIGINT_MAX:
        return value
    return None


def _as_text(value: Any) -> str | None:
    """A string as it is, a number as text (5012.0 as "5012"), anything else NULL."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def _as_number(value: Any) -> float | None:
    """A breakdown value as a double: numbers and numeric strings; NULL for anything else."""
    kind = type(value)
    if kind is float:
        return value  # finite: the record was dumped with allow_nan=False before fanning out
    if kind is int or (kind is str and _NUMBER_TEXT.fullmatch(value)):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond the double range
            return None
        return number if math.isfinite(number) else None
    return None  # null, true/false, other text


@dataclass
class RecordBatch:
    """The rows of up to `batch_records` records, as tuples per table."""

    records: list[tuple] = field(default_factory=list)
    countries: list[tuple] = field(default_factory=list)
    breakdowns: list[tuple] = field(default_factory=list)
    quarantine: list[tuple] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records) + len(self.quarantine)


def _problem(record: Any, report_day: date) -> str | None:
    """Why a record cannot be loaded, or None when it can."""
    if not isinstance(record, dict):
        return f"the record is a JSON {_JSON_TYPES.get(type(record), 'value')}, not an object"
    if "track_id" not in record:
        return "track_id is missing"
    if _as_int(record["track_id"]) is None:
        return f"track_id is {_shown(record['track_id'])}, not an integer"
    data_date = record.get("data_date")
    if data_date is not None and not _on_day(data_date, report_day):
        return f"data_date is {_shown(data_date)}, not on the report date {report_day}"
    return None


def _on_day(value: Any, day: date) -> bool:
    """True for "2026-03-28", "2026-03-28T00:00:00.000000Z" and the like, on `day`."""
    return (
        isinstance(value, str)
        and value[:10] == day.isoformat()
        and (len(value) == 10 or value[10] in "T ")
    )


def add_record(
    batch: RecordBatch, index: int, record: Any, report_day: date, ref_field: str
) -> None:
    """Append one record's rows (or its quarantine row) to the batch."""
    problem = _problem(record, report_day)
    text = None
    if problem is None:
        try:
            text = _dumps(record)
        except ValueError:  # a number beyond the double range (1e999) was read as inf
            problem = "the record holds a number beyond the double range"
    if problem is not None:
        batch.quarantine.append((index, json.dumps(record, ensure_ascii=False), problem))
        return
    track_id = _as_int(record["track_id"])
    batch.records.append(
        (
            index,
            _as_int(record.get("id")),
            track_id,
            _as_text(record.get("track_name")),
            _as_int(record.get("album_id")),
            _as_text(record.get("album_name")),
            _as_text(record.get("isrc")),
            _as_text(record.get(ref_field)),
            text,
        )
    )
    countries = record.get("country_stats")
    if type(countries) is dict:
        batch.countries.extend(
            (index, track_id, country, _dumps(stats)) for country, stats in countries.items()
        )
    add = batch.breakdowns.append
    for section, content in record.items():
        if type(content) is not dict or section in _NOT_BREAKDOWNS:
            continue
        for sub, breakdown in content.items():
            if type(breakdown) is not dict:
                continue
            dimension = f"{section}.{sub}"
            for key, value in breakdown.items():
                kind = type(value)
                if kind is float or (kind is int and -_FLOAT_INT_MAX < value < _FLOAT_INT_MAX):
                    add((index, track_id, dimension, key, value))  # the common case, fast
                elif kind is not dict and kind is not list:
                    add((index, track_id, dimension, key, _as_number(value)))
