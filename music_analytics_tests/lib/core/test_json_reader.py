"""The bounded JSON reader: the same values as json.loads for any document within the limits,
however the bytes are split, and a reason naming the record and the limit past them."""

from __future__ import annotations

import hashlib
import io
import json
import random

import pytest

from music_analytics.lib.core.json_reader import (
    BoundedJsonStream,
    JsonLimitError,
    JsonLimits,
    iter_array_items,
)

SMALL = JsonLimits(max_depth=8, max_record_bytes=2_000, max_string_bytes=100)


class Dribble(io.RawIOBase):
    """A stream that returns at most `step` bytes a read: every chunk boundary is exercised."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._at, self._step = data, 0, step

    def read(self, size: int = -1) -> bytes:
        n = self._step if size is None or size < 0 else min(size, self._step)
        chunk = self._data[self._at : self._at + n]
        self._at += len(chunk)
        return chunk


def read_all(data: bytes, limits: JsonLimits = SMALL, step: int = 1 << 20, **kw) -> list:
    return list(iter_array_items(BoundedJsonStream(Dribble(data, step), limits, **kw)))


def random_value(rng: random.Random, depth: int):
    """Values full of the bytes the checks track: quotes, backslashes, brackets in strings."""
    pick = rng.randrange(7 if depth < 5 else 4)
    if pick == 0:
        return "".join(rng.choice('ab"\\[]{},: \n\u00e9') for _ in range(rng.randrange(20)))
    if pick == 1:
        return rng.choice([0, -1, 2**62, 1.5, -2.5e-3, 1e300])
    if pick == 2:
        return rng.choice([True, False, None])
    if pick == 3:
        return "\\" * rng.randrange(4) + '"'
    if pick in (4, 5):
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {f'k{i}\\"': random_value(rng, depth + 1) for i in range(rng.randrange(4))}


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64, 4096])
def test_within_the_limits_it_reads_what_json_loads_reads(step):
    rng = random.Random(step)
    rows = [random_value(rng, 1) for _ in range(60)]
    data = json.dumps(rows, indent=rng.choice([None, 1])).encode()
    limits = JsonLimits(max_depth=16, max_record_bytes=1 << 20, max_string_bytes=1 << 16)
    stream = BoundedJsonStream(Dribble(data, step), limits)
    assert list(iter_array_items(stream)) == json.loads(data)
    assert stream.digest.hexdigest() == hashlib.sha256(data).hexdigest()


def test_a_deep_document_is_refused_at_the_depth_cap_naming_the_record():
    data = b'[{"a": 1}, {"a": 2}, ' + b"[" * 40_000 + b"]" * 40_000 + b"]"
    for step in (1, 5, 1 << 20):
        with pytest.raises(JsonLimitError) as caught:
            read_all(data, step=step)
        assert caught.value.problem == (
            "record 3 nests deeper than 8 levels (the limit is MUSIC_ANALYTICS_JSON_MAX_DEPTH)"
        )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('"' + "x" * 101 + '"', "record 2 holds a string longer than 100 bytes"),
        ('"' + '\\"' * 60 + '"', "record 2 holds a string longer than 100 bytes"),
        ('{"' + "k" * 101 + '": 1}', "record 2 holds a string longer than 100 bytes"),
        ("9" * 101, "record 2 holds a number or literal longer than 100 bytes"),
        ('{"a":' + "1" * 60 + "e" + "1" * 60 + "}", "record 2 holds a number or literal longer"),
        ("[" + ('"' + "x" * 90 + '",') * 30 + "1]", "record 2 is larger than 2000 bytes"),
    ],
)
def test_long_strings_numbers_and_records_are_refused(value, problem):
    data = f'[{{"a": 1}}, {value}, {{"b": 2}}]'.encode()
    for step in (1, 3, 1 << 20):
        with pytest.raises(JsonLimitError, match="^" + problem.replace("[", r"\[")):
            read_all(data, step=step)


def test_a_string_just_under_the_cap_and_escapes_that_end_it_are_read():
    rows = ["x" * 100, "\\" * 50, 'a\\"b', "[[[[[[[[[[{{{{{{"]
    assert read_all(json.dumps(rows).encode(), step=3) == rows


def test_outside_the_records_the_reason_names_the_key_or_the_byte():
    data = b'{"meta": {"a": "' + b"x" * 200 + b'"}, "data": [1]}'
    with pytest.raises(JsonLimitError, match=r"^meta \(at byte 15\) holds a string"):
        list(
            iter_array_items(
                BoundedJsonStream(io.BytesIO(data), SMALL, records_depth=2, records_key="data"),
                "data.item",
            )
        )
    with pytest.raises(JsonLimitError, match=r"^the value at byte 40 nests deeper"):
        read_all(b'{"a":' * 20)


def test_whitespace_between_records_is_not_counted_as_record_bytes():
    data = b"[1," + b" " * 10_000 + b'{"a": 1}, \n' + b" " * 5_000 + b"2]"
    for step in (1, 3, 4096, 1 << 20):
        assert read_all(data, step=step) == [1, {"a": 1}, 2]


def test_beside_the_records_a_value_is_capped_as_a_whole():
    """meta is built whole by its reader: many small fields cannot add up past the cap."""
    fields = ", ".join(f'"f{i}": {i}' for i in range(400))
    data = ('{"meta": {' + fields + '}, "data": [1, 2]}').encode()
    for step in (1, 7, 1 << 20):
        with pytest.raises(JsonLimitError, match=r"^meta \(at byte \d+\) is larger than 2000"):
            list(
                iter_array_items(
                    BoundedJsonStream(
                        Dribble(data, step), SMALL, records_depth=2, records_key="data"
                    ),
                    "data.item",
                )
            )
    small = b'{"meta": {"a": 1}, "data": [' + b", ".join([b'{"x": 1}'] * 1000) + b"]}"
    stream = BoundedJsonStream(io.BytesIO(small), SMALL, records_depth=2, records_key="data")
    assert len(list(iter_array_items(stream, "data.item"))) == 1000  # data is not capped whole
