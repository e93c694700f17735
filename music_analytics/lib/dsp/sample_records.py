"""The per-DSP part of a sample report record: Spotify's, YouTube's and Apple Music's sections.

country_stats' per-country streams / views / plays sum exactly to the record's aggregated total
(total_streams / total_views / total_plays), and breakdowns (demographics, devices, sources,
regions...) split the same total, with the `""` (unknown) key often; counts are sometimes sent
as floats (`142.0`).
"""

from __future__ import annotations

from collections.abc import Callable
from random import Random
from typing import Any

from music_analytics.lib.dsp.sample_catalog import BASE62, Catalog
from music_analytics.lib.dsp.sample_splits import breakdown, country_split, regions
from music_analytics.lib.events.sample_catalogue import COUNTRY_WEIGHTS

_P_FLOAT_COUNTS = 0.05  # country counts sent as floats (142.0)
_GEOHASH_CHARS = "0123456789bcdefghjkmnpqrstuvwxyz"
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


def _maybe_float(value: int, as_float: bool) -> int | float:
    return float(value) if as_float else value


def _spotify_record(rng: Random, cat: Catalog, t: int, total: int) -> dict[str, Any]:
    floats = rng.random() < _P_FLOAT_COUNTS
    by_country = country_split(rng, total)
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
        f"spotify:playlist:37i9dQZF1DX{''.join(rng.choices(BASE62, k=14))}": round(
            total * rng.uniform(0.05, 0.3)
        )
        for _ in range(rng.randrange(0, 4))
    }
    return {
        "spotify_track_id": cat.spotify_id[t],
        "country_stats": country_stats,
        "demographics": {
            "age_groups": breakdown(rng, total, _SPOTIFY_AGES),
            "genders": breakdown(rng, total, _SPOTIFY_GENDERS),
            "products": breakdown(rng, total, _SPOTIFY_PRODUCTS),
            "access_levels": breakdown(rng, total, _SPOTIFY_ACCESS),
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
            "regions": regions(rng, by_country),
            "geohashes": {
                "".join(rng.choices(_GEOHASH_CHARS, k=4)): round(total * rng.uniform(0.02, 0.1))
                for _ in range(rng.randrange(0, 4))
            },
            "connection_countries": dict(by_country),
            "reporting_countries": dict(by_country),
            "total_geolocated_streams": total,
        },
        "device_platform_stats": {
            "device_types": breakdown(rng, total, _SPOTIFY_DEVICES),
            "operating_systems": breakdown(rng, total, _SPOTIFY_OS),
            "shuffle_usage": {"enabled": shuffle_on, "disabled": total - shuffle_on},
            "repeat_usage": {"enabled": repeat_on, "disabled": total - repeat_on},
        },
        "source_stats": {
            "sources": breakdown(rng, total, _SPOTIFY_SOURCES),
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


def _youtube_record(rng: Random, cat: Catalog, t: int, total: int) -> dict[str, Any]:
    floats = rng.random() < _P_FLOAT_COUNTS
    by_country = country_split(rng, total)
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
            "traffic_sources": breakdown(rng, total, _YOUTUBE_TRAFFIC),
            "device_types": breakdown(rng, total, _YOUTUBE_DEVICES),
        },
        "geographic_stats": {
            "regions": regions(rng, by_country),
            "total_geolocated_views": total,
        },
    }


def _apple_record(rng: Random, cat: Catalog, t: int, total: int) -> dict[str, Any]:
    floats = rng.random() < _P_FLOAT_COUNTS
    by_country = country_split(rng, total)
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
            "country_shazams": breakdown(
                rng, shazams, {c: COUNTRY_WEIGHTS.get(c, 2.0) for c in by_country}
            ),
        },
        "demographics": {
            "age_groups": breakdown(rng, total, _APPLE_AGES),
            "genders": breakdown(rng, total, _APPLE_GENDERS),
        },
        "source_stats": {"sources": breakdown(rng, total, _APPLE_SOURCES)},
    }


# The DSP-specific sections of one record, by DSP key: (rng, catalogue, track, total) -> dict.
RECORD_BUILDERS: dict[str, Callable[[Random, Catalog, int, int], dict[str, Any]]] = {
    "spotify": _spotify_record,
    "youtube": _youtube_record,
    "apple_music": _apple_record,
}
