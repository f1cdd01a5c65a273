"""Reading a multipart/form-data body the way Camunda does, without ever
holding the `data` part whole: parts are kept by name, the last of a name wins, only
`data`, `type` and `valueType` matter, and the `data` part is handed to a sink while
the form is still being read (straight from the socket into the buffers it is uploaded
from, where it can: socket_body.py)."""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import (
    BadContentDispositionHeader,
    BadContentDispositionParam,
    BodyPartReader,
    MultipartReader,
    StreamReader,
    web,
)

from service.errors import REST, InvalidInput, TooLarge, UploadAborted
from service.http import request_memory
from service.http.data_part import data_chunks
from service.http.pace import Pace, pace_of
from service.http.socket_body import DataPartReader, SocketBody
from service.http.upload_digests import ValueDigest, value_digests
from service.private_api import (
    PART_HEADER_ERRORS,
    FlatMultipartReader,
    RawPart,
    take_request_body,
)
from service.storage.blobstore import ValueSource

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
    """The `data` part: its headers (with the digests they give its content), and
    either what the sink made of its bytes or, when the form was known to hold a
    serialized object before `data` came, the bytes."""

    content_type: str | None
    filename: str | None
    digests: tuple[ValueDigest, ...] = ()
    stored: Any = None
    in_memory: bytes | None = None


@dataclasses.dataclass
class Form:
    data: DataPart | None = None
    type: TextPart | None = None
    value_type: TextPart | None = None


# Consumes the bytes of a `data` part; what it returns is kept as DataPart.stored.
DataSink = Callable[[ValueSource], Awaitable[Any]]
# Makes the request hold at least that many bytes of the memory budget.
Cover = Callable[[int], Awaitable[None]]


@dataclasses.dataclass(frozen=True)
class _Reading:
    """How the form's body is read: at the request's pace, and memory for a part kept
    in memory taken from the budget."""

    pace: Pace
    cover: Cover
    # The request whose socket the `data` part may be read from (socket_body.py); None
    # when the form is read through another stream (a hashed one).
    request: web.Request | None


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


def _reader(request: web.Request, body: StreamReader) -> MultipartReader:
    _ignore_disposition_warnings()
    # Flat: a `data` part whose own Content-Type is multipart/* (a MIME file, say) is
    # content like any other, not a nested form.
    try:
        return FlatMultipartReader(
            request.headers,
            body,
            max_field_size=MAX_PART_HEADER_BYTES,
            max_headers=MAX_PART_HEADERS,
        )
    except (ValueError, AssertionError, KeyError) as error:
        raise InvalidInput(CANNOT_PROCESS, type_name=REST) from error


async def _chunks(part: BodyPartReader, pace: Pace) -> AsyncIterator[bytes]:
    while True:
        try:
            chunk = await pace.read(part.read_chunk(READ_CHUNK_BYTES))
        except TimeoutError as error:
            raise UploadAborted(f"the client sent nothing for {pace.read_timeout:.0f}s") from error
        if not chunk:
            return
        yield chunk


def _data_source(part: BodyPartReader, reading: _Reading) -> ValueSource:
    """The `data` part's bytes: from the socket straight into the part buffers when
    the request allows it (socket_body.py), else the chunks aiohttp's parser made."""
    pace = reading.pace
    raw = RawPart.of(part)
    if raw is None:
        return _chunks(part, pace)
    taken = None if reading.request is None else take_request_body(reading.request)
    if taken is not None:
        return DataPartReader(SocketBody(taken, pace), raw.boundary, ended=raw.ended)
    return data_chunks(raw, pace.read, pace.read_timeout)


async def _read_capped(
    part: BodyPartReader, limit: int, refusal: str, pace: Pace, cover: Cover | None = None
) -> bytes:
    """The part's bytes in memory; TooLarge(refusal) beyond limit bytes. cover, if
    given, is told how large the buffer has grown before it grows further."""
    buffer = bytearray()
    async for chunk in _chunks(part, pace):
        buffer += chunk
        if len(buffer) > limit:
            raise TooLarge(refusal)
        if cover is not None:
            await cover(len(buffer))
    return bytes(buffer)


async def _read_small(part: BodyPartReader, name: str, pace: Pace) -> bytes:
    shown = name if len(name) <= MAX_NAME_SHOWN else name[:MAX_NAME_SHOWN] + "..."
    refusal = f"Form part '{shown}' is larger than {MAX_TEXT_PART_BYTES} bytes"
    return await _read_capped(part, MAX_TEXT_PART_BYTES, refusal, pace)


async def _read_text(part: BodyPartReader, name: str, pace: Pace) -> TextPart:
    content_type = part.headers.get("Content-Type")
    raw = await _read_small(part, name, pace)
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
    body: StreamReader | None = None,
) -> None:
    """Read the whole form into `form`, from body (the request's own stream unless
    given). `data` goes to data_sink, unless a `type` part
    came first: then the form holds a serialized object and `data` is read into
    memory (taken from the budget for the rest of the request), up to max_in_memory
    bytes (TooLarge beyond). Every read keeps the request's pace (pace.py).

    InvalidInput for a body that is not a well-formed form; UploadAborted when the
    client goes away or stalls. On any error, `form` still holds what the sink made
    of the parts read so far, so the caller can discard it.
    """
    reading = _Reading(
        pace_of(request),
        functools.partial(request_memory.cover, request),
        request if body is None else None,
    )
    reader = _reader(request, request.content if body is None else body)
    await _read_parts(reader, form, data_sink, max_in_memory, reading)


async def _read_parts(
    reader: MultipartReader,
    form: Form,
    data_sink: DataSink,
    max_in_memory: int,
    reading: _Reading,
) -> None:
    for _ in range(MAX_FORM_PARTS + 1):
        try:
            # The preamble, a boundary and a part's headers: small, and within the read
            # timeout like every other read of the body.
            part = await reading.pace.read(reader.next())
        except ConnectionResetError as error:
            raise UploadAborted("the client closed the connection") from error
        except TimeoutError as error:
            raise UploadAborted(
                "the next boundary and part headers did not arrive within "
                f"{reading.pace.read_timeout:g}s"
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
            await _read_part(part, form, data_sink, max_in_memory, reading)
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
    reading: _Reading,
) -> None:
    name = part.name
    pace = reading.pace
    if name == "data":
        # A malformed digest field is refused before the part's bytes are read.
        digests = value_digests(part.headers, part=True)
        data = DataPart(part.headers.get("Content-Type"), part.filename, digests)
        if form.type is not None:
            refusal = f"A serialized object is larger than the limit of {max_in_memory} bytes"
            data.in_memory = await _read_capped(part, max_in_memory, refusal, pace, reading.cover)
        else:
            data.stored = await data_sink(_data_source(part, reading))
        form.data = data  # the last `data` part wins; the sink's caller discards the others
    elif name == "type":
        form.type = await _read_text(part, name, pace)
    elif name == "valueType":
        form.value_type = await _read_text(part, name, pace)
    else:
        # Camunda ignores other parts; they still may not be large.
        await _read_small(part, name or "", pace)
