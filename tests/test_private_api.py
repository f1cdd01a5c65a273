"""Contract tests of service/private_api.py: each private or undocumented part of aiohttp,
aiobotocore and botocore that casevars relies on, exercised against the installed
libraries with real objects (servers on loopback, moto's S3). When an upgrade breaks one
of them, it fails here, by name, rather than somewhere deep in an upload or download."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.metadata
import io
import os
import socket
import time
import tomllib
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

import aiohttp
import pytest
from aiobotocore.config import AioConfig
from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.abc import AbstractAccessLogger
from packaging.requirements import Requirement
from packaging.version import Version

from service import private_api
from service.config import Endpoints
from service.storage.blobstore import botocore_session
from tests.conftest import ROOT, new_id, raw_s3_client

MIB = 1024 * 1024


# --- the pins -------------------------------------------------------------------------


def _requirement(name: str) -> Requirement:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    [requirement] = [
        Requirement(line) for line in project["dependencies"] if Requirement(line).name == name
    ]
    return requirement


@pytest.mark.parametrize("name", ["aiohttp", "aiobotocore"])
def test_the_installed_version_is_within_the_pinned_minor_version(name):
    """These tests were written against one minor version of each library; pyproject.toml
    admits only its patch releases."""
    specifier = _requirement(name).specifier
    lower = [spec for spec in specifier if spec.operator == ">="]
    upper = [spec for spec in specifier if spec.operator == "<"]
    assert len(lower) == len(upper) == 1, f"{name}: pin a minor version, >=X.Y.Z,<X.Y+1"
    low, high = Version(lower[0].version), Version(upper[0].version)
    assert (high.major, high.minor) == (low.major, low.minor + 1), specifier
    installed = importlib.metadata.version(name)
    assert installed in specifier, f"{name} {installed} is installed, pyproject says {specifier}"


# --- a server on loopback ---------------------------------------------------------------

RECORDS = web.AppKey("records", list[dict[str, int]])


class _RecordingAccessLogger(AbstractAccessLogger):
    """Records what the access log of service/http/logs.py would show as bytes."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, _: float) -> None:
        assert isinstance(request, web.Request)
        request.app[RECORDS].append(
            {
                "bytes_in": private_api.request_body_bytes(request),
                "bytes_out": private_api.response_bytes_sent(response),
            }
        )


@contextlib.asynccontextmanager
async def _serve(app: web.Application) -> AsyncIterator[int]:
    """The app on a loopback port, with the recording access logger."""
    app[RECORDS] = []
    runner = web.AppRunner(app, access_log_class=_RecordingAccessLogger)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]  # the port the kernel chose
    finally:
        await runner.cleanup()


async def _records(app: web.Application, count: int = 1) -> list[dict[str, int]]:
    """The access log records, once aiohttp has written them (after the response)."""
    deadline = time.monotonic() + 5
    while len(app[RECORDS]) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return app[RECORDS]


@contextlib.asynccontextmanager
async def _connection(
    port: int,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A raw TCP connection to the server, closed on exit whatever happened."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    """One whole HTTP response (with a Content-Length) as it came off the wire."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    [length] = [
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    ]
    return head + await asyncio.wait_for(reader.readexactly(length), 5)


# --- multipart: FlatMultipartReader, PART_HEADER_ERRORS -----------------------------------

INNER = (
    b"--inner\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
    b"--inner\r\nContent-Type: text/plain\r\n\r\nsecond\r\n--inner--"
)
NESTED_FORM = (
    b"--outer\r\n"
    b'Content-Disposition: form-data; name="data"; filename="message.eml"\r\n'
    b"Content-Type: multipart/mixed; boundary=inner\r\n"
    b"\r\n" + INNER + b"\r\n"
    b"--outer\r\n"
    b'Content-Disposition: form-data; name="valueType"\r\n'
    b"\r\n"
    b"File\r\n"
    b"--outer--\r\n"
)
FORM_TYPE = "multipart/form-data; boundary=outer"


async def _post_form(
    body: bytes, read: Callable[[web.Request], Any]
) -> tuple[web.Application, dict[str, Any]]:
    """POST body as a form to a real server whose handler returns what read(request)
    made of it (or the name of the exception it raised)."""
    seen: dict[str, Any] = {}

    async def handler(request: web.Request) -> web.Response:
        try:
            seen["result"] = await read(request)
        except Exception as error:  # noqa: BLE001 - reported to the test
            seen["error"] = error
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/", handler)
    async with _serve(app) as port, aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{port}/"
        async with session.post(url, data=body, headers={"Content-Type": FORM_TYPE}) as response:
            assert response.status == 200
    return app, seen


async def _parts(reader: MultipartReader) -> list[tuple[str | None, str | None, bytes]]:
    """(name, Content-Type, content) of every part, read as service/http/multipart.py does."""
    parts = []
    while (part := await reader.next()) is not None:
        assert isinstance(part, BodyPartReader), part
        content = bytearray()
        while chunk := await part.read_chunk(256 * 1024):
            content += chunk
        parts.append((part.name, part.headers.get("Content-Type"), bytes(content)))
    return parts


async def test_a_multipart_data_part_is_read_flat():
    async def read(request: web.Request) -> Any:
        reader = private_api.FlatMultipartReader(
            request.headers, request.content, max_field_size=8190, max_headers=32
        )
        return await _parts(reader)

    _, seen = await _post_form(NESTED_FORM, read)
    assert seen["result"] == [
        ("data", "multipart/mixed; boundary=inner", INNER),
        ("valueType", None, b"File"),
    ]


async def test_a_raw_part_hands_on_the_received_chunks_and_ends_at_its_boundary():
    """RawPart (what service/http/data_part.py reads the data part with) on a real
    request: its chunks up to the boundary, and MultipartReader goes on after it."""

    async def read(request: web.Request) -> Any:
        reader = private_api.FlatMultipartReader(
            request.headers, request.content, max_field_size=8190, max_headers=32
        )
        part = await reader.next()
        assert isinstance(part, BodyPartReader)
        raw = private_api.RawPart.of(part)
        assert raw is not None
        assert raw.boundary == b"--outer"
        received = b"\r\n"  # the CRLF before the first delimiter, taken with the headers
        while (chunk := raw.chunk()) != b"":
            if chunk is None:
                await asyncio.wait_for(raw.arrival(), 5)
                continue
            received += chunk
            end = received.find(b"\r\n" + raw.boundary)
            if end >= 0:
                raw.finish(received[end + 2 :])
                return [("data", received[2:end]), *await _parts(reader)]
        raise AssertionError("no boundary")

    _, seen = await _post_form(NESTED_FORM, read)
    assert seen["result"] == [("data", INNER), ("valueType", None, b"File")]


async def test_a_pulled_body_is_read_like_the_request_and_sees_every_byte():
    """PulledBody (what service/http/upload_digests.py hashes a body through) on a real
    chunked request: the form reads from it as from the request's own stream, RawPart
    included, and seen() gets every byte of the body, the epilogue too."""
    epilogue = b"after the form\r\n"

    async def read(request: web.Request) -> Any:
        seen: list[bytes] = []
        pulled = private_api.PulledBody(request.content, seen.append)
        reader = private_api.FlatMultipartReader(
            request.headers, pulled, max_field_size=8190, max_headers=32
        )
        part = await reader.next()
        assert isinstance(part, BodyPartReader)
        raw = private_api.RawPart.of(part)
        assert raw is not None
        received, end = b"\r\n", -1
        while end < 0:
            chunk = raw.chunk()
            assert chunk != b"", "no boundary"
            if chunk is None:
                await asyncio.wait_for(raw.arrival(), 5)
                continue
            received += chunk
            end = received.find(b"\r\n" + raw.boundary)
        raw.finish(received[end + 2 :])
        rest = await _parts(reader)
        while await asyncio.wait_for(pulled.readany(), 5):
            pass
        return received[2:end], rest, b"".join(seen)

    async def trickled() -> AsyncIterator[bytes]:
        whole = NESTED_FORM + epilogue
        for start in range(0, len(whole), 7):  # many small chunks, the boundary split
            yield whole[start : start + 7]
            await asyncio.sleep(0)

    _, seen = await _post_form(trickled(), read)  # type: ignore[arg-type]
    data, rest, body = seen["result"]
    assert data == INNER
    assert rest == [("valueType", None, b"File")]
    assert body == NESTED_FORM + epilogue


async def test_a_pulled_body_raises_what_the_request_stream_raises():
    """A client gone mid-body: the pulled stream's read raises as the request's would."""
    result: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def handler(request: web.Request) -> web.Response:
        pulled = private_api.PulledBody(request.content, lambda _: None)
        try:
            while await asyncio.wait_for(pulled.readany(), 5):
                pass
        except Exception as error:  # noqa: BLE001 - reported to the test
            result.set_result(error)
        return web.Response()

    app = web.Application()
    app.router.add_post("/", handler)
    async with _serve(app) as port, _connection(port) as (_, writer):
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf")
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.transport.abort()
        error = await asyncio.wait_for(result, 5)
    assert isinstance(error, (ConnectionResetError, aiohttp.ClientPayloadError, OSError))


async def test_aiohttp_itself_would_descend_into_the_nested_part():
    """Why FlatMultipartReader exists: if this fails, aiohttp reads nested parts flat by
    itself and the override may go."""

    async def read(request: web.Request) -> Any:
        return await MultipartReader(request.headers, request.content).next()

    _, seen = await _post_form(NESTED_FORM, read)
    assert isinstance(seen["result"], MultipartReader), seen


def _form_with_part_headers(*lines: bytes) -> bytes:
    return b"--outer\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\nx\r\n--outer--\r\n"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            _form_with_part_headers(
                b'Content-Disposition: form-data; name="data"',
                *(f"X-Extra-{n}: {n}".encode() for n in range(4)),
            ),
            id="more headers than max_headers",
        ),
        pytest.param(
            _form_with_part_headers(b'Content-Disposition: form-data; name="' + b"n" * 300 + b'"'),
            id="a header line longer than max_field_size",
        ),
        pytest.param(
            _form_with_part_headers(b'Content-Disposition: form-data; name="data"', b"no colon"),
            id="a header line that is not a header",
        ),
    ],
)
async def test_bad_part_headers_raise_part_header_errors(body):
    async def read(request: web.Request) -> Any:
        reader = private_api.FlatMultipartReader(
            request.headers, request.content, max_field_size=200, max_headers=4
        )
        return await reader.next()

    _, seen = await _post_form(body, read)
    assert isinstance(seen.get("error"), private_api.PART_HEADER_ERRORS), seen


# --- the web server: default_expect_handler, request_body_bytes, response_bytes_sent --------


def _expect_app() -> web.Application:
    async def expect(request: web.Request) -> None:
        await private_api.default_expect_handler(request)

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=b"received %d" % len(await request.read()))

    app = web.Application()
    app.router.add_put("/", handler, expect_handler=expect)
    return app


async def test_the_default_expect_handler_answers_100_continue():
    app = _expect_app()
    body = b"b" * 1000
    async with _serve(app) as port, _connection(port) as (reader, writer):
        writer.write(
            b"PUT / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(body)
        final = await _read_response(reader)
        [record] = await _records(app)
    assert final.startswith(b"HTTP/1.1 200 OK\r\n")
    assert final.endswith(b"\r\n\r\nreceived 1000")
    # The interim answer is not counted as the response's bytes.
    assert record == {"bytes_in": len(body), "bytes_out": len(final)}


async def test_the_default_expect_handler_refuses_other_expectations():
    async with _serve(_expect_app()) as port, _connection(port) as (reader, writer):
        writer.write(
            b"PUT / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
            b"Expect: something-else\r\nContent-Length: 3\r\n\r\n"
        )
        answer = await _read_response(reader)
    assert answer.startswith(b"HTTP/1.1 417 ")


async def test_bytes_in_and_out_of_a_request():
    async def handler(request: web.Request) -> web.Response:
        await request.content.readexactly(10)  # a refusal reads only part of a body
        response = web.Response(status=413, body=b"too large")
        response.force_close()
        return response

    app = web.Application()
    app.router.add_post("/", handler)
    async with _serve(app) as port, _connection(port) as (reader, writer):
        writer.write(
            b"POST / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
            b"Content-Length: 100\r\n\r\n" + b"x" * 40
        )
        answer = await _read_response(reader)
        [record] = await _records(app)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert 10 <= record["bytes_in"] <= 40
    assert record["bytes_out"] == len(answer)


async def test_stream_response_headers_reach_the_transport_on_prepare():
    """Not wrapped (service/http/variables.py does it): bytes written to the client's
    socket right after prepare() follow the status line and headers, as a download
    relayed in the kernel needs."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "13"})
        await response.prepare(request)
        transport = request.transport
        assert transport is not None
        deadline = time.monotonic() + 5
        while transport.get_write_buffer_size() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert transport.get_write_buffer_size() == 0
        fd = transport.get_extra_info("socket").fileno()
        assert os.write(fd, b"past aiohttp!") == 13
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/", handler)
    async with (
        _serve(app) as port,
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/") as response,
    ):
        assert response.status == 200
        assert await response.read() == b"past aiohttp!"


# --- aiohttp: connections (app_runner, parser_problem) --------------------------------------

SECRET = "Bearer s3cr3t-token-in-the-request"


@dataclasses.dataclass
class _Seen:
    refusals: list[tuple[int, BaseException | None]] = dataclasses.field(default_factory=list)
    failures: list[tuple[str, BaseException | None]] = dataclasses.field(default_factory=list)


class _LineLogger(AbstractAccessLogger):
    """Records (method, status) of every access log line, refused requests included."""

    lines: ClassVar[list[tuple[str, int]]] = []

    def log(self, request: web.BaseRequest, response: web.StreamResponse, _: float) -> None:
        self.lines.append((request.method, response.status))


@contextlib.asynccontextmanager
async def _serve_hardened(
    app: web.Application, *, header_timeout: float = 5.0, **kwargs: Any
) -> AsyncIterator[tuple[int, _Seen]]:
    """The app behind private_api.app_runner, refusals answered `refused <status>`."""
    seen = _Seen()
    _LineLogger.lines = []

    def refusal(request: web.BaseRequest, status: int, error: BaseException | None) -> Any:
        seen.refusals.append((status, error))
        return web.Response(status=status, text=f"refused {status}")

    def failure(message: str, error: BaseException | None) -> None:
        seen.failures.append((message, error))

    runner = private_api.app_runner(
        app,
        refusal=refusal,
        connection_failure=failure,
        header_timeout=header_timeout,
        access_log_class=_LineLogger,
        **kwargs,
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1], seen
    finally:
        await runner.cleanup()


def _echo_app() -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        try:
            body = await request.read()
        except web.RequestPayloadError as error:
            return web.Response(status=400, text=f"body failed: {type(error).__name__}")
        return web.Response(text=f"received {len(body)}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


async def _until_closed(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.read(), 5)


@pytest.mark.parametrize(
    "raw",
    [
        f"GET / HTTP/1.1\r\nHost: t\r\nAuthorization: {SECRET}\r\r\n\r\n".encode(),
        f"GET /{SECRET.replace(' ', '')}\xff HTTP/1.1\r\nHost: t\r\n\r\n".encode(),
        f"GET / HTTP/1.1\r\nHost: t\r\nX-{SECRET.replace(' ', '')}\x00: v\r\n\r\n".encode(),
        f"GET / HTTP/1.1\r\nHost: t\r\nX-Long: {SECRET}{'x' * 9000}\r\n\r\n".encode(),
        f"{SECRET.replace(' ', '')}\x01 / HTTP/1.1\r\nHost: t\r\n\r\n".encode(),
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        + SECRET.encode()
        + b"\r\n",
    ],
    ids=["stray-cr", "non-ascii-url", "nul-in-name", "long-header", "bad-method", "bad-chunk"],
)
async def test_a_request_the_parser_refuses_goes_to_refusal(raw):
    app = _echo_app()
    async with (
        _serve_hardened(app, max_field_size=8190) as (port, seen),
        _connection(port) as (reader, writer),
    ):
        writer.write(raw)
        answer = await _until_closed(reader)
    assert answer.startswith(b"HTTP/1.0 400 ")
    assert answer.endswith(b"\r\n\r\nrefused 400")
    [(status, error)] = seen.refusals
    assert status == 400
    assert isinstance(error, private_api.PARSER_ERRORS)
    problem = private_api.parser_problem(error)
    assert problem
    assert "s3cr3t" not in problem
    assert _LineLogger.lines == [("UNKNOWN", 400)], "the refusal has its access log line"
    assert seen.failures == []


async def test_parser_problem_names_what_is_wrong():
    app = _echo_app()
    raws = {
        b"GET / HTTP/1.1\r\nHost: t\r\nX: " + b"a" * 9000 + b"\r\n\r\n": (
            "the request line or a header field is longer than 8190 bytes"
        ),
        b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(150)) + b"\r\n": (
            "Too many headers received"
        ),
        b"GET / HTTP/1.1\r\n\r\n": "Missing 'Host' header in request.",
    }
    async with _serve_hardened(app, max_headers=100) as (port, seen):
        for raw in raws:
            async with _connection(port) as (reader, writer):
                writer.write(raw)
                await _until_closed(reader)
    assert [private_api.parser_problem(error) for _, error in seen.refusals if error] == list(
        raws.values()
    )


@pytest.mark.parametrize(
    "partial", [b"GET /x", b"GET /x HTTP/1.1\r\nHost: t\r\nX-Half"], ids=["line", "headers"]
)
async def test_headers_that_stop_go_to_refusal_as_408(partial):
    async with (
        _serve_hardened(_echo_app(), header_timeout=0.3, keepalive_timeout=60) as (
            port,
            seen,
        ),
        _connection(port) as (reader, writer),
    ):
        writer.write(partial)
        answer = await _until_closed(reader)
    assert answer.startswith(b"HTTP/1.0 408 ")
    [(status, error)] = seen.refusals
    assert status == 408
    assert isinstance(error, private_api.HeadersTimeout)


async def test_the_idle_timer_waits_for_headers_that_have_begun():
    """keepalive_timeout (aiohttp's own) closes a connection that sends nothing; once a
    request has begun, the header timeout decides instead, even when it ends later."""
    async with _serve_hardened(_echo_app(), header_timeout=0.6, keepalive_timeout=0.4) as (
        port,
        seen,
    ):
        async with _connection(port) as (reader, _):
            assert await _until_closed(reader) == b""
        async with _connection(port) as (reader, writer):
            await asyncio.sleep(0.2)
            writer.write(b"GET /x HTTP/1.1\r\n")  # begun before the idle time is over
            answer = await _until_closed(reader)
    assert answer.startswith(b"HTTP/1.0 408 ")
    assert [status for status, _ in seen.refusals] == [408]


async def test_line_ends_between_requests_begin_no_request():
    async with (
        _serve_hardened(_echo_app(), header_timeout=0.2, keepalive_timeout=0.6) as (port, seen),
        _connection(port) as (reader, writer),
    ):
        writer.write(b"\r\n")
        assert await _until_closed(reader) == b""  # closed when idle, no 408
    assert seen.refusals == []


async def test_a_complete_request_stops_the_header_timer():
    async with (
        _serve_hardened(_echo_app(), header_timeout=0.3, keepalive_timeout=60) as (
            port,
            seen,
        ),
        _connection(port) as (reader, writer),
    ):
        writer.write(b"GET /x HTTP/1.1\r\nHost: t")
        await asyncio.sleep(0.1)
        writer.write(b"\r\n\r\n")
        first = await _read_response(reader)
        await asyncio.sleep(0.5)  # idle, not late: still open
        writer.write(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nab")
        await asyncio.sleep(0.5)  # a slow body is not the header timer's business
        writer.write(b"cde")
        second = await _read_response(reader)
    assert first.endswith(b"received 0")
    assert second.endswith(b"received 5")
    assert seen.refusals == []


@pytest.mark.parametrize("reading", [True, False], ids=["handler-reads", "handler-does-not"])
async def test_a_body_the_parser_refuses_mid_way_fails_at_once(reading):
    """aiohttp alone leaves a handler waiting for the rest of such a body for ever (and
    a body left unread is read on for lingering_time)."""

    async def handler(request: web.Request) -> web.Response:
        if reading:
            try:
                await request.content.readline()  # readuntil: the hardest case
            except web.RequestPayloadError as error:
                response = web.Response(status=400, text=type(error).__name__)
                response.force_close()
                return response
        return web.Response(text="not read")

    app = web.Application()
    app.router.add_post("/", handler)
    async with _serve_hardened(app) as (port, seen), _connection(port) as (reader, writer):
        writer.write(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        writer.write(b"3\r\nabc\r\n")
        await asyncio.sleep(0.2)
        started = time.monotonic()
        writer.write(b"zz\r\n")
        answer = await _until_closed(reader)
        elapsed = time.monotonic() - started
    if reading:
        assert answer.startswith(b"HTTP/1.1 400 ")
        assert answer.endswith(b"RequestPayloadError")
    else:  # its answer, then the connection ends
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert answer.endswith(b"not read")
        [(_, error)] = seen.failures
        assert isinstance(error, web.RequestPayloadError)
    assert elapsed < 3, "not the 10 s aiohttp lingers for"


async def test_an_exception_outside_every_middleware_goes_to_refusal_as_500():
    async def handler(request: web.Request) -> web.Response:
        raise RuntimeError("boom")

    app = web.Application()
    app.router.add_get("/", handler)
    async with _serve_hardened(app) as (port, seen), _connection(port) as (reader, writer):
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        answer = await _until_closed(reader)
    assert answer.startswith(b"HTTP/1.1 500 ")
    [(status, error)] = seen.refusals
    assert status == 500
    assert isinstance(error, RuntimeError)


async def test_what_aiohttp_would_log_goes_to_connection_failure():
    """A body aiohttp cannot decode (a bad content encoding), left unread by the handler:
    aiohttp's discarding read meets the error and would log it with a traceback."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text="not read")

    app = web.Application()
    app.router.add_post("/", handler)
    garbage = b"not gzip at all" * 10
    async with _serve_hardened(app) as (port, seen), _connection(port) as (reader, writer):
        writer.write(
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Encoding: gzip\r\n"
            b"Content-Length: %d\r\n\r\n" % len(garbage)
        )
        await asyncio.sleep(0.2)
        writer.write(garbage)
        await _until_closed(reader)
    assert seen.failures
    message, error = seen.failures[0]
    assert message == "Unhandled exception"
    assert isinstance(error, web.RequestPayloadError)


async def test_an_http_exception_outside_every_middleware_goes_to_refusal():
    """aiohttp's expect handler of a path no route matches raises HTTPExpectationFailed
    before any middleware runs."""
    app = web.Application()  # no route at all
    async with _serve_hardened(app) as (port, seen), _connection(port) as (reader, writer):
        writer.write(b"GET /nowhere HTTP/1.1\r\nHost: t\r\nExpect: s3cr3t\r\n\r\n")
        answer = await _read_response(reader)
    assert answer.startswith(b"HTTP/1.1 417 ")
    assert answer.endswith(b"refused 417")
    [(status, error)] = seen.refusals
    assert status == 417
    assert isinstance(error, web.HTTPExpectationFailed)


@pytest.mark.parametrize("close", [True, False], ids=["closed-at-once", "lingering"])
async def test_close_after_response_skips_the_lingering_read(close):
    async def handler(request: web.Request) -> web.Response:
        await request.content.readexactly(3)  # then the client stops sending
        if close:
            private_api.close_after_response(request)
        response = web.Response(status=408, text="stalled")
        response.force_close()
        return response

    app = web.Application()
    app.router.add_post("/", handler)
    async with _serve_hardened(app) as (port, _), _connection(port) as (reader, writer):
        writer.write(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc")
        answer = await _read_response(reader)
        started = time.monotonic()
        try:
            rest = await asyncio.wait_for(reader.read(), 2)
        except TimeoutError:
            rest = None  # still open: aiohttp reads on for lingering_time (10 s)
    assert answer.startswith(b"HTTP/1.1 408 ")
    if close:
        assert rest == b""
        assert time.monotonic() - started < 1
    else:
        assert rest is None


async def test_runner_keywords_reach_every_connection():
    async with (
        _serve_hardened(_echo_app(), max_field_size=100) as (port, seen),
        _connection(port) as (reader, writer),
    ):
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\nX: " + b"a" * 200 + b"\r\n\r\n")
        answer = await _until_closed(reader)
    assert answer.startswith(b"HTTP/1.0 400 ")
    [(_, error)] = seen.refusals
    assert error is not None
    assert "longer than 100 bytes" in private_api.parser_problem(error)


# --- request bodies: register_sliced_body ------------------------------------------------


class _Body:
    """A SlicedBody with the file-like surface botocore needs (length, read, seek)."""

    def __init__(self, data: bytes, stall_seconds: float | None) -> None:
        self.view = memoryview(data)
        self.stall_seconds = stall_seconds
        self._position = 0

    def __len__(self) -> int:
        return len(self.view)

    def read(self, size: int = -1) -> bytes:
        end = len(self.view) if size < 0 else min(len(self.view), self._position + size)
        chunk = self.view[self._position : end]
        self._position = end
        return bytes(chunk)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: len(self.view)}
        self._position = max(0, min(len(self.view), base[whence] + offset))
        return self._position

    def tell(self) -> int:
        return self._position


private_api.register_sliced_body(_Body, slice_bytes=MIB)


async def test_a_sliced_body_goes_out_whole():
    received: list[bytes] = []

    async def handler(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.Response()

    app = web.Application(client_max_size=16 * MIB)
    app.router.add_put("/", handler)
    data = os.urandom(3 * MIB + 5)
    async with _serve(app) as port, aiohttp.ClientSession() as session:
        async with session.put(f"http://127.0.0.1:{port}/", data=_Body(data, 5)) as response:
            assert response.status == 200
        assert aiohttp.payload.get_payload(_Body(data, 5)).size == len(data)
    assert received == [data]


class _SliceRecorder:
    """Stands in for aiohttp's StreamWriter: the length of every write it is given."""

    def __init__(self) -> None:
        self.written: list[int] = []

    async def write(self, chunk: memoryview) -> None:
        self.written.append(len(chunk))


async def test_a_sliced_body_is_written_in_slices_the_first_small():
    recorder = _SliceRecorder()
    payload = aiohttp.payload.get_payload(_Body(bytes(3 * MIB + 5), 5))
    await payload.write(recorder)  # type: ignore[arg-type]
    first = private_api.FIRST_SLICE_BYTES
    assert recorder.written == [first, MIB, MIB, MIB - first + 5]
    assert sum(recorder.written) == 3 * MIB + 5


async def test_an_empty_sliced_body_writes_nothing():
    recorder = _SliceRecorder()
    await aiohttp.payload.get_payload(_Body(b"", 5)).write(recorder)  # type: ignore[arg-type]
    assert recorder.written == []


async def test_a_sliced_body_times_out_when_the_peer_stops_reading():
    hold = asyncio.Event()

    async def never_read(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await hold.wait()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(never_read, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    started = time.monotonic()
    try:
        async with aiohttp.ClientSession() as session:
            # Without the stall timeout the write would wait for good: 10 s fail below.
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(10):
                    await session.put(f"http://127.0.0.1:{port}/", data=_Body(bytes(64 * MIB), 0.3))
    finally:
        hold.set()
        server.close()
        await server.wait_closed()
    assert time.monotonic() - started < 5


async def test_aiobotocore_hands_the_sliced_body_to_aiohttp(s3_endpoints: Endpoints):
    key = f"{s3_endpoints.s3_prefix}{new_id('sliced')}"
    data = os.urandom(2 * MIB + 3)
    body = _Body(data, 5)
    sent: list[Any] = []
    async with raw_s3_client(s3_endpoints) as client:
        client.meta.events.register(
            "before-send.s3.PutObject", lambda request, **_: sent.append(request.body)
        )
        await client.put_object(Bucket=s3_endpoints.s3_bucket, Key=key, Body=body)
        stored = await client.get_object(Bucket=s3_endpoints.s3_bucket, Key=key)
        async with stored["Body"] as content:
            assert await content.read() == data
    assert sent == [body]
    assert not isinstance(body, io.IOBase)  # aiobotocore wraps those in its own payload


# --- S3: without_expect_100_continue, response_socket_parts -------------------------------


class _Stop(Exception):
    """Ends a call once its request is built: what it would send is all the test needs."""


async def _put_headers(client: Any, bucket: str) -> dict[str, str]:
    """The headers a PutObject with a file-like body would be sent with."""
    seen: dict[str, str | bytes] = {}

    def stop(request: Any, **_: Any) -> None:
        seen.update(request.headers)
        raise _Stop

    client.meta.events.register("before-send.s3.PutObject", stop)
    try:
        with pytest.raises(_Stop):
            await client.put_object(Bucket=bucket, Key="unused", Body=io.BytesIO(b"x"))
    finally:
        client.meta.events.unregister("before-send.s3.PutObject", stop)
    return {
        name.lower(): value.decode() if isinstance(value, bytes) else value
        for name, value in seen.items()
    }


async def test_without_expect_100_continue(s3_endpoints: Endpoints):
    async with raw_s3_client(s3_endpoints) as client:
        # botocore's default, which the function undoes; if it is gone, so may the function be.
        assert (await _put_headers(client, s3_endpoints.s3_bucket)).get("expect") == "100-continue"
        private_api.without_expect_100_continue(client)
        assert "expect" not in await _put_headers(client, s3_endpoints.s3_bucket)


async def test_send_signed_signs_as_the_client_and_uses_its_connections():
    """What a signed PUT really carries: the client's SigV4 signature with its key and
    region, an unsigned payload (payload_signing_enabled off, as client_config sets it),
    the Content-Length, the body whole; and the answer read to its end."""
    seen: list[tuple[dict[str, str], str, bytes]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((dict(request.headers), request.path_qs, await request.read()))
        return web.Response(headers={"ETag": '"abc"'}, text="done")

    app = web.Application(client_max_size=16 * MIB)
    app.router.add_put("/{path:.*}", handler)
    data = os.urandom(2 * MIB + 7)
    config = AioConfig(s3={"addressing_style": "path", "payload_signing_enabled": False})
    async with _serve(app) as port:
        url = f"http://127.0.0.1:{port}/bucket/some%20key?partNumber=3&uploadId=u%2B1"
        async with botocore_session().create_client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="eu-west-3",
            aws_access_key_id="AKIDTEST",
            aws_secret_access_key="secret",
            config=config,
        ) as client:
            answer = await private_api.send_signed(client, "UploadPart", url, _Body(data, 5))
    assert (answer.status, answer.headers["etag"], answer.body) == (200, '"abc"', b"done")
    [(headers, path_qs, body)] = seen
    assert (path_qs, body) == ("/bucket/some%20key?partNumber=3&uploadId=u%2B1", data)
    assert headers["Content-Length"] == str(len(data))
    assert headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDTEST/")
    assert "/eu-west-3/s3/aws4_request" in headers["Authorization"]
    assert "Expect" not in headers


async def _recv_exactly(fd: int, count: int) -> bytes:
    """count bytes from the socket fd, read through our own descriptor for it."""
    loop = asyncio.get_running_loop()
    with socket.socket(fileno=os.dup(fd)) as sock:
        sock.setblocking(False)  # noqa: FBT003 - the file is shared, and asyncio's is non-blocking
        buffer = bytearray()
        while len(buffer) < count:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, count - len(buffer)), 5)
            assert chunk, f"the connection ended after {len(buffer)} of {count} bytes"
            buffer += chunk
        return bytes(buffer)


async def test_the_socket_of_a_get_object_body(s3_endpoints: Endpoints):
    key = f"{s3_endpoints.s3_prefix}{new_id('socket')}"
    data = os.urandom(8 * MIB + 1)
    async with raw_s3_client(s3_endpoints) as client:
        await client.put_object(Bucket=s3_endpoints.s3_bucket, Key=key, Body=data)
        response = await client.get_object(Bucket=s3_endpoints.s3_bucket, Key=key)
        body = response["Body"]
        try:
            parts = private_api.response_socket_parts(body)
            assert parts is not None
            assert parts.headers["Content-Length"] == str(len(data))
            assert "Transfer-Encoding" not in parts.headers
            sock = parts.transport.get_extra_info("socket")
            assert sock is not None
            assert sock.family == socket.AF_INET
            assert parts.transport.get_extra_info("sslcontext") is None
            received = parts.take()
            assert received is not None
            assert len(received) < len(data)  # the rest is still on its way
            rest = await _recv_exactly(sock.fileno(), len(data) - len(received))
            assert received + rest == data
        finally:
            body.close()
        # Taken, the connection is closed with the body, never handed back to the pool.
        assert parts.transport.is_closing()


async def test_a_fully_arrived_get_object_body_has_no_socket(s3_endpoints: Endpoints):
    key = f"{s3_endpoints.s3_prefix}{new_id('small')}"
    async with raw_s3_client(s3_endpoints) as client:
        await client.put_object(Bucket=s3_endpoints.s3_bucket, Key=key, Body=b"small")
        response = await client.get_object(Bucket=s3_endpoints.s3_bucket, Key=key)
        async with response["Body"] as body:
            deadline = time.monotonic() + 5
            while private_api.response_socket_parts(body) is not None:
                assert time.monotonic() < deadline, "the connection never went back to the pool"
                await asyncio.sleep(0.01)
            assert await body.read() == b"small"
