"""The middleware that answers every error in Camunda's format:
{"type": ..., "message": ..., "code": ...}, unknown routes and wrong methods included."""

from __future__ import annotations

import uuid
from http import HTTPStatus

import orjson
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from service import errors
from service.http.logs import REQUEST_ID_KEY
from service.private_api import (
    PARSER_ERRORS,
    HeadersTimeout,
    close_after_response,
    parser_problem,
)

log = structlog.get_logger("casevars.http")


STATUS: dict[type[errors.CamundaError], int] = {
    errors.InvalidInput: 400,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.TooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.Gone: 410,
    errors.PreconditionFailed: 412,
    errors.RangeNotSatisfiable: 416,
    errors.Locked: 423,
    errors.ChecksumMismatch: 460,  # tus's checksum extension
    errors.Unavailable: 503,
}

# What JAX-RS (and so Camunda) calls the errors aiohttp raises before a handler runs.
_FRAMEWORK_TYPES = {
    404: "NotFoundException",
    405: "NotAllowedException",
    413: "RequestEntityTooLargeException",
    415: "NotSupportedException",
}

MALFORMED_BODY = "The request body is malformed (its chunked transfer or content encoding)"

# A request id from a client is echoed only if it is this short and plain.
_MAX_REQUEST_ID = 128


def error_body(type_name: str, message: str, code: int | None = None) -> bytes:
    try:
        return orjson.dumps({"type": type_name, "message": message, "code": code})
    except TypeError:
        # A lone surrogate: a message quoting what a client sent as undecodable bytes
        # (a multipart header, say). JSON cannot carry it; "?" stands in.
        shown = message.encode("utf-8", "replace").decode()
        return orjson.dumps({"type": type_name, "message": shown, "code": code})


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


def _request_id(request: web.BaseRequest) -> str:
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
    except (errors.UploadAborted, web.RequestPayloadError) as error:
        return _ending(request, error)
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


def _ending(
    request: web.Request, error: errors.UploadAborted | web.RequestPayloadError
) -> web.Response:
    """The client went away or stalled, or aiohttp could not decode its body (a
    malformed chunk or content encoding): nothing more can be read, and whatever the
    client gets (if anything) ends the connection."""
    if isinstance(error, web.RequestPayloadError):
        response = error_response(400, "RestException", MALFORMED_BODY)
    else:
        log.info("request.aborted", reason=str(error))
        response = error_response(408, "RestException", f"Upload aborted: {error}")
        # Gone or stalled: the rest of its body will not come, nothing to wait for.
        close_after_response(request)
    response.force_close()
    return response


def answer_before_middlewares(request: web.BaseRequest, status: int, message: str) -> web.Response:
    """An error answered where no middleware runs (an expect handler, the HTTP layer):
    Camunda's body, the request id (the access line shows it), and the connection
    ends, as the request's body (if any) is not read."""
    request_id = _bound_request_id(request)
    response = error_response(
        status, "RestException", message, headers={"X-Request-Id": request_id}
    )
    response.force_close()
    return response


def refusal_before_middlewares(
    request: web.BaseRequest, error: errors.CamundaError
) -> web.Response:
    """A domain error answered from an expect handler, where no middleware runs: its
    status, body and headers, the request id, and the connection ends, as the body the
    client holds back is never read."""
    response = camunda_error_response(error)
    response.headers["X-Request-Id"] = _bound_request_id(request)
    response.force_close()
    return response


def _bound_request_id(request: web.BaseRequest) -> str:
    if REQUEST_ID_KEY not in request:
        request[REQUEST_ID_KEY] = _request_id(request)
    return request[REQUEST_ID_KEY]


def connection_refusal(
    request: web.BaseRequest, status: int, error: BaseException | None, *, header_timeout: float
) -> web.StreamResponse:
    """The answer to a request the HTTP layer refused before any handler ran, or to an
    error outside every handler (private_api.app_runner): Camunda's error body, never
    the request's bytes."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    if isinstance(error, HeadersTimeout):
        message = (
            "Request timeout: the request line and headers did not arrive within "
            f"{header_timeout:g}s"
        )
    elif isinstance(error, PARSER_ERRORS):
        message = f"HTTP {status} {phrase}: {parser_problem(error)}"
    elif status >= 500:
        log.error("request.failed", status=status, exc_info=error)
        message = f"Internal server error (request id {_bound_request_id(request)})"
    else:
        message = f"HTTP {status} {phrase}"
    response = answer_before_middlewares(request, status, message)
    log.info("request.refused", request_id=request[REQUEST_ID_KEY], status=status, reason=message)
    return response


def connection_failure(message: str, error: BaseException | None) -> None:
    """An error aiohttp met on a connection outside every handler (a body it could not
    decode while discarding it, say); its own message, never request bytes."""
    if error is None or isinstance(error, (*PARSER_ERRORS, web.RequestPayloadError)):
        name = None if error is None else type(error).__name__
        log.info("connection.failed", message=message, error=name)
    else:
        log.error("connection.failed", message=message, exc_info=error)
