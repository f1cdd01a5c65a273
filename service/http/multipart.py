"""Reading a multipart/form-data body the way Camunda does, without ever
holding the `data` part whole: parts are kept by name, the last of a name wins, only
`data`, `type` and `valueType` matter, and the `data` part is handed to a sink as a
stream of chunks while the form is still being read."""

from __future__ import annotations

import asyncio
import dataclasses
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import (
    BadContentDispositionHeader,
    BadContentDispositionParam,
    BodyPartReader,
    MultipartReader,
    web,
)

from service.errors import REST, InvalidInput, TooLarge, UploadAborted
from service.private_api import PART_HEADER_ERRORS, FlatMultipartReader

# Form parts other than `data` are names and type names: small.
MAX_TEXT_PART_BYTES = 64 * 1024
MAX_FORM_PARTS = 64
# Part header lines, and how many of them a part may have.
MAX_PART_HEADER_BYTES = 8190
MAX_PART_HEADERS = 32
# A part's name in an error message is cut to this many characters.
MAX_NAME_SHOWN = 100
# aiohttp's multipart reader spends most of its time per call, not per byte:
# large reads keep the cost per GiB low.
READ_CHUNK_BYTES = 256 * 1024

CANNOT_PROCESS = "multipart/form-data cannot be processed"


@dataclasses.dataclass(frozen=True)
class TextPart:
    """A small part. text is None when the part's Content-Type does not allow reading
    it as text (Camunda reads only parts with no Content-Type or a text/plain one)."""

    text: str | None
    content_type: str | None


@dataclasses.dataclass
class DataPart:
    """The `data` part: its headers, and either what the sink made of its bytes or,
    when the form was known to hold a serialized object before `data` came, the bytes."""

    content_type: str | None
    filename: str | None
    stored: Any = None
    in_memory: bytes | None = None


@dataclasses.dataclass
class Form:
    data: DataPart | None = None
    type: TextPart | None = None
    value_type: TextPart | None = None


# Consumes the chunks of a `data` part; what it returns is kept as DataPart.stored.
DataSink = Callable[[AsyncIterator[bytes]], Awaitable[Any]]


def is_multipart_form(request: web.Request) -> bool:
    return request.content_type == "multipart/form-data"


# What aiohttp warns of for a malformed Content-Disposition (it then reads the part as
# one without a name or file name).
_DISPOSITION_WARNINGS = [
    ("ignore", None, category, None, 0)
    for category in (BadContentDispositionHeader, BadContentDispositionParam)
]


def _ignore_disposition_warnings() -> None:
    """Shown, those warnings would print the client's header to stderr, and Python's
    warning registry would keep each distinct one for good (memory growing with every
    request). Checked for each form, so that it also holds under the filters a test
    runner installs for each test."""
    if warnings.filters[: len(_DISPOSITION_WARNINGS)] != _DISPOSITION_WARNINGS:
        for _, _, category, _, _ in reversed(_DISPOSITION_WARNINGS):
            warnings.filterwarnings("ignore", category=category)


def _reader(request: web.Request) -> MultipartReader:
    _ignore_disposition_warnings()
    # Flat: a `data` part whose own Content-Type is multipart/* (a MIME file, say) is
    # content like any other, not a nested form.
    try:
        return FlatMultipartReader(
            request.headers,
            request.content,
            max_field_size=MAX_PART_HEADER_BYTES,
            max_headers=MAX_PART_HEADERS,
        )
    except (ValueError, AssertionError, KeyError) as error:
        raise InvalidInput(CANNOT_PROCESS, type_name=REST) from error


async def _chunks(part: BodyPartReader, timeout: float) -> AsyncIterator[bytes]:
    while True:
        try:
            chunk = await asyncio.wait_for(part.read_chunk(READ_CHUNK_BYTES), timeout)
        except TimeoutError as error:
            raise UploadAborted(f"the client sent nothing for {timeout:.0f}s") from error
        if not chunk:
            return
        yield chunk


async def _read_capped(part: BodyPartReader, limit: int, refusal: str, timeout: float) -> bytes:
    """The part's bytes in memory; TooLarge(refusal) beyond limit bytes."""
    buffer = bytearray()
    async for chunk in _chunks(part, timeout):
        buffer += chunk
        if len(buffer) > limit:
            raise TooLarge(refusal)
    return bytes(buffer)


async def _read_small(part: BodyPartReader, name: str, timeout: float) -> bytes:
    shown = name if len(name) <= MAX_NAME_SHOWN else name[:MAX_NAME_SHOWN] + "..."
    refusal = f"Form part '{shown}' is larger than {MAX_TEXT_PART_BYTES} bytes"
    return await _read_capped(part, MAX_TEXT_PART_BYTES, refusal, timeout)


async def _read_text(part: BodyPartReader, name: str, timeout: float) -> TextPart:
    content_type = part.headers.get("Content-Type")
    raw = await _read_small(part, name, timeout)
    if content_type is not None and "text/plain" not in content_type:
        return TextPart(None, content_type)
    try:
        return TextPart(raw.decode("utf-8"), content_type)
    except UnicodeDecodeError:
        return TextPart(None, content_type)


async def read_form(
    request: web.Request,
    form: Form,
    *,
    data_sink: DataSink,
    max_in_memory: int,
    read_timeout: float,
) -> None:
    """Read the whole form into `form`. `data` goes to data_sink, unless a `type` part
    came first: then the form holds a serialized object and `data` is read into
    memory, up to max_in_memory bytes (TooLarge beyond).

    InvalidInput for a body that is not a well-formed form; UploadAborted when the
    client goes away or stalls. On any error, `form` still holds what the sink made
    of the parts read so far, so the caller can discard it.
    """
    await _read_parts(_reader(request), form, data_sink, max_in_memory, read_timeout)


async def _read_parts(
    reader: MultipartReader,
    form: Form,
    data_sink: DataSink,
    max_in_memory: int,
    read_timeout: float,
) -> None:
    for _ in range(MAX_FORM_PARTS + 1):
        try:
            # The preamble, a boundary and a part's headers: small, and within the read
            # timeout like every other read of the body.
            part = await asyncio.wait_for(reader.next(), read_timeout)
        except ConnectionResetError as error:
            raise UploadAborted("the client closed the connection") from error
        except TimeoutError as error:
            raise UploadAborted(
                f"the next boundary and part headers did not arrive within {read_timeout:g}s"
            ) from error
        except (
            ValueError,
            AssertionError,
            RuntimeError,
            UnicodeDecodeError,
            *PART_HEADER_ERRORS,
        ) as error:
            raise InvalidInput(CANNOT_PROCESS, type_name=REST) from error
        if part is None:
            return
        assert isinstance(part, BodyPartReader)
        try:
            await _read_part(part, form, data_sink, max_in_memory, read_timeout)
        except ConnectionResetError as error:
            raise UploadAborted("the client closed the connection") from error
        except (ValueError, AssertionError) as error:
            raise InvalidInput(CANNOT_PROCESS, type_name=REST) from error
    raise TooLarge(f"A form may have at most {MAX_FORM_PARTS} parts")


async def _read_part(
    part: BodyPartReader,
    form: Form,
    data_sink: DataSink,
    max_in_memory: int,
    read_timeout: float,
) -> None:
    name = part.name
    if name == "data":
        data = DataPart(part.headers.get("Content-Type"), part.filename)
        if form.type is not None:
            refusal = f"A serialized object is larger than the limit of {max_in_memory} bytes"
            data.in_memory = await _read_capped(part, max_in_memory, refusal, read_timeout)
        else:
            data.stored = await data_sink(_chunks(part, read_timeout))
        form.data = data  # the last `data` part wins; the sink's caller discards the others
    elif name == "type":
        form.type = await _read_text(part, name, read_timeout)
    elif name == "valueType":
        form.value_type = await _read_text(part, name, read_timeout)
    else:
        # Camunda ignores other parts; they still may not be large.
        await _read_small(part, name or "", read_timeout)
