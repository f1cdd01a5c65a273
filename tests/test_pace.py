"""The minimum pace of a body (CASEVARS_CLIENT_MIN_BYTES_PER_SECOND): a client that
trickles its body, each byte just inside the read timeout, is disconnected with 408 and
leaves nothing behind; one that keeps the pace is served, however long it takes."""

from __future__ import annotations

import asyncio
import contextlib

import orjson

from tests.conftest import new_id
from tests.forms import FORM, blob_states, body, create_case, data_url, part, pattern


async def _trickle(client, head: bytes, content: bytes, *, piece: int, every: float) -> bytes:
    """Send head, then content piece bytes at a time every `every` seconds, and return
    what the service answered (possibly before the body was all sent)."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(head)
    answer = asyncio.create_task(reader.read())
    with contextlib.suppress(ConnectionError):
        for start in range(0, len(content), piece):
            if answer.done():
                break
            writer.write(content[start : start + piece])
            await writer.drain()
            await asyncio.sleep(every)
    received = await asyncio.wait_for(answer, 30)
    writer.close()
    return received


def _request(method: str, path: str, content_type: str, length: int) -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def _modification(value: str) -> bytes:
    return orjson.dumps({"modifications": {"s": {"type": "String", "value": value}}})


async def test_a_trickling_json_body_is_408_and_writes_nothing(make_client):
    client = await make_client(client_read_timeout_seconds=1, client_min_bytes_per_second=1000)
    case_id = new_id()
    await create_case(client, case_id)
    path = f"/case-instance/{case_id}/variables"
    content = _modification("x" * 4000)
    head = _request("POST", path, "application/json", len(content))
    # 20 bytes every 0.1 s: 200 bytes/s, each read well inside the 1 s timeout.
    received = await _trickle(client, head, content, piece=20, every=0.1)
    assert received.startswith(b"HTTP/1.1 408")
    assert b"slower than the minimum of 1000 bytes/s" in received
    assert b"Connection: close" in received
    assert await (await client.get(path)).json() == {}


async def test_a_trickling_upload_is_408_and_its_blob_becomes_garbage(make_client, db, endpoints):
    client = await make_client(client_read_timeout_seconds=1, client_min_bytes_per_second=10_000)
    case_id = new_id()
    await create_case(client, case_id)
    content = body(part("data", pattern(100_000), "application/octet-stream"))
    head = _request("POST", data_url(case_id, "v"), FORM, len(content))
    start, rest = content[:200], content[200:]
    received = await _trickle(client, head + start, rest, piece=100, every=0.05)
    assert received.startswith(b"HTTP/1.1 408")
    assert b"slower than the minimum" in received
    assert (await client.get(data_url(case_id, "v"))).status == 404
    states = await blob_states(db, endpoints.s3_prefix)
    assert set(states.values()) <= {"garbage"}


async def test_a_body_that_keeps_the_pace_is_served_however_long_it_takes(make_client):
    """40 KB/s for about 1.5 s, three times the read timeout, above a 10 KB/s minimum."""
    client = await make_client(client_read_timeout_seconds=0.5, client_min_bytes_per_second=10_000)
    case_id = new_id()
    await create_case(client, case_id)
    data = pattern(60_000)
    content = body(part("data", data, "application/octet-stream"))
    head = _request("POST", data_url(case_id, "v"), FORM, len(content))
    received = await _trickle(client, head, content, piece=2000, every=0.05)
    assert received.startswith(b"HTTP/1.1 204")
    assert await (await client.get(data_url(case_id, "v"))).read() == data


async def test_no_minimum_pace_when_it_is_zero(make_client):
    client = await make_client(client_read_timeout_seconds=0.5, client_min_bytes_per_second=0)
    case_id = new_id()
    await create_case(client, case_id)
    path = f"/case-instance/{case_id}/variables"
    content = _modification("y" * 100)
    head = _request("POST", path, "application/json", len(content))
    # 10 bytes every 0.1 s for about 1.3 s: 100 bytes/s.
    received = await _trickle(client, head, content, piece=10, every=0.1)
    assert received.startswith(b"HTTP/1.1 204")
    assert (await (await client.get(path)).json())["s"]["value"] == "y" * 100
