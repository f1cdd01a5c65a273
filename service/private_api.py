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
import contextlib
import dataclasses
import os
import socket
import warnings
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Protocol

import aiohttp
import aiohttp.payload
import botocore.handlers
from aiobotocore.client import AioBaseClient
from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.base_protocol import BaseProtocol
from aiohttp.http_exceptions import (
    BadHttpMethod,
    BadStatusLine,
    HttpProcessingError,
    InvalidHeader,
    LineTooLong,
)
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader
from aiohttp.web_protocol import RequestHandler, _ErrInfo
from aiohttp.web_urldispatcher import _default_expect_handler
from botocore.awsrequest import AWSRequest
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


class RawPart:
    """A body part's content as aiohttp's HTTP parser received it: each chunk the
    parser fed the request's stream, whole (StreamReader.readany() joins all it has
    buffered into one copy, BodyPartReader.read_chunk() copies every chunk twice while
    looking for the boundary). The reader looks for the boundary itself, then gives
    back what follows it with finish(), which leaves the part read to its end, as
    read_chunk() would, for MultipartReader.next()."""

    # Private: BodyPartReader's _boundary (b"--" + the form's boundary), _content (the
    # request's StreamReader) and _at_eof; StreamReader's _buffer (the chunks fed and
    # not yet read), _eof, _exception, _wait() (what its reads await) and
    # _read_nowait_chunk() (one chunk off the buffer, resuming the protocol as reads do).
    def __init__(self, part: BodyPartReader) -> None:
        self._part = part
        self._stream: StreamReader = part._content  # noqa: SLF001
        self.boundary: bytes = part._boundary  # noqa: SLF001

    @classmethod
    def of(cls, part: BodyPartReader) -> RawPart | None:
        """None when the part has a Content-Length header of its own: aiohttp then
        reads it by that length, not by its boundary."""
        if "Content-Length" in part.headers:
            return None
        return cls(part)

    def chunk(self) -> bytes | None:
        """The next chunk received; b"" at the end of the body; None when nothing is
        there yet (await arrival(), then ask again)."""
        stream = self._stream
        if stream._exception is not None:  # noqa: SLF001
            raise stream._exception  # noqa: SLF001
        if stream._buffer:  # noqa: SLF001
            return stream._read_nowait_chunk(-1)  # noqa: SLF001
        return b"" if stream._eof else None  # noqa: SLF001

    async def arrival(self) -> None:
        """Until a chunk or the end of the body has arrived (or the client is gone:
        the stream's exception, as its reads raise it)."""
        stream = self._stream
        while not stream._buffer and not stream._eof:  # noqa: SLF001
            await stream._wait("readany")  # noqa: SLF001

    def finish(self, rest: bytes) -> None:
        """The part has ended: rest (what followed the CRLF before its boundary
        delimiter, starting with that delimiter's "--") goes back to the stream."""
        self._part._at_eof = True  # noqa: SLF001
        with warnings.catch_warnings():
            # Deprecated, and what BodyPartReader itself does with what it read too far.
            warnings.simplefilter("ignore", DeprecationWarning)
            self._stream.unread_data(rest)

    def ended(self) -> None:
        """The part's content was read from the socket (take_request_body), and what
        follows it given back to the stream: the part is read to its end."""
        self._part._at_eof = True  # noqa: SLF001


class _NothingToPause(BaseProtocol):
    """The protocol of a stream fed only when it is read: it never has to stop the
    feeding, nor start it again."""

    __slots__ = ()

    def pause_reading(self) -> None:
        pass

    def resume_reading(self, resume_parser: bool = True) -> None:  # noqa: FBT002 - aiohttp's
        pass


class PulledBody(StreamReader):
    """A request body read through a stream of its own, which takes each chunk from the
    request's stream only when one of its reads waits for more, and shows it to seen()
    first (a hash of the whole body, say). Nothing is read ahead: it holds at most the
    last chunk taken, and the request's stream keeps its own flow control. Whatever
    the request's stream raises (the client gone, a malformed chunk) its reads raise."""

    # Private: StreamReader's constructor (aiohttp's reference says streams are never
    # made by users), and _wait(), which every one of its reads awaits when its buffer
    # is empty and the end has not come (what RawPart.arrival() awaits too); and that
    # a stream calls only pause_reading() and resume_reading() of its BaseProtocol.
    __slots__ = ("_seen", "_source")

    def __init__(self, source: StreamReader, seen: Callable[[bytes], None]) -> None:
        loop = asyncio.get_running_loop()
        super().__init__(_NothingToPause(loop), 2**16, loop=loop)
        self._source = source
        self._seen = seen

    async def _wait(self, func_name: str) -> None:  # noqa: ARG002 - StreamReader's
        chunk = await self._source.readany()
        if chunk:
            self._seen(chunk)
            self.feed_data(chunk)
        else:
            self.feed_eof()


# What MultipartReader.next() raises for part headers beyond max_field_size or
# max_headers, or that cannot be parsed (BadHttpMessage, LineTooLong). Undocumented:
# the class lives in aiohttp.http_exceptions, which aiohttp's reference does not cover.
PART_HEADER_ERRORS = (HttpProcessingError,)
# What aiohttp's HTTP parser raises for a request it refuses (the same class).
PARSER_ERRORS = (HttpProcessingError,)

# aiohttp's parser errors whose message begins with request bytes (repr'd).
_QUOTING_ERRORS: tuple[tuple[type[HttpProcessingError], str], ...] = (
    (BadHttpMethod, "the method is not a token"),
    (BadStatusLine, "the request line is malformed"),
    (InvalidHeader, "a header is malformed"),
)


def parser_problem(error: BaseException) -> str:
    """What aiohttp's HTTP parser found wrong with a request (an HttpProcessingError),
    without the request bytes its message quotes: aiohttp's parser errors say what is
    wrong in their message's first line, and quote the offending bytes (repr'd) after
    it, except for the classes above and LineTooLong, which quote them in that line."""
    # Undocumented: the classes and message layout of aiohttp.http_exceptions.
    if isinstance(error, LineTooLong):
        limit = error.args[1] if len(error.args) > 1 else None
        bound = f"{limit} bytes" if isinstance(limit, int) else "the limit"
        return f"the request line or a header field is longer than {bound}"
    for cls, text in _QUOTING_ERRORS:
        if isinstance(error, cls):
            return text
    if isinstance(error, HttpProcessingError):
        first = error.message.split("\n", 1)[0].rstrip(": ")
        if first and len(first) <= 100 and "b'" not in first and 'b"' not in first:
            return first
    return "the request is not valid HTTP/1.1"


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


# --- aiohttp: connections ------------------------------------------------------------------


class HeadersTimeout(Exception):
    """A request's line and headers did not all arrive within the header timeout."""


# Builds the answer to a request refused before any handler ran or that failed outside
# every handler: status 400 (aiohttp's parser refused it; error is the parser's
# HttpProcessingError, whose message quotes request bytes), 408 (HeadersTimeout), the
# status of a web.HTTPException raised outside every middleware (error is it), 500 (an
# exception escaped the handler) or 504 (a TimeoutError did).
Refusal = Callable[[web.BaseRequest, int, BaseException | None], web.StreamResponse]
# Told about an error aiohttp would log with a traceback ("Unhandled exception" and the
# like); the message is aiohttp's own text, never request bytes.
ConnectionFailure = Callable[[str, BaseException | None], None]


def app_runner(
    app: web.Application,
    *,
    refusal: Refusal,
    connection_failure: ConnectionFailure,
    header_timeout: float,
    **kwargs: Any,
) -> web.AppRunner:
    """web.AppRunner(app, **kwargs) whose connections also
    - answer what aiohttp refuses before any handler (a request its parser refuses, an
      HTTPException raised outside every middleware) with refusal(...), instead of
      aiohttp's plain text that quotes the request's bytes, and report errors through
      connection_failure instead of aiohttp's logger;
    - give a request header_timeout seconds from its first byte for its line and
      headers, then answer it with refusal(request, 408, HeadersTimeout()) (the idle
      time before that first byte is aiohttp's keepalive_timeout);
    - fail the body of a request whose body the parser refuses mid-way (a malformed
      chunk) with web.RequestPayloadError, as aiohttp does for a bad content encoding,
      then answer the refusal as above; aiohttp itself would leave the handler waiting
      for the rest for ever.
    """
    options = _ConnectionOptions(refusal, connection_failure, header_timeout)
    return _AppRunner(app, options, **kwargs)


@dataclasses.dataclass(frozen=True)
class _ConnectionOptions:
    refusal: Refusal
    connection_failure: ConnectionFailure
    header_timeout: float


class _AppRunner(web.AppRunner):
    __slots__ = ("_options",)

    def __init__(self, app: web.Application, options: _ConnectionOptions, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._options = options

    # Private: _make_server is the hook BaseRunner.setup() calls for its web.Server
    # (AppRunner's starts the app and asks Application._make_handler for it); the
    # server's _loop and _kwargs are what it builds each connection's RequestHandler from.
    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        return _Server(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=made._loop,  # noqa: SLF001
            options=self._options,
            **made._kwargs,  # noqa: SLF001
        )


class _Server(web.Server):
    def __init__(self, *args: Any, options: _ConnectionOptions, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.options = options

    def __call__(self) -> RequestHandler:
        return _Connection(self, self.options, loop=self._loop, **self._kwargs)


class _Connection(RequestHandler):
    """One client connection (see app_runner)."""

    # Private, all of RequestHandler's: _messages (the queue of parsed requests that
    # start() answers in order, each a RawRequestMessage or an _ErrInfo for a refused
    # one, with its payload), _waiter (the future start() awaits while the queue is
    # empty), _next_keepalive_close_time (when the idle timer may close the connection; it
    # reschedules itself while that lies ahead), _force_close and _close; handle_error(),
    # log_exception() and finish_response(), which start() and _handle_request() call
    # (the last writes the response and its access log line; start() then reads the
    # rest of an unread body for lingering_time unless the connection is closed).
    __slots__ = (
        "_body_pump",
        "_body_readable",
        "_body_sockets",
        "_header_timer",
        "_last_payload",
        "_options",
        "body_failure",
        "close_after_response",
    )

    def __init__(self, manager: web.Server, options: _ConnectionOptions, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._options = options
        self.close_after_response = False
        self._header_timer: asyncio.TimerHandle | None = None
        # The body of the last request parsed; bytes that arrive while it is complete
        # begin the next request.
        self._last_payload: StreamReader | None = None
        # Once a body is taken (take_request_body): set while its stream may take more
        # bytes, cleared while it is full, as pause_reading()/resume_reading() say.
        self._body_readable: asyncio.Event | None = None
        self._body_pump: asyncio.Task[None] | None = None
        # What ended the reads of a taken body, for them to raise (None: its end).
        self.body_failure: BaseException | None = None
        self._body_sockets: list[socket.socket] = []

    def data_received(self, data: bytes) -> None:
        body = self._last_payload
        queued = len(self._messages)
        super().data_received(data)
        if len(self._messages) > queued:
            message, self._last_payload = self._messages[-1]
            self._stop_header_timer()
            if isinstance(message, _ErrInfo) and body is not None and not body.is_eof():
                # The parser refused bytes of a body: its reader (a handler, or aiohttp
                # discarding what a handler left) must not wait for the rest. The end
                # too: StreamReader.readuntil() looks for an exception only when called.
                body.set_exception(web.RequestPayloadError("malformed chunked transfer encoding"))
                body.feed_eof()
        elif data.strip(b"\r\n") and (body is None or body.is_eof()):
            # (Line ends alone, which some clients send after a body, begin nothing.)
            self._start_header_timer()

    def _start_header_timer(self) -> None:
        if self._header_timer is not None or self._force_close or self._close:
            return
        timeout = self._options.header_timeout
        self._header_timer = self._loop.call_later(timeout, self._headers_late)
        # No longer idle: the idle timer must not close the connection before this one.
        self._next_keepalive_close_time = max(
            self._next_keepalive_close_time, self._loop.time() + timeout + 1
        )

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self._force_close or self._close or self.transport is None:
            return
        self._messages.append(
            (_ErrInfo(status=408, exc=HeadersTimeout(), message=""), EMPTY_PAYLOAD)
        )
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_header_timer()
        if self._body_pump is not None:
            self._body_pump.cancel()
        self._end_body_reads()  # the reads see the end: the client went away
        for sock in self._body_sockets:
            self._loop.call_soon(sock.close)  # once the reads have seen the end
        super().connection_lost(exc)

    def pause_reading(self) -> None:
        if self._body_readable is not None:
            self._body_readable.clear()  # the socket is the taker's: only stop pumping
            return
        super().pause_reading()

    def resume_reading(self, resume_parser: bool = True) -> None:  # noqa: FBT002 - aiohttp's
        if self._body_readable is not None:
            self._body_readable.set()
            return
        super().resume_reading(resume_parser)

    def take_body(self) -> None:
        """The rest of the current body is read from the socket by someone else; the
        connection closes after the response."""
        self._body_readable = asyncio.Event()
        self._body_readable.set()
        self.close_after_response = True

    async def shutdown(self, timeout: float | None = 15.0) -> None:
        if self.body_taken and timeout is not None:
            # aiohttp fails a request's body when it cancels the request, `timeout`
            # after its shutdown began; a body read from the socket ends then too.
            self._loop.call_later(timeout, self._end_body_reads, asyncio.CancelledError())
        await super().shutdown(timeout)

    def _end_body_reads(self, failure: BaseException | None = None) -> None:
        """Make the reads of a taken body end, raising failure (if given)."""
        if failure is not None and self.body_failure is None:
            self.body_failure = failure
        for sock in self._body_sockets:
            # A read waiting on the socket sees the end of the stream, and its upload
            # fails as one whose client went away; the response can still be written.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RD)

    @property
    def body_taken(self) -> bool:
        return self._body_readable is not None

    def close_with_connection(self, sock: socket.socket) -> None:
        self._body_sockets.append(sock)

    def pump_into(
        self, stream: StreamReader, rest: bytes, pump: Callable[[], Awaitable[bytes]]
    ) -> None:
        """Feed rest, then pump()'s bytes until b"", into stream at its reader's pace."""
        if rest:
            _feed_again(stream, rest)
        self._body_pump = asyncio.get_running_loop().create_task(self._pump(stream, pump))

    async def _pump(self, stream: StreamReader, pump: Callable[[], Awaitable[bytes]]) -> None:
        assert self._body_readable is not None
        try:
            while True:
                await self._body_readable.wait()
                chunk = await pump()
                if not chunk:
                    stream.feed_eof()
                    return
                _feed_again(stream, chunk)
        except Exception as error:  # noqa: BLE001 - the stream's reader raises it
            stream.set_exception(error)

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        if isinstance(resp, web.HTTPException) and resp.status >= 400:
            # Raised where no middleware answers it: by the expect handler of a path no
            # route matches (aiohttp's 417, plain text quoting the Expect header).
            resp = self._options.refusal(request, resp.status, resp)
        answered = await super().finish_response(request, resp, start_time)
        if self.close_after_response:
            self.force_close()  # the response is in the transport, which sends it first
        return answered

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,  # noqa: ARG002 - aiohttp's; it quotes request bytes
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            # As aiohttp's: the response has begun, all that is left is to cut it.
            raise ConnectionError("the response has begun: no error answer can follow")
        response = self._options.refusal(request, status, exc)
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        error = kwargs.get("exc_info")
        message = str(args[0]) if args else ""
        self._options.connection_failure(
            message, error if isinstance(error, BaseException) else None
        )


def _feed_again(stream: StreamReader, data: bytes) -> None:
    """Hand the stream's reader bytes that were counted when read from the socket."""
    stream.feed_data(data)
    stream.total_bytes -= len(data)


def close_after_response(request: web.BaseRequest) -> None:
    """End the request's connection once its response is sent, instead of reading on
    the rest of an unread body for aiohttp's lingering_time (10 s): for a client that
    stopped sending, whose rest will not come. Connections of app_runner only (others,
    such as a test server's, linger as aiohttp does)."""
    protocol = request.protocol
    if isinstance(protocol, _Connection):
        protocol.close_after_response = True


# --- aiohttp: request bodies read from the socket ---------------------------------------


class TakenBody:
    """A request body whose remaining bytes the caller reads from the connection's
    socket itself (take_request_body)."""

    def __init__(
        self,
        *,
        connection: _Connection,
        stream: StreamReader,
        received: bytes,
        remaining: int,
        fd: int,
    ) -> None:
        self._connection = connection
        self._stream = stream
        self.received = received  # read by aiohttp, not yet by any reader: they come first
        self.remaining = remaining  # still to arrive on the socket
        self._fd = fd

    def open_socket(self) -> socket.socket:
        """The connection's socket, non-blocking, on a descriptor of its own (asyncio
        watches no descriptor its transport owns for anyone else), closed with the
        connection."""
        sock = socket.socket(fileno=os.dup(self._fd))
        sock.settimeout(0.0)  # non-blocking
        self._connection.close_with_connection(sock)
        return sock

    def failure(self) -> BaseException | None:
        """Why the body's reads were ended (the connection lost, the request cancelled at
        shutdown), or what aiohttp failed the body with: a read that found the socket's
        stream at its end raises it."""
        return self._connection.body_failure or self._stream.exception()

    def count(self, received: int) -> None:
        """Bytes read from the socket, for the request's byte count (access log, pace)."""
        # Undocumented: StreamReader.total_bytes, a plain attribute.
        self._stream.total_bytes += received

    def give_back(self, rest: bytes, pump: Callable[[], Awaitable[bytes]]) -> None:
        """The caller is done reading: rest, then what pump() returns until b"", go to
        the request's stream for aiohttp's readers (the rest of a form), at their pace."""
        self._connection.pump_into(self._stream, rest, pump)


def take_request_body(request: web.BaseRequest) -> TakenBody | None:
    """Stop aiohttp reading the request's connection and hand the rest of its body
    over: what aiohttp has read of it, and the socket the rest arrives on. None, with
    nothing changed, unless the request came through app_runner with a Content-Length
    and no content coding, on plain TCP, and its body has not all arrived yet. The
    connection closes once the response is sent: aiohttp's HTTP parser does not see the
    body's last bytes, so it could not find a next request after them."""
    # Private: RequestHandler's _reading_paused (set while its parser holds bytes it
    # has received and not parsed, which resume_reading() parses into the stream);
    # StreamReader's _buffer. Documented: StreamReader.read_nowait(), pausing the
    # transport; that the request's content is the stream its parser feeds.
    protocol = request.protocol
    stream = request.content
    transport = request.transport
    if (
        not isinstance(protocol, _Connection)
        or protocol.body_taken  # once: a second reader would race the first's pump
        or transport is None
        or request.content_length is None
        or "Transfer-Encoding" in request.headers
        or request.headers.get("Content-Encoding", "identity") not in {"identity", ""}
        or transport.get_extra_info("sslcontext") is not None
        or stream.exception() is not None
        or stream.is_eof()
    ):
        return None
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in {socket.AF_INET, socket.AF_INET6}:
        return None
    received = bytearray()
    # Synchronous from here on, so that no byte can arrive in between.
    while True:
        received += stream.read_nowait(-1)
        if protocol._reading_paused:  # noqa: SLF001 - its parser holds bytes back
            protocol.resume_reading()
            continue
        if not stream._buffer:  # noqa: SLF001
            break
    if stream.is_eof():
        # All of the body had arrived after all: aiohttp's readers take it as usual.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            stream.unread_data(bytes(received))
        return None
    transport.pause_reading()
    protocol.take_body()
    return TakenBody(
        connection=protocol,
        stream=stream,
        received=bytes(received),
        remaining=request.content_length - stream.total_bytes,
        fd=sock.fileno(),
    )


async def announce_close(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """An on_response_prepare hook: a response after which the connection closes (its
    request's body was taken, or close_after_response() was called) says so in a
    `Connection: close` header, so that a client does not send its next request on a
    connection about to close (Node's keep-alive agent would, and see a hang-up)."""
    # Undocumented: on_response_prepare runs after the response's headers are made and
    # before they are written, so the header is set here, not by force_close() alone.
    protocol = request.protocol
    if isinstance(protocol, _Connection) and protocol.close_after_response:
        response.force_close()
        response.headers["Connection"] = "close"


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
    slice_bytes (the first FIRST_SLICE_BYTES), each within its stall_seconds;
    TimeoutError otherwise."""
    # Undocumented: aiohttp.payload.PAYLOAD_REGISTRY, through which ClientRequest turns
    # `data` into a Payload; that aiobotocore hands botocore's body to aiohttp as
    # `data` unchanged when it is not an io.IOBase; and the Payload base class (below).

    class SlicedBodyPayload(_SlicedPayload):
        SLICE_BYTES = slice_bytes

    aiohttp.payload.PAYLOAD_REGISTRY.register(SlicedBodyPayload, body_type)


# The first slice of a sliced body (see _SlicedPayload.write).
FIRST_SLICE_BYTES = 64 * 1024


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
        # aiohttp sends the request's headers with the first write, joined with it into
        # a new bytes object: a small first slice keeps that copy small.
        start, size = 0, min(FIRST_SLICE_BYTES, self.SLICE_BYTES)
        while start < len(view):
            # A peer that stops reading would block this write for good: aiohttp starts
            # read_timeout only once the whole body is sent.
            async with asyncio.timeout(self._value.stall_seconds):
                await writer.write(view[start : start + size])
            start, size = start + size, self.SLICE_BYTES


# --- aiobotocore and botocore: S3 calls and responses -----------------------------------


def without_expect_100_continue(client: AioBaseClient) -> None:
    """Stop the client sending `Expect: 100-continue` with request bodies (botocore does
    for every PUT and POST with a file-like body, and aiohttp waits for the interim
    answer with no timeout at all)."""
    # Undocumented: botocore.handlers.add_expect_header, the handler botocore registers
    # on before-call.s3 to add the header. Unregistering a handler that is not there
    # does nothing, silently: the contract test checks the header really goes.
    client.meta.events.unregister("before-call.s3", botocore.handlers.add_expect_header)


@dataclasses.dataclass(frozen=True)
class S3Answer:
    """An S3 response read to its end: status, headers (lower-case names), body."""

    status: int
    headers: dict[str, str]
    body: bytes


async def send_signed(client: AioBaseClient, operation: str, url: str, body: Any) -> S3Answer:
    """PUT body to url (a full S3 request address, its query string included), signed
    as the client signs its own calls and sent over its own connections: the same
    credentials (refreshed as they expire), region, signature and payload-signing
    setting; the same pool, timeouts, proxies and TLS settings; botocore's exceptions
    (EndpointConnectionError, ReadTimeoutError, ...) when no answer comes. None of
    botocore's per-call steps (parameter validation, serialising, endpoint rules,
    event hooks, parsing, retries) run: the caller does what it needs of those."""
    # Private: the client's _request_signer (RequestSigner.sign) and its _endpoint's
    # http_session (aiobotocore's AIOHTTPSession.send, which takes a prepared request
    # and reads the body of the answer unless stream_output). Undocumented: that the
    # signer reads the payload-signing setting from request.context["client_config"],
    # as botocore's own calls fill it; and AWSRequest.prepare() adding Content-Length.
    request = AWSRequest(method="PUT", url=url, data=body)
    request.context["client_config"] = client.meta.config
    internals: Any = client
    await internals._request_signer.sign(operation, request)  # noqa: SLF001
    response = await internals._endpoint.http_session.send(request.prepare())  # noqa: SLF001
    return S3Answer(response.status_code, dict(response.headers), await response.content)


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
