"""DSP report assets, their sensor and schedule, through Dagster, against a local fake API."""

import json
import os
import time
from datetime import UTC, date, datetime

import dagster as dg
import pytest

from music_analytics.defs.dsp_reports.assets import (
    RAW_DSP_RECORDS,
    dsp_report_tables,
    dsp_report_zips,
)
from music_analytics.defs.dsp_reports.schedules import build_dsp_reports_schedule
from music_analytics.defs.dsp_reports.sensors import dsp_landing_sensor, landing_run_config
from music_analytics.defs.partitions import dsp_partition_key
from music_analytics.defs.resources import DataFolders, build_dsp_api, build_resources
from music_analytics.lib.core.settings import Settings
from music_analytics.lib.dsp.archive import current_report
from music_analytics.lib.dsp.sample import write_report_zip
from music_analytics.lib.dsp.sample_report import build_report
from music_analytics_tests.conftest import query
from music_analytics_tests.fakes.dsp_api import FakeDspApi, build_report_zip, sample_records

DAY = date(2025, 3, 2)
ASSETS = [dsp_report_zips, dsp_report_tables]


def resources(settings: Settings) -> dict:
    """The code location's resources, polling the fake API without real waits."""
    return {
        **build_resources(settings),
        "dsp_api": build_dsp_api(settings, poll_delays_seconds=[0.01]),
    }


def materialize(settings, partition_key, run_config=None, instance=None):
    return dg.materialize(
        ASSETS,
        partition_key=partition_key,
        resources=resources(settings),
        run_config=run_config,
        instance=instance,
        raise_on_error=False,
    )


def partition_counts(settings, dsp="spotify", day=DAY):
    return {
        table: query(
            settings,
            f"select count(*) from raw.{table} where dsp = ? and report_date = ?",
            [dsp, day],
        )[0][0]
        for table in ("dsp_report_records", "dsp_report_countries", "dsp_report_breakdowns")
    }


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    [event] = result.get_step_failure_events()
    data = event.step_failure_data
    return data.user_failure_data.description if data.user_failure_data else data.error.message


@pytest.fixture
def api(httpserver, settings, monkeypatch) -> tuple[FakeDspApi, Settings]:
    """A fake analytics-reports API and settings that point at it."""
    fake = FakeDspApi(httpserver, polls_until_processing=1, polls_until_complete=2)
    monkeypatch.setenv("DSP_API_BASE_URL", fake.base_url)
    monkeypatch.setenv("DSP_API_TOKEN", fake.token)
    return fake, Settings.from_env()


def test_landing_zip_loads_into_its_partition_and_moves_to_the_archive(settings):
    report = build_report("spotify", DAY, records=25, seed=3)
    path = write_report_zip(settings.dsp_landing / "spotify-2025-03-02.zip", report)
    result = materialize(settings, dsp_partition_key(DAY, "spotify"), landing_run_config(str(path)))
    assert result.success
    assert not path.exists()
    archived = current_report(settings.dsp_archive, "spotify", DAY)
    assert archived.source == "landing" and archived.report_id is None
    assert os.path.exists(archived.path)
    counts = partition_counts(settings)
    assert counts["dsp_report_records"] == 25
    expected_countries = sum(len(r.get("country_stats") or {}) for r in report["data"])
    assert counts["dsp_report_countries"] == expected_countries
    assert counts["dsp_report_breakdowns"] > 25
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"record_count_matches_meta": True, "country_streams_match_total": True}
    [zips] = result.asset_materializations_for_node(dsp_report_zips.op.name)
    assert zips.metadata["sha256"].value == archived.sha256


def test_api_report_is_requested_polled_downloaded_archived_and_loaded(api, caplog):
    fake, settings = api
    settings.ensure_folders()
    caplog.set_level("DEBUG")
    result = materialize(settings, dsp_partition_key(DAY, "youtube"))
    assert result.success, failure_text(result)
    assert (fake.posts, fake.downloads) == (1, 1)
    assert fake.download_authorization_headers() == []
    assert partition_counts(settings, "youtube")["dsp_report_records"] == 2
    archived = current_report(settings.dsp_archive, "youtube", DAY)
    assert archived.source == "api" and archived.report_id is not None
    assert list((settings.dsp_archive / "pending").glob("*.json")) == []
    # neither the token nor a pre-signed URL reached the run's events or our logs
    events = " ".join(str(e) for e in result.all_events)
    ours = [r for r in caplog.records if not r.name.startswith("werkzeug")]
    for text in [events, *(r.getMessage() for r in ours)]:
        assert fake.token not in text
        assert "X-Amz-Signature" not in text


def test_api_failure_fails_the_run_with_the_reason_and_keeps_loaded_data(api):
    fake, settings = api
    settings.ensure_folders()
    assert materialize(settings, dsp_partition_key(DAY, "spotify")).success
    before = partition_counts(settings)
    fake.fail_with = "upstream export crashed"
    result = materialize(settings, dsp_partition_key(DAY, "spotify"))
    assert not result.success
    assert "upstream export crashed" in failure_text(result)
    assert partition_counts(settings) == before


def test_fetching_without_a_configured_api_fails_clearly(settings):
    result = materialize(settings, dsp_partition_key(DAY, "apple_music"))
    assert not result.success
    message = failure_text(result)
    assert "DSP_API_BASE_URL" in message and "landing" in message


def test_reloading_a_partition_replaces_it(settings):
    key = dsp_partition_key(DAY, "apple_music")
    first = build_report("apple_music", DAY, records=30, seed=1)
    second = build_report("apple_music", DAY, records=12, seed=2)
    for report in (first, first, second):  # the same file twice, then a new version
        path = write_report_zip(settings.dsp_landing / "apple.zip", report)
        assert materialize(settings, key, landing_run_config(str(path))).success
    assert partition_counts(settings, "apple_music")["dsp_report_records"] == 12
    [(dupes,)] = query(
        settings,
        "select count(*) - count(distinct record_index) from raw.dsp_report_records",
    )
    assert dupes == 0
    [(loads,)] = query(settings, "select count(*) from raw.dsp_report_loads")
    assert loads == 3


@pytest.mark.parametrize(
    "bad_zip",
    [
        pytest.param(
            lambda day: build_report_zip(1, day, sample_records(1, day, 3), total_records=5),
            id="short-total-records",
        ),
        pytest.param(
            lambda day: build_report_zip(1, day, member_name="analytics-report-2025-03-09.json"),
            id="date-mismatch",
        ),
        pytest.param(lambda day: build_report_zip(1, day)[:-40], id="truncated"),
    ],
)
def test_a_bad_landing_zip_is_rejected_and_the_partition_keeps_its_data(settings, bad_zip):
    key = dsp_partition_key(DAY, "spotify")
    good = write_report_zip(
        settings.dsp_landing / "good.zip", build_report("spotify", DAY, records=8, seed=5)
    )
    assert materialize(settings, key, landing_run_config(str(good))).success
    before = query(settings, "select * from raw.dsp_report_records order by record_index")
    bad = settings.dsp_landing / "bad.zip"
    bad.write_bytes(bad_zip(DAY))
    result = materialize(settings, key, landing_run_config(str(bad)))
    assert not result.success
    assert "bad.zip" in failure_text(result)
    assert query(settings, "select * from raw.dsp_report_records order by record_index") == before
    rejected = settings.dsp_landing / "rejected"
    assert (rejected / "bad.zip").exists()
    assert (rejected / "bad.zip.error.txt").read_text().strip()


def age(path, seconds: int) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_landing_sensor_runs_each_zip_in_the_partition_its_meta_names(settings):
    folders = DataFolders(home=str(settings.home), file_stable_seconds=1)
    spotify = write_report_zip(
        settings.dsp_landing / "whatever-name.zip", build_report("spotify", DAY, records=3, seed=1)
    )
    youtube = settings.dsp_landing / "yt.zip"
    youtube.write_bytes(build_report_zip(3, date(2025, 3, 4)))
    junk = settings.dsp_landing / "junk.zip"
    junk.write_bytes(b"not a zip at all")
    ancient = settings.dsp_landing / "ancient.zip"
    ancient.write_bytes(build_report_zip(4, date(2007, 12, 31)))  # before the default start
    for path in (spotify, youtube, junk, ancient):
        age(path, 60)

    def tick(cursor=None):
        context = dg.build_sensor_context(cursor=cursor, resources={"folders": folders})
        return list(dsp_landing_sensor(context) or []), context.cursor

    requests, cursor = tick()
    assert requests == []  # first sighting
    requests, cursor = tick(cursor)
    by_partition = {r.partition_key: r for r in requests}
    assert set(by_partition) == {"2025-03-02|spotify", "2025-03-04|youtube"}
    config = by_partition["2025-03-02|spotify"].run_config["ops"][dsp_report_zips.op.name]
    assert config["config"]["zip_path"] == str(spotify)
    rejected = settings.dsp_landing / "rejected"
    assert sorted(p.name for p in rejected.glob("*.zip")) == ["ancient.zip", "junk.zip"]
    assert "outside the partitions" in (rejected / "ancient.zip.error.txt").read_text()


def test_schedule_requests_yesterday_for_every_configured_dsp(api, monkeypatch):
    _, settings = api
    when = datetime(2025, 3, 10, 1, 0, tzinfo=UTC)
    schedule = build_dsp_reports_schedule(settings)
    requests = schedule(dg.build_schedule_context(scheduled_execution_time=when))
    assert sorted(r.partition_key for r in requests) == [
        "2025-03-09|apple_music",
        "2025-03-09|spotify",
        "2025-03-09|youtube",
    ]
    monkeypatch.setenv("MUSIC_ANALYTICS_DSPS", "youtube")
    only = build_dsp_reports_schedule(Settings.from_env())
    [request] = only(dg.build_schedule_context(scheduled_execution_time=when))
    assert request.partition_key == "2025-03-09|youtube"


def test_schedule_skips_while_the_api_is_not_configured(settings):
    schedule = build_dsp_reports_schedule(settings)
    when = datetime(2025, 3, 10, 1, 0, tzinfo=UTC)
    result = schedule(dg.build_schedule_context(scheduled_execution_time=when))
    assert isinstance(result, dg.SkipReason)
    assert "DSP_API_BASE_URL" in result.skip_message


def test_a_dsp_report_marks_its_day_in_the_rebuild_ledger(settings):
    instance = dg.DagsterInstance.ephemeral()
    path = write_report_zip(
        settings.dsp_landing / "s.zip", build_report("spotify", DAY, records=2, seed=1)
    )
    result = materialize(
        settings, dsp_partition_key(DAY, "spotify"), landing_run_config(str(path)), instance
    )
    assert result.success
    assert query(settings, "select source, day from raw.pending_rebuilds") == [("dsp", DAY)]
    records = instance.fetch_materializations(RAW_DSP_RECORDS, limit=1).records
    assert json.loads(
        json.dumps(records[0].asset_materialization.metadata["days_touched"].value)
    ) == [DAY.isoformat()]
