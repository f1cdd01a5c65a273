"""Every private or undocumented part of aiohttp, aiobotocore and botocore that casevars
relies on, each behind a name that says what it does. Nothing else in service/ touches
them: when an upgrade breaks one, tests/test_private_api.py fails for it, and this is
the one file to change. pyproject.toml pins aiohttp and aiobotocore to the minor
versions these were checked against.

A bottom-level module: it imports those libraries (and multidict, aiohttp's) and the
standard library, nothing of service, so every layer may use it.

Relied on without a wrapper here (checked in tests/test_private_api.py all the same):
aiohttp's StreamResponse.prepare() hands the status line and headers to the transport
before it returns, which is what lets service/http/variables.py splice a download's
bytes into the client's socket right after them.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, Protocol

import aiohttp
import aiohttp.payload
import botocore.handlers
from aiobotocore.client import AioBaseClient
from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_urldispatcher import _default_expect_handler
from multidict import CIMultiDictProxy

# --- aiohttp: multipart forms -------------------------------------------------------


class FlatMultipartReader(MultipartReader):
    """A multipart reader that hands out every part as a plain body part: a part whose
    own Content-Type is multipart/* (a MIME file, say) is content like any other, not a
    nested form to descend into.

    Also undocumented: the max_field_size and max_headers keywords of the constructor
    (limits on each part's header lines), which MultipartReader takes as is."""

    # Private: _get_part_reader is the hook MultipartReader.next() calls to choose a
    # part's reader (a nested MultipartReader for multipart/*), and _boundary,
    # _content, _mimetype and _default_charset are what it builds a BodyPartReader
    # from; BodyPartReader's subtype and default_charset keywords are undocumented too.
    def _get_part_reader(self, headers: CIMultiDictProxy[str]) -> BodyPartReader:
        return BodyPartReader(
            self._boundary,
            headers,
            self._content,
            subtype=self._mimetype.subtype,
            default_charset=self._default_charset,
        )


# What MultipartReader.next() raises for part headers beyond max_field_size or
# max_headers, or that cannot be parsed (BadHttpMessage, LineTooLong). Undocumented:
# the class lives in aiohttp.http_exceptions, which aiohttp's reference does not cover.
PART_HEADER_ERRORS = (HttpProcessingError,)


# --- aiohttp: the web server ------------------------------------------------------------


async def default_expect_handler(request: web.Request) -> None:
    """What aiohttp does for `Expect:` when a route has no handler of its own: sends
    `100 Continue` (HTTP/1.1, `100-continue`), refuses other expectations with 417."""
    # Private: aiohttp.web_urldispatcher._default_expect_handler. Besides writing the
    # interim answer it resets the writer's byte count, so that response_bytes_sent()
    # counts the final response only.
    await _default_expect_handler(request)


def request_body_bytes(request: web.BaseRequest) -> int:
    """The body bytes of the request received so far (after any content decoding)."""
    # Undocumented: StreamReader.total_bytes (only total_raw_bytes is in the reference).
    return request.content.total_bytes


def response_bytes_sent(response: web.StreamResponse) -> int:
    """The bytes of the response written to the connection, headers included."""
    # Undocumented: StreamResponse.body_length.
    return response.body_length


# --- aiohttp under aiobotocore: request bodies -------------------------------------------


class SlicedBody(Protocol):
    """A request body that aiohttp writes in slices (register_sliced_body)."""

    @property
    def view(self) -> memoryview: ...

    @property
    def stall_seconds(self) -> float | None:
        """The longest the connection may take to accept one slice (None: no limit)."""
        ...


def register_sliced_body(body_type: type[SlicedBody], *, slice_bytes: int) -> None:
    """Have aiohttp send every body of body_type that a request is given (botocore's
    request body, as aiobotocore passes it to aiohttp) by writing its view in slices of
    slice_bytes, each within its stall_seconds; TimeoutError otherwise."""
    # Undocumented: aiohttp.payload.PAYLOAD_REGISTRY, through which ClientRequest turns
    # `data` into a Payload; that aiobotocore hands botocore's body to aiohttp as
    # `data` unchanged when it is not an io.IOBase; and the Payload base class (below).

    class SlicedBodyPayload(_SlicedPayload):
        SLICE_BYTES = slice_bytes

    aiohttp.payload.PAYLOAD_REGISTRY.register(SlicedBodyPayload, body_type)


class _SlicedPayload(aiohttp.payload.Payload):
    """Writes a SlicedBody in large slices (aiohttp's BytesIO payload yields to the loop
    every 64 KiB, which costs more than the copy it saves)."""

    # Private: Payload keeps its value in _value and its length in _size (read by
    # Payload.size for Content-Length); write() is what ClientRequest ends up calling,
    # through Payload.write_with_length.
    _value: SlicedBody
    SLICE_BYTES: ClassVar[int]

    def __init__(self, value: SlicedBody, *args: Any, **kwargs: Any) -> None:
        super().__init__(value, *args, **kwargs)
        self._size = len(value.view)

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return bytes(self._value.view).decode(encoding, errors)

    async def write(self, writer: AbstractStreamWriter) -> None:
        view = self._value.view
        for start in range(0, len(view), self.SLICE_BYTES):
            # A peer that stops reading would block this write for good: aiohttp starts
            # read_timeout only once the whole body is sent.
            async with asyncio.timeout(self._value.stall_seconds):
                await writer.write(view[start : start + self.SLICE_BYTES])


# --- aiobotocore and botocore: S3 calls and responses -----------------------------------


def without_expect_100_continue(client: AioBaseClient) -> None:
    """Stop the client sending `Expect: 100-continue` with request bodies (botocore does
    for every PUT and POST with a file-like body, and aiohttp waits for the interim
    answer with no timeout at all)."""
    # Undocumented: botocore.handlers.add_expect_header, the handler botocore registers
    # on before-call.s3 to add the header. Unregistering a handler that is not there
    # does nothing, silently: the contract test checks the header really goes.
    client.meta.events.unregister("before-call.s3", botocore.handlers.add_expect_header)


class ResponseSocket:
    """The open connection a streaming S3 response body still arrives on."""

    def __init__(self, response: aiohttp.ClientResponse, transport: asyncio.Transport) -> None:
        self.headers = response.headers
        self.transport = transport
        self._content = response.content

    def take(self) -> bytes | None:
        """Stop aiohttp reading the socket and return the bytes of the body it has read
        and not handed out yet: everything after them arrives on the socket, for the
        caller. None, with nothing changed, when reading the body has already failed.
        Synchronous, so that no byte can arrive in between. Once taken, the connection
        is closed, never reused, when the streaming body is closed."""
        # Documented each, but not together: StreamReader.exception(), read_nowait(-1)
        # and pausing the transport under aiohttp's feet; that ClientResponse.close()
        # (which aiobotocore's close() calls) closes a connection whose body is unread.
        if self._content.exception() is not None:
            return None
        received = self._content.read_nowait(-1)
        self.transport.pause_reading()
        return received


def response_socket_parts(streaming_body: Any) -> ResponseSocket | None:
    """The response headers and open connection of an aiobotocore streaming body (a
    GetObject Body); None when the whole body has already arrived and the connection
    is back in the pool."""
    # Undocumented: with aiobotocore's default (aiohttp) HTTP backend, a StreamingBody's
    # raw_stream is aiohttp's ClientResponse, whose connection is open while the body
    # is not read to its end.
    response = streaming_body.raw_stream
    if not isinstance(response, aiohttp.ClientResponse):
        return None
    connection = response.connection
    if connection is None or connection.transport is None:
        return None
    return ResponseSocket(response, connection.transport)
