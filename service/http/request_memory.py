"""Memory a request reads into (a JSON body and what parsing it makes, a serialized
object's bytes) is taken from the process's memory budget as it grows, and given back
when the request ends: many large bodies at once wait for each other instead of
taking more memory than the budget allows."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from service.errors import TooLarge
from service.http import keys

_HELD = web.RequestKey("memory_held", int)


async def cover(request: web.Request, total: int) -> None:
    """Make the request hold at least total bytes of the budget until it ends: waits
    while the budget is full (MemoryBusy, a 503, after the client read timeout);
    TooLarge when total is more than the whole budget, which no wait can give."""
    held = request.get(_HELD, 0)
    if total <= held:
        return
    budget = request.app[keys.BUDGET]
    if total > budget.capacity:
        raise TooLarge(
            f"Reading this request needs about {total} bytes of memory, more than "
            f"the service's memory budget of {budget.capacity} bytes"
        )
    # A growing buffer takes twice what it holds, so that a body read in small chunks
    # goes to the budget a few times, not once per chunk.
    target = min(budget.capacity, max(total, 2 * held))
    timeout = request.app[keys.SETTINGS].client_read_timeout_seconds
    await budget.acquire(target - held, timeout=timeout)
    request[_HELD] = target


@web.middleware
async def release_at_end(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Gives back what the request took, however it ends."""
    try:
        return await handler(request)
    finally:
        taken = request.pop(_HELD, 0)
        if taken:
            request.app[keys.BUDGET].release(taken)
