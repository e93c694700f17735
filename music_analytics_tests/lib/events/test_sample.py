"""The sample-event generator: reproducible, realistic, and dirty in the documented ways."""

from __future__ import annotations

import gzip
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from music_analytics.lib.events import sample_lines
from music_analytics.lib.events.sample import SampleSummary, generate_events
from music_analytics.lib.events.sample_catalogue import (
    COUNTRY_WEIGHTS,
    DEVICE_WEIGHTS,
    GENRE_WEIGHTS,
)
from music_analytics.lib.events.validation import EVENT_FIELDS, event_validation_sql

START = date(2025, 4, 12)  # a Saturday, so runs of a few days cover weekend and weekdays
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
FIELDS = tuple(name for name, _ in EVENT_FIELDS)
STRING_FIELDS = tuple(f for f in FIELDS if f not in ("stream_duration_seconds", "completed"))


def read_lines(path: Path) -> list[str]:
    """The file's lines without their newlines (gzip when the name says so)."""
    data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    text = data.decode()
    assert text.endswith("\n") or not text
    return text[:-1].split("\n") if text else []


def parse_valid(line: str) -> dict | None:
    """The event when the line is valid by the schema, else None."""
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(event, dict) or set(event) != set(FIELDS):
        return None
    if any(not isinstance(event[f], str) or not event[f] for f in STRING_FIELDS):
        return None
    try:
        datetime.strptime(event["stream_start_time"], TIME_FORMAT)
    except ValueError:
        return None
    seconds, completed = event["stream_duration_seconds"], event["completed"]
    if type(seconds) is not int or seconds < 0 or type(completed) is not int:
        return None
    return event if completed in (0, 1) else None


@dataclass
class Parsed:
    """Every line of a run's files, sorted into kinds; duplicates judged across files."""

    events: list[tuple[Path, dict, bool]] = field(default_factory=list)  # (file, event, is_dup)
    malformed: list[tuple[Path, str]] = field(default_factory=list)
    blank: int = 0
    non_blank_per_file: dict[Path, int] = field(default_factory=dict)

    @property
    def duplicates(self) -> list[tuple[Path, dict, bool]]:
        return [e for e in self.events if e[2]]

    @property
    def originals(self) -> list[tuple[Path, dict, bool]]:
        return [e for e in self.events if not e[2]]


def parse(summary: SampleSummary) -> Parsed:
    parsed = Parsed()
    seen: set[str] = set()
    for path in summary.files:
        count = 0
        for line in read_lines(path):
            if not line.strip():
                parsed.blank += 1
                continue
            count += 1
            event = parse_valid(line)
            if event is None:
                parsed.malformed.append((path, line))
                continue
            duplicate = event["stream_id"] in seen
            seen.add(event["stream_id"])
            parsed.events.append((path, event, duplicate))
        parsed.non_blank_per_file[path] = count
    return parsed


def file_day(path: Path) -> date:
    return date.fromisoformat(path.name.removeprefix("events-")[:10])


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> tuple[SampleSummary, Parsed]:
    """The demo's shape: 30 days of 2,000 events, every 7th day gzipped."""
    out = tmp_path_factory.mktemp("month")
    summary = generate_events(out, start=START, days=30, events_per_day=2_000, gzip_every=7)
    return summary, parse(summary)


@pytest.fixture(scope="module")
def dirty(tmp_path_factory: pytest.TempPathFactory) -> tuple[SampleSummary, Parsed]:
    """Four days with many malformed and duplicate lines, to see every kind often."""
    out = tmp_path_factory.mktemp("dirty")
    summary = generate_events(
        out, start=START, days=4, events_per_day=3_000, malformed_ratio=0.05, duplicate_ratio=0.02
    )
    return summary, parse(summary)


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    runs = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        summary = generate_events(
            tmp_path / name, start=START, days=3, events_per_day=1_500, seed=seed, gzip_every=2
        )
        runs[name] = (summary, [p.read_bytes() for p in summary.files])
    assert runs["a"][1] == runs["b"][1]
    assert runs["a"][0].events == runs["b"][0].events
    assert [p.name for p in runs["a"][0].files] == [p.name for p in runs["c"][0].files]
    assert all(x != y for x, y in zip(runs["a"][1], runs["c"][1], strict=True))


def test_a_day_does_not_depend_on_where_the_run_started(tmp_path: Path) -> None:
    """Days after a run's first are seeded by (seed, day): overlapping runs agree on them."""
    first = generate_events(tmp_path / "a", start=START, days=3, events_per_day=1_000)
    later = generate_events(
        tmp_path / "b", start=START + timedelta(days=1), days=2, events_per_day=1_000
    )
    assert first.files[2].read_bytes() == later.files[1].read_bytes()


def test_file_names_one_per_day_with_every_nth_gzipped(tmp_path: Path) -> None:
    summary = generate_events(
        tmp_path / "out", start=START, days=6, events_per_day=50, gzip_every=3
    )
    names = [p.name for p in summary.files]
    assert names == [
        "events-2025-04-12.ndjson",
        "events-2025-04-13.ndjson",
        "events-2025-04-14.ndjson.gz",
        "events-2025-04-15.ndjson",
        "events-2025-04-16.ndjson",
        "events-2025-04-17.ndjson.gz",
    ]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == names  # no .part left over
    assert gzip.decompress(summary.files[2].read_bytes()).startswith(b'{"stream_id": ')

    every = generate_events(tmp_path / "all", start=START, days=2, events_per_day=50, gzip_every=1)
    assert all(p.name.endswith(".ndjson.gz") for p in every.files)
    # The gzip header holds no file name and no time, so reruns are byte-identical.
    header = every.files[0].read_bytes()[:10]
    assert header[3] == 0 and header[4:8] == b"\0\0\0\0"


def test_summary_counts_match_the_files(month: tuple[SampleSummary, Parsed]) -> None:
    summary, parsed = month
    assert len(summary.files) == 30
    assert summary.events == len(parsed.events)
    assert summary.malformed_lines == len(parsed.malformed)
    assert summary.duplicate_lines == len(parsed.duplicates)
    assert set(parsed.non_blank_per_file.values()) == {2_000}  # blank lines are extra
    assert summary.events + summary.malformed_lines == 30 * 2_000


def test_malformed_share_is_near_the_ratio(tmp_path: Path) -> None:
    summary = generate_events(tmp_path, start=START, days=2, events_per_day=10_000)
    parsed = parse(summary)
    assert 70 <= len(parsed.malformed) <= 130  # 0.5% of 20,000 is 100
    assert summary.malformed_lines == len(parsed.malformed)
    assert 0 < parsed.blank < 60


def classify(line: str) -> str:
    """Which way a malformed line is broken."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return "truncated"
    if isinstance(value, list):
        return "array"
    if set(value) != set(FIELDS):
        return "missing field"
    if isinstance(value["stream_duration_seconds"], str):
        return "wrong type"
    if value["completed"] == 2:
        return "completed 2"
    if value["stream_duration_seconds"] < 0:
        return "negative duration"
    datetime.strptime(value["stream_start_time"], TIME_FORMAT)  # raises for the kind below
    return "unexpected"


def test_malformed_lines_rotate_through_every_kind(dirty: tuple[SampleSummary, Parsed]) -> None:
    summary, parsed = dirty
    kinds = Counter()
    for _, line in parsed.malformed:
        try:
            kinds[classify(line)] += 1
        except ValueError:
            kinds["bad time"] += 1
    expected = {
        "truncated",
        "array",
        "missing field",
        "wrong type",
        "completed 2",
        "negative duration",
        "bad time",
    }
    assert set(kinds) == expected
    # Rotated, not drawn: each day's share of a kind is within one of an equal split.
    assert min(kinds.values()) >= len(parsed.malformed) // 7 - len(summary.files)


def test_the_warehouse_validator_agrees_line_by_line(dirty: tuple[SampleSummary, Parsed]) -> None:
    """Every line the generator counts as malformed is quarantined, every event is accepted."""
    summary, parsed = dirty
    lines = [line for path in summary.files[:2] for line in read_lines(path)]
    conn = duckdb.connect()
    conn.execute(
        "create table lines as select unnest(range(1, ? + 1)) as line_number, "
        "unnest(?::varchar[]) as line",
        [len(lines), lines],
    )
    rows = conn.execute(
        f"select line, error is null from ({event_validation_sql('lines')})"
    ).fetchall()
    assert len(rows) == sum(1 for line in lines if line.strip())
    for line, accepted in rows:
        assert accepted == (parse_valid(line) is not None), line


def test_duplicates_repeat_earlier_events_within_and_across_files(
    dirty: tuple[SampleSummary, Parsed],
) -> None:
    summary, parsed = dirty
    assert summary.duplicate_lines == len(parsed.duplicates) > 0
    first_seen: dict[str, tuple[Path, dict]] = {}
    same_file = other_file = 0
    for path, event, duplicate in parsed.events:
        if not duplicate:
            first_seen[event["stream_id"]] = (path, event)
            continue
        original_path, original = first_seen[event["stream_id"]]
        assert event == original  # verbatim
        if original_path == path:
            same_file += 1
        else:
            assert file_day(original_path) == file_day(path) - timedelta(days=1)
            other_file += 1
    assert same_file > 0 and other_file > 0


def test_duplicate_share_is_near_the_ratio(month: tuple[SampleSummary, Parsed]) -> None:
    summary, _ = month
    assert 40 <= summary.duplicate_lines <= 80  # 0.1% of 60,000 is 60


def test_clean_output_when_ratios_are_zero(tmp_path: Path) -> None:
    summary = generate_events(
        tmp_path, start=START, days=2, events_per_day=3_000, malformed_ratio=0, duplicate_ratio=0
    )
    parsed = parse(summary)
    assert (summary.malformed_lines, summary.duplicate_lines, parsed.blank) == (0, 0, 0)
    assert summary.events == len(parsed.events) == 6_000
    ids = [event["stream_id"] for _, event, _ in parsed.events]
    assert len(set(ids)) == len(ids)


def test_track_popularity_is_zipf_like(month: tuple[SampleSummary, Parsed]) -> None:
    _, parsed = month
    plays = Counter(event["track_id"] for _, event, _ in parsed.events)
    ranked = [n for _, n in plays.most_common()]
    total = sum(ranked)
    assert sum(ranked[:20]) / total > 0.25  # the top 1% of 2,000 tracks
    assert ranked[0] > 20 * ranked[len(ranked) // 2]
    assert len(plays) > 1_000  # a long tail is played too


def test_times_are_in_the_files_day_well_formed_and_ordered(
    month: tuple[SampleSummary, Parsed],
) -> None:
    _, parsed = month
    previous: dict[Path, datetime] = {}
    hours = Counter()
    for path, event, duplicate in parsed.events:
        text = event["stream_start_time"]
        started = datetime.strptime(text, TIME_FORMAT)
        assert started.strftime(TIME_FORMAT) == text  # zero-padded, no fraction, no zone
        if duplicate:  # re-deliveries may come late, even in the next day's file
            continue
        assert started.date() == file_day(path)
        assert started >= previous.get(path, started)
        previous[path] = started
        hours[started.hour] += 1
    assert hours[20] > 3 * hours[4]  # busy evenings, quiet early mornings (UTC)


def test_ids_are_unique_and_increasing(month: tuple[SampleSummary, Parsed]) -> None:
    _, parsed = month
    numbers = [
        int(e["stream_id"].removeprefix("stream_")) for _, e, dup in parsed.events if not dup
    ]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)


def test_durations_follow_completion(month: tuple[SampleSummary, Parsed]) -> None:
    _, parsed = month
    completed_by_track: dict[str, list[int]] = defaultdict(list)
    skipped_by_track: dict[str, list[int]] = defaultdict(list)
    for _, event, _ in parsed.events:
        seconds = event["stream_duration_seconds"]
        assert event["completed"] in (0, 1)
        if event["completed"]:
            assert 118 <= seconds <= 420
            completed_by_track[event["track_id"]].append(seconds)
        else:
            assert 5 <= seconds <= 336  # 80% of the longest track
            skipped_by_track[event["track_id"]].append(seconds)
    for durations in completed_by_track.values():  # a track has one length
        assert max(durations) - min(durations) <= 2
    for track, durations in skipped_by_track.items():
        if track in completed_by_track:
            assert max(durations) <= 0.8 * (max(completed_by_track[track]) + 2)
    share = sum(map(len, completed_by_track.values())) / len(parsed.events)
    assert 0.4 < share < 0.65


def test_catalogue_is_consistent_and_values_are_from_the_lists(
    month: tuple[SampleSummary, Parsed],
) -> None:
    _, parsed = month
    track_to: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    album_to: dict[str, set[str]] = defaultdict(set)
    artist_to: dict[str, set[str]] = defaultdict(set)
    user_to: dict[str, set[str]] = defaultdict(set)
    devices = Counter()
    for _, event, _ in parsed.events:
        track_to[event["track_id"]].add((event["artist_id"], event["album_id"], event["genre"]))
        album_to[event["album_id"]].add(event["artist_id"])
        artist_to[event["artist_id"]].add(event["genre"])
        user_to[event["user_id"]].add(event["country"])
        devices[event["device_type"]] += 1
    assert all(len(v) == 1 for v in track_to.values())
    assert all(len(v) == 1 for v in album_to.values())
    assert all(len(v) == 1 for v in artist_to.values())
    assert all(len(v) == 1 for v in user_to.values())  # a user streams from home
    assert len(track_to) <= 2_000 and len(album_to) <= 700 and len(artist_to) <= 400
    assert 3_000 < len(user_to) <= 5_000
    genres = {g for v in artist_to.values() for g in v}
    assert genres <= set(GENRE_WEIGHTS) and len(genres) >= 12
    assert {c for v in user_to.values() for c in v} == set(COUNTRY_WEIGHTS)
    assert set(devices) == set(DEVICE_WEIGHTS)
    assert devices.most_common(1)[0][0] == "mobile"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"days": -1},
        {"events_per_day": -5},
        {"events_per_day": 10**7},
        {"malformed_ratio": 1.5},
        {"duplicate_ratio": -0.1},
        {"gzip_every": -2},
    ],
)
def test_bad_arguments_are_refused(tmp_path: Path, kwargs: dict) -> None:
    arguments = {"start": START, "days": 1, "events_per_day": 10} | kwargs
    with pytest.raises(ValueError):
        generate_events(tmp_path, **arguments)


def test_tiny_and_empty_days(tmp_path: Path) -> None:
    summary = generate_events(
        tmp_path, start=START, days=3, events_per_day=3, malformed_ratio=0.4, duplicate_ratio=0.4
    )
    parsed = parse(summary)
    assert summary.events == len(parsed.events)
    assert summary.events + summary.malformed_lines == 9
    assert summary.duplicate_lines == len(parsed.duplicates)
    empty = generate_events(tmp_path / "empty", start=START, days=2, events_per_day=0)
    assert (empty.events, empty.malformed_lines, empty.duplicate_lines) == (0, 0, 0)
    assert [p.read_bytes() for p in empty.files] == [b"", b""]


def test_busy_hours_are_written_in_slices_without_losing_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An hour holding more than a slice's worth (8,192; 100 here, to stay fast) is split."""
    monkeypatch.setattr(sample_lines, "_CHUNK_LINES", 100)
    summary = generate_events(tmp_path / "sliced", start=START, days=2, events_per_day=10_000)
    parsed = parse(summary)
    assert summary.events == len(parsed.events) == 20_000 - summary.malformed_lines
    assert summary.duplicate_lines == len(parsed.duplicates) > 0
    for path in summary.files:
        times = [e["stream_start_time"] for p, e, _ in parsed.originals if p == path]
        assert times == sorted(times) and {t[:10] for t in times} == {file_day(path).isoformat()}
        assert Counter(t[11:13] for t in times).most_common(1)[0][1] > 100
    monkeypatch.undo()
    whole = generate_events(tmp_path / "whole", start=START, days=2, events_per_day=10_000)
    assert (whole.events, whole.malformed_lines) == (summary.events, summary.malformed_lines)
