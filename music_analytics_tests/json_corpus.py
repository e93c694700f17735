"""Hostile JSON, generated (no blobs committed): one bad record per case, spliced into an
otherwise good DSP report, Spotify export file or event body, and what must become of it.

A case's record is raw JSON text (NaN, 2**70 and duplicate keys cannot be written by
json.dumps). `outcome` is `rejected` (the whole input refused, the reason containing
`fragment`), `quarantined` (that record set aside with the reason, the rest loaded) or
`loaded` (a value JSON allows: a duplicate key keeps its last value, a time with an offset is
converted to UTC).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

DEEP = 40_000  # the 80 KB file: 3.9 GB and 45 s before the bounded reader


def _with(record: dict, extra: str) -> str:
    """The record's JSON with `extra` (`"key": value` text) appended inside the object."""
    return json.dumps(record)[:-1] + ", " + extra + "}"


@dataclass(frozen=True)
class Case:
    name: str
    record: Callable[[dict, str], str]  # (good record, the key field) -> the bad record's text
    outcome: str
    fragment: str


# Cases every input kind shares; `key` is the field each kind requires of a number
# (track_id, ms_played, stream_duration_seconds).
SHARED = (
    Case(
        "deep",
        lambda r, k: _with(r, '"x": ' + "[" * DEEP + "]" * DEEP),
        "rejected",
        "nests deeper than 64 levels (the limit is MUSIC_ANALYTICS_JSON_MAX_DEPTH)",
    ),
    Case(
        "long_string",
        lambda r, k: _with(r, '"x": "' + "y" * 70_000 + '"'),
        "rejected",
        "holds a string longer than 65536 bytes (the limit is MUSIC_ANALYTICS_JSON_MAX_STRING_KB)",
    ),
    Case(
        "huge_record",
        lambda r, k: _with(r, '"x": [' + ",".join(['"' + "z" * 60 + '"'] * 20_000) + "]"),
        "rejected",
        "is larger than 1048576 bytes (the limit is MUSIC_ANALYTICS_JSON_MAX_RECORD_KB)",
    ),
    Case("huge_integer", lambda r, k: _with(r, f'"x": {2**70}'), "rejected", "integer overflow"),
    Case("huge_float", lambda r, k: _with(r, '"x": 1e999'), "rejected", "overflow"),
    Case("nan", lambda r, k: _with(r, '"x": NaN'), "rejected", "invalid char in json text"),
    Case("infinity", lambda r, k: _with(r, '"x": -Infinity'), "rejected", "malformed number"),
    Case(
        "wrong_type",
        lambda r, k: json.dumps({**r, k: "many"}),
        "quarantined",
        "many",
    ),
    Case("not_an_object", lambda r, k: '"just a string"', "quarantined", "string"),
    Case(
        "duplicate_key",
        lambda r, k: _with(
            {key: v for key, v in r.items() if key != k},
            f'"{k}": "many", "{k}": ' + json.dumps(r[k]),
        ),
        "loaded",
        "",
    ),  # fmt: skip
)


def time_case(name: str, field: str, value: str, outcome: str, fragment: str = "") -> Case:
    """A record whose time `field` is `value`."""
    return Case(name, lambda r, k: json.dumps({**r, field: value}), outcome, fragment)


def splice(records: list[str]) -> bytes:
    """A JSON array of the records' texts."""
    return ("[" + ", ".join(records) + "]").encode()
