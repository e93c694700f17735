"""Realistic sample DSP analytics reports (Spotify, YouTube, Apple Music): meta and records.

A report is `{"meta": {...}, "data": [records]}` in the shapes of the analytics-reports seed and
../shared/specs/dsp-report-formats.md. What makes the records realistic:

- one catalogue of tracks per seed, shared by the three DSPs (same track_id, isrc, track and
  album names everywhere), and the same tracks in a day's report of every DSP, so cross-DSP
  marts line up; the catalogue is prefix-stable (a larger one starts with a smaller one);
- heavy-tailed (Zipf-like) popularity per track, scaled per DSP, with day-to-day noise;
- country_stats whose per-country streams / views / plays sum exactly to the record's
  aggregated total (total_streams / total_views / total_plays), and breakdowns (demographics,
  devices, sources, regions...) that split the same total, with the `""` (unknown) key often;
- the drift real files show, on a few records each: a section missing, `null`, `{}` or `[]`
  (whole sections and sub-sections), fields the spec does not name, counts sent as floats
  (`142.0`), an unknown country `""`.

Each (seed, dsp, day) has its own random stream, so a report does not depend on which other
reports were generated. `iter_records` yields one record at a time, so that `sample` can stream
a 100,000-record report into its ZIP without holding the whole JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from random import Random
from typing import Any

from music_analytics.lib.dsp.catalog import dsp_by_key
from music_analytics.lib.dsp.sample_catalog import DEFAULT_CATALOG_SIZE, Catalog, catalog
from music_analytics.lib.dsp.sample_records import RECORD_BUILDERS

GENERATED_BY = 42
_STREAM_SCALE = {"spotify": 40.0, "youtube": 90.0, "apple_music": 12.0}
# Per-record probabilities of the drift seen in real files.
_P_SECTION_DRIFT = 0.04  # a whole section missing / null / {} / []
_P_SUB_DRIFT = 0.04  # a sub-section (e.g. demographics.genders) null / {} / [] / missing
_P_EXTRA_FIELD = 0.03  # a field the spec does not name

_EXTRA_FIELDS: tuple[tuple[str, Any], ...] = (
    ("label_code", "LC-04128"),
    ("is_explicit", False),
    ("playlist_reach", {"editorial": {"New Music Friday": 1200}, "followers": 5400}),
    ("beta_metrics", {"save_rate": 0.031, "replays": 4}),
)


def _drift(rng: Random, record: dict[str, Any], sections: list[str]) -> None:
    """Make a record look like the drift real files show (see the module docstring)."""
    random = rng.random
    if random() < _P_SECTION_DRIFT:
        section = rng.choice(sections)
        kind = rng.randrange(4)
        if kind == 0:
            del record[section]
        else:
            record[section] = (None, {}, [])[kind - 1]
    if random() < _P_SUB_DRIFT:
        nested = [
            (s, k)
            for s in sections
            if isinstance(record.get(s), dict) and s != "country_stats"
            for k, v in record[s].items()
            if isinstance(v, dict)
        ]
        if nested:
            section, sub = rng.choice(nested)
            kind = rng.randrange(4)
            if kind == 0:
                del record[section][sub]
            else:
                record[section][sub] = (None, {}, [])[kind - 1]
    if random() < _P_EXTRA_FIELD:
        name, value = rng.choice(_EXTRA_FIELDS)
        record[name] = json.loads(json.dumps(value))  # a copy per record
    if random() < _P_EXTRA_FIELD and isinstance(record.get("country_stats"), dict):
        for stats in record["country_stats"].values():
            stats["estimated"] = True


def report_meta(dsp: str, day: date, records: int) -> dict[str, Any]:
    """The report's `meta` object for one DSP and day."""
    info = dsp_by_key(dsp)
    return {
        "dsp_id": info.dsp_id,
        "dsp_name": info.name,
        "date": day.isoformat(),
        "total_records": records,
        "generated_at": f"{day + timedelta(days=1)}T10:15:30+00:00",
        "generated_by": GENERATED_BY,
    }


def catalog_size_for(dsp: str, records: int, catalog_size: int | None) -> int:
    """The catalogue size to use; raises ValueError naming a DSP or count that cannot work."""
    dsp_by_key(dsp)
    if records < 0:
        raise ValueError(f"records must be at least 0, got {records}")
    size = catalog_size if catalog_size is not None else max(records, DEFAULT_CATALOG_SIZE)
    if size < records:
        raise ValueError(
            f"catalog_size {size} is smaller than records {records}: a report has one record "
            "per track, so the catalogue needs at least as many tracks"
        )
    return size


def _tracks_of_the_day(cat: Catalog, seed: int, day: date, records: int) -> Iterable[int]:
    """The tracks heard on a day, the same on every DSP: the `records` most popular after a
    day's noise, in catalogue order."""
    if records == len(cat.track_id):
        return range(records)
    noise = Random(f"music-analytics-dsp-tracks/{seed}/{day.isoformat()}").lognormvariate
    score = [p * noise(0, 0.7) for p in cat.popularity]
    return sorted(sorted(range(len(score)), key=score.__getitem__, reverse=True)[:records])


def iter_records(
    dsp: str, day: date, records: int, seed: int, catalog_size: int
) -> Iterator[dict[str, Any]]:
    """The report's records one at a time, in track order."""
    cat = catalog(seed, catalog_size)
    rng = Random(f"music-analytics-dsp-report/{seed}/{dsp}/{day.isoformat()}")
    info = dsp_by_key(dsp)
    build = RECORD_BUILDERS[dsp]
    scale = _STREAM_SCALE[dsp]
    tracks = _tracks_of_the_day(cat, seed, day, records)
    first_id = ((day.toordinal() % 10_000) * 10 + info.dsp_id) * 1_000_000  # unique per DSP-day
    data_date = f"{day.isoformat()}T00:00:00.000000Z"
    stamp = f"{day + timedelta(days=1)}T02:15:00.000000Z"
    for n, t in enumerate(tracks):
        total = max(1, round(cat.popularity[t] * scale * rng.lognormvariate(0, 0.35)))
        record: dict[str, Any] = {
            "id": first_id + n,
            "data_date": data_date,
            "dsp_name": info.name,
            "track_id": cat.track_id[t],
            "track_name": cat.track_name[t],
            "album_id": cat.album_id[t],
            "album_name": cat.album_name[t],
            "isrc": cat.isrc[t],
        }
        details = build(rng, cat, t, total)
        record.update(details)
        record["created_at"] = stamp
        record["updated_at"] = stamp
        _drift(rng, record, [k for k, v in details.items() if isinstance(v, dict)])
        yield record


def build_report(
    dsp: str, day: date, *, records: int, seed: int, catalog_size: int | None = None
) -> dict[str, Any]:
    """A whole report (meta + data) for one DSP and day, reproducibly from the seed.

    `dsp` is our key (spotify, youtube, apple_music); the report has one record per track for
    `records` tracks of the seed's catalogue of `catalog_size` tracks (default: the larger of
    `records` and 2,000).
    """
    size = catalog_size_for(dsp, records, catalog_size)
    return {
        "meta": report_meta(dsp, day, records),
        "data": list(iter_records(dsp, day, records, seed, size)),
    }
