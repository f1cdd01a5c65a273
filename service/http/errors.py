"""The middleware that answers every error in Camunda's format:
{"type": ..., "message": ..., "code": ...}, unknown routes and wrong methods included."""

from __future__ import annotations

import uuid

import orjson
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from service import errors
from service.http.logs import REQUEST_ID_KEY

log = structlog.get_logger("casevars.http")


STATUS: dict[type[errors.CamundaError], int] = {
    errors.InvalidInput: 400,
    errors.Unauthenticated: 401,
    errors.NotFound: 404,
    errors.TooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.RangeNotSatisfiable: 416,
    errors.Unavailable: 503,
}

# What JAX-RS (and so Camunda) calls the errors aiohttp raises before a handler runs.
_FRAMEWORK_TYPES = {
    404: "NotFoundException",
    405: "NotAllowedException",
    413: "RequestEntityTooLargeException",
    415: "NotSupportedException",
}

# A request id from a client is echoed only if it is this short and plain.
_MAX_REQUEST_ID = 128


def error_body(type_name: str, message: str, code: int | None = None) -> bytes:
    return orjson.dumps({"type": type_name, "message": message, "code": code})


def error_response(
    status: int,
    type_name: str,
    message: str,
    code: int | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return web.Response(
        status=status,
        body=error_body(type_name, message, code),
        content_type="application/json",
        headers=headers,
    )


def camunda_error_response(error: errors.CamundaError) -> web.Response:
    """The response for a domain error: its status, body and headers."""
    headers = {}
    if isinstance(error, errors.Unauthenticated):
        headers["WWW-Authenticate"] = error.challenge
    if isinstance(error, errors.RangeNotSatisfiable):
        headers["Content-Range"] = f"bytes */{error.size}"
    return error_response(_status_of(error), error.type_name, error.message, error.code, headers)


def _status_of(error: errors.CamundaError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def _request_id(request: web.Request) -> str:
    given = request.headers.get("X-Request-Id", "")
    if 0 < len(given) <= _MAX_REQUEST_ID and given.isascii() and given.isprintable():
        return given
    return uuid.uuid4().hex


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = _request_id(request)
    request[REQUEST_ID_KEY] = request_id
    structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        response = await _answer(request, handler)
        if not response.prepared:
            response.headers["X-Request-Id"] = request_id
        return response
    finally:
        structlog.contextvars.unbind_contextvars("request_id")


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request[REQUEST_ID_KEY]
    try:
        return await handler(request)
    except errors.CamundaError as error:
        response = camunda_error_response(error)
        if not request.content.at_eof() and isinstance(
            error, errors.TooLarge | errors.Unauthenticated
        ):
            # The rest of a refused body is not read (aiohttp would otherwise read and
            # drop it for up to 10 s): the connection ends after this answer.
            response.force_close()
        return response
    except errors.UploadAborted as error:
        # The client went away or stalled; whatever it gets (if anything) ends the
        # connection.
        log.info("request.aborted", reason=str(error))
        response = error_response(408, "RestException", f"Upload aborted: {error}")
        response.force_close()
        return response
    except web.HTTPException as error:
        if error.status < 400:
            raise
        headers = {}
        if "Allow" in error.headers:
            headers["Allow"] = error.headers["Allow"]
        type_name = _FRAMEWORK_TYPES.get(error.status, "RestException")
        message = f"HTTP {error.status} {error.reason}"
        return error_response(error.status, type_name, message, None, headers)
    except errors.StorageError as error:
        log.error("request.storage_inconsistent", error=str(error), path=request.path)  # noqa: TRY400 - known, no traceback
        return error_response(
            500,
            "RestException",
            f"{error}: the stored content of this value is lost "
            f"(request id {request_id}; `casevars check` lists such blobs)",
        )
    except Exception:
        log.exception("request.failed", method=request.method, path=request.path)
        return error_response(
            500, "RestException", f"Internal server error (request id {request_id})"
        )
