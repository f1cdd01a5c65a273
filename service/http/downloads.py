"""GET and HEAD /case-instance/{id}/variables/{name}/data: a binary value's content,
streamed from S3, with an ETag and a Repr-Digest (both the content's SHA-256),
If-None-Match, and single byte ranges with If-Range, beyond what Camunda offers."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import TypeGuard

import structlog
from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

from service.camunda import mime
from service.camunda.values import MAX_FILE_INFO_LENGTH, file_info_problem
from service.errors import InvalidInput, RangeNotSatisfiable
from service.http import keys, paths
from service.http.digests import REPR_DIGEST, repr_digest, wants_repr_digest
from service.http.logs import RELAYED_BYTES_KEY
from service.http.metrics import METRICS
from service.http.variables import stored_variable
from service.storage import relay
from service.storage.blobstore import BlobReader
from service.storage.repository import StoredVariable

log = structlog.get_logger("casevars.downloads")

BINARY_TYPES = frozenset({"Bytes", "File"})
# A smaller download goes through Python: it costs little there, and its S3 connection
# goes back to the pool (a relayed one is closed).
RELAY_MIN_BYTES = 1024 * 1024


async def get_variable_data(request: web.Request) -> web.StreamResponse:
    case_id = paths.case_id(request)
    name = paths.variable_name(request)
    variable = await stored_variable(request, case_id, name)
    return await send_binary(request, variable, case_id)


async def send_binary(
    request: web.Request, variable: StoredVariable, id_in_message: str
) -> web.StreamResponse:
    """The response of every `/data` route: a binary variable's content (refused for
    other types with Camunda's message, which names id_in_message)."""
    if variable.type not in BINARY_TYPES:
        raise InvalidInput(f"Value of variable with id {id_in_message} is not a binary value.")
    response = BlobResponse(variable, with_digest=wants_repr_digest(request.headers))
    # Prepared here, not by aiohttp after the handler: a refused range or an S3 outage
    # is raised before anything is sent, and the error middleware answers it.
    await response.prepare(request)
    return response


class BlobResponse(web.StreamResponse):
    """A binary variable's content as a response, the whole decision in one place:
    headers and ETag, 304 for a matching If-None-Match, 206 for a current range, 416
    for one beyond the value, and the body relayed in the kernel or copied through
    Python. prepare() raises RangeNotSatisfiable or Unavailable before anything is sent;
    after the status line, a failure can only cut the connection."""

    def __init__(self, variable: StoredVariable, *, with_digest: bool = True) -> None:
        super().__init__(status=200, headers=binary_headers(variable, with_digest=with_digest))
        self._variable = variable

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if self.prepared:
            return await super().prepare(request)
        assert isinstance(request, web.Request)
        blob = self._variable.blob
        if blob is None:  # a null Bytes or File value: no content at all
            self.content_length = 0
            return await super().prepare(request)
        etag = self.headers["ETag"]
        if_none_match = request.headers.get("If-None-Match")
        if if_none_match is not None and etag_matches(if_none_match, etag):
            self.set_status(304)
            # Repr-Digest stays with the ETag: the same SHA-256, which a cache may store
            # with the response it revalidates.
            for header in list(self.headers):
                if header not in {"ETag", REPR_DIGEST}:
                    del self.headers[header]
            return await super().prepare(request)
        first, last = 0, blob.size - 1
        wanted = self._range_if_current(request, etag, blob.size)
        if wanted is not None:
            first, last = wanted
            self.set_status(206)
            self.headers["Content-Range"] = f"bytes {first}-{last}/{blob.size}"
        self.content_length = last - first + 1
        if request.method == "HEAD" or blob.size == 0:
            return await super().prepare(request)
        await self._send(request, blob.key, first, last)
        return None

    @staticmethod
    def _range_if_current(request: web.Request, etag: str, size: int) -> tuple[int, int] | None:
        if_range = request.headers.get("If-Range")
        if if_range is not None and if_range.strip() != etag:
            return None  # the client's copy is stale: send the whole current value
        return byte_range(request.headers.get("Range"), size)

    async def _send(self, request: web.Request, key: str, first: int, last: int) -> None:
        downloaded = request.app[METRICS].download_bytes
        # Opening the object before the status line lets an S3 outage still be a 503.
        async with request.app[keys.BLOBS].open_read(key, first=first, last=last) as reader:
            try:
                await super().prepare(request)
                if not await self._relayed(request, reader, downloaded.inc):
                    async for chunk in reader:
                        await self.write(chunk)
                        downloaded.inc(len(chunk))
            except ConnectionError:
                log.info("download.client_gone", key=key)  # nothing to answer, nothing lost
                return
            except Exception:
                # The status line is gone; all that is left is to cut the connection so
                # the client sees a short body rather than a complete-looking one.
                log.exception("download.cut", key=key)
                if request.transport is not None:
                    request.transport.abort()
                return
        await self.write_eof()

    async def _relayed(
        self, request: web.Request, reader: BlobReader, sent: Callable[[int], None]
    ) -> bool:
        """Send the value from S3's socket to the client's in the kernel (storage/relay.py)
        when both are plain TCP; False, with nothing sent, when it must go through Python."""
        client = request.transport
        if (
            not request.app[keys.SETTINGS].splice_downloads
            or reader.size < RELAY_MIN_BYTES
            or not isinstance(client, asyncio.WriteTransport)
            or relay.plain_tcp_fd(client) is None
        ):
            return False
        source = reader.take_socket()
        if source is None:
            return False
        if source.received:
            await self.write(source.received)
            sent(len(source.received))
        request[RELAYED_BYTES_KEY] = 0

        def relayed(count: int) -> None:
            request[RELAYED_BYTES_KEY] += count
            sent(count)

        await relay.relay(
            source.fd, client, source.remaining, source_timeout=source.timeout, sent=relayed
        )
        return True


def binary_headers(variable: StoredVariable, *, with_digest: bool = True) -> dict[str, str]:
    """Camunda's headers for the value, and the ETag and (unless with_digest is False)
    the Repr-Digest of its whole content, on a range too. A stored mimeType, encoding
    or filename goes out as it is only when the rules a write checks today
    (values.file_info_problem) allow it; rows written before those checks may hold
    anything, and a header aiohttp refuses would cut the response (or answer 500)."""
    headers = {"Accept-Ranges": "bytes"}
    if variable.blob is not None:
        headers["ETag"] = f'"{variable.blob.sha256.hex()}"'
        if with_digest:
            headers[REPR_DIGEST] = repr_digest(variable.blob.sha256)
    if variable.type == "Bytes":
        headers["Content-Type"] = "application/octet-stream"
        return headers
    info = variable.value_info
    mime_type = info.get("mimeType")
    content_type = "application/octet-stream"
    if _sendable(mime_type, "mimeType"):
        content_type = mime_type
    encoding = info.get("encoding")
    if _sendable(encoding, "encoding"):
        content_type += f"; charset={encoding}"
    headers["Content-Type"] = content_type
    filename = info.get("filename")
    headers["Content-Disposition"] = content_disposition(
        filename if isinstance(filename, str) else None
    )
    return headers


def _sendable(text: object, key: str) -> TypeGuard[str]:
    return isinstance(text, str) and text != "" and file_info_problem(key, text) is None


# What the quoted file name shows as `_`: control characters (C0, DEL, C1), and what
# would end or escape the quoted string (user agents differ on backslash escapes).
_UNQUOTABLE = re.compile(r'[\x00-\x1f\x7f-\x9f"\\]')
# A cut name keeps its extension if it has one this short.
_MAX_EXTENSION = 16


def content_disposition(filename: str | None) -> str:
    """Camunda's form: the name in quotes, then as RFC 8187 UTF-8 percent-encoding the
    way Java's URLEncoder does it, with %20 for a space (user agents prefer that one).
    In the quotes, `"`, a backslash and control characters are `_`. A name stored
    before names were bounded is cut to MAX_FILE_INFO_LENGTH, its extension kept."""
    name = "null" if filename is None else _cut(filename)
    quoted = _UNQUOTABLE.sub("_", name)
    return f"attachment; filename=\"{quoted}\"; filename*=UTF-8''{mime.url_encode(name)}"


def _cut(filename: str) -> str:
    if len(filename) <= MAX_FILE_INFO_LENGTH:
        return filename
    stem, dot, extension = filename.rpartition(".")
    if dot and stem and len(extension) <= _MAX_EXTENSION:
        return stem[: MAX_FILE_INFO_LENGTH - len(extension) - 1] + "." + extension
    return filename[:MAX_FILE_INFO_LENGTH]


def etag_matches(header: str, etag: str) -> bool:
    """If-None-Match comparison (weak, as RFC 9110 says for it)."""
    if header.strip() == "*":
        return True
    candidates = (part.strip().removeprefix("W/") for part in header.split(","))
    return etag in candidates


# A number with more digits than this is beyond any value's size (and int() refuses
# those of more than 4,300 digits).
_MAX_RANGE_DIGITS = 20
# `bytes=first-last`, `bytes=first-` or `bytes=-suffix`; the unit in any case, ASCII
# digits only (\d would take other scripts' digits too).
_RANGE = re.compile(r"[ \t]*bytes[ \t]*=[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*", re.IGNORECASE)


def _range_number(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    return 10**_MAX_RANGE_DIGITS if len(digits) > _MAX_RANGE_DIGITS else int(digits)


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) of a single `bytes=` range; None to send the whole value.
    RangeNotSatisfiable when no byte of it exists."""
    if header is None:
        return None
    match = _RANGE.fullmatch(header)
    if match is None or match.group(1) == match.group(2) == "":
        return None  # several ranges, another unit or nonsense: the whole value
    first_text, last_text = match.groups()
    if first_text == "":
        length = _range_number(last_text)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable("The range is not satisfiable", size=size)
        return max(0, size - length), size - 1
    first = _range_number(first_text)
    last = size - 1 if last_text == "" else min(_range_number(last_text), size - 1)
    if first >= size or (last_text != "" and _range_number(last_text) < first):
        raise RangeNotSatisfiable("The range is not satisfiable", size=size)
    return first, last
