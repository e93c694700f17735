"""The DSPs whose daily analytics reports the project loads, and how their records differ.

One place maps our partition keys (`spotify`, `youtube`, `apple_music`) to the API's `dsp_id`
and names each DSP's track reference field; see ../shared/specs/dsp-report-formats.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dsp:
    """One DSP of the analytics-reports API."""

    key: str  # partition key and the `dsp` column of every raw and mart table
    dsp_id: int  # the API's id
    name: str  # the API's dsp_name
    track_ref_field: str  # the record field holding the DSP's own track id
    total_streams_field: str  # in aggregated_data: the day's streams (views, plays)
    country_streams_field: str  # in each country_stats entry: that country's streams


DSPS: tuple[Dsp, ...] = (
    Dsp("spotify", 1, "Spotify", "spotify_track_id", "total_streams", "streams_count"),
    Dsp("youtube", 3, "YouTube", "youtube_video_id", "total_views", "views"),
    Dsp("apple_music", 4, "Apple Music", "apple_track_id", "total_plays", "plays"),
)
DSP_KEYS: tuple[str, ...] = tuple(d.key for d in DSPS)
SUPPORTED_DSP_IDS: tuple[int, ...] = tuple(d.dsp_id for d in DSPS)


def dsp_by_key(key: str) -> Dsp:
    """The DSP for a partition key; the error lists the valid keys."""
    for dsp in DSPS:
        if dsp.key == key:
            return dsp
    raise ValueError(f"unknown DSP {key!r}: expected one of {', '.join(DSP_KEYS)}")


def dsp_by_id(dsp_id: int) -> Dsp:
    """The DSP for an API dsp_id; the error lists the supported ids."""
    for dsp in DSPS:
        if dsp.dsp_id == dsp_id:
            return dsp
    raise ValueError(
        f"unsupported dsp_id {dsp_id!r}: expected one of "
        + ", ".join(f"{d.dsp_id} ({d.name})" for d in DSPS)
    )
