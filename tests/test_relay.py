"""relay.py on real loopback sockets, and downloads relayed in the kernel by the service
(against moto and SeaweedFS): exact bytes, keep-alive after a relay, and every way the
source or the client can fail mid-download, with splicing on and off."""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from service.app import create_app
from service.errors import Unavailable
from service.storage import relay
from tests.conftest import new_id, proxied_s3, settings_for_tests
from tests.forms import FORM, body, create_case, data_url, part, pattern, upload_bytes

MIB = 1024 * 1024


def ignore(_: int) -> None:
    """A relay's progress nobody counts."""


pytestmark = pytest.mark.skipif(not relay.splice_works(), reason="splice(2) on TCP sockets")


class _Sink(asyncio.Protocol):
    def __init__(self, accepted: asyncio.Future[asyncio.Transport]) -> None:
        self._accepted = accepted

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._accepted.set_result(transport)


@contextlib.asynccontextmanager
async def client_connection() -> AsyncIterator[
    tuple[asyncio.Transport, asyncio.StreamReader, asyncio.StreamWriter]
]:
    """(the server's transport, the client's reader and writer) of one loopback TCP
    connection, the way aiohttp's server holds a client."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[asyncio.Transport] = loop.create_future()
    server = await loop.create_server(lambda: _Sink(accepted), "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
    transport = await accepted
    try:
        yield transport, reader, writer
    finally:
        transport.abort()
        writer.transport.abort()
        server.close()
        await server.wait_closed()


@contextlib.contextmanager
def source_connection() -> Any:
    """(S3's end, our end) of a loopback TCP connection, both non-blocking."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        ours = socket.create_connection(listener.getsockname())
        theirs, _ = listener.accept()
    with ours, theirs:
        ours.setblocking(False)  # noqa: FBT003
        theirs.setblocking(False)  # noqa: FBT003
        yield theirs, ours


async def test_relay_sends_exactly_count_bytes_after_what_the_transport_holds() -> None:
    loop = asyncio.get_running_loop()
    value = pattern(6 * MIB + 123, seed=1)
    counted: list[int] = []
    with source_connection() as (s3_end, source):
        async with client_connection() as (sink, client, _):
            sink.write(b"HTTP/1.1 200 OK\r\n\r\n")
            sending = loop.create_task(loop.sock_sendall(s3_end, value + b"not ours"))
            relaying = loop.create_task(
                relay.relay(
                    source.fileno(), sink, len(value), source_timeout=5, sent=counted.append
                )
            )
            assert await client.readexactly(19) == b"HTTP/1.1 200 OK\r\n\r\n"
            received = bytearray()
            while len(received) < len(value):  # a slow client: the relay waits for room
                received += await client.read(64 * 1024)
                await asyncio.sleep(0.0005)
            await relaying
            await sending
            assert bytes(received) == value
            assert sum(counted) == len(value)
            # What follows the count stays unread in the source.
            assert await loop.sock_recv(source, 100) == b"not ours"


async def test_relay_of_a_source_that_ends_early_is_unavailable() -> None:
    loop = asyncio.get_running_loop()
    with source_connection() as (s3_end, source):
        async with client_connection() as (sink, client, _):
            await loop.sock_sendall(s3_end, b"x" * 1000)
            s3_end.shutdown(socket.SHUT_WR)
            with pytest.raises(Unavailable, match="closed the connection"):
                await relay.relay(source.fileno(), sink, 5000, source_timeout=5, sent=ignore)
            assert await client.readexactly(1000) == b"x" * 1000


async def test_relay_of_a_silent_source_is_unavailable_after_the_timeout() -> None:
    loop = asyncio.get_running_loop()
    with source_connection() as (s3_end, source):
        async with client_connection() as (sink, _, _):
            await loop.sock_sendall(s3_end, b"x" * 1000)
            started = time.monotonic()
            with pytest.raises(Unavailable, match=r"sent nothing for 0\.3 s"):
                await relay.relay(source.fileno(), sink, 5000, source_timeout=0.3, sent=ignore)
            assert 0.3 <= time.monotonic() - started < 3


async def test_relay_to_a_client_that_went_away_is_a_connection_error() -> None:
    loop = asyncio.get_running_loop()
    with source_connection() as (s3_end, source):
        async with client_connection() as (sink, client, client_writer):
            sending = loop.create_task(loop.sock_sendall(s3_end, bytes(32 * MIB)))
            relaying = loop.create_task(
                relay.relay(source.fileno(), sink, 32 * MIB, source_timeout=5, sent=ignore)
            )
            await client.readexactly(MIB)
            client_socket = client_writer.transport.get_extra_info("socket")
            # Closed with unread bytes and linger 0: the kernel answers with a reset.
            client_socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client_writer.transport.abort()
            with pytest.raises(ConnectionError):
                await relaying
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await sending


async def test_plain_tcp_fd_refuses_what_cannot_be_spliced(tmp_path) -> None:
    assert relay.plain_tcp_fd(None) is None
    async with client_connection() as (sink, _, _):
        assert relay.plain_tcp_fd(sink) == sink.get_extra_info("socket").fileno()
        sink.close()
        assert relay.plain_tcp_fd(sink) is None  # closing

    def hang_up(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_unix_server(hang_up, path=str(tmp_path / "s"))
    async with server:
        _, writer = await asyncio.open_unix_connection(str(tmp_path / "s"))
        assert relay.plain_tcp_fd(writer.transport) is None  # not TCP
        writer.close()
        await writer.wait_closed()


# --- through the service ------------------------------------------------------------------

BIG = pattern(3 * MIB + 17, seed=11)


def open_descriptors() -> int:
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


@pytest.fixture
def relay_calls(monkeypatch) -> list[int]:
    """Byte counts of the downloads the service relayed in the kernel."""
    calls: list[int] = []
    real = relay.relay

    async def counting(source_fd: int, sink: Any, count: int, **kwargs: Any) -> None:
        calls.append(count)
        await real(source_fd, sink, count, **kwargs)

    monkeypatch.setattr(relay, "relay", counting)
    return calls


@pytest.mark.parametrize("splice", [True, False], ids=["spliced", "python"])
async def test_values_and_ranges_come_back_byte_for_byte(
    s3_backend, make_client, relay_calls, splice
):
    client = await make_client(splice_downloads=splice)
    case_id = new_id()
    await create_case(client, case_id)
    assert (await upload_bytes(client, case_id, "v", BIG)).status == 204
    whole = await client.get(data_url(case_id, "v"))
    assert whole.status == 200
    assert await whole.read() == BIG
    part = await client.get(data_url(case_id, "v"), headers={"Range": "bytes=1000-2999999"})
    assert part.status == 206
    assert await part.read() == BIG[1000:3000000]
    one = await client.get(data_url(case_id, "v"), headers={"Range": "bytes=-1"})
    assert await one.read() == BIG[-1:]
    if splice:
        # What aiohttp read with S3's headers went first, the relay moved the rest; the
        # single byte (under RELAY_MIN_BYTES) went through Python.
        assert len(relay_calls) == 2
        assert 0 < relay_calls[0] <= len(BIG)
        assert 0 < relay_calls[1] <= 2999000
    else:
        assert relay_calls == []


async def test_concurrent_relayed_downloads_each_get_their_bytes_and_leave_no_descriptor(
    client, relay_calls
):
    case_id = new_id()
    await create_case(client, case_id)
    values = {f"v{n}": pattern(MIB + 4096 * n, seed=20 + n) for n in range(8)}
    for name, value in values.items():
        assert (await upload_bytes(client, case_id, name, value)).status == 204

    async def download(name: str) -> bytes:
        response = await client.get(data_url(case_id, name))
        assert response.status == 200
        content: bytes = await response.read()
        return content

    open_after = []
    for _ in range(4):
        got = await asyncio.gather(*(download(name) for name in values))
        assert got == list(values.values())
        open_after.append(open_descriptors())
    assert len(relay_calls) == 32
    # Once the pools are warm, every pipe and duplicated socket a relay opened is closed
    # again (a leak would be 4 descriptors per download, 32 per round).
    assert max(open_after[1:]) - open_after[0] < 8, open_after


async def test_the_connection_serves_more_requests_after_a_relayed_download(client, relay_calls):
    case_id = new_id()
    await create_case(client, case_id)
    assert (await upload_bytes(client, case_id, "v", BIG)).status == 204
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        for path in [data_url(case_id, "v"), data_url(case_id, "v"), f"/case-instance/{case_id}"]:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: casevars\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 "), head
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            content = await reader.readexactly(length)
            if path.endswith("/data"):
                assert content == BIG
            else:
                assert case_id.encode() in content
    finally:
        writer.close()
    assert len(relay_calls) == 2


async def _download_cut_by(s3_fault, make_client, endpoints, splice, **settings):
    """Start a 24 MiB download, read its first MiB, apply s3_fault to the proxy in
    front of S3; the client must see a short body, never a complete-looking one."""
    value = pattern(24 * MIB, seed=12)
    async with proxied_s3(endpoints) as (proxy, proxied):
        client = await make_client(proxied, splice_downloads=splice, **settings)
        case_id = new_id()
        await create_case(client, case_id)
        assert (await upload_bytes(client, case_id, "v", value)).status == 204
        response = await client.get(data_url(case_id, "v"))
        assert response.status == 200
        assert await response.content.readexactly(MIB) == value[:MIB]
        await s3_fault(proxy)
        started = time.monotonic()
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
        elapsed = time.monotonic() - started
        proxy.restore()
        proxy.thaw()
        again = await client.get(data_url(case_id, "v"))
        assert await again.read() == value
        return elapsed


@pytest.mark.parametrize("splice", [True, False], ids=["spliced", "python"])
async def test_s3_cut_mid_download_cuts_the_client_short(make_client, endpoints, splice):
    await _download_cut_by(lambda proxy: proxy.cut(), make_client, endpoints, splice)


@pytest.mark.parametrize("splice", [True, False], ids=["spliced", "python"])
async def test_s3_silent_mid_download_cuts_the_client_short_in_bounded_time(
    make_client, endpoints, splice
):
    async def freeze(proxy: Any) -> None:
        proxy.freeze()

    elapsed = await _download_cut_by(freeze, make_client, endpoints, splice, s3_timeout_seconds=1)
    assert elapsed < 10


@contextlib.asynccontextmanager
async def served(endpoints: Any, **settings: Any) -> AsyncIterator[str]:
    """The app behind aiohttp's AppRunner as `serve` runs it (aiohttp's test server
    cancels a handler whose client left; `serve` lets the handler see it), on a free
    loopback port; yields the base URL."""
    runner = web.AppRunner(create_app(settings_for_tests(**settings), endpoints))
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("splice", [True, False], ids=["spliced", "python"])
async def test_client_gone_mid_download_is_logged_and_the_service_goes_on(endpoints, splice):
    value = pattern(24 * MIB, seed=13)
    case_id = new_id()
    async with served(endpoints, splice_downloads=splice) as base, aiohttp.ClientSession() as http:
        assert (await http.put(f"{base}/case-instance/{case_id}")).status == 201
        url = base + data_url(case_id, "v")
        form = body(part("data", value, "application/octet-stream"))
        async with http.post(
            url, data=io.BytesIO(form), headers={"Content-Type": FORM}
        ) as response:
            assert response.status == 204
        with capture_logs() as lines:
            reader, writer = await asyncio.open_connection(*urlsplit(base).netloc.split(":"))
            writer.write(f"GET {url} HTTP/1.1\r\nHost: casevars\r\n\r\n".encode())
            await reader.readexactly(MIB)
            sock = writer.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            for _ in range(100):
                if any(line["event"] == "download.client_gone" for line in lines):
                    break
                await asyncio.sleep(0.05)
        events = [line["event"] for line in lines]
        assert "download.client_gone" in events
        assert "download.cut" not in events
        async with http.get(url) as again:
            assert await again.read() == value
