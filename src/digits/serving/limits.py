"""Limits on what a request may send to `digits.serve`: how large its body is and how long it may
take to arrive. Each refusal is a 4xx with the one-line JSON error of every other refusal."""

from __future__ import annotations

import asyncio

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digits.serving.responses import error_response


class BodySizeLimit:
    """Refuse request bodies over `max_bytes` with 413, by Content-Length when declared and while
    reading otherwise (chunked). Starlette and uvicorn have no body limit of their own."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    def too_large(self) -> str:
        return f"request body over {self.max_bytes / 2**20:g} MB (max_upload_mb)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await error_response(413, self.too_large())(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:  # raised inside the endpoint: answered as a 413 below
                raise HTTPException(413, self.too_large())
            return message

        await self.app(scope, limited, send)


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
