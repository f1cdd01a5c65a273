"""JSON request bodies: media type, size limit and parsing, the way Camunda refuses them."""

from __future__ import annotations

import json
from typing import Any

import orjson
from aiohttp import web

from service.errors import InvalidInput, TooLarge, UnsupportedMediaType, UploadAborted

NOT_SUPPORTED = "NotSupportedException"


def is_json(request: web.Request) -> bool:
    content_type = request.content_type
    return content_type == "application/json" or content_type.endswith("+json")


def unsupported_media_type(request: web.Request) -> UnsupportedMediaType:
    return UnsupportedMediaType(
        f"HTTP 415 Unsupported Media Type: {request.content_type or 'no Content-Type'}",
        type_name=NOT_SUPPORTED,
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def parse_json(raw: bytes) -> Any:
    """Parse JSON; integers beyond 64 bits (which orjson refuses) are parsed exactly."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        # orjson refuses integers beyond 64 bits; the standard library keeps them
        # exact. NaN and Infinity are not JSON, so they stay refused.
        return json.loads(raw, parse_constant=_reject_constant)


async def read_json(request: web.Request, *, limit: int, required: bool = True) -> Any:
    """The body parsed as JSON; None for an empty body when not required.

    415 when the body is not JSON, 413 beyond limit bytes, and for malformed JSON
    Camunda's 400 InvalidRequestException with an empty message.
    """
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"The request body is larger than the limit of {limit} bytes")
    if not request.body_exists:
        if required:
            raise InvalidInput("")
        return None
    if not is_json(request):
        raise unsupported_media_type(request)
    buffer = bytearray()
    try:
        async for chunk in request.content.iter_chunked(64 * 1024):
            buffer += chunk
            if len(buffer) > limit:
                raise TooLarge(f"The request body is larger than the limit of {limit} bytes")
    except ConnectionResetError as error:
        raise UploadAborted("the client closed the connection") from error
    try:
        return parse_json(bytes(buffer))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidInput("") from None
