"""A fake Spotify accounts service and Web API (the endpoints the plays client uses).

`FakeSpotify(httpserver)` answers on a pytest-httpserver `HTTPServer`:

- `POST /api/token`: `grant_type=refresh_token` (HTTP Basic client auth) hands out an access
  token; a revoked refresh token gets `400 invalid_grant`. `grant_type=authorization_code`
  redeems a code that `approve(authorization_url)` issued (single use, same redirect URI).
- `GET /v1/me/player/recently-played?limit&after|before`: the plays added with `add_play`,
  newest first; only the newest `history_limit` (50) plays are remembered, as on Spotify;
  `after`/`before` are exclusive; `cursors.after/before` are the newest/oldest played_at in ms.
- `GET /v1/tracks?ids=`, `/v1/tracks/{id}`, `/v1/artists?ids=`, `/v1/artists/{id}`: catalog
  objects built from the plays (or set with `set_track`/`set_artist`).
- `GET /v1/audio-features?ids=`: 403 unless `audio_features_available`.

Knobs: `revoke()`, `expire_access_tokens()` (API answers 401 until refreshed), `access_token_ttl`,
`batch_available` (False: batch endpoints answer 403, as for development-mode apps since February
2026), and queues of one-off responses: `script(route, status, body, headers, times)` plus
`rate_limit(retry_after)`, `quota_exceeded()`, `unavailable(status)`. Routes: "token",
"recently_played", "tracks", "track", "artists", "artist", "audio_features". Counters:
`requests[route]`, `token_refreshes`, `code_exchanges`, `request_log` (route, query) and
`auth_headers` (every Authorization header seen). Handlers take a lock, so it is thread-safe.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from music_analytics_tests.fakes.http import ScriptedResponse

ROUTES = (
    "token",
    "recently_played",
    "tracks",
    "track",
    "artists",
    "artist",
    "audio_features",
)


@dataclass(frozen=True)
class FakePlay:
    """One play the fake remembers."""

    played_at: datetime
    track_id: str
    context_type: str | None = "playlist"
    context_uri: str | None = None


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def _iso(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


class FakeSpotify:
    """Spotify's accounts service and Web API for one user, on a pytest-httpserver server."""

    def __init__(
        self,
        httpserver: HTTPServer,
        client_id: str = "cid",
        client_secret: str = "secret",
        refresh_token: str = "refresh-1",
        *,
        access_token_ttl: int = 3600,
        history_limit: int = 50,
    ) -> None:
        self.server = httpserver
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.access_token_ttl = access_token_ttl
        self.history_limit = history_limit
        self.revoked = False
        self.batch_available = True
        self.audio_features_available = False
        self.plays: list[FakePlay] = []
        self.tracks: dict[str, dict[str, Any]] = {}
        self.artists: dict[str, dict[str, Any]] = {}
        self.requests: Counter[str] = Counter()
        self.request_log: list[tuple[str, dict[str, str]]] = []
        self.auth_headers: list[str] = []
        self.token_refreshes = 0
        self.code_exchanges = 0
        self.authorize_requests: list[dict[str, str]] = []
        self._valid_tokens: set[str] = set()
        self._codes: dict[str, str] = {}  # code -> redirect_uri
        self._serial = 0
        self._scripted: dict[str, deque[ScriptedResponse]] = {r: deque() for r in ROUTES}
        self._lock = threading.RLock()
        expect = httpserver.expect_request
        expect("/api/token", method="POST").respond_with_handler(self._route("token"))
        expect("/v1/me/player/recently-played", method="GET").respond_with_handler(
            self._route("recently_played")
        )
        for kind in ("tracks", "artists", "audio-features"):
            route = kind.replace("-", "_")
            expect(re.compile(f"^/v1/{kind}/?$"), method="GET").respond_with_handler(
                self._route(route)
            )
        expect(re.compile(r"^/v1/tracks/[^/]+$"), method="GET").respond_with_handler(
            self._route("track")
        )
        expect(re.compile(r"^/v1/artists/[^/]+$"), method="GET").respond_with_handler(
            self._route("artist")
        )

    @property
    def api_base_url(self) -> str:
        """The Web API base, as `SpotifyPlaysClient(api_base_url=...)` takes it (ends in /v1/)."""
        return self.server.url_for("/v1/")

    @property
    def accounts_base_url(self) -> str:
        """The accounts service base (token URL is `{accounts_base_url}/api/token`)."""
        return self.server.url_for("/").rstrip("/")

    # --- test data -----------------------------------------------------------------------

    def add_play(
        self,
        played_at: datetime | str,
        track_id: str,
        *,
        track_name: str | None = None,
        artist_ids: Iterable[str] = (),
        duration_ms: int = 200_000,
        isrc: str | None = None,
        context_type: str | None = "playlist",
        context_uri: str | None = None,
    ) -> FakePlay:
        """Remember a play (and, unless already known, its track and artists)."""
        if isinstance(played_at, str):
            played_at = datetime.fromisoformat(played_at.replace("Z", "+00:00"))
        if played_at.tzinfo is None:
            played_at = played_at.replace(tzinfo=UTC)
        with self._lock:
            artists = list(artist_ids) or [f"ar{track_id}"]  # base62-like, as spotipy wants
            for artist_id in artists:
                self.artists.setdefault(artist_id, self._artist_object(artist_id))
            if track_id not in self.tracks:
                self.set_track(
                    track_id,
                    name=track_name or f"Track {track_id}",
                    artist_ids=artists,
                    duration_ms=duration_ms,
                    isrc=isrc if isrc is not None else f"US{track_id.upper()[:10]:0>10}",
                )
            play = FakePlay(
                played_at,
                track_id,
                context_type,
                context_uri or (f"spotify:{context_type}:ctx1" if context_type else None),
            )
            self.plays.append(play)
            self.plays.sort(key=lambda p: p.played_at, reverse=True)
            return play

    def set_track(
        self,
        track_id: str,
        *,
        name: str,
        artist_ids: Iterable[str],
        duration_ms: int = 200_000,
        isrc: str | None = None,
        album_id: str | None = None,
        release_date: str = "2024-05-17",
        popularity: int = 50,
    ) -> dict[str, Any]:
        """Set the full track object the catalog endpoints serve."""
        with self._lock:
            artists = [
                {
                    "id": a,
                    "name": self.artists.get(a, {}).get("name", f"Artist {a}"),
                    "type": "artist",
                    "uri": f"spotify:artist:{a}",
                }
                for a in artist_ids
            ]
            album = album_id or f"album-{track_id}"
            track = {
                "id": track_id,
                "name": name,
                "type": "track",
                "uri": f"spotify:track:{track_id}",
                "duration_ms": duration_ms,
                "explicit": False,
                "popularity": popularity,
                "artists": artists,
                "album": {
                    "id": album,
                    "name": f"Album {album}",
                    "album_type": "album",
                    "release_date": release_date,
                    "release_date_precision": "day",
                    "artists": artists[:1],
                },
                "external_ids": {"isrc": isrc} if isrc else {},
            }
            self.tracks[track_id] = track
            return track

    def set_artist(self, artist_id: str, *, name: str, genres: Iterable[str] = ()) -> None:
        """Set the artist object the catalog endpoints serve."""
        with self._lock:
            self.artists[artist_id] = self._artist_object(artist_id, name, list(genres))

    @staticmethod
    def _artist_object(
        artist_id: str, name: str | None = None, genres: list[str] | None = None
    ) -> dict[str, Any]:
        return {
            "id": artist_id,
            "name": name or f"Artist {artist_id}",
            "type": "artist",
            "uri": f"spotify:artist:{artist_id}",
            "genres": ["indie pop"] if genres is None else genres,
            "popularity": 40,
        }

    # --- knobs ---------------------------------------------------------------------------

    def revoke(self) -> None:
        """The refresh token is revoked (or expired): refreshing answers invalid_grant."""
        with self._lock:
            self.revoked = True
            self._valid_tokens.clear()

    def expire_access_tokens(self) -> None:
        """Every access token handed out so far expires: the API answers 401 until refreshed."""
        with self._lock:
            self._valid_tokens.clear()

    def script(
        self,
        route: str,
        status: int,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` requests to `route` with this response."""
        if route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; one of {ROUTES}")
        with self._lock:
            self._scripted[route].extend([ScriptedResponse(status, body, headers or {})] * times)

    def rate_limit(
        self, retry_after: float | None, route: str = "recently_played", times: int = 1
    ) -> None:
        """The next `times` requests to `route` get 429 with this Retry-After."""
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        body = {"error": {"status": 429, "message": "API rate limit exceeded"}}
        self.script(route, 429, body, headers, times)

    def quota_exceeded(self, route: str = "recently_played", retry_after: float = 86400) -> None:
        """The next request to `route` gets 429 with a QUOTA_EXCEEDED body."""
        body = {"error": {"status": 429, "message": "QUOTA_EXCEEDED", "reason": "QUOTA_EXCEEDED"}}
        self.script(route, 429, body, {"Retry-After": f"{retry_after:g}"})

    def unavailable(
        self, status: int = 503, route: str = "recently_played", times: int = 1
    ) -> None:
        """The next `times` requests to `route` get a 5xx."""
        body = {"error": {"status": status, "message": "Service unavailable"}}
        self.script(route, status, body, times=times)

    def approve(self, authorization_url: str, *, deny: bool = False) -> str:
        """What the browser is redirected to after the user clicks Agree (or Cancel)."""
        params = dict(parse_qsl(urlsplit(authorization_url).query))
        with self._lock:
            self.authorize_requests.append(params)
            redirect = params["redirect_uri"]
            answer: dict[str, str] = {}
            if params.get("client_id") != self.client_id:
                raise ValueError(f"unknown client_id {params.get('client_id')!r}")
            if deny:
                answer["error"] = "access_denied"
            else:
                self._serial += 1
                code = f"code-{self._serial}"
                self._codes[code] = redirect
                answer["code"] = code
            if "state" in params:
                answer["state"] = params["state"]
            return f"{redirect}?{urlencode(answer)}"

    # --- handlers ------------------------------------------------------------------------

    def _route(self, route: str):
        handler = getattr(self, f"_handle_{route}")

        def handle(request: Request) -> Response:
            with self._lock:
                self.requests[route] += 1
                self.request_log.append((route, dict(request.args)))
                if "Authorization" in request.headers:
                    self.auth_headers.append(request.headers["Authorization"])
                if self._scripted[route]:
                    return self._scripted[route].popleft().to_response()
                if route != "token" and not self._authorized(request):
                    return _json(
                        401, {"error": {"status": 401, "message": "The access token expired"}}
                    )
                return handler(request)

        return handle

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        return header.startswith("Bearer ") and header[7:] in self._valid_tokens

    def _handle_token(self, request: Request) -> Response:
        if not self._client_ok(request):
            return _json(
                401, {"error": "invalid_client", "error_description": "Invalid client secret"}
            )
        form = request.form
        grant = form.get("grant_type")
        if grant == "refresh_token":
            if self.revoked or form.get("refresh_token") != self.refresh_token:
                return _json(
                    400, {"error": "invalid_grant", "error_description": "Refresh token revoked"}
                )
            self.token_refreshes += 1
            return _json(200, self._issue())
        if grant == "authorization_code":
            code = form.get("code", "")
            redirect = self._codes.pop(code, None)
            if redirect is None:
                return _json(
                    400,
                    {"error": "invalid_grant", "error_description": "Invalid authorization code"},
                )
            if redirect != form.get("redirect_uri"):
                return _json(
                    400, {"error": "invalid_grant", "error_description": "Invalid redirect URI"}
                )
            self.code_exchanges += 1
            answer = self._issue()
            answer["refresh_token"] = self.refresh_token
            self.revoked = False
            return _json(200, answer)
        return _json(400, {"error": "unsupported_grant_type", "error_description": str(grant)})

    def _client_ok(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:]).decode()
        except ValueError:
            return False
        return decoded == f"{self.client_id}:{self.client_secret}"

    def _issue(self) -> dict[str, Any]:
        self._serial += 1
        token = f"access-{self._serial}"
        self._valid_tokens.add(token)
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.access_token_ttl,
            "scope": "user-read-recently-played",
        }

    def _handle_recently_played(self, request: Request) -> Response:
        args = request.args
        try:
            limit = int(args.get("limit", 20))
            after = int(args["after"]) if "after" in args else None
            before = int(args["before"]) if "before" in args else None
        except ValueError:
            return _bad_request("limit, after and before must be integers")
        if not 1 <= limit <= 50:
            return _bad_request("limit must be between 1 and 50")
        if after is not None and before is not None:
            return _bad_request("only one of after and before may be given")
        remembered = self.plays[: self.history_limit]  # newest first
        if after is not None:
            newer = [p for p in remembered if _ms(p.played_at) > after]
            chosen = newer[-limit:]  # the oldest `limit` after the cursor, to page forward
        elif before is not None:
            chosen = [p for p in remembered if _ms(p.played_at) < before][:limit]
        else:
            chosen = remembered[:limit]
        items = [self._item(p) for p in chosen]
        cursors = (
            {"after": str(_ms(chosen[0].played_at)), "before": str(_ms(chosen[-1].played_at))}
            if chosen
            else None
        )
        base = self.server.url_for("/v1/me/player/recently-played")
        return _json(
            200,
            {
                "href": f"{base}?{urlencode(dict(args))}",
                "items": items,
                "limit": limit,
                "next": (
                    f"{base}?{urlencode({'before': cursors['before'], 'limit': limit})}"
                    if cursors
                    else None
                ),
                "cursors": cursors,
            },
        )

    def _item(self, play: FakePlay) -> dict[str, Any]:
        context = (
            {"type": play.context_type, "uri": play.context_uri, "href": None}
            if play.context_type
            else None
        )
        return {
            "track": self.tracks[play.track_id],
            "played_at": _iso(play.played_at),
            "context": context,
        }

    def _handle_tracks(self, request: Request) -> Response:
        return self._batch(request, "tracks", self.tracks, 50)

    def _handle_artists(self, request: Request) -> Response:
        return self._batch(request, "artists", self.artists, 50)

    def _handle_audio_features(self, request: Request) -> Response:
        if not self.audio_features_available:
            return _json(403, {"error": {"status": 403, "message": "Forbidden"}})
        ids = _ids(request)
        return _json(
            200,
            {
                "audio_features": [
                    {"id": i, "danceability": 0.5, "energy": 0.7, "tempo": 120.0}
                    if i in self.tracks
                    else None
                    for i in ids
                ]
            },
        )

    def _handle_track(self, request: Request) -> Response:
        return self._single(request, self.tracks)

    def _handle_artist(self, request: Request) -> Response:
        return self._single(request, self.artists)

    def _batch(
        self, request: Request, key: str, store: dict[str, dict[str, Any]], max_ids: int
    ) -> Response:
        if not self.batch_available:
            return _json(403, {"error": {"status": 403, "message": "Forbidden"}})
        ids = _ids(request)
        if not ids or len(ids) > max_ids:
            return _bad_request(f"ids must hold 1 to {max_ids} ids")
        return _json(200, {key: [store.get(i) for i in ids]})

    def _single(self, request: Request, store: dict[str, dict[str, Any]]) -> Response:
        item = store.get(request.path.rsplit("/", 1)[-1])
        if item is None:
            return _json(404, {"error": {"status": 404, "message": "Resource not found"}})
        return _json(200, item)


def _ids(request: Request) -> list[str]:
    return [i for i in request.args.get("ids", "").split(",") if i]


def _bad_request(message: str) -> Response:
    return _json(400, {"error": {"status": 400, "message": message}})


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")
