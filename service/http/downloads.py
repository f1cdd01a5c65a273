"""GET and HEAD /case-instance/{id}/variables/{name}/data: a binary value's content,
streamed from S3, with an ETag (the content's SHA-256), If-None-Match, and single byte
ranges with If-Range, beyond what Camunda offers."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import structlog
from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

from service.camunda import mime
from service.errors import InvalidInput, RangeNotSatisfiable
from service.http import keys, paths
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
    if variable.type not in BINARY_TYPES:
        raise InvalidInput(f"Value of variable with id {case_id} is not a binary value.")
    response = BlobResponse(variable)
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

    def __init__(self, variable: StoredVariable) -> None:
        super().__init__(status=200, headers=binary_headers(variable))
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
            for header in list(self.headers):
                if header != "ETag":
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


def binary_headers(variable: StoredVariable) -> dict[str, str]:
    headers = {"Accept-Ranges": "bytes"}
    if variable.blob is not None:
        headers["ETag"] = f'"{variable.blob.sha256.hex()}"'
    if variable.type == "Bytes":
        headers["Content-Type"] = "application/octet-stream"
        return headers
    info = variable.value_info
    content_type = info.get("mimeType") or "application/octet-stream"
    if info.get("encoding"):
        content_type += f"; charset={info['encoding']}"
    headers["Content-Type"] = content_type
    headers["Content-Disposition"] = content_disposition(info.get("filename"))
    return headers


def content_disposition(filename: str | None) -> str:
    """Camunda's form: the raw name, then RFC 5987 UTF-8 percent-encoding as Java's
    URLEncoder does it, with %20 for a space."""
    shown = "null" if filename is None else filename
    # Control characters would let a stored name inject headers.
    raw = re.sub(r"[\x00-\x1f\x7f]", "_", shown)
    return f"attachment; filename=\"{raw}\"; filename*=UTF-8''{mime.url_encode(shown)}"


def etag_matches(header: str, etag: str) -> bool:
    """If-None-Match comparison (weak, as RFC 9110 says for it)."""
    if header.strip() == "*":
        return True
    candidates = (part.strip().removeprefix("W/") for part in header.split(","))
    return etag in candidates


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) of a single `bytes=` range; None to send the whole value.
    RangeNotSatisfiable when no byte of it exists."""
    if header is None:
        return None
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if match is None or match.group(1) == match.group(2) == "":
        return None  # several ranges, another unit or nonsense: the whole value
    first_text, last_text = match.groups()
    if first_text == "":
        length = int(last_text)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable("The range is not satisfiable", size=size)
        return max(0, size - length), size - 1
    first = int(first_text)
    last = size - 1 if last_text == "" else min(int(last_text), size - 1)
    if first >= size or (last_text != "" and int(last_text) < first):
        raise RangeNotSatisfiable("The range is not satisfiable", size=size)
    return first, last
