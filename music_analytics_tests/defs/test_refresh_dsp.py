"""`refresh --start/--end` fetches every configured DSP's reports from the API, loads the ZIPs
waiting in landing/dsp/, and builds the DSP marts: real HTTP to a local fake, real dbt."""

from datetime import date

import dagster as dg
import pytest

from music_analytics.lib.dsp.sample import write_report_zip
from music_analytics.lib.dsp.sample_report import build_report
from music_analytics.refresh import refresh
from music_analytics_tests.conftest import module_home, query
from music_analytics_tests.fakes.dsp_api import FakeDspApi, sample_records

DAY = date(2025, 3, 2)
EARLIER = date(2025, 2, 27)


@pytest.fixture(scope="module")
def refreshed(tmp_path_factory):
    """One refresh over DAY with a fake API that does not support YouTube."""
    from pytest_httpserver import HTTPServer

    server = HTTPServer()
    server.start()
    fake = FakeDspApi(server, polls_until_processing=0, polls_until_complete=0)
    fake.supported_dsp_ids = (1, 4)  # YouTube answers 422
    env = {"DSP_API_BASE_URL": fake.base_url, "DSP_API_TOKEN": fake.token}
    with module_home(tmp_path_factory, "refresh_dsp", **env) as settings:
        landing = build_report("apple_music", EARLIER, records=4, seed=9)
        write_report_zip(settings.dsp_landing / "apple-by-hand.zip", landing)
        instance = dg.DagsterInstance.ephemeral()
        summary = refresh(DAY, DAY, settings=settings, instance=instance, log_level="WARNING")
        yield settings, fake, summary, landing
    server.clear()
    if server.is_running():
        server.stop()


def test_each_configured_dsp_is_requested_once_and_failures_are_named(refreshed):
    _, fake, summary, _ = refreshed
    assert fake.posts == 3  # spotify, youtube (refused), apple_music
    assert summary.dsp_reports_loaded == 3  # two from the API, one from landing/dsp/
    [failure] = summary.dsp_failures
    assert "YouTube" in failure and "2025-03-02" in failure
    assert "Spotify (dsp_id 1)" in failure and "Apple Music (dsp_id 4)" in failure
    assert fake.token not in failure


def test_the_range_and_the_landing_day_are_built(refreshed):
    settings, _, summary, landing = refreshed
    assert summary.ranges_built == [(EARLIER, EARLIER), (DAY, DAY)]
    by_dsp = dict(
        query(
            settings,
            "select dsp, sum(streams) from marts.dsp_track_daily where report_date = ? "
            "group by dsp",
            [DAY],
        )
    )
    expected = {
        "spotify": sum(r["aggregated_data"]["total_streams"] for r in sample_records(1, DAY)),
        "apple_music": sum(r["aggregated_data"]["total_plays"] for r in sample_records(4, DAY)),
    }
    assert by_dsp == expected
    [(tracks,)] = query(
        settings,
        "select count(*) from marts.dsp_track_daily where report_date = ? and dsp = 'apple_music'",
        [EARLIER],
    )
    assert tracks == len({r["track_id"] for r in landing["data"]})


def test_a_second_refresh_adds_nothing(refreshed):
    settings, fake, _, _ = refreshed
    before = query(
        settings,
        "select dsp, report_date, count(*) from raw.dsp_report_records group by all order by all",
    )
    again = refresh(
        DAY, DAY, settings=settings, instance=dg.DagsterInstance.ephemeral(), log_level="WARNING"
    )
    assert again.dsp_reports_loaded == 2  # the API's reports again; landing/dsp/ is empty now
    after = query(
        settings,
        "select dsp, report_date, count(*) from raw.dsp_report_records group by all order by all",
    )
    assert after == before
