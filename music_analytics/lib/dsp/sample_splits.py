"""Splitting a record's total over countries, regions and breakdown keys, summing exactly."""

from __future__ import annotations

import math
from random import Random

from music_analytics.lib.events.sample_catalogue import COUNTRY_WEIGHTS

_P_UNKNOWN_COUNTRY = 0.05  # part of the streams under the "" country
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


def split(total: int, weights: list[float]) -> list[int]:
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


def breakdown(rng: Random, total: int, base: dict[str, float]) -> dict[str, int]:
    """`total` split over the keys of `base` with per-record jitter; zero counts left out."""
    random = rng.random
    counts = split(total, [w * (0.5 + random()) for w in base.values()])
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


def country_split(rng: Random, total: int) -> dict[str, int]:
    """`total` split over countries (all > 0), sometimes with an unknown `""` country."""
    countries = _pick_countries(rng, total)
    if len(countries) > 1 and rng.random() < _P_UNKNOWN_COUNTRY:
        countries[-1] = ""
    weights = [COUNTRY_WEIGHTS.get(c, 2.0) * rng.lognormvariate(0, 0.6) for c in countries]
    counts = split(total, weights)
    by_country = {c: n for c, n in zip(countries, counts) if n}
    return by_country or {countries[0]: total}


def regions(rng: Random, by_country: dict[str, int]) -> dict[str, int]:
    """Part of each known country's streams placed in a few of its regions."""
    regions: dict[str, int] = {}
    for country, n in by_country.items():
        names = _REGIONS.get(country)
        if names and n >= 4:
            located = int(n * rng.uniform(0.4, 0.8))
            regions.update(breakdown(rng, located, dict.fromkeys(names, 1.0)))
    return regions
