"""One day of sample event lines: the daily rhythm, completed and skipped plays, and the dirt
(malformed lines, blank lines, re-deliveries) real feeds carry.

A day's listening follows UTC hours (quiet 03-06, busy in the evening, a later morning at
weekends); durations depend on whether the stream was completed or skipped. The hot loop does a
handful of `random()` calls, bisections into the catalogue's cumulative weights and one f-string
per event.
"""

from __future__ import annotations

import json
from bisect import bisect
from collections import Counter
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from random import Random
from typing import BinaryIO

from music_analytics.lib.events.sample_catalogue import (
    DEVICE_SLOTS,
    TASTE_SLOTS,
    USERS,
    Catalogue,
)
from music_analytics.lib.events.validation import EVENT_FIELDS

MAX_EVENTS_PER_DAY = 10_000_000 - 1  # a day's stream ids are day * 10**7 + sequence
# Relative listening per UTC hour: quiet 03-06, rising through the day, peaking around 20.
_HOUR_WEIGHTS: tuple[float, ...] = (
    4.0, 3.0, 2.2, 1.5, 1.2, 1.2, 1.6, 2.6, 3.6, 4.2, 4.5, 4.8,
    5.2, 5.4, 5.5, 5.6, 5.9, 6.4, 7.0, 7.6, 8.0, 7.6, 6.6, 5.2,
)  # fmt: skip
_WEEKEND_HOUR_FACTORS: tuple[float, ...] = (
    1.15, 1.15, 1.1, 1.0, 1.0, 1.0, 0.8, 0.7, 0.75, 0.85, 1.0, 1.1,
    1.15, 1.15, 1.15, 1.1, 1.05, 1.0, 1.0, 1.0, 1.0, 1.05, 1.1, 1.15,
)  # fmt: skip
_CROSS_FILE_POOL = 32  # valid lines kept per chunk as re-delivery sources for the next day
_CHUNK_LINES = 8_192  # an hour with more events is cut into shorter slices of time
_REQUIRED_FIELDS = tuple(name for name, _ in EVENT_FIELDS)
_MALFORMED_KINDS = 7


@lru_cache(maxsize=1)
def _clock_strings() -> tuple[str, ...]:
    """The clock text (HH:MM:SS) of every second of a day, indexed by second."""
    return tuple(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400))


def _round_randomly(expected: float, rng: Random) -> int:
    """An integer whose mean is `expected`: floor plus one with the fractional probability."""
    whole = int(expected)
    return whole + (rng.random() < expected - whole)


def _split_by_weight(total: int, weights: list[float]) -> list[int]:
    """`total` split proportionally to `weights` (largest remainder), summing exactly."""
    scale = total / sum(weights)
    exact = [w * scale for w in weights]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: counts[i] - exact[i])
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _malformed(line: str, kind: int, rng: Random) -> str:
    """A broken version of a valid event line, in one of the ways real feeds break."""
    body = line[:-1]
    if kind == 0:  # truncated in the middle of writing
        return body[: rng.randint(len(body) // 4, 3 * len(body) // 4)] + "\n"
    event = json.loads(body)
    if kind == 1:  # a required field left out
        del event[rng.choice(_REQUIRED_FIELDS)]
    elif kind == 2:  # a number sent as a string
        seconds = event["stream_duration_seconds"]
        event["stream_duration_seconds"] = rng.choice((str(seconds), "abc", f"{seconds}s"))
    elif kind == 3:  # a time no parser accepts
        start = event["stream_start_time"]
        event["stream_start_time"] = rng.choice(
            (f"{start[:4]}-13-45 99:00:00", "yesterday", f"{start[8:10]}/{start[5:7]}/{start[:4]}")
        )
    elif kind == 4:
        event["stream_duration_seconds"] = -event["stream_duration_seconds"]
    elif kind == 5:
        event["completed"] = 2
    else:  # the values without their names
        return json.dumps(list(event.values())) + "\n"
    return json.dumps(event) + "\n"


def _slice_lines(
    cat: Catalogue, rng: Random, day_text: str, start: int, span: int, count: int, first_id: int
) -> list[str]:
    """`count` valid event lines in time order, from second `start` of the day for `span` s."""
    rand = rng.random
    clock = _clock_strings()[start : start + span]
    user_cum, user_total, n_users = cat.user_cum, cat.user_cum[-1], USERS - 1
    heads, tails, user_slots = cat.user_heads, cat.user_tails, cat.user_slots
    picks = tuple(
        (cum, tracks, cum[-1], len(cum) - 1)
        for cum, tracks in zip(cat.pick_cum, cat.pick_tracks, strict=True)
    )
    parts, lengths = cat.track_parts, cat.track_lengths
    complete_p, skip_span = cat.track_complete_p, cat.track_skip_span
    slots_n, devices_n = TASTE_SLOTS, DEVICE_SLOTS
    lines: list[str] = []
    append = lines.append
    stream_id = first_id
    for offset in sorted([rand() for _ in range(count)]):
        u = bisect(user_cum, rand() * user_total, 0, n_users)
        # One draw picks the taste slot (integer part) and the track within it (fraction).
        x = rand() * slots_n
        slot = int(x)
        cum, tracks, total, hi = picks[user_slots[u][slot]]
        t = tracks[bisect(cum, (x - slot) * total, 0, hi)]
        tail = tails[u][int(rand() * devices_n)]
        r = rand()
        p = complete_p[t]
        if r < p:  # completed: played to (within two seconds of) the end
            seconds = lengths[t] - int(r / p * 3)
            append(
                f'{{"stream_id": "stream_{stream_id}", {heads[u]}{parts[t]}"stream_start_time": '
                f'"{day_text} {clock[int(offset * span)]}", '
                f'"stream_duration_seconds": {seconds}, "completed": 1, {tail}'
            )
        else:  # skipped: 5 s .. 80% of the track
            seconds = 5 + int((r - p) / (1 - p) * skip_span[t])
            append(
                f'{{"stream_id": "stream_{stream_id}", {heads[u]}{parts[t]}"stream_start_time": '
                f'"{day_text} {clock[int(offset * span)]}", '
                f'"stream_duration_seconds": {seconds}, "completed": 0, {tail}'
            )
        stream_id += 1
    return lines


@dataclass
class DayResult:
    """What `write_day` wrote: counts of its lines, and lines to re-deliver the next day."""

    events: int
    malformed: int
    duplicates: int
    pool: list[str]  # valid lines of this day, re-delivery sources for the next day


def write_day(
    handle: BinaryIO,
    cat: Catalogue,
    seed: int,
    day: date,
    events_per_day: int,
    malformed_ratio: float,
    duplicate_ratio: float,
    previous_pool: list[str],
) -> DayResult:
    """Write one day's lines to `handle`, a slice of time (an hour or less) at a time."""
    rng = Random(f"music-analytics-sample/{seed}/{day.isoformat()}")
    n = events_per_day
    malformed = min(_round_randomly(n * malformed_ratio, rng), n)
    duplicates = min(_round_randomly(n * duplicate_ratio, rng), max(0, n - malformed - 1))
    blanks = _round_randomly(n * malformed_ratio / 5, rng)
    fresh = n - duplicates

    hour_weights = list(_HOUR_WEIGHTS)
    if day.weekday() >= 5:
        hour_weights = [w * f for w, f in zip(hour_weights, _WEEKEND_HOUR_FACTORS, strict=True)]
    hour_weights = [w * rng.uniform(0.9, 1.1) for w in hour_weights]
    hour_counts = _split_by_weight(fresh, hour_weights)
    bad_at = sorted(rng.sample(range(fresh), malformed))
    kind = rng.randrange(_MALFORMED_KINDS)
    chunks: list[tuple[int, int, int]] = []  # (first second, seconds, events) in time order
    for hour, count in enumerate(hour_counts):
        pieces = max(1, -(-count // _CHUNK_LINES))
        bounds = [hour * 3600 + 3600 * i // pieces for i in range(pieces + 1)]
        firsts = bounds[:-1]
        spans = [b - a for a, b in zip(firsts, bounds[1:], strict=True)]
        chunks += zip(firsts, spans, _split_by_weight(count, spans), strict=True)
    counts = [c for _, _, c in chunks]
    dups_per_chunk = Counter(
        rng.choices(range(len(chunks)), counts, k=duplicates) if duplicates else ()
    )
    blanks_per_chunk = Counter(rng.choices(range(len(chunks)), counts, k=blanks) if blanks else ())

    day_text = day.isoformat()
    next_id = cat.id_base + day.toordinal() * (MAX_EVENTS_PER_DAY + 1)
    first_fresh = 0  # index of the chunk's first line among the day's fresh lines
    bad_i = 0
    earlier: list[str] = []  # valid lines from earlier chunks of this day
    pool: list[str] = []
    pending = 0  # within-file re-deliveries still waiting for a valid line to copy
    for chunk, (start, span, count) in enumerate(chunks):
        lines = _slice_lines(cat, rng, day_text, start, span, count, next_id)
        next_id += count
        broken: set[int] = set()
        while bad_i < malformed and bad_at[bad_i] < first_fresh + count:
            k = bad_at[bad_i] - first_fresh
            lines[k] = _malformed(lines[k], kind, rng)
            kind = (kind + 1) % _MALFORMED_KINDS
            broken.add(k)
            bad_i += 1
        first_fresh += count
        valid = [k for k in range(count) if k not in broken] if broken else list(range(count))

        # Re-delivery sources, taken before anything is inserted so indexes still hold.
        chosen = [lines[k] for k in rng.sample(valid, min(len(valid), _CROSS_FILE_POOL))]
        inserts: list[tuple[int, str]] = []
        for _ in range(dups_per_chunk[chunk]):
            if previous_pool and rng.random() < 0.5:  # a late re-delivery of yesterday's event
                inserts.append((rng.randint(0, count), rng.choice(previous_pool)))
            else:
                pending += 1
        while pending and (valid or earlier):
            if valid:  # a retry a little later than the original
                k = rng.choice(valid)
                inserts.append((rng.randint(k + 1, count), lines[k]))
            else:
                inserts.append((rng.randint(0, count), rng.choice(earlier)))
            pending -= 1
        for _ in range(blanks_per_chunk[chunk]):
            inserts.append((rng.randint(0, count), "\n" if rng.random() < 0.7 else "  \n"))
        # Insert from the back so the positions drawn against the original list stay right.
        for position, line in sorted(inserts, key=lambda item: item[0], reverse=True):
            lines.insert(position, line)
        earlier.extend(chosen[:4])
        pool.extend(chosen)
        handle.write("".join(lines).encode())
    if pending:  # cannot happen: duplicates < valid fresh lines, so some chunk has a source
        raise AssertionError("re-delivered events without a source")
    return DayResult(n - malformed, malformed, duplicates, pool)
