"""GET /case-instance/{id}/variables in bounded memory: a case holding hundreds of
inlined Bytes values would otherwise be fetched, base64-encoded and serialized whole
for every request at once.

A listing that inlines Bytes first takes, in one piece, its share of the process's
memory budget: room for up to INLINE_FETCHES_AT_ONCE values being fetched and
rendered, plus LISTING_HEAD_BYTES of JSON not sent yet. It never asks for more while
it holds that (no deadlock between listings). Values are rendered in order, each
written as soon as it is its turn. A listing whose JSON fits in the head is sent
whole, with Content-Length, so an error on the way (a blob lost from S3, S3 down) is
still answered in Camunda's error format; a larger one streams (chunked) from then on,
and an error after its status line can only cut the connection (the client sees a
short body, never a complete-looking one). The JSON is the same either way.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import structlog
from aiohttp import web

from service.camunda import jsontext
from service.config import KIB, MIB, inline_cost
from service.http import keys
from service.storage.budget import Hold
from service.storage.repository import StoredVariable

log = structlog.get_logger("casevars.listing")

# Bytes contents fetched from S3 at once for one listing.
INLINE_FETCHES_AT_ONCE = 8
# A listing's JSON is held back, to be sent whole with Content-Length, up to this size.
LISTING_HEAD_BYTES = 4 * MIB
# Small pieces of a streamed listing are sent together, in writes of about this size.
WRITE_BYTES = 64 * KIB

Render = Callable[[StoredVariable], Awaitable[dict[str, Any]]]


def inlined_size(variable: StoredVariable, inline_limit: int) -> int | None:
    """The size of the variable's content if its JSON view inlines it, else None."""
    blob = variable.blob
    if variable.type != "Bytes" or blob is None or blob.size > inline_limit:
        return None
    return blob.size


def listing_memory(capacity: int, largest_cost: int, inlined: int) -> tuple[int, int]:
    """(values rendered at once, bytes of JSON held back) for a listing of `inlined`
    inlined values of at most largest_cost each, within a budget of capacity."""
    head = min(LISTING_HEAD_BYTES, capacity - largest_cost)
    window = min(INLINE_FETCHES_AT_ONCE, inlined, (capacity - head) // largest_cost)
    return max(1, window), head


async def send_listing(
    request: web.Request, variables: Sequence[StoredVariable], render: Render
) -> web.StreamResponse:
    """{name: value object, ...} for variables; render gives one value object and takes
    nothing from the budget itself."""
    budget = request.app[keys.BUDGET]
    settings = request.app[keys.SETTINGS]
    sizes = (inlined_size(v, settings.inline_bytes_limit) for v in variables)
    costs = [inline_cost(size) for size in sizes if size is not None]
    async with contextlib.AsyncExitStack() as stack:
        hold = None
        if costs:
            window, head = listing_memory(budget.capacity, max(costs), len(costs))
            hold = await stack.enter_async_context(
                budget.reserved(
                    window * max(costs) + head, timeout=settings.client_read_timeout_seconds
                )
            )
        else:
            window, head = 1, LISTING_HEAD_BYTES  # the values are in memory already
        output = _Output(request, head, hold, settings.client_read_timeout_seconds)
        with _cut_on_failure(request, output):
            await _in_order(variables, render, window, output.add)
            await output.finish()
        return output.response


async def send_array(request: web.Request, pages: AsyncIterator[list[Any]]) -> web.StreamResponse:
    """[item, ...] for JSON-able items that arrive a page at a time (a query read page
    by page): held back and sent whole while it fits in LISTING_HEAD_BYTES, streamed
    (chunked) beyond, in memory of one page and the head at most."""
    timeout = request.app[keys.SETTINGS].client_read_timeout_seconds
    output = _Output(request, LISTING_HEAD_BYTES, None, timeout, brackets=b"[]")
    with _cut_on_failure(request, output):
        async for page in pages:
            if page:  # its items, comma-separated: the JSON array without brackets
                await output.add(memoryview(jsontext.dumps(page))[1:-1])
        await output.finish()
    return output.response


@contextlib.contextmanager
def _cut_on_failure(request: web.Request, output: _Output) -> Iterator[None]:
    """A failure is raised while nothing is sent (the error middleware answers it);
    after the status line it cuts the connection, and is swallowed."""
    try:
        yield
    except Exception as error:
        if not output.started:
            raise
        if isinstance(error, ConnectionError | TimeoutError):
            log.info("listing.client_gone", path=request.path)  # or took nothing
        else:
            # The status line is gone: cut the connection so the client sees a short
            # body rather than a complete-looking one.
            log.exception("listing.cut", path=request.path)
        if request.transport is not None:
            request.transport.abort()


async def _in_order(
    variables: Sequence[StoredVariable],
    render: Render,
    window: int,
    add: Callable[[memoryview], Awaitable[None]],
) -> None:
    """Render up to `window` variables ahead, hand each fragment `"name":{...}` to add in
    order; a variable's memory is free once add has taken its fragment."""

    async def fragment(variable: StoredVariable) -> memoryview:
        shown = await render(variable)
        return memoryview(jsontext.dumps({variable.name: shown}))[1:-1]  # no copy

    ahead: collections.deque[asyncio.Task[memoryview]] = collections.deque()
    remaining = iter(variables)
    try:
        while True:
            while len(ahead) < window and (variable := next(remaining, None)) is not None:
                ahead.append(asyncio.ensure_future(fragment(variable)))
            if not ahead:
                return
            first = ahead.popleft()
            await add(await first)
    finally:
        for task in ahead:
            task.cancel()
        await asyncio.gather(*ahead, return_exceptions=True)


class _Output:
    """The JSON object (or array: brackets b"[]"), held back while it fits in `head`
    bytes, streamed beyond. Once streaming, the listing gives the head's share of its
    hold back; a client that takes nothing of it for write_timeout seconds is dropped
    (TimeoutError)."""

    def __init__(
        self,
        request: web.Request,
        head: int,
        hold: Hold | None,
        write_timeout: float,
        *,
        brackets: bytes = b"{}",
    ) -> None:
        self._request = request
        self._head_limit = head
        self._hold = hold
        self._write_timeout = write_timeout
        self._held: list[memoryview] = []
        self._size = 2  # of the held JSON, the braces included
        self._count = 0  # fragments added
        self._closing = brackets[1:]
        self._pending = bytearray(brackets[:1])  # small pieces not written yet
        self.response = web.StreamResponse(status=200)
        self.response.content_type = "application/json"

    @property
    def started(self) -> bool:
        return self.response.prepared

    async def add(self, fragment: memoryview) -> None:
        separator = 1 if self._count else 0
        self._count += 1
        if not self.started and self._size + separator + len(fragment) <= self._head_limit:
            self._held.append(fragment)
            self._size += separator + len(fragment)
            return
        if not self.started:
            await self.response.prepare(self._request)  # chunked: the length is not known
            await self._send_held()
            if self._hold is not None:
                self._hold.shrink(self._hold.amount - self._head_limit)
        if separator:
            self._pending += b","
        await self._write(fragment)

    async def finish(self) -> web.StreamResponse:
        if not self.started:
            self.response.content_length = self._size
            await self.response.prepare(self._request)
            await self._send_held()
        self._pending += self._closing
        await self._send(self._pending)
        await self.response.write_eof()
        return self.response

    async def _send_held(self) -> None:
        held, self._held = self._held, []
        for number, fragment in enumerate(held):
            if number:
                self._pending += b","
            await self._write(fragment)

    async def _write(self, piece: memoryview) -> None:
        """Small pieces gathered, large ones sent in slices: every block the writes
        allocate (chunk framing, the socket's buffer) stays small and alike, so the
        allocator reuses them instead of keeping large blocks of every size."""
        if len(piece) < WRITE_BYTES:
            self._pending += piece
            if len(self._pending) < WRITE_BYTES:
                return
            piece = memoryview(b"")
        if self._pending:
            await self._send(self._pending)
            self._pending = bytearray()
        for start in range(0, len(piece), WRITE_BYTES):
            await self._send(piece[start : start + WRITE_BYTES])

    async def _send(self, data: bytearray | memoryview) -> None:
        await asyncio.wait_for(self.response.write(data), self._write_timeout)
