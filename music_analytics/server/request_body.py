"""Reading a request's body with a size cap, so an oversized body is refused (413) without
being held whole: a declared Content-Length over the cap is refused before a byte is read, and
the stream is counted as it arrives (a chunked body declares nothing)."""

from __future__ import annotations

from fastapi import Request

from music_analytics.server.auth import ApiError


async def read_capped_body(request: Request, limit: int, refusal: str) -> bytes:
    """The body's bytes, at most `limit`; past it ApiError(413, `refusal`)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, refusal)
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise ApiError(413, refusal)
    return bytes(raw)
