"""The append-from-URL fetch rules, against a real local HTTP server."""

import pytest

from music_analytics.server.url_fetch import FetchError, UrlPolicy, fetch
from music_analytics_tests.server.file_server import file_server

LOCAL = UrlPolicy(("127.0.0.1",), 1024 * 1024, 5.0)


@pytest.fixture(scope="module")
def base():
    with file_server({"/a.csv": b"stream_id\ns1\n"}) as url:
        yield url


def test_an_allowed_host_is_fetched_and_same_host_redirects_followed(base):
    assert fetch(f"{base}/a.csv", LOCAL) == b"stream_id\ns1\n"
    assert fetch(f"{base}/redirect-same/a.csv", LOCAL) == b"stream_id\ns1\n"


@pytest.mark.parametrize(
    ("url", "policy", "status", "named"),
    [
        ("{base}/a.csv", UrlPolicy((), 1024, 5.0), 403, "MUSIC_ANALYTICS_APPEND_URL_HOSTS"),
        ("http://example.com/a.csv", LOCAL, 403, "'example.com' is not in"),
        ("file:///etc/passwd", LOCAL, 400, "scheme 'file'"),
        ("ftp://127.0.0.1/a.csv", LOCAL, 400, "scheme 'ftp'"),
        ("http://user:pw@127.0.0.1/a.csv", LOCAL, 400, "credentials"),
        # a name allowed, but it resolves to loopback and that address is not allowed
        ("{base_localhost}/a.csv", UrlPolicy(("localhost",), 1024, 5.0), 403, "non-public"),
        (
            "{base}/redirect-other/a.csv",
            UrlPolicy(("127.0.0.1", "localhost"), 1024, 5.0),
            400,
            "redirects to another host",
        ),
        ("{base}/big", LOCAL, 413, "MUSIC_ANALYTICS_APPEND_URL_MAX_MB"),
        ("{base}/slow", UrlPolicy(("127.0.0.1",), 1024 * 1024, 1.0), 408, "TIMEOUT_SECONDS"),
        ("{base}/missing.csv", LOCAL, 400, "HTTP 404"),
    ],
)
def test_refusals_name_the_problem(base, url, policy, status, named):
    url = url.format(base=base, base_localhost=base.replace("127.0.0.1", "localhost"))
    with pytest.raises(FetchError, match=named) as caught:
        fetch(url, policy)
    assert caught.value.status == status
