"""The lean reader of an upload's `data` part (service/http/data_part.py) against
aiohttp's own multipart reader: the same content for every way the body can be cut
into received chunks, the boundary found wherever it falls (inside a chunk, across
two, across many short ones, at once for an empty part), lookalikes of the delimiter
kept as content, and aiohttp's reader going on with the parts that follow."""

from __future__ import annotations

import asyncio
import functools
import itertools
from typing import Any

import pytest
from aiohttp import BodyPartReader, StreamReader
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from service.http.data_part import data_chunks
from service.private_api import FlatMultipartReader, RawPart

BOUNDARY = "b0und4ry"
HEADERS = CIMultiDict({"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
# Content made of these pieces comes close to the delimiter in every way it can.
PIECES = [b"\r", b"\n", b"\r\n", b"-", b"--", b"\r\n--", BOUNDARY.encode(), b"b0und", b"x" * 7]
DELIMITER = f"\r\n--{BOUNDARY}".encode()


class _Connection:
    """What a StreamReader asks of its protocol (here nothing pauses the feeding)."""

    _reading_paused = False
    connected = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self, *, resume_parser: bool = True) -> None:
        pass


def _form(content: bytes, *, valueType: bool = True) -> bytes:  # noqa: N803 - the part's name
    body = (
        f"preamble\r\n--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="data"; filename="f.bin"\r\n\r\n'
    ).encode() + content
    if valueType:
        body += (
            f'\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="valueType"\r\n\r\nFile'
        ).encode()
    return body + f"\r\n--{BOUNDARY}--\r\n".encode()


def _stream(body: bytes, cuts: list[int]) -> StreamReader:
    stream = StreamReader(_Connection(), 2**16, loop=asyncio.get_running_loop())  # type: ignore[arg-type]
    edges = [0, *sorted({cut % (len(body) + 1) for cut in cuts}), len(body)]
    for start, end in itertools.pairwise(edges):
        if end > start:
            stream.feed_data(body[start:end])
    stream.feed_eof()
    return stream


async def _read(stream: StreamReader) -> list[tuple[str | None, Any]]:
    """Every part: the data part through data_chunks (its chunks kept apart), the others
    through aiohttp's read_chunk."""
    reader = FlatMultipartReader(HEADERS, stream)
    parts: list[tuple[str | None, Any]] = []
    while (part := await reader.next()) is not None:
        assert isinstance(part, BodyPartReader)
        if part.name == "data":
            raw = RawPart.of(part)
            assert raw is not None
            wait = functools.partial(asyncio.wait_for, timeout=5.0)
            parts.append(("data", [chunk async for chunk in data_chunks(raw, wait, 5.0)]))
        else:
            content = bytearray()
            while chunk := await part.read_chunk(256):
                content += chunk
            parts.append((part.name, bytes(content)))
    return parts


@settings(max_examples=400, deadline=None)
@given(
    content=st.lists(st.sampled_from(PIECES), max_size=40)
    .map(b"".join)
    .filter(lambda content: DELIMITER not in b"\r\n" + content),  # else the part ends there
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
)
def test_the_content_whatever_the_chunks(content: bytes, cuts: list[int]) -> None:
    async def check() -> None:
        parts = await _read(_stream(_form(content), cuts))
        assert [name for name, _ in parts] == ["data", "valueType"]
        chunks = parts[0][1]
        assert b"".join(chunks) == content
        assert all(chunks), "no empty chunk is handed on"
        assert parts[1][1] == b"File"

    asyncio.run(check())


@pytest.mark.parametrize("cut_every", [1, 3, 17, 4096])
async def test_an_empty_data_part(cut_every: int) -> None:
    body = _form(b"")
    parts = await _read(_stream(body, list(range(0, len(body), cut_every))))
    assert parts == [("data", []), ("valueType", b"File")]


async def test_large_chunks_are_handed_on_whole() -> None:
    """The point of it: no chunk copied, all but the last handed on as received."""
    content = bytes(range(256)) * 4096  # 1 MiB
    body = _form(content, valueType=False)
    header_end = body.index(b"\r\n\r\n") + 4
    size = 256 * 1024
    cuts = [header_end + n * size for n in range(5)]
    stream = _stream(body, cuts)
    received = list(stream._buffer)
    parts = await _read(stream)
    chunks = parts[0][1]
    assert b"".join(chunks) == content
    assert [chunk is fed for chunk, fed in zip(chunks[:3], received[1:4], strict=True)] == [
        True
    ] * 3


async def test_a_body_that_ends_inside_the_data_part_is_refused() -> None:
    body = _form(b"content \r\n-", valueType=False)[: -len(f"\r\n--{BOUNDARY}--\r\n")]
    with pytest.raises(ValueError, match="ends inside the data part"):
        await _read(_stream(body, [40, 90]))


async def test_a_part_with_a_content_length_of_its_own_is_left_to_aiohttp() -> None:
    body = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="data"\r\n'
        f"Content-Length: 3\r\n\r\nabc\r\n--{BOUNDARY}--\r\n"
    ).encode()
    reader = FlatMultipartReader(HEADERS, _stream(body, []))
    part = await reader.next()
    assert isinstance(part, BodyPartReader)
    assert RawPart.of(part) is None
