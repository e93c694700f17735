"""Hostile and broken ZIPs in one refresh, beside good ones (tests/zip_corpus.py builds them).

For every class (overlapping entries, duplicate names, empty archive, link, path, size lies,
ratio bomb, unexpected members) and both sources (DSP report ZIPs, Spotify exports): the file
is rejected with a reason naming it, the good files of the same batch load and build, and the
warehouse holds nothing of the rejected files. The hostile files carry other days' reports and
other plays than the good ones, so a hostile file accepted would show in the warehouse.
"""

from __future__ import annotations

import json
import zipfile
from datetime import date

import dagster as dg
import pytest

from music_analytics.lib.dsp.sample import write_report_zip
from music_analytics.lib.dsp.sample_report import build_report
from music_analytics.lib.spotify.history import read_history_file
from music_analytics.lib.spotify.sample import generate_history_export
from music_analytics.refresh import refresh
from music_analytics_tests.conftest import module_home, query
from music_analytics_tests.zip_corpus import HOSTILE_KINDS, hostile_zip

GOOD_DAY = date(2025, 3, 2)
HOSTILE_DAY = date(2025, 3, 9)  # no good file has this day: accepted, it would show
MEMBER = f"analytics-report-{HOSTILE_DAY}.json"


def _dsp_member() -> bytes:
    """A sound report of HOSTILE_DAY, as the member of each hostile DSP ZIP."""
    return json.dumps(build_report("spotify", HOSTILE_DAY, records=5, seed=3)).encode()


def _spotify_member(tmp_path) -> tuple[str, bytes]:
    """The first history member of an export of other plays than the good one."""
    other = generate_history_export(
        tmp_path, start=date(2025, 6, 1), days=2, plays_per_day=15, seed=99
    )
    with zipfile.ZipFile(other) as archive:
        name = next(n for n in archive.namelist() if "Streaming_History_Audio" in n)
        return name, archive.read(name)


@pytest.fixture(scope="module")
def refreshed(tmp_path_factory):
    with module_home(tmp_path_factory, "hostile_zips") as settings:
        good_reports = [
            write_report_zip(
                settings.dsp_landing / f"{dsp}-{GOOD_DAY}.zip",
                build_report(dsp, GOOD_DAY, records=6, seed=1),
            )
            for dsp in ("spotify", "youtube")
        ]
        good_export = generate_history_export(
            settings.spotify_history_landing,
            start=GOOD_DAY,
            days=2,
            plays_per_day=12,
            seed=5,
        )
        good_plays = sum(len(f.plays) for f in read_history_file(good_export))
        dsp_member = _dsp_member()
        spotify_name, spotify_member = _spotify_member(tmp_path_factory.mktemp("other"))
        hostile: dict[str, list[str]] = {"dsp": [], "spotify": []}
        for kind in HOSTILE_KINDS:
            path = hostile_zip(kind, settings.dsp_landing / f"dsp-{kind}.zip", MEMBER, dsp_member)
            hostile["dsp"].append(path.name)
            name = "MyData/Userdata.json" if kind == "unexpected" else spotify_name
            data = b"{}" if kind == "unexpected" else spotify_member
            path = settings.spotify_history_landing / f"spotify-{kind}.zip"
            hostile["spotify"].append(hostile_zip(kind, path, name, data).name)
        summary = refresh(
            settings=settings, instance=dg.DagsterInstance.ephemeral(), log_level="WARNING"
        )
        yield settings, summary, hostile, good_reports, good_plays


def test_every_hostile_file_is_rejected_with_a_reason_naming_it(refreshed):
    settings, summary, hostile, _, _ = refreshed
    assert summary.exit_code == 3 and not summary.dsp_failures and not summary.spotify_failures
    names = hostile["dsp"] + hostile["spotify"]
    assert len(summary.rejected) == len(names) == 2 * len(HOSTILE_KINDS)
    for name in names:
        [reason] = [r for r in summary.rejected if f"{name}:" in r]
        assert "\n" not in reason
    landings = {"dsp": settings.dsp_landing, "spotify": settings.spotify_history_landing}
    for source, landing in landings.items():
        for name in hostile[source]:
            assert (landing / "rejected" / name).exists()
            assert name in (landing / "rejected" / f"{name}.error.txt").read_text()
        # Nothing was extracted: the landing folder holds only rejected/ and its ledger.
        assert {p.name for p in landing.iterdir()} <= {"rejected", ".loaded"}


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [
        ("overlap", "50 central-directory entries"),
        ("duplicate", "appears more than once"),
        ("empty", "the archive has no members"),
        ("link", "is a symbolic link"),
        ("path", "path"),
        ("size_lie", "corrupt or truncated"),
        ("local_header_lie", "its local header declares uncompressed size"),
        ("ratio_bomb", "compression ratio"),
        ("unexpected", ""),
    ],
)
def test_each_reason_says_what_is_wrong(refreshed, kind, fragment):
    _, summary, _, _, _ = refreshed
    expected_unexpected = {
        "dsp": "expected exactly one member",
        "spotify": "holds no streaming-history file",
    }
    for source in ("dsp", "spotify"):
        [reason] = [r for r in summary.rejected if f"{source}-{kind}.zip:" in r]
        assert (fragment or expected_unexpected[source]) in reason, reason


def test_the_good_files_of_the_batch_loaded_and_built(refreshed):
    settings, summary, _, good_reports, good_plays = refreshed
    assert summary.dsp_reports_loaded == len(good_reports)
    assert summary.spotify_history_plays == good_plays
    assert GOOD_DAY in summary.days_built
    loads = query(settings, "select dsp, report_date, total_records from raw.dsp_report_loads")
    assert sorted(loads) == [("spotify", GOOD_DAY, 6), ("youtube", GOOD_DAY, 6)]
    [(marts_days,)] = query(
        settings, "select count(distinct report_date) from marts.dsp_track_daily"
    )
    assert marts_days == 1


def test_the_warehouse_holds_nothing_of_the_rejected_files(refreshed):
    settings, _, _, _, good_plays = refreshed
    assert query(settings, "select count(*) from raw.dsp_report_records") == [(12,)]
    assert query(
        settings, "select count(*) from raw.dsp_report_records where report_date <> ?", [GOOD_DAY]
    ) == [(0,)]
    assert query(settings, "select count(*) from raw.dsp_report_quarantine") == [(0,)]
    [(plays, files)] = query(
        settings, "select count(*), count(distinct source_file) from raw.spotify_history"
    )
    assert (plays, files) == (good_plays, 1)
    sources = query(settings, "select distinct source_file from raw.spotify_history_files")
    assert [s for (s,) in sources if "spotify-" in s] == []
    assert query(
        settings,
        "select count(*) from raw.spotify_history_quarantine where source_file like '%spotify-%'",
    ) == [(0,)]
