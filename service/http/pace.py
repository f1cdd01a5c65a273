"""The pace a request body must keep. The client read timeout ends a body that stops;
a minimum rate ends one that trickles (a byte now and then, each just inside the
timeout), which would otherwise hold its connection, and an upload's part buffer,
for as long as the client likes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TypeVar

from aiohttp import StreamReader, web

from service.errors import UploadAborted
from service.http import keys

T = TypeVar("T")


class Pace:
    """Reads of one request body: each within the read timeout, and together at
    min_bytes_per_second at least, measured over every `window` seconds spent waiting
    for the client. Only time spent waiting for the body counts, not time the service
    spends elsewhere (sending a part to S3, say) while the client's bytes wait in the
    socket. min_bytes_per_second 0: no minimum."""

    def __init__(
        self,
        stream: StreamReader,
        *,
        read_timeout: float,
        min_bytes_per_second: float,
        window: float,
    ) -> None:
        self.read_timeout = read_timeout
        self._stream = stream
        self._min_rate = min_bytes_per_second
        self._window = window
        self._waited = 0.0
        self._bytes_before = stream.total_bytes

    async def read(self, pending: Awaitable[T]) -> T:
        """pending's result; TimeoutError after read_timeout, UploadAborted when the
        body has come too slowly."""
        started = time.monotonic()
        # Not asyncio.wait_for: on Python 3.11 it makes a task of every read it times.
        async with asyncio.timeout(self.read_timeout):
            result = await pending
        self._count(time.monotonic() - started)
        return result

    def _count(self, waited: float) -> None:
        if self._min_rate <= 0:
            return
        self._waited += waited
        if self._waited < self._window:
            return
        received = self._stream.total_bytes - self._bytes_before
        if received < self._min_rate * self._waited:
            raise UploadAborted(
                f"the client sent {received} bytes in {self._waited:.0f}s, slower than "
                f"the minimum of {self._min_rate:g} bytes/s"
            )
        self._waited, self._bytes_before = 0.0, self._stream.total_bytes


_PACE = web.RequestKey("pace", Pace)


def pace_of(request: web.Request) -> Pace:
    """The request's one Pace, made on first use."""
    pace = request.get(_PACE)
    if pace is None:
        settings = request.app[keys.SETTINGS]
        pace = Pace(
            request.content,
            read_timeout=settings.client_read_timeout_seconds,
            min_bytes_per_second=settings.client_min_bytes_per_second,
            window=settings.client_read_timeout_seconds,
        )
        request[_PACE] = pace
    return pace
