"""JSON request bodies: media type, size limit and parsing, the way Camunda refuses them."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from service.camunda import jsontext
from service.errors import InvalidInput, TooLarge, UnsupportedMediaType, UploadAborted
from service.http import request_memory
from service.http.pace import pace_of

JSON_CONTENT_TYPE = "application/json"

NOT_SUPPORTED = "NotSupportedException"

# A body nests at most this deep: a value of jsontext.MAX_DEPTH levels sits three levels
# down in a modification body ({"modifications": {name: {"value": ...}}}).
MAX_BODY_DEPTH = jsontext.MAX_DEPTH + 3
# Jackson, and so Camunda, skips a UTF-8 byte order mark before JSON.
_UTF8_BOM = b"\xef\xbb\xbf"
# A \ud800-\udfff escape: how JSON text spells a (possibly lone) surrogate.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def is_json(request: web.Request) -> bool:
    content_type = request.content_type
    return content_type == "application/json" or content_type.endswith("+json")


def unsupported_media_type(request: web.Request) -> UnsupportedMediaType:
    return UnsupportedMediaType(
        f"HTTP 415 Unsupported Media Type: {request.content_type or 'no Content-Type'}",
        type_name=NOT_SUPPORTED,
    )


async def read_json(request: web.Request, *, limit: int, required: bool = True) -> Any:
    """The body parsed as JSON; None for an empty body when not required.

    415 when the body is not JSON, 413 beyond limit bytes, and for malformed JSON
    Camunda's 400 InvalidRequestException with an empty message; a clear 400 when it
    nests deeper than MAX_BODY_DEPTH.
    """
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"The request body is larger than the limit of {limit} bytes")
    if not request.body_exists:
        if required:
            raise InvalidInput("")
        return None
    if not is_json(request):
        raise unsupported_media_type(request)
    # The body and what parsing makes of it are held in memory taken from the budget.
    await request_memory.cover(request, min(request.content_length or 0, limit))
    buffer = bytearray()
    pace = pace_of(request)
    try:
        while chunk := await pace.read(request.content.readany()):
            buffer += chunk
            if len(buffer) > limit:
                raise TooLarge(f"The request body is larger than the limit of {limit} bytes")
            await request_memory.cover(request, len(buffer))
    except ConnectionResetError as error:
        raise UploadAborted("the client closed the connection") from error
    except TimeoutError as error:
        raise UploadAborted(f"the client sent nothing for {pace.read_timeout:.0f}s") from error
    if buffer.startswith(_UTF8_BOM):
        del buffer[: len(_UTF8_BOM)]
    raw = buffer
    if jsontext.nests_deeper_than(raw, MAX_BODY_DEPTH):
        raise InvalidInput(
            f"The JSON body nests arrays and objects deeper than {MAX_BODY_DEPTH} levels"
        )
    await request_memory.cover(request, len(raw) + jsontext.parse_cost(raw))
    try:
        parsed = jsontext.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidInput("") from None
    if _SURROGATE_ESCAPE.search(raw) and not _encodable(parsed):
        # orjson refuses lone surrogates; the standard library's parser (jsontext's
        # fallback for long integers) reads them, and Postgres cannot hold them.
        raise InvalidInput("")
    return parsed


def _encodable(value: Any) -> bool:
    try:
        jsontext.dumps(value)
    except (ValueError, RecursionError):
        return False
    return True


def json_response(body: Any, *, status: int = 200) -> web.Response:
    """A JSON response, exact for integers of any size."""
    return web.Response(body=jsontext.dumps(body), status=status, content_type=JSON_CONTENT_TYPE)
