"""Realistic sample DSP analytics reports (Spotify, YouTube, Apple Music), as the API's ZIPs.

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
reports were generated. Reports are written to the ZIP a record at a time, so generating a
100,000-record report never holds the whole JSON.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from random import Random
from typing import Any

from music_analytics.lib.dsp.catalog import DSP_KEYS, dsp_by_key
from music_analytics.lib.events.sample_catalogue import COUNTRY_WEIGHTS

DEFAULT_CATALOG_SIZE = 2_000
GENERATED_BY = 42
_PARETO_ALPHA = 1.1  # track popularity ~ Pareto: streams by rank fall off like a Zipf law
_STREAM_SCALE = {"spotify": 40.0, "youtube": 90.0, "apple_music": 12.0}
_WRITE_CHUNK = 1 << 20
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a ZIP can hold
# Per-record probabilities of the drift seen in real files.
_P_SECTION_DRIFT = 0.04  # a whole section missing / null / {} / []
_P_SUB_DRIFT = 0.04  # a sub-section (e.g. demographics.genders) null / {} / [] / missing
_P_EXTRA_FIELD = 0.03  # a field the spec does not name
_P_FLOAT_COUNTS = 0.05  # country counts sent as floats (142.0)
_P_UNKNOWN_COUNTRY = 0.05  # part of the streams under the "" country

_WORDS_A = (
    "Summer", "Midnight", "Golden", "Electric", "Silent", "Neon", "Velvet", "Broken", "Wild",
    "Coastal", "Crimson", "Paper", "Northern", "Lucky", "Hollow", "Burning", "Blue", "Distant",
    "Sweet", "Lonely", "Crystal", "Faded", "Sunday", "Little",
)  # fmt: skip
_WORDS_B = (
    "Breeze", "Dreams", "Heart", "Lights", "River", "Highway", "Echoes", "Fire", "Rain",
    "Hearts", "Skyline", "Waves", "Shadows", "Garden", "Letters", "Signal", "Horizon", "Motel",
    "Parade", "Satellite", "Avenue", "Static", "Mirrors", "Ocean",
)  # fmt: skip
_ISRC_COUNTRIES = ("US", "GB", "DE", "FR", "SE", "BR", "JP", "NL", "CA", "AU")
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_YOUTUBE_CHARS = _BASE62 + "-_"
_GEOHASH_CHARS = "0123456789bcdefghjkmnpqrstuvwxyz"
_COUNTRIES = tuple(COUNTRY_WEIGHTS)
_COUNTRY_W = tuple(COUNTRY_WEIGHTS.values())
_REGIONS = {
    "US": ("US-CA", "US-NY", "US-TX", "US-FL", "US-IL"),
    "GB": ("GB-LON", "GB-MAN", "GB-EDH"),
    "DE": ("DE-BE", "DE-BY", "DE-NW"),
    "BR": ("BR-SP", "BR-RJ", "BR-MG"),
    "IN": ("IN-MH", "IN-DL", "IN-KA"),
    "MX": ("MX-CMX", "MX-JAL"),
    "FR": ("FR-IDF", "FR-ARA"),
    "JP": ("JP-13", "JP-27"),
}
# Breakdown dimensions: keys and their base weights (a record jitters them).
_SPOTIFY_AGES = {"0-17": 6, "18-22": 22, "23-27": 26, "28-34": 20, "35-44": 13, "45-59": 9,
                 "60-150": 4}  # fmt: skip
_SPOTIFY_GENDERS = {"female": 47, "male": 43, "non-binary": 2, "": 8}
_SPOTIFY_PRODUCTS = {"premium": 30, "duo-master": 7, "family-sub": 15, "student": 6, "": 42}
_SPOTIFY_ACCESS = {"premium": 68, "free": 32}
_SPOTIFY_DEVICES = {"cell phone": 62, "computer": 24, "tablet": 6, "smart speaker": 5,
                    "game console": 1, "": 2}  # fmt: skip
_SPOTIFY_OS = {"iOS": 38, "Android": 34, "Windows": 16, "macOS": 9, "Linux": 1, "": 2}
_SPOTIFY_SOURCES = {"others_playlist": 34, "collection": 22, "radio": 14, "search": 12,
                    "album": 8, "artist": 7, "": 3}  # fmt: skip
_YOUTUBE_TRAFFIC = {"YT_SEARCH": 21, "SUGGESTED": 46, "PLAYLIST": 14, "EXTERNAL": 12,
                    "BROWSE": 5, "": 2}  # fmt: skip
_YOUTUBE_DEVICES = {"MOBILE": 61, "DESKTOP": 25, "TV": 10, "TABLET": 3, "": 1}
_APPLE_AGES = {"18-24": 30, "25-34": 38, "35-44": 17, "45-54": 9, "55+": 6}
_APPLE_GENDERS = {"female": 49, "male": 44, "": 7}
_APPLE_SOURCES = {"library": 38, "radio": 11, "playlist": 31, "search": 13, "": 7}


class _Catalog:
    """Tracks as parallel tuples; track i is the same in every catalogue of the seed."""

    __slots__ = (
        "track_id",
        "track_name",
        "album_id",
        "album_name",
        "isrc",
        "spotify_id",
        "youtube_id",
        "apple_id",
        "length",
        "popularity",
    )

    def __init__(self, seed: int, size: int) -> None:
        rng = Random(f"music-analytics-dsp-catalog/{seed}")
        choice, randrange, random = rng.choice, rng.randrange, rng.random
        track_id, track_name, album_id, album_name, isrc = [], [], [], [], []
        spotify_id, youtube_id, apple_id, length, popularity = [], [], [], [], []
        album_no, album_left, album_title, registrant, year = 0, 0, "", "", 0
        for i in range(size):
            if album_left == 0:  # a new album of 1-12 tracks
                album_no += 1
                album_left = 1 + min(11, int(rng.expovariate(0.25)))
                album_title = f"{choice(_WORDS_A)} {choice(_WORDS_B)}"
                registrant = "".join(choice(_ALNUM) for _ in range(3))
                year = randrange(5, 27)
            album_left -= 1
            track_id.append(5_001 + i)
            track_name.append(f"{choice(_WORDS_A)} {choice(_WORDS_B)}")
            album_id.append(1_800 + album_no)
            album_name.append(album_title)
            isrc.append(f"{choice(_ISRC_COUNTRIES)}{registrant}{year:02d}{i % 100_000:05d}")
            spotify_id.append("".join(choice(_BASE62) for _ in range(22)))
            youtube_id.append("".join(choice(_YOUTUBE_CHARS) for _ in range(11)))
            apple_id.append(str(1_000_000_000 + randrange(500_000_000)))
            length.append(round(120 + 300 * random() ** 1.8))
            popularity.append(rng.paretovariate(_PARETO_ALPHA))
        self.track_id = tuple(track_id)
        self.track_name = tuple(track_name)
        self.album_id = tuple(album_id)
        self.album_name = tuple(album_name)
        self.isrc = tuple(isrc)
        self.spotify_id = tuple(spotify_id)
        self.youtube_id = tuple(youtube_id)
        self.apple_id = tuple(apple_id)
        self.length = tuple(length)
        self.popularity = tuple(popularity)


@lru_cache(maxsize=4)
def _catalog(seed: int, size: int) -> _Catalog:
    return _Catalog(seed, size)


def _split(total: int, weights: list[float]) -> list[int]:
    """`total` split proportionally to `weights` (largest remainder), summing exactly."""
    scale = total / sum(weights)
    exact = [w * scale for w in weights]
    counts = [int(x) for x in exact]
    short = total - sum(counts)
    if short:
        by_remainder = sorted(range(len(weights)), key=lambda i: counts[i] - exact[i])
        for i in by_remainder[:short]:
            counts[i] += 1
    return counts


def _breakdown(rng: Random, total: int, base: dict[str, float]) -> dict[str, int]:
    """`total` split over the keys of `base` with per-record jitter; zero counts left out."""
    random = rng.random
    counts = _split(total, [w * (0.5 + random()) for w in base.values()])
    return {k: c for k, c in zip(base, counts) if c}


def _pick_countries(rng: Random, total: int) -> list[str]:
    """The countries a track was heard in: more of them for more streams, big markets first."""
    wanted = min(len(_COUNTRIES), 1 + int(2 * math.log10(total + 1)))
    picked: list[str] = []
    while len(picked) < wanted:
        country = rng.choices(_COUNTRIES, _COUNTRY_W)[0]
        if country not in picked:
            picked.append(country)
    return picked


def _country_split(rng: Random, total: int) -> dict[str, int]:
    """`total` split over countries (all > 0), sometimes with an unknown `""` country."""
    countries = _pick_countries(rng, total)
    if len(countries) > 1 and rng.random() < _P_UNKNOWN_COUNTRY:
        countries[-1] = ""
    weights = [COUNTRY_WEIGHTS.get(c, 2.0) * rng.lognormvariate(0, 0.6) for c in countries]
    counts = _split(total, weights)
    split = {c: n for c, n in zip(countries, counts) if n}
    return split or {countries[0]: total}


def _regions(rng: Random, by_country: dict[str, int]) -> dict[str, int]:
    """Part of each known country's streams placed in a few of its regions."""
    regions: dict[str, int] = {}
    for country, n in by_country.items():
        names = _REGIONS.get(country)
        if names and n >= 4:
            located = int(n * rng.uniform(0.4, 0.8))
            regions.update(_breakdown(rng, located, dict.fromkeys(names, 1.0)))
    return regions


def _maybe_float(value: int, as_float: bool) -> int | float:
    return float(value) if as_float else value


def _spotify_record(rng: Random, cat: _Catalog, t: int, total: int) -> dict[str, Any]:
    floats = rng.random() < _P_FLOAT_COUNTS
    by_country = _country_split(rng, total)
    length = cat.length[t]
    country_stats = {}
    for country, n in by_country.items():
        avg_pct = round(rng.uniform(55, 95), 1)
        country_stats[country] = {
            "streams_count": _maybe_float(n, floats),
            "completion_rate": round(avg_pct * rng.uniform(0.8, 0.95), 1),
            "valid_streams_count": _maybe_float(n, floats),
            "track_length_seconds": length,
            "total_reproduction_time": round(n * length * avg_pct / 100_000, 3),
            "significant_streams_count": round(n * rng.uniform(0.6, 0.8)),
            "avg_reproduction_percentage": avg_pct,
        }
    skips = round(total * rng.uniform(0.15, 0.4))
    video = round(total * rng.uniform(0, 0.08))
    offline = round(total * rng.uniform(0.02, 0.15))
    shuffle_on = round(total * rng.uniform(0.3, 0.7))
    repeat_on = round(total * rng.uniform(0.02, 0.1))
    uris = {
        f"spotify:playlist:37i9dQZF1DX{''.join(rng.choices(_BASE62, k=14))}": round(
            total * rng.uniform(0.05, 0.3)
        )
        for _ in range(rng.randrange(0, 4))
    }
    return {
        "spotify_track_id": cat.spotify_id[t],
        "country_stats": country_stats,
        "demographics": {
            "age_groups": _breakdown(rng, total, _SPOTIFY_AGES),
            "genders": _breakdown(rng, total, _SPOTIFY_GENDERS),
            "products": _breakdown(rng, total, _SPOTIFY_PRODUCTS),
            "access_levels": _breakdown(rng, total, _SPOTIFY_ACCESS),
            "subscription_types": [],
        },
        "aggregated_data": {
            "total_streams": _maybe_float(total, floats),
            "total_skips": skips,
            "total_saves": round(total * rng.uniform(0, 0.04)),
            "total_shares": round(total * rng.uniform(0, 0.01)),
        },
        "content_type_stats": {
            "audio_streams": total - video,
            "video_streams": video,
            "total_streams": total,
            "audio_percentage": round(100 * (total - video) / total),
            "video_percentage": round(100 * video / total),
        },
        "geographic_stats": {
            "regions": _regions(rng, by_country),
            "geohashes": {
                "".join(rng.choices(_GEOHASH_CHARS, k=4)): round(total * rng.uniform(0.02, 0.1))
                for _ in range(rng.randrange(0, 4))
            },
            "connection_countries": dict(by_country),
            "reporting_countries": dict(by_country),
            "total_geolocated_streams": total,
        },
        "device_platform_stats": {
            "device_types": _breakdown(rng, total, _SPOTIFY_DEVICES),
            "operating_systems": _breakdown(rng, total, _SPOTIFY_OS),
            "shuffle_usage": {"enabled": shuffle_on, "disabled": total - shuffle_on},
            "repeat_usage": {"enabled": repeat_on, "disabled": total - repeat_on},
        },
        "source_stats": {
            "sources": _breakdown(rng, total, _SPOTIFY_SOURCES),
            "source_uris": uris,
        },
        "engagement_stats": {
            "completion_rate": round(rng.uniform(50, 90), 2),
            "lyrics_viewed": round(total * rng.uniform(0, 0.06)),
            "canvas_viewed": round(total * rng.uniform(0, 0.03)),
            "discovery_streams": round(total * rng.uniform(0.05, 0.3)),
            "total_analyzed": total,
        },
        "timestamp_reliability": {
            "online_streams": total - offline,
            "offline_streams": offline,
            "total_streams": total,
            "online_percentage": round(100 * (total - offline) / total),
            "offline_percentage": round(100 * offline / total),
        },
    }


def _youtube_record(rng: Random, cat: _Catalog, t: int, total: int) -> dict[str, Any]:
    floats = rng.random() < _P_FLOAT_COUNTS
    by_country = _country_split(rng, total)
    length = cat.length[t]
    country_stats = {}
    watch_total = 0.0
    for country, n in by_country.items():
        pct = round(rng.uniform(35, 85), 1)
        seconds = round(length * pct / 100, 1)
        minutes = round(n * seconds / 60, 1)
        watch_total += minutes
        country_stats[country] = {
            "views": _maybe_float(n, floats),
            "watch_time_minutes": minutes,
            "avg_view_duration_seconds": seconds,
            "avg_view_percentage": pct,
        }
    avg_seconds = round(60 * watch_total / total, 1)
    return {
        "youtube_video_id": cat.youtube_id[t],
        "country_stats": country_stats,
        "aggregated_data": {
            "total_views": _maybe_float(total, floats),
            "total_watch_time_minutes": round(watch_total, 1),
            "likes": round(total * rng.uniform(0.005, 0.05)),
            "dislikes": round(total * rng.uniform(0, 0.003)),
            "comments": round(total * rng.uniform(0, 0.006)),
            "shares": round(total * rng.uniform(0, 0.004)),
            "subscribers_gained": round(total * rng.uniform(0, 0.002)),
        },
        "playback_stats": {
            "avg_view_duration_seconds": avg_seconds,
            "avg_view_percentage": round(100 * avg_seconds / length, 1),
            "traffic_sources": _breakdown(rng, total, _YOUTUBE_TRAFFIC),
            "device_types": _breakdown(rng, total, _YOUTUBE_DEVICES),
        },
        "geographic_stats": {
            "regions": _regions(rng, by_country),
            "total_geolocated_views": total,
        },
    }


def _apple_record(rng: Random, cat: _Catalog, t: int, total: int) -> dict[str, Any]:
    floats = rng.random() < _P_FLOAT_COUNTS
    by_country = _country_split(rng, total)
    country_stats = {}
    listeners_total = 0
    for country, n in by_country.items():
        listeners = max(1, round(n * rng.uniform(0.55, 0.9)))
        listeners_total += listeners
        country_stats[country] = {
            "plays": _maybe_float(n, floats),
            "listeners": listeners,
        }
    shazams = round(total * rng.uniform(0.02, 0.2))
    return {
        "apple_track_id": cat.apple_id[t],
        "country_stats": country_stats,
        "aggregated_data": {
            "total_plays": _maybe_float(total, floats),
            "total_listeners": listeners_total,
            "library_adds": round(total * rng.uniform(0, 0.06)),
            "playlist_adds": round(total * rng.uniform(0, 0.02)),
        },
        "shazam_stats": {
            "total_shazams": shazams,
            "country_shazams": _breakdown(
                rng, shazams, {c: COUNTRY_WEIGHTS.get(c, 2.0) for c in by_country}
            ),
        },
        "demographics": {
            "age_groups": _breakdown(rng, total, _APPLE_AGES),
            "genders": _breakdown(rng, total, _APPLE_GENDERS),
        },
        "source_stats": {"sources": _breakdown(rng, total, _APPLE_SOURCES)},
    }


_RECORD_BUILDERS: dict[str, Callable[[Random, _Catalog, int, int], dict[str, Any]]] = {
    "spotify": _spotify_record,
    "youtube": _youtube_record,
    "apple_music": _apple_record,
}
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


def _meta(dsp: str, day: date, records: int) -> dict[str, Any]:
    info = dsp_by_key(dsp)
    return {
        "dsp_id": info.dsp_id,
        "dsp_name": info.name,
        "date": day.isoformat(),
        "total_records": records,
        "generated_at": f"{day + timedelta(days=1)}T10:15:30+00:00",
        "generated_by": GENERATED_BY,
    }


def _check_arguments(dsp: str, records: int, catalog_size: int | None) -> int:
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


def _tracks_of_the_day(cat: _Catalog, seed: int, day: date, records: int) -> Iterable[int]:
    """The tracks heard on a day, the same on every DSP: the `records` most popular after a
    day's noise, in catalogue order."""
    if records == len(cat.track_id):
        return range(records)
    noise = Random(f"music-analytics-dsp-tracks/{seed}/{day.isoformat()}").lognormvariate
    score = [p * noise(0, 0.7) for p in cat.popularity]
    return sorted(sorted(range(len(score)), key=score.__getitem__, reverse=True)[:records])


def _iter_records(
    dsp: str, day: date, records: int, seed: int, catalog_size: int
) -> Iterator[dict[str, Any]]:
    """The report's records one at a time, in track order."""
    cat = _catalog(seed, catalog_size)
    rng = Random(f"music-analytics-dsp-report/{seed}/{dsp}/{day.isoformat()}")
    info = dsp_by_key(dsp)
    build = _RECORD_BUILDERS[dsp]
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
    size = _check_arguments(dsp, records, catalog_size)
    return {
        "meta": _meta(dsp, day, records),
        "data": list(_iter_records(dsp, day, records, seed, size)),
    }


def _zip_info(member_name: str, day: date | None) -> zipfile.ZipInfo:
    """A regular file member with a fixed time, so the same report gives the same bytes."""
    stamp = (day.year, day.month, day.day, 0, 0, 0) if day and day.year >= 1980 else _EPOCH
    info = zipfile.ZipInfo(member_name, date_time=stamp)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def _write_streaming(
    path: Path, member_name: str, day: date | None, meta: Any, records: Iterable[Any]
) -> None:
    """`{"meta": ..., "data": [...]}` into the ZIP, buffered a megabyte at a time."""
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    with (
        zipfile.ZipFile(path, "w", compresslevel=6) as archive,
        archive.open(_zip_info(member_name, day), "w", force_zip64=True) as member,
    ):
        parts = ['{"meta":', dumps(meta), ',"data":[']
        size = 0
        first = True
        for record in records:
            text = dumps(record)
            parts.append(text if first else "," + text)
            first = False
            size += len(text)
            if size >= _WRITE_CHUNK:
                member.write("".join(parts).encode())
                parts, size = [], 0
        parts.append("]}")
        member.write("".join(parts).encode())


def _member_name(day: date | str) -> str:
    return f"analytics-report-{day}.json"


def write_report_zip(
    path: Path, report: dict[str, Any] | bytes, *, member_name: str | None = None
) -> Path:
    """Write a report as the API delivers it: a deflated ZIP with one JSON member.

    The member is `analytics-report-{meta.date}.json` unless `member_name` is given. Bytes are
    written verbatim (for tests that need broken JSON) and then `member_name` is required.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(report, bytes):
        if member_name is None:
            raise ValueError("write_report_zip: pass member_name when the report is bytes")
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(_zip_info(member_name, None), report)
        return path
    meta = report.get("meta")
    day_text = meta.get("date") if isinstance(meta, dict) else None
    try:
        day = date.fromisoformat(day_text) if isinstance(day_text, str) else None
    except ValueError:
        day = None
    if member_name is None:
        if day_text is None:
            raise ValueError("write_report_zip: the report has no meta.date; pass member_name")
        member_name = _member_name(day_text)
    if set(report) == {"meta", "data"} and isinstance(report["data"], list):
        _write_streaming(path, member_name, day, meta, report["data"])
    else:  # an unusual shape a test asked for: written as it is
        text = json.dumps(report, ensure_ascii=False, separators=(",", ":"))
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(_zip_info(member_name, day), text.encode())
    return path


def generate_dsp_reports(
    out_dir: Path,
    *,
    start: date,
    days: int,
    records_per_report: int,
    seed: int,
    dsps: Iterable[str] = DSP_KEYS,
) -> list[Path]:
    """Write one report ZIP per DSP and day into `out_dir` as `{dsp}-{date}.zip`; return them.

    Same arguments give byte-identical files. Each file is written under a `.part` name and
    renamed when complete, so a folder watcher never sees half a file. Records are streamed
    into the ZIP, so a large report is never held in memory.
    """
    if days < 0:
        raise ValueError(f"days must be at least 0, got {days}")
    dsps = list(dsps)
    size = max(_check_arguments(dsp, records_per_report, None) for dsp in dsps) if dsps else 0
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for i in range(days):
        day = start + timedelta(days=i)
        for dsp in dsps:
            path = out_dir / f"{dsp}-{day.isoformat()}.zip"
            partial = path.with_name(path.name + ".part")
            records = _iter_records(dsp, day, records_per_report, seed, size)
            try:
                _write_streaming(
                    partial,
                    _member_name(day.isoformat()),
                    day,
                    _meta(dsp, day, records_per_report),
                    records,
                )
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            os.replace(partial, path)
            paths.append(path)
    return paths
