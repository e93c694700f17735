"""Fixtures for the HTTP server: one home with real marts and exports, and a live server on it.

`marts_settings` runs the real pipeline once per session (sample events over four days, DSP
reports for two of them and a Spotify export) so every pipe has data; `live_server` serves it
with uvicorn on a free port, with three tokens: admin, reader (PIPES:READ) and appender
(DATASOURCE:APPEND:music_streams).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta

import dagster as dg
import pytest
import requests
import uvicorn

from music_analytics.lib.core.settings import Settings
from music_analytics.lib.dsp.sample import generate_dsp_reports
from music_analytics.lib.events.sample import generate_events
from music_analytics.lib.spotify.sample import generate_history_export
from music_analytics.refresh import refresh
from music_analytics.server.api_tokens import create_token, load_tokens
from music_analytics.server.app import build_app
from music_analytics_tests.conftest import module_home

FIRST_DAY = date(2025, 3, 1)
DAYS = 4
DSP_DAYS = 2


@pytest.fixture(scope="session")
def marts_settings(tmp_path_factory) -> Settings:
    """A home whose marts and exports were built by the real pipeline from sample data.

    The environment is set only while the pipeline runs, so other modules never see it."""
    with module_home(tmp_path_factory, "served", MUSIC_ANALYTICS_START_DATE="2025-01-01") as s:
        generate_events(s.events_landing, start=FIRST_DAY, days=DAYS, events_per_day=1500, seed=7)
        generate_dsp_reports(
            s.dsp_landing,
            start=FIRST_DAY + timedelta(days=DAYS - DSP_DAYS),
            days=DSP_DAYS,
            records_per_report=40,
            seed=7,
        )
        generate_history_export(
            s.spotify_history_landing, start=FIRST_DAY, days=DAYS, plays_per_day=25, seed=7
        )
        refresh(settings=s, instance=dg.DagsterInstance.ephemeral(), log_level="WARNING")
        create_token(s.api_tokens_file, "admin", ["ADMIN"])
        create_token(s.api_tokens_file, "reader", ["PIPES:READ"])
        create_token(s.api_tokens_file, "appender", ["DATASOURCE:APPEND:music_streams"])
        create_token(s.api_tokens_file, "top_tracks_only", ["PIPES:READ:top_tracks"])
    # The environment is restored here: the server needs only the Settings (absolute paths).
    return s


@dataclass
class LiveServer:
    url: str
    tokens: dict[str, str]
    app: object


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(app) -> Iterator[str]:
    """Serve `app` with uvicorn on a free port in a thread; yields its base URL."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        app.state.snapshots.close()


@pytest.fixture(scope="session")
def live_server(marts_settings) -> Iterator[LiveServer]:
    """uvicorn serving build_app(marts_settings) on a free port, in a thread."""
    app = build_app(marts_settings)
    tokens = {t.name: t.token for t in load_tokens(marts_settings.api_tokens_file).tokens}
    with serving(app) as url:
        yield LiveServer(url, tokens, app)


@pytest.fixture(scope="module")
def api(live_server):
    """GET and POST on the live server with a named token (Bearer), or none."""

    class Api:
        url = live_server.url
        tokens = live_server.tokens
        session = requests.Session()

        def get(self, path: str, token: str | None = "admin", **params) -> requests.Response:
            headers = {"Authorization": f"Bearer {self.tokens[token]}"} if token else {}
            return self.session.get(self.url + path, params=params, headers=headers, timeout=30)

        def post(self, path: str, token: str | None = "admin", **kwargs) -> requests.Response:
            headers = kwargs.pop("headers", {})
            if token:
                headers["Authorization"] = f"Bearer {self.tokens[token]}"
            return self.session.post(self.url + path, headers=headers, timeout=30, **kwargs)

        def data(self, pipe: str, **params) -> list[dict]:
            response = self.get(f"/v0/pipes/{pipe}.json", **params)
            assert response.status_code == 200, response.text
            return response.json()["data"]

        def sql(self, q: str) -> list[dict]:
            return self.sql_with(q)

        def sql_with(self, q: str, **params) -> list[dict]:
            response = self.get("/v0/sql", q=q, **params)
            assert response.status_code == 200, response.text
            return response.json()["data"]

    yield Api()
    Api.session.close()
