"""Downloads relayed from S3's socket into the client's socket inside the kernel.

Reading a download into Python and writing it out again copies every byte twice
between the kernel and the service. splice(2) moves the bytes from one socket to the
other through a pipe without that copy, which halves the service's CPU per GiB
downloaded (README, Benchmarks). It needs Linux and plain TCP on both sockets: TLS is
encrypted in user space, so a TLS connection on either side takes the ordinary path.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import os
import socket
import sys
from collections.abc import Callable, Iterator

from service.errors import Unavailable

# Capacity asked for each relay's pipe. 256 KiB moves as fast as 1 MiB and keeps 256
# downloads at once within Linux's default per-user pipe allowance (64 MiB).
PIPE_BYTES = 256 * 1024

_TCP_FAMILIES = (socket.AF_INET, socket.AF_INET6)


def plain_tcp_fd(transport: asyncio.BaseTransport | None) -> int | None:
    """The descriptor of transport's socket when bytes can be spliced through it: an
    open TCP connection without TLS, on a kernel where splice works. Else None."""
    if transport is None or transport.is_closing() or not splice_works():
        return None
    if transport.get_extra_info("sslcontext") is not None:
        return None
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in _TCP_FAMILIES or sock.type != socket.SOCK_STREAM:
        return None
    return int(sock.fileno())


@functools.cache
def splice_works() -> bool:
    """Whether this kernel splices between TCP sockets: Linux, and not every sandbox
    running it (gVisor, for one, may refuse splice on sockets)."""
    if sys.platform != "linux":
        return False
    try:
        with (
            socket.create_server(("127.0.0.1", 0)) as server,
            socket.create_connection(server.getsockname()) as sender,
        ):
            receiver, _ = server.accept()
            with receiver, _pipe() as (pipe_out, pipe_in):
                # One byte there and back: socket to pipe, pipe to socket.
                sender.sendall(b"x")
                there = os.splice(receiver.fileno(), pipe_in, 1)
                back = os.splice(pipe_out, receiver.fileno(), 1)
                return there == back == 1 and sender.recv(1) == b"x"
    except OSError:
        return False


@contextlib.contextmanager
def _pipe() -> Iterator[tuple[int, int]]:
    read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        yield read_end, write_end
    finally:
        os.close(read_end)
        os.close(write_end)


@contextlib.contextmanager
def _duplicate(fd: int) -> Iterator[int]:
    """Our own descriptor for the socket: asyncio refuses a second watcher on the
    descriptor its transport owns, and the socket stays usable even if the transport
    closes its descriptor meanwhile."""
    copy = os.dup(fd)
    try:
        os.set_blocking(copy, False)  # shared with the original, which asyncio made so

        yield copy
    finally:
        os.close(copy)


async def relay(
    source_fd: int,
    sink: asyncio.WriteTransport,
    count: int,
    *,
    source_timeout: float | None,
    sent: Callable[[int], None],
) -> None:
    """Move exactly count bytes from the socket source_fd into sink's socket (which
    plain_tcp_fd must accept), after whatever sink still buffers; sent(n) is told of
    each step. Raises Unavailable when the source ends early, fails or sends nothing
    for source_timeout seconds, and ConnectionError when the client goes away."""
    sink_fd = plain_tcp_fd(sink)
    if sink_fd is None:
        raise ValueError("relay needs a plain TCP transport to write to")
    loop = asyncio.get_running_loop()
    with _duplicate(source_fd) as source, _duplicate(sink_fd) as client, _pipe() as pipe:
        pipe_out, pipe_in = pipe
        with contextlib.suppress(OSError):  # refused past the per-user allowance: 64 KiB
            fcntl.fcntl(pipe_in, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        capacity = fcntl.fcntl(pipe_in, fcntl.F_GETPIPE_SZ)
        # Bytes spliced in must follow the headers and bytes the transport still holds.
        while sink.get_write_buffer_size():
            await _ready(loop, writer=client, timeout=None)
        to_read, in_pipe = count, 0
        while to_read or in_pipe:
            source_blocked = client_blocked = False
            if to_read and in_pipe < capacity:
                moved = _from_source(source, pipe_in, min(to_read, capacity - in_pipe))
                source_blocked = moved is None
                to_read -= moved or 0
                in_pipe += moved or 0
            if in_pipe:
                moved = _splice(pipe_out, client, in_pipe, more=bool(to_read))
                client_blocked = moved is None
                if moved:
                    in_pipe -= moved
                    sent(moved)
            if source_blocked and (client_blocked or not in_pipe):
                # Only a silent source is timed out; a slow client is its own business.
                await _ready(
                    loop,
                    reader=source,
                    writer=client if client_blocked else None,
                    timeout=None if client_blocked else source_timeout,
                )
            elif client_blocked and (source_blocked or not to_read or in_pipe == capacity):
                await _ready(loop, writer=client, timeout=None)


def _splice(source: int, sink: int, count: int, *, more: bool = False) -> int | None:
    """Bytes moved (0: the source has ended), None when either side would block."""
    flags = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK | (os.SPLICE_F_MORE if more else 0)
    try:
        return os.splice(source, sink, count, flags=flags)
    except BlockingIOError:
        return None


def _from_source(source: int, pipe_in: int, count: int) -> int | None:
    """_splice from S3's socket, whose failures are S3's."""
    try:
        moved = _splice(source, pipe_in, count)
    except OSError as error:
        raise Unavailable(f"S3 failed mid-download: {error}") from error
    if moved == 0:
        raise Unavailable("S3 closed the connection mid-download")
    return moved


async def _ready(
    loop: asyncio.AbstractEventLoop,
    *,
    reader: int | None = None,
    writer: int | None = None,
    timeout: float | None,
) -> None:
    """Wait until reader is readable or writer writable."""
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    if reader is not None:
        loop.add_reader(reader, wake)
    if writer is not None:
        loop.add_writer(writer, wake)
    try:
        async with asyncio.timeout(timeout):
            await ready
    except TimeoutError:
        raise Unavailable(f"S3 sent nothing for {timeout:g} s mid-download") from None
    finally:
        if reader is not None:
            loop.remove_reader(reader)
        if writer is not None:
            loop.remove_writer(writer)
