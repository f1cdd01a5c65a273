"""The `data` part of an upload form, read with as little work per byte as aiohttp
allows: the chunks its HTTP parser made are handed on whole, and the boundary is looked
for once in each (aiohttp's BodyPartReader copies every chunk twice to look for it).
A chunk is handed on once the next has shown that no delimiter begins in it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from service.errors import UploadAborted
from service.private_api import RawPart

# Awaits an arrival of the body within the client read timeout (TimeoutError else).
Wait = Callable[[Awaitable[None]], Awaitable[None]]


async def data_chunks(raw: RawPart, wait: Wait, read_timeout: float) -> AsyncIterator[bytes]:
    """The part's content, chunk by chunk; ValueError when the body ends before the
    part's boundary, UploadAborted when nothing arrives for read_timeout seconds."""
    delimiter = b"\r\n" + raw.boundary
    keep = len(delimiter) - 1
    # Received, not handed on: the delimiter may begin in it. aiohttp has taken the CRLF
    # that ends the part's headers; put back, it finds an empty part like any other.
    pending, start = b"\r\n", 2
    while True:
        chunk = raw.chunk()
        if chunk is None:
            try:
                await wait(raw.arrival())
            except TimeoutError as error:
                raise UploadAborted(f"the client sent nothing for {read_timeout:.0f}s") from error
            continue
        if not chunk:
            raise ValueError("the body ends inside the data part")
        if len(chunk) < keep:
            # Too short to tell whether a delimiter begins in pending: kept with it.
            pending += chunk
            found = pending.find(delimiter)
            if found >= 0:
                if found > start:
                    yield pending[start:found]
                raw.finish(pending[found + 2 :])
                return
            continue
        tail = max(0, len(pending) - keep)
        found = (pending[tail:] + chunk[:keep]).find(delimiter)
        if found >= 0:  # it begins in pending, ends in chunk
            found += tail
            if found > start:
                yield pending[start:found]
            raw.finish((pending[found:] + chunk)[2:])  # its CRLF may straddle too
            return
        found = chunk.find(delimiter)
        if len(pending) > start:
            yield pending[start:]
        if found >= 0:
            if found:
                yield chunk[:found]
            raw.finish(chunk[found + 2 :])
            return
        pending, start = chunk, 0
