"""`casevars serve` as a real process on the test Postgres and S3: graceful shutdown
with uploads in flight, and the HTTP limits a client meets before any handler runs."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time

import orjson
import pytest

from tests.conftest import new_id
from tests.forms import (
    BOUNDARY,
    FORM,
    blob_states,
    body,
    open_uploads,
    part,
    pattern,
    variable_row,
)
from tests.serving import Serve, read_response

pytestmark = pytest.mark.timeout(120)
MIB = 1024 * 1024


@pytest.fixture
async def serve_factory(endpoints, tmp_path):
    started: list[Serve] = []

    async def start(**settings: str) -> Serve:
        serve = Serve(endpoints, tmp_path, **settings)
        started.append(serve)
        await serve.ready()
        return serve

    yield start
    for serve in started:
        serve.stop()


def upload_head(case_id: str, name: str, length: int) -> bytes:
    return (
        f"POST /case-instance/{case_id}/variables/{name}/data HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: {FORM}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


async def _setup_case(serve: Serve) -> str:
    case_id = new_id()
    status, _ = await serve.request(
        f"PUT /case-instance/{case_id} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode()
    )
    assert status == 201
    previous = body(part("data", b"previous", "application/octet-stream"))
    status, _ = await serve.request(upload_head(case_id, "v", len(previous)) + previous)
    assert status == 204
    return case_id


async def _wait_exit(serve: Serve, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while serve.process.poll() is None:
        assert time.monotonic() < deadline, "serve did not exit"
        await asyncio.sleep(0.05)
    return serve.process.returncode


async def test_upload_in_flight_finishes_within_the_grace(serve_factory, db):
    serve = await serve_factory(CASEVARS_SHUTDOWN_GRACE_SECONDS="20")
    case_id = await _setup_case(serve)
    content = pattern(12 * MIB)
    payload = body(part("data", content, "application/octet-stream"))
    reader, writer = await asyncio.open_connection("127.0.0.1", serve.port)
    writer.write(upload_head(case_id, "v", len(payload)) + payload[: 3 * MIB])
    await writer.drain()
    await asyncio.sleep(0.3)

    serve.process.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.5)
    with pytest.raises(OSError):  # the listener is closed at once
        await asyncio.open_connection("127.0.0.1", serve.port)
    writer.write(payload[3 * MIB :])
    await writer.drain()
    status, _ = await read_response(reader)
    writer.close()
    assert status == 204
    assert await _wait_exit(serve, 15) == 0
    row = await variable_row(db, case_id, "v")
    assert row["size"] == len(content)
    assert "serve.stopping" in serve.log.read_text()


async def test_upload_beyond_the_grace_is_aborted_cleanly(serve_factory, db, s3, endpoints):
    serve = await serve_factory(CASEVARS_SHUTDOWN_GRACE_SECONDS="2")
    case_id = await _setup_case(serve)
    head = upload_head(case_id, "v", 100 * MIB)
    start = body(part("data", b"", "application/octet-stream"), close=False)[:-2]
    _, writer = await asyncio.open_connection("127.0.0.1", serve.port)
    writer.write(head + start + pattern(11 * MIB))  # two parts in S3 and some
    await writer.drain()
    await asyncio.sleep(0.5)

    stopped_at = time.monotonic()
    serve.process.send_signal(signal.SIGTERM)
    with contextlib.suppress(OSError):
        for _ in range(100):  # a slow client, still sending after the grace
            writer.write(b"x" * 1024)
            await writer.drain()
            await asyncio.sleep(0.1)
    assert await _wait_exit(serve, 20) == 0
    assert time.monotonic() - stopped_at < 15
    writer.close()

    row = await variable_row(db, case_id, "v")
    assert row["size"] == len(b"previous")
    states = await blob_states(db, endpoints.s3_prefix)
    assert sorted(states.values()) == ["garbage", "live"]
    assert await open_uploads(s3, endpoints.s3_bucket, endpoints.s3_prefix) == []


async def test_slow_client_is_dropped_and_its_upload_aborted(serve_factory, db, s3, endpoints):
    serve = await serve_factory(CASEVARS_CLIENT_READ_TIMEOUT_SECONDS="1")
    case_id = await _setup_case(serve)
    start = body(part("data", b"", "application/octet-stream"), close=False)[:-2]
    reader, writer = await asyncio.open_connection("127.0.0.1", serve.port)
    writer.write(upload_head(case_id, "v", 100 * MIB) + start + pattern(6 * MIB))
    await writer.drain()
    started = time.monotonic()
    status = None
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        # A byte every half second: slower than the read timeout allows per chunk.
        sender = asyncio.create_task(_trickle(writer))
        status, _ = await asyncio.wait_for(read_response(reader), 10)
        sender.cancel()
    writer.close()
    assert time.monotonic() - started < 8
    assert status in {None, 408}

    async def settled():
        states = await blob_states(db, endpoints.s3_prefix)
        return "pending" not in states.values() and not await open_uploads(
            s3, endpoints.s3_bucket, endpoints.s3_prefix
        )

    deadline = time.monotonic() + 10
    while not await settled():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    assert (await variable_row(db, case_id, "v"))["size"] == len(b"previous")


async def _trickle(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while True:
            await asyncio.sleep(2)
            writer.write(b"x")
            await writer.drain()


async def test_slow_json_body_is_dropped(serve_factory):
    serve = await serve_factory(CASEVARS_CLIENT_READ_TIMEOUT_SECONDS="1")
    case_id = await _setup_case(serve)
    reader, writer = await asyncio.open_connection("127.0.0.1", serve.port)
    writer.write(
        f"PUT /case-instance/{case_id}/variables/j HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{".encode()
    )
    await writer.drain()
    status, payload = await asyncio.wait_for(read_response(reader), 10)
    writer.close()
    assert status == 408
    assert b"RestException" in payload


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n",
        b"GET /health/live HTTP/1.1\r\nHost: x\r\n"
        + b"".join(f"X-H{i}: v\r\n".encode() for i in range(150))
        + b"\r\n",
    ],
    ids=["request-line", "header-field", "header-count"],
)
async def test_oversized_requests_are_refused_before_any_handler(serve_factory, raw):
    serve = await serve_factory()
    status, _ = await serve.request(raw)
    assert status in {400, 414, 431}


async def test_part_headers_beyond_the_limit_are_400(serve_factory):
    serve = await serve_factory()
    case_id = await _setup_case(serve)
    huge = [("Content-Disposition", 'form-data; name="data"'), ("X-Pad", "p" * 9000)]
    payload = body((huge, b"x"))
    status, answer = await serve.request(upload_head(case_id, "v", len(payload)) + payload)
    assert status == 400
    assert b"multipart/form-data cannot be processed" in answer
    many = [("Content-Disposition", 'form-data; name="data"')] + [
        (f"X-{i}", "v") for i in range(40)
    ]
    payload = body((many, b"x"))
    status, _ = await serve.request(upload_head(case_id, "v", len(payload)) + payload)
    assert status == 400
    assert BOUNDARY  # the delimiter used by both bodies


def assert_camunda_error(payload: bytes, status_text: str | None = None) -> dict[str, object]:
    error: dict[str, object] = orjson.loads(payload)
    assert set(error) == {"type", "message", "code"}
    assert error["type"] == "RestException"
    if status_text is not None:
        assert status_text in str(error["message"])
    return error


async def test_oversized_requests_are_answered_in_camunda_format_without_echo(serve_factory):
    serve = await serve_factory()
    marker = b"q" * 9000
    status, payload = await serve.request(b"GET /" + marker + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 400
    error = assert_camunda_error(payload, "longer than 8190 bytes")
    assert "qqqq" not in str(error["message"])


# --- every phase of a request has a timeout ---------------------------------------------


async def _until_closed(reader: asyncio.StreamReader, within: float) -> bytes:
    """Everything the server sends until it closes the connection."""
    return await asyncio.wait_for(reader.read(), within)


@pytest.mark.parametrize(
    "partial",
    [
        b"GET /health/li",
        b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Half: ",
    ],
    ids=["request-line", "headers"],
)
async def test_a_request_whose_headers_stop_gets_408(serve_factory, partial):
    serve = await serve_factory(CASEVARS_HEADER_TIMEOUT_SECONDS="1")
    reader, writer = await asyncio.open_connection("127.0.0.1", serve.port)
    writer.write(partial)
    await writer.drain()
    answer = await _until_closed(reader, 10)
    writer.close()
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.split()[1] == b"408"
    assert_camunda_error(payload, "did not arrive within 1s")


async def test_headers_sent_a_byte_at_a_time_get_408_all_the_same(serve_factory):
    serve = await serve_factory(CASEVARS_HEADER_TIMEOUT_SECONDS="1")
    reader, writer = await asyncio.open_connection("127.0.0.1", serve.port)

    async def trickle() -> None:
        with contextlib.suppress(OSError):
            for byte in b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 100:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.2)

    sender = asyncio.create_task(trickle())
    started = time.monotonic()
    try:
        answer = await _until_closed(reader, 10)
    except ConnectionResetError:
        # The server answered 408 and closed while a trickled byte was still unread in
        # its socket, which makes the kernel reset the connection, and the client's
        # kernel may then drop the 408 before it is read. Either way the connection
        # ended at the header deadline, long before the 20 s the trickle would take.
        answer = None
    sender.cancel()
    writer.close()
    assert time.monotonic() - started < 10
    if answer is not None:
        assert answer.split()[1] == b"408"


async def test_idle_connections_are_closed(serve_factory):
    serve = await serve_factory(CASEVARS_KEEPALIVE_TIMEOUT_SECONDS="1")
    reader, writer = await asyncio.open_connection("127.0.0.1", serve.port)
    assert await _until_closed(reader, 10) == b""  # never sent a byte
    writer.close()

    reader, writer = await asyncio.open_connection("127.0.0.1", serve.port)
    writer.write(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    status, _ = await read_response(reader)
    assert status == 200
    assert await _until_closed(reader, 10) == b""  # idle after its answer
    writer.close()


@pytest.mark.parametrize(
    "sent",
    [
        b"a preamble that never ends",
        f"--{BOUNDARY}\r\nContent-Disposition: form-da".encode(),
        body(part("valueType", b"File"), close=False),
    ],
    ids=["before-the-first-boundary", "inside-part-headers", "after-a-part"],
)
async def test_a_form_that_stops_gets_408(serve_factory, db, sent):
    serve = await serve_factory(CASEVARS_CLIENT_READ_TIMEOUT_SECONDS="1")
    case_id = await _setup_case(serve)
    reader, writer = await asyncio.open_connection("127.0.0.1", serve.port)
    writer.write(upload_head(case_id, "v", 100_000) + sent)
    await writer.drain()
    status, payload = await asyncio.wait_for(read_response(reader), 10)
    writer.close()
    assert status == 408
    assert_camunda_error(payload, "Upload aborted")
    assert (await variable_row(db, case_id, "v"))["size"] == len(b"previous")


async def test_idle_and_half_sent_requests_do_not_hold_shutdown(serve_factory):
    serve = await serve_factory(
        CASEVARS_SHUTDOWN_GRACE_SECONDS="30",
        CASEVARS_HEADER_TIMEOUT_SECONDS="60",
        CASEVARS_KEEPALIVE_TIMEOUT_SECONDS="300",
    )
    silent = await asyncio.open_connection("127.0.0.1", serve.port)
    answered = await asyncio.open_connection("127.0.0.1", serve.port)
    answered[1].write(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    await answered[1].drain()
    assert (await read_response(answered[0]))[0] == 200
    half = await asyncio.open_connection("127.0.0.1", serve.port)
    half[1].write(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Half: ")
    await half[1].drain()
    await asyncio.sleep(0.3)

    stopped_at = time.monotonic()
    serve.process.send_signal(signal.SIGTERM)
    assert await _wait_exit(serve, 25) == 0
    assert time.monotonic() - stopped_at < 10, "well within the 30 s grace"
    for reader, writer in (silent, answered, half):
        assert await _until_closed(reader, 5) == b""
        writer.close()


@pytest.mark.parametrize("path", ["/nowhere", "/health/live", "/case-instance/c/variables/v"])
async def test_an_unknown_expectation_is_417_in_camunda_format(serve_factory, path):
    serve = await serve_factory()
    status, payload = await serve.request(
        f"GET {path} HTTP/1.1\r\nHost: x\r\nExpect: s3cr3t-expectation\r\n\r\n".encode()
    )
    assert status == 417
    error = assert_camunda_error(payload, "HTTP 417 Expectation Failed")
    assert "s3cr3t" not in str(error["message"])
