"""Graceful shutdown. aiohttp's own shutdown stops reading from connections at once,
which would stall every upload in flight; casevars instead stops listening, lets the
requests in flight (uploads included) run for the grace period while their
connections close after their responses, and only then lets aiohttp cancel the rest."""

from __future__ import annotations

import asyncio
import dataclasses

from aiohttp import web
from aiohttp.typedefs import Handler


@dataclasses.dataclass
class InFlight:
    """Requests being handled; `stopping` is set when SIGTERM arrives."""

    count: int = 0
    idle: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    stopping: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.idle.set()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.count += 1
        self.idle.clear()
        try:
            response = await handler(request)
            if self.stopping.is_set():
                # No further request on this connection: it closes after this response.
                response.force_close()
            return response
        finally:
            self.count -= 1
            if self.count == 0:
                self.idle.set()

    async def drain(self, grace_seconds: float) -> int:
        """Wait until no request is in flight or the grace period is over; returns
        how many requests were still running then."""
        try:
            await asyncio.wait_for(self.idle.wait(), grace_seconds)
        except TimeoutError:
            return self.count
        return 0
