"""Realistic sample music-stream events, written as one NDJSON file per UTC day.

The events follow the schema of Tinybird's music_streams tutorial (see `event_validation`):

    {"stream_id": "stream_...", "user_id": "user_...", "track_id": "track_...",
     "artist_id": "artist_...", "album_id": "album_...", "genre": "rock",
     "stream_start_time": "2025-04-14 01:31:02", "stream_duration_seconds": 148,
     "completed": 0, "device_type": "smart_speaker", "country": "IN"}

What makes them realistic: a fixed catalogue derived from the seed (2,000 tracks by 400 artists
on 700 albums; a track's genre is its artist's), Zipf-like track popularity, 5,000 users with a
home country, a preferred device, a genre taste and a heavy-tailed activity level, a daily
listening rhythm in UTC (quiet 03-06, busy in the evening, a later morning at weekends), and
durations that depend on whether the stream was completed or skipped. A small share of lines is
dirty the way real feeds are: malformed lines of several kinds, blank lines, and verbatim
re-deliveries of earlier events (within a file and across files).

Each day has its own random stream, seeded by (seed, day), so a day's file does not depend on
how many days were generated before it. The exception is the first day of a run: it has no
previous file to re-deliver events from, so all its duplicates are within-file.

Only the standard library is used; the hot loop does a handful of `random()` calls, bisections
into precomputed cumulative weights and one f-string per event, over precomputed JSON fragments.
"""

from __future__ import annotations

import gzip
import json
import os
from bisect import bisect
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from random import Random
from typing import BinaryIO

from music_analytics.lib.events.validation import EVENT_FIELDS

TRACKS = 2_000
ARTISTS = 400
ALBUMS = 700
USERS = 5_000
ZIPF_EXPONENT = 1.07
MAX_EVENTS_PER_DAY = 10_000_000 - 1  # a day's stream ids are day * 10**7 + sequence

GENRE_WEIGHTS: dict[str, float] = {
    "pop": 22,
    "hip-hop": 16,
    "rock": 12,
    "electronic": 9,
    "latin": 8,
    "r&b": 7,
    "indie": 6,
    "k-pop": 5,
    "country": 5,
    "metal": 3,
    "jazz": 2,
    "classical": 2,
    "reggae": 2,
    "blues": 1,
}
COUNTRY_WEIGHTS: dict[str, float] = {
    "US": 30,
    "GB": 9,
    "DE": 8,
    "BR": 8,
    "IN": 7,
    "MX": 6,
    "FR": 5,
    "JP": 5,
    "ES": 4,
    "CA": 4,
    "AU": 3,
    "SE": 3,
    "NL": 3,
    "IT": 3,
    "KR": 2,
}
DEVICE_WEIGHTS: dict[str, float] = {
    "mobile": 55,
    "desktop": 20,
    "smart_speaker": 10,
    "tablet": 7,
    "tv": 5,
    "car": 3,
}
# Local taste on top of the global genre mix: a user from KR leans to k-pop more often, etc.
_COUNTRY_GENRE_BOOST: dict[str, dict[str, float]] = {
    "US": {"country": 2.0, "hip-hop": 1.3},
    "GB": {"indie": 1.8, "rock": 1.2},
    "DE": {"electronic": 1.8, "metal": 1.5},
    "BR": {"latin": 4.0},
    "MX": {"latin": 5.0},
    "ES": {"latin": 3.0},
    "FR": {"hip-hop": 1.5},
    "JP": {"k-pop": 2.0, "electronic": 1.5},
    "SE": {"metal": 2.0, "pop": 1.3},
    "KR": {"k-pop": 8.0},
    "IN": {"pop": 1.3},
}
# Relative listening per UTC hour: quiet 03-06, rising through the day, peaking around 20.
_HOUR_WEIGHTS: tuple[float, ...] = (
    4.0, 3.0, 2.2, 1.5, 1.2, 1.2, 1.6, 2.6, 3.6, 4.2, 4.5, 4.8,
    5.2, 5.4, 5.5, 5.6, 5.9, 6.4, 7.0, 7.6, 8.0, 7.6, 6.6, 5.2,
)  # fmt: skip
_WEEKEND_HOUR_FACTORS: tuple[float, ...] = (
    1.15, 1.15, 1.1, 1.0, 1.0, 1.0, 0.8, 0.7, 0.75, 0.85, 1.0, 1.1,
    1.15, 1.15, 1.15, 1.1, 1.05, 1.0, 1.0, 1.0, 1.0, 1.05, 1.1, 1.15,
)  # fmt: skip
_TASTE_SLOTS = 20  # a user's genre taste as 20 equally likely slots: a genre index or "any"
_DEVICE_SLOTS = 20  # a user's devices as 20 equally likely slots
_OTHER_DEVICE_SLOTS = 3  # slots drawn from the global mix: ~85% of streams on the preferred one
_CROSS_FILE_POOL = 32  # valid lines kept per chunk as re-delivery sources for the next day
_CHUNK_LINES = 8_192  # an hour with more events is cut into shorter slices of time
_REQUIRED_FIELDS = tuple(name for name, _ in EVENT_FIELDS)
_MALFORMED_KINDS = 7


@dataclass(frozen=True)
class SampleSummary:
    """What `generate_events` wrote: the files (in day order) and counts of their lines.

    `events` counts valid lines, duplicate copies included; `malformed_lines` the invalid ones;
    `duplicate_lines` the valid lines repeating the stream_id of an earlier line (same file or
    an earlier one). Blank lines are in no count.
    """

    files: list[Path]
    events: int
    malformed_lines: int
    duplicate_lines: int


class _Catalogue:
    """Tracks and users as precomputed JSON fragments and cumulative weights for the hot loop."""

    __slots__ = (
        "track_parts",
        "track_lengths",
        "track_complete_p",
        "track_skip_span",
        "pick_cum",
        "pick_tracks",
        "user_cum",
        "user_heads",
        "user_tails",
        "user_slots",
        "id_base",
    )

    def __init__(self, seed: int) -> None:
        rng = Random(seed)
        genres = list(GENRE_WEIGHTS)
        genre_weights = list(GENRE_WEIGHTS.values())
        n_genres = len(genres)
        self.id_base = rng.randrange(100, 1000) * 10**13

        # Artists: every genre has at least one; popularity is heavy-tailed.
        artist_genre = list(range(n_genres)) + rng.choices(
            range(n_genres), weights=genre_weights, k=ARTISTS - n_genres
        )
        rng.shuffle(artist_genre)
        artist_pop = [rng.lognormvariate(0, 1.2) for _ in range(ARTISTS)]
        # Albums: one per artist, the rest to prolific artists; tracks: one per album, the rest
        # spread over albums, so every album has a track and every artist an album.
        productivity = [rng.paretovariate(1.5) for _ in range(ARTISTS)]
        album_artist = list(range(ARTISTS)) + rng.choices(
            range(ARTISTS), weights=productivity, k=ALBUMS - ARTISTS
        )
        rng.shuffle(album_artist)
        track_album = list(range(ALBUMS)) + rng.choices(range(ALBUMS), k=TRACKS - ALBUMS)
        rng.shuffle(track_album)

        length_mode = {"classical": 380, "jazz": 300, "metal": 280, "electronic": 260}
        parts, lengths, complete_p, skip_span, track_genre = [], [], [], [], []
        for t, album in enumerate(track_album):
            artist = album_artist[album]
            g = artist_genre[artist]
            length = round(rng.triangular(120, 420, length_mode.get(genres[g], 200)))
            parts.append(
                f'"track_id": "track_{t + 1}", "artist_id": "artist_{artist + 1}", '
                f'"album_id": "album_{album + 1}", "genre": "{genres[g]}", '
            )
            lengths.append(length)
            # Short tracks are finished ~65% of the time, the longest ~35%.
            complete_p.append(0.65 - 0.30 * (length - 120) / 300)
            skip_span.append(int(0.8 * length) - 5 + 1)  # skipped: 5 s .. 80% of the length
            track_genre.append(g)
        self.track_parts = tuple(parts)
        self.track_lengths = tuple(lengths)
        self.track_complete_p = tuple(complete_p)
        self.track_skip_span = tuple(skip_span)

        # Popularity: rank tracks by artist popularity times a per-track factor, then weight
        # each by 1 / rank**s. Index n_genres of pick_* is the whole catalogue.
        score = [
            artist_pop[album_artist[track_album[t]]] * rng.lognormvariate(0, 0.8)
            for t in range(TRACKS)
        ]
        by_rank = sorted(range(TRACKS), key=lambda t: -score[t])
        weight = [0.0] * TRACKS
        for rank, t in enumerate(by_rank, start=1):
            weight[t] = 1.0 / rank**ZIPF_EXPONENT
        pick_tracks: list[tuple[int, ...]] = [
            tuple(t for t in by_rank if track_genre[t] == g) for g in range(n_genres)
        ]
        pick_tracks.append(tuple(by_rank))
        self.pick_tracks = tuple(pick_tracks)
        self.pick_cum = tuple(tuple(accumulate(weight[t] for t in ts)) for ts in pick_tracks)

        # Users: home country, preferred device, 1-3 favourite genres, activity level.
        countries = rng.choices(list(COUNTRY_WEIGHTS), weights=COUNTRY_WEIGHTS.values(), k=USERS)
        devices = list(DEVICE_WEIGHTS)
        preferred = rng.choices(range(len(devices)), weights=DEVICE_WEIGHTS.values(), k=USERS)
        self.user_cum = tuple(accumulate(rng.lognormvariate(0, 1.0) for _ in range(USERS)))
        heads, tails, slots = [], [], []
        for u, country in enumerate(countries):
            heads.append(f'"user_id": "user_{u + 1}", ')
            by_device = [f'"device_type": "{d}", "country": "{country}"}}\n' for d in devices]
            others = rng.choices(by_device, weights=DEVICE_WEIGHTS.values(), k=_OTHER_DEVICE_SLOTS)
            tails.append((by_device[preferred[u]],) * (_DEVICE_SLOTS - len(others)) + tuple(others))
            boost = _COUNTRY_GENRE_BOOST.get(country, {})
            local = [w * boost.get(genres[g], 1.0) for g, w in enumerate(genre_weights)]
            favourites: list[int] = []
            wanted = rng.choices((1, 2, 3), weights=(3, 4, 3))[0]
            while len(favourites) < wanted:
                g = rng.choices(range(n_genres), weights=local)[0]
                if g not in favourites:
                    favourites.append(g)
            leaning = rng.uniform(0.5, 0.9)  # share of streams from the favourite genres
            shares = (0.6, 0.3, 0.1)[:wanted]
            user_slots: list[int] = []
            for g, share in zip(favourites, shares, strict=True):
                user_slots += [g] * round(_TASTE_SLOTS * leaning * share / sum(shares))
            user_slots = user_slots[:_TASTE_SLOTS]
            user_slots += [n_genres] * (_TASTE_SLOTS - len(user_slots))
            slots.append(tuple(user_slots))
        self.user_heads = tuple(heads)
        self.user_tails = tuple(tails)
        self.user_slots = tuple(slots)


@lru_cache(maxsize=4)
def _catalogue(seed: int) -> _Catalogue:
    """The seed's catalogue, built once per process (about 70 ms)."""
    return _Catalogue(seed)


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
    cat: _Catalogue, rng: Random, day_text: str, start: int, span: int, count: int, first_id: int
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
    slots_n, devices_n = _TASTE_SLOTS, _DEVICE_SLOTS
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
class _DayResult:
    events: int
    malformed: int
    duplicates: int
    pool: list[str]  # valid lines of this day, re-delivery sources for the next day


def _write_day(
    handle: BinaryIO,
    cat: _Catalogue,
    seed: int,
    day: date,
    events_per_day: int,
    malformed_ratio: float,
    duplicate_ratio: float,
    previous_pool: list[str],
) -> _DayResult:
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
    return _DayResult(n - malformed, malformed, duplicates, pool)


def _file_name(day: date, gzipped: bool) -> str:
    """`events-YYYY-MM-DD.ndjson`, with `.gz` when gzipped."""
    return f"events-{day.isoformat()}.ndjson" + (".gz" if gzipped else "")


def _check_arguments(
    days: int,
    events_per_day: int,
    malformed_ratio: float,
    duplicate_ratio: float,
    gzip_every: int,
) -> None:
    """Raise ValueError naming the first argument `generate_events` cannot work with."""
    if days < 0:
        raise ValueError(f"days must be at least 0, got {days}")
    if not 0 <= events_per_day <= MAX_EVENTS_PER_DAY:
        raise ValueError(
            f"events_per_day must be between 0 and {MAX_EVENTS_PER_DAY}, got {events_per_day}"
        )
    for name, ratio in (("malformed_ratio", malformed_ratio), ("duplicate_ratio", duplicate_ratio)):
        if not 0 <= ratio <= 1:
            raise ValueError(f"{name} must be between 0 and 1, got {ratio}")
    if gzip_every < 0:
        raise ValueError(f"gzip_every must be at least 0, got {gzip_every}")


def generate_events(
    out_dir: Path,
    *,
    start: date,
    days: int,
    events_per_day: int,
    seed: int = 42,
    malformed_ratio: float = 0.005,
    duplicate_ratio: float = 0.001,
    gzip_every: int = 0,
) -> SampleSummary:
    """Write `days` daily NDJSON files of realistic stream events into `out_dir`, reproducibly.

    Day `start + i` goes to `events-YYYY-MM-DD.ndjson`, or `.ndjson.gz` when `gzip_every > 0`
    and `i + 1` is a multiple of it (gzip_every=7: every 7th day). A file holds exactly
    `events_per_day` non-blank lines: the day's events in time order, about `malformed_ratio`
    of them broken (never counted as events) and about `duplicate_ratio` of lines verbatim
    re-deliveries of an earlier event (from the same file, or from the previous day's), plus a
    few blank lines. Same arguments give byte-identical files (gzip headers carry no time or
    name). Each file is written under a `.part` name and renamed when complete, so a folder
    watcher never sees half a file; existing files of the same name are replaced.
    """
    _check_arguments(days, events_per_day, malformed_ratio, duplicate_ratio, gzip_every)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cat = _catalogue(seed)
    files: list[Path] = []
    events = malformed = duplicates = 0
    pool: list[str] = []
    for i in range(days):
        day = start + timedelta(days=i)
        gzipped = gzip_every > 0 and (i + 1) % gzip_every == 0
        path = out_dir / _file_name(day, gzipped)
        partial = path.with_name(path.name + ".part")
        try:
            with (
                open(partial, "wb", buffering=1 << 20) as raw,
                # Level 5: within 3% of level 6's size, a third faster.
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=5, mtime=0)
                if gzipped
                else nullcontext(raw) as handle,
            ):
                result = _write_day(
                    handle, cat, seed, day, events_per_day, malformed_ratio, duplicate_ratio, pool
                )
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, path)
        files.append(path)
        events += result.events
        malformed += result.malformed
        duplicates += result.duplicates
        pool = result.pool
    return SampleSummary(
        files=files, events=events, malformed_lines=malformed, duplicate_lines=duplicates
    )
