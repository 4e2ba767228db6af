"""What a connection to `digits.serve` may do before it is a request: send its headers in time.

uvicorn has no deadline for a request's headers: its keep-alive timer runs only between requests
and every byte received stops it, so a client sending its headers a byte at a time (or nothing
at all after connecting) holds its connection for ever, and a few hundred such clients hold the
server's. ASGI middleware (digits.serving.limits) sees a request only once its headers are whole,
so the deadline lives in the HTTP protocol: uvicorn's own h11 protocol, given to uvicorn.Config
as its `http` class, with a timer from the connection's start (or from the first byte after the
previous answer) that closes the connection if no new request's headers have arrived by then.
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)


def with_header_deadline(seconds: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol, closing a connection whose request headers take over `seconds`."""
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout_s": seconds})


class HeaderDeadlineProtocol(H11Protocol):
    """H11Protocol with a deadline on each request's headers (`header_timeout_s`, set by
    with_header_deadline from conf/serve.yaml)."""

    header_timeout_s: float

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._arm()

    def data_received(self, data: bytes) -> None:
        # The first bytes after an answer start the next request: its headers' deadline starts.
        if (
            self.cycle is not None
            and self.cycle.response_complete
            and self._armed_for is not self.cycle
        ):
            self._arm()
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._armed_for = self.cycle  # a new request's headers make a new cycle
        self._deadline = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _headers_late(self) -> None:
        self._deadline = None
        if self.cycle is self._armed_for and not self.transport.is_closing():
            log.info("%s: request headers not whole within %g s; closed", self.client,
                     self.header_timeout_s)  # fmt: skip
            self.transport.close()
