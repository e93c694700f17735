"""Who may call what: tokens from `Authorization: Bearer` or `?token=`, and their scopes.

Every refusal is an `ApiError`, which the app answers as `{"error": ...}` with its status.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi import Request

from music_analytics.server.api_tokens import ApiToken, TokenSet

_TOKEN_IN_TEXT = re.compile(r"((?:^|[?&\s])token=)[^&\s\"']+", re.IGNORECASE)
_BEARER = re.compile(r"(Bearer\s+)\S+", re.IGNORECASE)


def redact_tokens(text: str) -> str:
    """Access-log lines and errors without token values (`?token=` or a Bearer header)."""
    return _BEARER.sub(r"\1***", _TOKEN_IN_TEXT.sub(r"\1***", text))


class ApiError(Exception):
    """A request refused with `status`; `message` is what the caller reads."""

    def __init__(self, status: int, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def _presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.query_params.get("token")


def authorise(request: Request, allowed: Callable[[ApiToken], bool], what: str) -> ApiToken:
    """The request's token if `allowed` accepts it; 401 without a valid one, 403 outside it."""
    tokens: TokenSet = request.app.state.tokens
    presented = _presented_token(request)
    if not presented:
        raise ApiError(
            401,
            "a token is required: send 'Authorization: Bearer <token>' or ?token=",
            {"WWW-Authenticate": "Bearer"},
        )
    token = tokens.find(presented)
    if token is None:
        raise ApiError(401, "the token is not valid", {"WWW-Authenticate": "Bearer"})
    if not allowed(token):
        raise ApiError(403, f"token '{token.name}' has no scope for {what}")
    return token
