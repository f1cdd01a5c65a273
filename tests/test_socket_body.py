"""A `data` part read straight from the socket into its part buffers
(service/http/socket_body.py): where its boundary delimiter is found, for every way a
body can arrive in reads (hypothesis, in memory), and the whole path in a real
`casevars serve` (uploads read that way end their connection after the response,
which shows the path was taken)."""

from __future__ import annotations

import asyncio
import hashlib
import mmap
import os
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.http.socket_body import DataPartReader
from tests.conftest import new_id
from tests.forms import BOUNDARY, FORM, blob_states, body, open_uploads, part, variable_row
from tests.serving import Serve, serving

pytestmark = pytest.mark.timeout(120)
MIB = 1024 * 1024
DASHED = b"--" + BOUNDARY.encode()
AFTER_DATA = [
    b"--\r\n",
    b'\r\nContent-Disposition: form-data; name="valueType"\r\n\r\nFile\r\n' + DASHED + b"--\r\n",
]


class MemoryBody:
    """A body that arrives in reads of the given sizes (the last size repeats)."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self._data = data
        self._sizes = sizes
        self.given_back: bytes | None = None

    def _next_size(self) -> int:
        return self._sizes.pop(0) if len(self._sizes) > 1 else self._sizes[0]

    async def readinto(self, view: memoryview) -> int:
        got = min(len(view), self._next_size(), len(self._data))
        view[:got] = self._data[:got]
        self._data = self._data[got:]
        return got

    async def read(self, size: int) -> bytes:
        got = min(size, self._next_size(), len(self._data))
        out, self._data = self._data[:got], self._data[got:]
        return out

    def give_back(self, rest: bytes) -> None:
        self.given_back = rest + self._data


async def _read_part(reader: DataPartReader, buffer_size: int) -> bytes:
    """The part as the blob store reads it: buffer after buffer, each filled in turn."""
    out = bytearray()
    buffer = mmap.mmap(-1, buffer_size)
    try:
        filled = 0
        while added := await reader.fill(buffer, filled, buffer_size):
            out += buffer[filled : filled + added]
            filled = (filled + added) % buffer_size
    finally:
        buffer.close()
    return bytes(out)


@settings(max_examples=300, deadline=None)
@given(
    content=st.binary(max_size=3000),
    near_misses=st.integers(0, 3),
    sizes=st.lists(st.integers(1, 700), min_size=1, max_size=20),
    buffer_size=st.integers(1, 5000),
    direct_min=st.integers(1, 300),
    after=st.sampled_from(AFTER_DATA),
)
def test_the_part_ends_at_its_delimiter(
    content: bytes,
    near_misses: int,
    sizes: list[int],
    buffer_size: int,
    direct_min: int,
    after: bytes,
) -> None:
    # Near misses: the delimiter but for its last byte, inside the content.
    content = (b"\r\n" + DASHED[:-1] + b"X") * near_misses + content
    if b"\r\n" + DASHED in b"\r\n" + content:
        return  # a delimiter in the content ends the part there: not this test's case
    body_bytes = MemoryBody(content + b"\r\n" + DASHED + after, sizes)
    ended: list[bool] = []
    reader = DataPartReader(
        body_bytes, DASHED, ended=lambda: ended.append(True), direct_min_bytes=direct_min
    )
    assert asyncio.run(_read_part(reader, buffer_size)) == content
    assert body_bytes.given_back == DASHED + after
    assert ended == [True]


@pytest.mark.parametrize("content", [b"", b"abc", os.urandom(200_000)])
def test_a_body_that_ends_inside_the_part_is_malformed(content: bytes) -> None:
    reader = DataPartReader(MemoryBody(content + b"\r\n" + DASHED[:-3], [4096]), DASHED)
    with pytest.raises(ValueError, match="ends inside the data part"):
        asyncio.run(_read_part(reader, 65536))


async def _send(serve: Serve, raw: bytes, close_within: float = 5) -> tuple[int, bytes, bool]:
    """Status, body, and that the server closed the connection after answering
    (TimeoutError when it keeps it open close_within seconds)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", serve.port)
    try:
        writer.write(raw)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,  # a 204 has none
        )
        answer = await reader.readexactly(length)
        closed = await asyncio.wait_for(reader.read(1), close_within) == b""
        # Said before it happens, so that a client sends no next request on it.
        assert (b"\r\nConnection: close\r\n" in head) is closed
        return int(head.split()[1]), answer, closed
    finally:
        writer.close()


def _post(case_id: str, form: bytes) -> bytes:
    return (
        f"POST /case-instance/{case_id}/variables/v/data HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: {FORM}\r\nContent-Length: {len(form)}\r\n\r\n"
    ).encode() + form


async def _create_case(serve: Serve) -> str:
    case_id = new_id()
    raw = f"PUT /case-instance/{case_id} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    status, _ = await serve.request(raw.encode())
    assert status == 201
    return case_id


async def _get_value(serve: Serve, case_id: str) -> tuple[bytes, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", serve.port)
    try:
        writer.write(
            f"GET /case-instance/{case_id}/variables/v/data HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        )
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        headers = dict(
            line.lower().split(": ", 1) for line in head.split("\r\n")[1:] if ": " in line
        )
        return await reader.readexactly(int(headers["content-length"])), headers["etag"]
    finally:
        writer.close()


FORMS = {
    "File, valueType after data": lambda value: body(
        part("data", value, "application/pdf", filename="a.pdf"), part("valueType", b"File")
    ),
    "a large ignored part after data": lambda value: body(
        part("data", value, "application/octet-stream"), part("other", os.urandom(60_000))
    ),
    "two data parts, the last wins": lambda value: body(
        part("data", os.urandom(6 * MIB), "application/octet-stream"),
        part("data", value, "application/octet-stream"),
    ),
}


@pytest.mark.parametrize("shape", FORMS)
async def test_uploads_read_from_the_socket_round_trip(endpoints, tmp_path, db, shape) -> None:
    value = os.urandom(13 * MIB + 12345)
    form = FORMS[shape](value)
    async with serving(endpoints, tmp_path) as serve:
        case_id = await _create_case(serve)
        status, answer, closed = await _send(serve, _post(case_id, form))
        assert (status, answer) == (204, b"")
        assert closed  # the body was read from the socket: its connection ends here
        stored, etag = await _get_value(serve, case_id)
        assert stored == value
        assert etag == f'"{hashlib.sha256(value).hexdigest()}"'
    # The access log counts the bytes read from the socket too.
    logged = [line for line in serve.log.read_text().splitlines() if '"method":"POST"' in line]
    assert f'"bytes_in":{len(form)},' in logged[-1]


async def test_a_small_upload_keeps_its_connection(endpoints, tmp_path) -> None:
    async with serving(endpoints, tmp_path) as serve:
        form = body(part("data", b"small", "application/octet-stream"))
        with pytest.raises(TimeoutError):
            # 204, and the connection stays open for the next request.
            await _send(serve, _post(await _create_case(serve), form), close_within=1)


async def test_a_body_cut_inside_the_part_stores_nothing(endpoints, tmp_path, db, s3) -> None:
    async with serving(endpoints, tmp_path) as serve:
        case_id = await _create_case(serve)
        previous = body(part("data", b"previous", "application/octet-stream"))
        assert (await serve.request(_post(case_id, previous)))[0] == 204
        whole = _post(case_id, body(part("data", os.urandom(40 * MIB), "application/pdf")))
        _, writer = await asyncio.open_connection("127.0.0.1", serve.port)
        writer.write(whole[: 17 * MIB])  # three parts sent to S3, and some of a fourth
        await writer.drain()
        await asyncio.sleep(1)
        writer.close()
        deadline = time.monotonic() + 20
        while "pending" in (await blob_states(db, endpoints.s3_prefix)).values() or (
            await open_uploads(s3, endpoints.s3_bucket, endpoints.s3_prefix)
        ):
            assert time.monotonic() < deadline, "the cut upload was not cleaned up"
            await asyncio.sleep(0.1)
        assert (await variable_row(db, case_id, "v"))["size"] == len(b"previous")


async def test_a_form_read_only_to_be_refused_ends_when_its_body_does(endpoints, tmp_path) -> None:
    # An unknown case instance: the form is read to its end all the same (as Camunda
    # does), through a small buffer, so what aiohttp had read past the first part goes
    # back to the stream before the rest of the socket's bytes.
    form = body(
        part("data", b"small", "application/octet-stream"),
        part("data", os.urandom(20 * MIB), "application/octet-stream"),
    )
    async with serving(endpoints, tmp_path) as serve:
        started = time.monotonic()
        status, _, closed = await _send(serve, _post(new_id(), form))
        assert (status, closed) == (404, True)
        assert time.monotonic() - started < 10  # not the read timeout's 60 s
