"""The rest of a large request body read straight from the client's socket into the
part buffers it is uploaded from.

aiohttp hands a body to the service as bytes objects: the kernel copies each read into
a new one, its HTTP parser copies what belongs to the body into another, and the
service copies that into a part buffer, three copies per byte plus the page faults of
memory allocated afresh for every read. Here the kernel writes into the part buffer
itself (recv_into), one copy. It needs a body of known length on a plain TCP
connection; the connection closes after the response, since aiohttp's parser never
saw the bytes read past it (service/private_api.py, take_request_body).
"""

from __future__ import annotations

import asyncio
import mmap
from collections.abc import Callable
from typing import Protocol

from service.errors import UploadAborted
from service.http.pace import Pace
from service.private_api import TakenBody

# Fewer free bytes than this left in a buffer: receive into a small bytes object and
# copy, rather than make a system call for a handful of bytes.
_DIRECT_MIN_BYTES = 64 * 1024


class SocketBody:
    """A request body's remaining bytes: first those aiohttp had already read, then
    the socket's, each read within the request's pace (read timeout, minimum rate)."""

    def __init__(self, taken: TakenBody, pace: Pace) -> None:
        self._taken = taken
        self._received = bytearray(taken.received)
        self._pace = pace
        self._socket = taken.open_socket()
        self.remaining = taken.remaining + len(self._received)

    async def readinto(self, view: memoryview) -> int:
        """Fill the start of view with the next bytes of the body: how many, 0 at its
        end. UploadAborted when the client goes away before the end, or stalls."""
        wanted = min(len(view), self.remaining)
        if wanted == 0:
            return 0
        if self._received:
            got = min(wanted, len(self._received))
            view[:got] = self._received[:got]
            del self._received[:got]
        else:
            loop = asyncio.get_running_loop()
            try:
                got = await self._pace.read(loop.sock_recv_into(self._socket, view[:wanted]))
            except TimeoutError as error:
                raise UploadAborted(
                    f"the client sent nothing for {self._pace.read_timeout:.0f}s"
                ) from error
            except OSError as error:
                self._raise_failure()
                raise UploadAborted(f"the connection failed: {error}") from error
            if got == 0:
                self._raise_failure()
                raise UploadAborted("the client closed the connection")
            self._taken.count(got)
        self.remaining -= got
        return got

    async def fill(self, buffer: mmap.mmap | bytearray, start: int, stop: int) -> int:
        """readinto() for the blob store (a Filler): the body is the value."""
        with memoryview(buffer) as view, view[start:stop] as free:
            return await self.readinto(free)

    def _raise_failure(self) -> None:
        """Raise what aiohttp failed the body with, as a read of its stream would."""
        failure = self._taken.failure()
        if failure is not None:
            raise failure

    async def read(self, size: int) -> bytes:
        """Up to size bytes of the body, b"" at its end."""
        buffer = bytearray(min(size, self.remaining))
        got = await self.readinto(memoryview(buffer))
        return bytes(buffer[:got])

    def give_back(self, rest: bytes) -> None:
        """The reader is done with the body after `rest` (bytes it read too far): they
        and the bytes still on the socket go to the request's stream, for aiohttp's
        readers (the rest of a multipart form)."""
        self._taken.give_back(bytes(rest) + bytes(self._received), self._pump)
        self.remaining -= len(self._received)  # handed on: the pump reads only the socket's
        self._received.clear()

    async def _pump(self) -> bytes:
        """The next bytes from the socket for the request's stream, b"" at the end."""
        return await self.read(256 * 1024)


Buffer = mmap.mmap | bytearray


class BodyBytes(Protocol):
    """What DataPartReader reads: a SocketBody."""

    async def readinto(self, view: memoryview) -> int: ...

    async def read(self, size: int) -> bytes: ...

    def give_back(self, rest: bytes) -> None: ...


class DataPartReader:
    """The `data` part of a form whose body is a SocketBody: fill() writes the part's
    bytes into part buffers and stops at the part's boundary delimiter, which it looks
    for in the buffer itself (mmap.find, no copy). The last bytes received are held back
    until the next read shows that no delimiter begins in them."""

    def __init__(
        self,
        body: BodyBytes,
        boundary: bytes,
        *,
        ended: Callable[[], None] = lambda: None,
        direct_min_bytes: int = _DIRECT_MIN_BYTES,
    ) -> None:
        """boundary: the form's, with its leading "--"; ended() is called once the part
        has ended and what follows it is given back to the body."""
        self._body = body
        self._ended = ended
        self._direct_min_bytes = direct_min_bytes
        self._delimiter = b"\r\n" + boundary
        self._boundary = boundary
        # Received and not yet handed out: a tail in which a delimiter may begin, or
        # what did not fit the buffer of the last fill().
        self._held = b""
        self._started = False
        self.finished = False

    async def fill(self, buffer: Buffer, start: int, stop: int) -> int:
        """Write the part's next bytes to buffer[start:stop]: how many, 0 at its end."""
        if not self._started and await self._starts_with_boundary():
            return 0
        while not self.finished:
            short = len(self._held) < len(self._delimiter)  # only a held-back tail
            if short and stop - start - len(self._held) >= self._direct_min_bytes:
                filled = await self._fill_direct(buffer, start, stop)
            else:
                filled = await self._fill_small(buffer, start, stop)
            if filled or self.finished:
                return filled
        return 0

    async def _starts_with_boundary(self) -> bool:
        """Whether the part is empty: aiohttp's reader has taken the CRLF that ends the
        part's headers, so a delimiter right after them shows as the bare boundary."""
        self._started = True
        head = b""
        while len(head) < len(self._boundary):
            more = await self._body.read(len(self._boundary) - len(head))
            if not more:
                raise ValueError("the body ends inside the data part")
            head += more
        if head == self._boundary:
            self._finish(head)
            return True
        self._held = head
        return False

    async def _fill_direct(self, buffer: Buffer, start: int, stop: int) -> int:
        held = len(self._held)
        buffer[start : start + held] = self._held
        with memoryview(buffer) as view, view[start + held : stop] as free:
            got = await self._body.readinto(free)
        if got == 0:
            raise ValueError("the body ends inside the data part")
        end = start + held + got
        found = buffer.find(self._delimiter, start, end)
        if found >= 0:
            self._finish(bytes(buffer[found + 2 : end]))
            return found - start
        keep = len(self._delimiter) - 1
        handed = max(0, end - start - keep)
        self._held = bytes(buffer[start + handed : end])
        return handed

    async def _fill_small(self, buffer: Buffer, start: int, stop: int) -> int:
        data = self._held
        found = data.find(self._delimiter)
        if found < 0:
            more = await self._body.read(self._direct_min_bytes)
            if not more:
                raise ValueError("the body ends inside the data part")
            data += more
            found = data.find(self._delimiter)
        keep = len(self._delimiter) - 1
        ready = found if found >= 0 else max(0, len(data) - keep)
        handed = min(ready, stop - start)
        buffer[start : start + handed] = data[:handed]
        if found >= 0 and handed == found:
            self._finish(data[found + 2 :])
        else:
            self._held = data[handed:]
        return handed

    def _finish(self, rest: bytes) -> None:
        """rest: what follows the CRLF before the delimiter, from its "--" on."""
        self.finished = True
        self._held = b""
        self._body.give_back(rest)
        self._ended()
