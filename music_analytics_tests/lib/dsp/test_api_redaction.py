"""Redaction of the DSP API's pre-signed URLs."""

from music_analytics.lib.dsp.api_redaction import redact_url


def test_redact_url_keeps_scheme_host_and_path():
    url = "https://user:pw@bucket.s3.amazonaws.com:8443/r/6.zip?X-Amz-Signature=abc&X-Amz-Date=1"
    assert redact_url(url) == "https://bucket.s3.amazonaws.com:8443/r/6.zip"
