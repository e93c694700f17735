"""The dashboard page (`/`) in a real browser: headless system Chromium driven by Playwright.

The server (`live_server`) serves marts and exports built from small sample data (events, DSP
reports, a Spotify export). The page must draw every chart from the /v0 API, refetch when a
filter changes, keep every request on the server (no CDN: it works offline), log no console
error, and handle a missing or rejected token.

Without /usr/bin/chromium these tests skip, unless MUSIC_ANALYTICS_REQUIRE_BROWSER=1 (CI),
which makes them fail instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from music_analytics.server.api_tokens import create_token
from music_analytics.server.app import build_app
from music_analytics_tests.conftest import module_home
from music_analytics_tests.server.conftest import serving

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STATIC = Path(__file__).resolve().parents[2] / "music_analytics" / "server" / "static"
CHART_IDS = [
    "chart-top-tracks",
    "chart-genre-trends",
    "chart-user-activity",
    "chart-dsp",
    "chart-listening",
]
TIMEOUT_MS = 15_000
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}

# [count of non-null points per dataset] of the chart on a canvas, or null without a chart.
CHART_POINTS_JS = """id => {
  const chart = Chart.getChart(document.getElementById(id));
  if (!chart) return null;
  return chart.data.datasets.map(d => d.data.filter(v => v !== null && v !== undefined).length);
}"""
CHART_INFO_JS = """id => {
  const chart = Chart.getChart(document.getElementById(id));
  if (!chart) return null;
  return {labels: chart.data.labels, datasets: chart.data.datasets.map(d => d.label)};
}"""


def _browser_missing_reason() -> str | None:
    if CHROMIUM.exists():
        return None
    return (
        f"the browser tests need Chromium at {CHROMIUM} (apt-get install chromium); "
        "MUSIC_ANALYTICS_REQUIRE_BROWSER=1 makes its absence a failure"
    )


# Skipped before any fixture is set up (the marts take a while to build); with
# MUSIC_ANALYTICS_REQUIRE_BROWSER=1 the `browser` fixture fails instead.
needs_browser = pytest.mark.skipif(
    _browser_missing_reason() is not None
    and os.environ.get("MUSIC_ANALYTICS_REQUIRE_BROWSER") != "1",
    reason=str(_browser_missing_reason()),
)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    reason = _browser_missing_reason()
    if reason:
        if os.environ.get("MUSIC_ANALYTICS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"MUSIC_ANALYTICS_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Watched:
    """A page and what it did: every request's URL, requests that left the server (blocked),
    console errors and uncaught exceptions."""

    page: object
    requests: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def pipe_requests(self, pipe: str) -> list[dict[str, list[str]]]:
        """The query parameters of every request made to a pipe, oldest first."""
        return [
            parse_qs(urlsplit(url).query)
            for url in self.requests
            if urlsplit(url).path == f"/v0/pipes/{pipe}.json"
        ]


@pytest.fixture
def watched(browser) -> Iterator[Watched]:
    """A fresh page (own context, so own sessionStorage) that may reach only the server:
    any other request is recorded and aborted, as if there were no network."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    seen = Watched(page)

    def route(route):
        url = route.request.url
        if urlsplit(url).scheme in ("data", "blob") or urlsplit(url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            seen.outside.append(url)
            route.abort()

    context.route("**/*", route)
    page.on("request", lambda request: seen.requests.append(request.url))
    page.on("console", lambda m: m.type == "error" and seen.console_errors.append(m.text))
    page.on("pageerror", lambda error: seen.page_errors.append(str(error)))
    try:
        yield seen
    finally:
        context.close()


def _wait_for_state(page, *states: str, loads: int | None = None) -> str:
    """Wait until body[data-state] is one of `states` (and body[data-loads] is `loads`)."""
    page.wait_for_function(
        """([states, loads]) => states.includes(document.body.dataset.state)
             && (loads === null || document.body.dataset.loads === String(loads))""",
        arg=[list(states), loads],
    )
    return page.evaluate("document.body.dataset.state")


def _open_dashboard(watched: Watched, url: str, token: str) -> None:
    page = watched.page
    page.goto(f"{url}/?token={token}")
    state = _wait_for_state(page, "ready", "error")
    assert state == "ready", page.locator("#message").inner_text()


def _column(page, table_id: str, column: str) -> list[str]:
    return page.locator(f"#{table_id} tbody td[data-col='{column}']").all_inner_texts()


@needs_browser
def test_dashboard_draws_every_chart_and_refetches_on_a_filter(watched: Watched, live_server):
    page = watched.page
    _open_dashboard(watched, live_server.url, live_server.tokens["reader"])

    # The token left the address bar (kept in sessionStorage for this tab).
    assert "token" not in page.url
    stored = page.evaluate("sessionStorage.getItem('music-analytics.token')")
    assert stored == live_server.tokens["reader"]
    assert page.locator("#message").is_hidden()

    # Every chart exists and holds data; the listening history section is shown (the sample
    # data has a Spotify export).
    assert page.locator("#section-listening").is_visible()
    for chart_id in CHART_IDS:
        points = page.evaluate(CHART_POINTS_JS, chart_id)
        assert points is not None, f"no chart on #{chart_id}"
        assert any(n > 0 for n in points), f"#{chart_id} has no data point: {points}"

    # Tables have rows, numbers formatted.
    tracks = _column(page, "table-top-tracks", "track_id")
    assert tracks
    assert page.evaluate(CHART_INFO_JS, "chart-top-tracks")["labels"] == tracks
    assert _column(page, "table-track-performance", "isrc")
    assert _column(page, "table-dsp-top-tracks", "isrc")
    for text in _column(page, "table-top-tracks", "stream_count"):
        assert re.fullmatch(r"\d{1,3}(,\d{3})*", text), text
    assert len(page.locator("#kpis .kpi").all()) == 5

    # Filter options come from /v0/filters; picking a genre refetches and shows only it.
    genres = [g for g in page.locator("#filter-genre option").all_inner_texts() if g != "All"]
    assert len(genres) > 1
    genre = _column(page, "table-top-tracks", "genre")[0]
    page.select_option("#filter-genre", genre)
    assert _wait_for_state(page, "ready", "error", loads=2) == "ready", page.locator(
        "#message"
    ).inner_text()
    assert watched.pipe_requests("top_tracks")[-1]["genre"] == [genre]
    assert "genre" not in watched.pipe_requests("top_tracks")[0]
    genre_cells = _column(page, "table-top-tracks", "genre")
    assert genre_cells and set(genre_cells) == {genre}
    assert page.evaluate(CHART_INFO_JS, "chart-top-tracks")["labels"] == _column(
        page, "table-top-tracks", "track_id"
    )
    assert page.evaluate(CHART_INFO_JS, "chart-genre-trends")["datasets"] == [genre]

    # Back to all genres: every genre's line again.
    page.select_option("#filter-genre", "")
    assert _wait_for_state(page, "ready", "error", loads=3) == "ready"
    assert len(page.evaluate(CHART_INFO_JS, "chart-genre-trends")["datasets"]) > 1

    # The listening history per hour: one point per day and hour.
    page.select_option("#listening-granularity", "hour")
    assert _wait_for_state(page, "ready", "error", loads=4) == "ready"
    assert watched.pipe_requests("listening_history")[-1]["granularity"] == ["hour"]
    labels = page.evaluate(CHART_INFO_JS, "chart-listening")["labels"]
    assert labels and all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:00", label) for label in labels)

    # Everything came from the server itself, and nothing went wrong in the page.
    assert watched.outside == []
    assert all(urlsplit(u).hostname in LOCAL_HOSTS for u in watched.requests), watched.requests
    assert watched.console_errors == []
    assert watched.page_errors == []


@needs_browser
def test_dashboard_without_a_token_asks_for_one(watched: Watched, live_server):
    page = watched.page
    page.goto(f"{live_server.url}/")
    assert _wait_for_state(page, "token", "ready", "error") == "token"
    assert page.locator("#token-form").is_visible()
    assert page.locator("#dashboard").is_hidden()
    assert not [u for u in watched.requests if urlsplit(u).path.startswith("/v0/")]

    # Entering a token opens the dashboard.
    page.fill("#token-input", live_server.tokens["reader"])
    page.click("#token-form button[type=submit]")
    assert _wait_for_state(page, "ready", "error") == "ready", page.locator("#message").inner_text()
    assert page.locator("#token-form").is_hidden()
    assert watched.outside == []
    assert watched.console_errors == []
    assert watched.page_errors == []


@needs_browser
@pytest.mark.parametrize(
    ("token_name", "status"), [("not-a-token", "401 Unauthorized"), ("appender", "403 Forbidden")]
)
def test_dashboard_with_a_rejected_token_says_so(watched: Watched, live_server, token_name, status):
    page = watched.page
    token = live_server.tokens.get(token_name, token_name)
    page.goto(f"{live_server.url}/?token={token}")
    assert _wait_for_state(page, "error", "ready") == "error"
    message = page.locator("#message")
    assert message.is_visible()
    assert status in message.inner_text()
    assert page.locator("#token-form").is_visible()
    # The rejected token is forgotten, so a reload asks for one instead of failing again.
    assert page.evaluate("sessionStorage.getItem('music-analytics.token')") is None
    assert watched.page_errors == []


@pytest.fixture(scope="module")
def empty_server(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """(url, reader token) of a server on a home that has no exports yet."""
    with module_home(tmp_path_factory, "empty") as settings:
        reader = create_token(settings.api_tokens_file, "reader", ["PIPES:READ"]).token
        app = build_app(settings)
    with serving(app) as url:
        yield url, reader


@needs_browser
def test_dashboard_before_any_export_says_to_build_the_data(watched: Watched, empty_server):
    url, reader = empty_server
    page = watched.page
    page.goto(f"{url}/?token={reader}")
    assert _wait_for_state(page, "error", "ready") == "error"
    message = page.locator("#message").inner_text()
    assert "503" in message and "make demo" in message, message
    assert watched.page_errors == []


def test_dashboard_files_reference_no_other_host():
    """The page works offline: no CDN or other host in its own files, and the vendored
    Chart.js is there."""
    for name in ("index.html", "dashboard.js", "dashboard.css"):
        text = (STATIC / name).read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), name
    assert (STATIC / "vendor" / "chart.umd.min.js").stat().st_size > 100_000
    assert (STATIC / "vendor" / "chart.js.LICENSE.md").exists()
