"""Limits on what a request may send to `digits.serve`: how large its body is and how long it may
take to arrive. Each refusal is a 4xx with the one-line JSON error of every other refusal.

The size limit is FastAPI's own (`max_body_size` on each route that takes a body), which counts the
bytes as they arrive; `DeclaredSizeLimit` only answers a body whose declared Content-Length is over
that limit before FastAPI does, since FastAPI answers that case in plain text."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator, Sequence

from fastapi import HTTPException
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from starlette.datastructures import Headers
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digits.reading.images import MAX_PIXELS
from digits.reading.segment import Deadline, ReadingTimeout
from digits.serving.responses import error_response

# Decoded pixels the server holds at once, over all its requests: the upload limit counts bytes,
# and a 70 KB PNG can decode to 49 megapixels (~7 bytes each while read): eight of them at once
# took 2.6 GB. Twice the largest image allowed: any image can be read, two giant ones at a time.
DECODING_PIXELS = 2 * MAX_PIXELS


def too_large(max_bytes: int, what: str = "request body") -> str:
    """The refusal of a body (or one image of a batch) over `max_bytes`: max_upload_mb sets it."""
    return f"{what} over {max_bytes / 2**20:g} MB (max_upload_mb)"


class DeclaredSizeLimit:
    """Answer 413 in JSON when a request declares a Content-Length over its route's `max_body_size`
    (FastAPI's limit would refuse it too, in plain text)."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app, self.routes = app, routes

    def limit(self, scope: Scope) -> int | None:
        for route in self.routes:
            if route.matches(scope)[0] == Match.FULL:
                return getattr(route, "max_body_size", None)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            declared = Headers(scope=scope).get("content-length", "")
            limit = self.limit(scope) if declared.isdigit() else None
            if limit is not None and int(declared) > limit:
                await error_response(413, too_large(limit))(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyTimeout:
    """Answer 408 when a request's body has not all arrived `seconds` after its first read (a
    client that announces 5 MB and sends 10 bytes would otherwise hold its connection forever):
    uvicorn and Starlette time out idle connections between requests, never a stalled body."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app, self.seconds = app, seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline: float | None = None

        async def timed() -> Message:
            nonlocal deadline
            loop = asyncio.get_running_loop()
            deadline = deadline or loop.time() + self.seconds
            try:
                return await asyncio.wait_for(receive(), max(deadline - loop.time(), 0))
            except TimeoutError:  # raised inside the endpoint: answered as a 408 below
                raise HTTPException(
                    408, f"request body not received within {self.seconds:g} s (body_timeout_s)"
                ) from None

        await self.app(scope, timed, send)


class JSONCORSMiddleware(CORSMiddleware):
    """FastAPI's (Starlette's) CORS, with a refused preflight answered as every other refusal:
    `{"error": ...}` (Starlette's own answer is plain text)."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        reason = bytes(response.body).decode(errors="replace").strip()
        return error_response(response.status_code, f"CORS preflight refused: {reason}")


class DecodingBudget:
    """Pixels being decoded and read across the server's worker threads, at most `pixels`: an
    image waits for room (within its request's deadline, else 503) instead of every large image
    decoding at once."""

    def __init__(self, pixels: int = DECODING_PIXELS) -> None:
        self.free = self.pixels = pixels
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def held(self, pixels: int, deadline: Deadline) -> Iterator[None]:
        pixels = min(pixels, self.pixels)  # larger ones are refused by the decoder itself
        with self._changed:
            while self.free < pixels:
                if not deadline.remaining():
                    raise ReadingTimeout(
                        "the server is busy reading other large images: try again later"
                    )
                self._changed.wait(min(deadline.remaining(), 0.1))  # wakes for a stop, too
            self.free -= pixels
        try:
            yield
        finally:
            with self._changed:
                self.free += pixels
                self._changed.notify_all()
