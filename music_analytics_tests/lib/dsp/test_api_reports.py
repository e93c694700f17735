"""The DSP API's report values."""

from datetime import date

from music_analytics.lib.dsp.api_reports import ReportStatus

DAY = date(2026, 3, 28)


def test_report_status_repr_hides_the_download_url():
    status = ReportStatus(6, 1, DAY, "completed", download_url="https://s3/x?X-Amz-Signature=s")
    assert "X-Amz-Signature" not in repr(status) and "report_id=6" in repr(status)
