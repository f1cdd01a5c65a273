"""Resumable uploads over tus 1.0.0: creation (with an upload and with a deferred
length), HEAD, PATCH (checksum), termination and expiration, at
/case-instance/{id}/variables/{name}/uploads[/{uploadId}] under every REST root.

The protocol is handled here; the upload's state, the parts and the commit into the
variable are storage/resumable.py's. Errors have Camunda's body and tus's statuses;
every response of these routes carries Tus-Resumable (tus_headers)."""

from __future__ import annotations

import contextlib
import email.utils
import re
from collections.abc import AsyncIterator, Iterator
from datetime import datetime

from aiohttp import web

from service.camunda.messages import missing_case_on_write
from service.errors import (
    REST,
    ChecksumMismatch,
    Conflict,
    Gone,
    InvalidInput,
    Locked,
    NotFound,
    PreconditionFailed,
    TooLarge,
    Unavailable,
    UnsupportedMediaType,
    UploadAborted,
)
from service.http import digests, keys, paths
from service.http.body import NOT_SUPPORTED
from service.http.metrics import METRICS
from service.http.pace import pace_of
from service.http.socket_body import SocketBody
from service.http.tus_metadata import parse_metadata, upload_value
from service.private_api import take_request_body
from service.storage import resumable
from service.storage.blobstore import ValueSource, counted
from service.storage.resumable import BodyCheck, Patch, Progress
from service.storage.upload_rows import (
    NewUpload,
    NoSuchCase,
    UploadExpired,
    UploadGone,
    UploadLocked,
    UploadNotFound,
    UploadRow,
)

TUS_VERSION = "1.0.0"
# Offsets and lengths fit Postgres's bigint (S3 objects stop at 5 TiB, 13 digits).
MAX_NUMBER_DIGITS = 18
UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
TUS_EXTENSIONS = (
    "creation,creation-with-upload,creation-defer-length,termination,checksum,expiration"
)
OFFSET_STREAM = "application/offset+octet-stream"
UPLOAD_CHECKSUM = "Upload-Checksum"
METHOD_OVERRIDE = "X-HTTP-Method-Override"
# Names of the routes (routes.py), for the headers every answer of them carries.
CREATION_ROUTE = "variable-uploads"
UPLOAD_ROUTE = "variable-upload"


# --- headers and errors -------------------------------------------------------------


def _is_tus_route(request: web.Request) -> bool:
    route = request.match_info.route
    name = getattr(route, "name", None) or ""
    return name.rsplit(":", 1)[-1] in {CREATION_ROUTE, UPLOAD_ROUTE}


async def tus_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: Tus-Resumable on every answer of the tus routes, errors and
    401s included; Tus-Version on a 412 (a client of another version learns ours)."""
    if _is_tus_route(request):
        response.headers["Tus-Resumable"] = TUS_VERSION
        if response.status == 412:
            response.headers["Tus-Version"] = TUS_VERSION


def _http_date(moment: datetime) -> str:
    return email.utils.format_datetime(moment, usegmt=True)


@contextlib.contextmanager
def _translated(case_id: str, name: str) -> Iterator[None]:
    """Storage's outcomes as the errors clients see."""
    try:
        yield
    except UploadNotFound:
        raise NotFound("No such upload of this variable", type_name=REST) from None
    except UploadExpired:
        raise Gone("The upload expired (CASEVARS_UPLOAD_EXPIRY_SECONDS)", type_name=REST) from None
    except UploadLocked:
        raise Locked(
            "Another request is writing to this upload; try again", type_name=REST
        ) from None
    except UploadGone:
        raise NotFound(
            "The upload was removed while this request ran (its case instance was deleted)",
            type_name=REST,
        ) from None
    except (NoSuchCase, resumable.CaseGone):
        message = f"Cannot put case execution variable {name}: {missing_case_on_write(case_id)}"
        raise NotFound(message, type_name=REST, code=0) from None
    except resumable.OffsetMismatch as mismatch:
        raise Conflict(f"Upload-Offset must be {mismatch.offset}, the upload's offset") from None
    except resumable.PastLength as past:
        raise TooLarge(f"The value is larger than the limit of {past.limit} bytes") from None
    except resumable.LengthConflict as conflict:
        raise InvalidInput(f"Upload-Length: {conflict}") from None
    except resumable.BodyMismatch as mismatch:
        if mismatch.field == UPLOAD_CHECKSUM:
            raise ChecksumMismatch(
                "Upload-Checksum does not match the bytes received; nothing of them was kept"
            ) from None
        raise digests.DigestMismatch(mismatch.field) from None
    except resumable.ValueMismatch as mismatch:
        raise digests.DigestMismatch(mismatch.field) from None
    except resumable.TooManyUploads as too_many:
        raise Unavailable(
            f"{too_many.limit} resumable uploads are open (CASEVARS_MAX_OPEN_UPLOADS); finish "
            "or terminate one, or try again later"
        ) from None


def _check_version(request: web.Request) -> None:
    given = request.headers.get("Tus-Resumable")
    if given != TUS_VERSION:
        shown = "no Tus-Resumable" if given is None else f"Tus-Resumable {given}"
        raise PreconditionFailed(
            f"This server speaks tus {TUS_VERSION}; the request has {shown}", type_name=REST
        )


def _number(request: web.Request, header: str) -> int | None:
    """A header holding a non-negative integer, or None when absent."""
    raw = request.headers.get(header)
    if raw is None:
        return None
    text = raw.strip()
    if not text.isdigit() or not text.isascii() or len(text) > MAX_NUMBER_DIGITS:
        raise InvalidInput(f"{header} must be a non-negative integer, not '{raw}'")
    return int(text)


def _upload_id(request: web.Request) -> str:
    """The upload id of the path: ids are made here (32 hex digits), so anything else
    names no upload."""
    upload_id = request.match_info["uploadId"]
    if not UPLOAD_ID.fullmatch(upload_id):
        raise UploadNotFound(upload_id)
    return upload_id


def _sends_bytes(request: web.Request) -> bool:
    return request.content_type == OFFSET_STREAM


def _upload_checksum(request: web.Request) -> BodyCheck | None:
    raw = request.headers.get(UPLOAD_CHECKSUM)
    if raw is None:
        return None
    algorithm, _, encoded = raw.strip().partition(" ")
    if algorithm.lower() != "sha256":
        raise InvalidInput(f"{UPLOAD_CHECKSUM}: the algorithm must be sha256, not '{algorithm}'")
    sha256 = digests.sha256_from_base64(encoded.strip())
    if sha256 is None:
        raise InvalidInput(f"{UPLOAD_CHECKSUM}: sha256 must be 32 bytes in base64")
    return BodyCheck(UPLOAD_CHECKSUM, sha256)


def _checks(request: web.Request) -> list[BodyCheck]:
    checks = []
    checksum = _upload_checksum(request)
    if checksum is not None:
        checks.append(checksum)
    content = digests.sha256_field(request.headers, digests.CONTENT_DIGEST)
    if content is not None:
        checks.append(BodyCheck(digests.CONTENT_DIGEST, content))
    return checks


async def _body(request: web.Request) -> AsyncIterator[bytes]:
    """The body as it arrives, at the request's pace; UploadAborted when the client goes
    away, stalls or sends less than its Content-Length (what came is kept)."""
    pace = pace_of(request)
    received = 0
    try:
        while chunk := await pace.read(request.content.readany()):
            received += len(chunk)
            yield chunk
    except (ConnectionError, web.RequestPayloadError) as error:
        raise UploadAborted(f"the body ended early ({type(error).__name__})") from error
    except TimeoutError as error:
        raise UploadAborted(f"the client sent nothing for {pace.read_timeout:.0f}s") from error
    if request.content_length is not None and received < request.content_length:
        raise UploadAborted("the client closed the connection before its Content-Length")


def _progress_headers(progress: Progress) -> dict[str, str]:
    return {
        "Upload-Offset": str(progress.offset),
        "Upload-Expires": _http_date(progress.expires_at),
    }


# --- handlers -------------------------------------------------------------------


async def options(request: web.Request) -> web.Response:
    """What this server offers (no Tus-Resumable needed)."""
    uploads = request.app[keys.UPLOADS]
    return web.Response(
        status=204,
        headers={
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": TUS_EXTENSIONS,
            "Tus-Max-Size": str(uploads.max_bytes),
            "Tus-Checksum-Algorithm": "sha256",
        },
    )


async def create(request: web.Request) -> web.Response:
    """POST .../uploads: a new upload (201, Location); with a body of
    application/offset+octet-stream, also its first bytes."""
    _check_version(request)
    case_id, name = paths.case_id(request), paths.variable_name(request)
    length = _number(request, "Upload-Length")
    deferred = request.headers.get("Upload-Defer-Length")
    if deferred is not None and (deferred.strip() != "1" or length is not None):
        raise InvalidInput("Upload-Defer-Length must be 1, and only without Upload-Length")
    if length is None and deferred is None:
        raise InvalidInput("Upload-Length or Upload-Defer-Length: 1 is required")
    if request.body_exists and not _sends_bytes(request):
        raise UnsupportedMediaType(
            f"HTTP 415 Unsupported Media Type: expected {OFFSET_STREAM}", type_name=NOT_SUPPORTED
        )
    metadata_header = request.headers.get("Upload-Metadata")
    value = upload_value(parse_metadata(metadata_header))
    expected = digests.sha256_field(request.headers, digests.REPR_DIGEST)
    checks = _checks(request)  # refused before anything is created when malformed
    app = request.app
    uploads = app[keys.UPLOADS]
    new = NewUpload(
        case_id, name, value.value_type, value.value_info, metadata_header, length, expected
    )
    with _translated(case_id, name):
        row = await uploads.create(
            new, create_case_instance=app[keys.SETTINGS].auto_create_case_instances
        )
    headers = {
        "Location": f"{request.rel_url.raw_path.rstrip('/')}/{row.id}",
        "Upload-Expires": _http_date(row.expires_at),
    }
    if request.body_exists or length == 0:
        progress = await _patch(request, row.id, 0, checks)
        headers.update(_progress_headers(progress))
    return web.Response(status=201, headers=headers)


async def head(request: web.Request) -> web.Response:
    """HEAD .../uploads/{uploadId}: the offset (and length, metadata, expiry)."""
    _check_version(request)
    case_id, name = paths.case_id(request), paths.variable_name(request)
    with _translated(case_id, name):
        upload_id = _upload_id(request)
        row = await request.app[keys.UPLOADS].head(upload_id, case_id, name)
        if row.expired:
            raise UploadExpired(upload_id)
    return web.Response(status=200, headers=_state_headers(row))


def _state_headers(row: UploadRow) -> dict[str, str]:
    headers = {
        "Upload-Offset": str(row.offset),
        "Cache-Control": "no-store",
        "Upload-Expires": _http_date(row.expires_at),
    }
    if row.length is None:
        headers["Upload-Defer-Length"] = "1"
    else:
        headers["Upload-Length"] = str(row.length)
    if row.metadata is not None:
        headers["Upload-Metadata"] = row.metadata
    return headers


async def patch(request: web.Request) -> web.Response:
    """PATCH .../uploads/{uploadId}: bytes at Upload-Offset (204 with the new offset)."""
    _check_version(request)
    if not _sends_bytes(request):
        raise UnsupportedMediaType(
            f"HTTP 415 Unsupported Media Type: expected {OFFSET_STREAM}", type_name=NOT_SUPPORTED
        )
    offset = _number(request, "Upload-Offset")
    if offset is None:
        raise InvalidInput("Upload-Offset is required")
    progress = await _patch(request, None, offset, _checks(request))
    return web.Response(status=204, headers=_progress_headers(progress))


async def _patch(
    request: web.Request, upload_id: str | None, offset: int, checks: list[BodyCheck]
) -> Progress:
    """The body into the upload (None: the one the path names)."""
    case_id, name = paths.case_id(request), paths.variable_name(request)
    metrics = request.app[METRICS]
    taken = take_request_body(request) if request.body_exists else None
    body: ValueSource = _body(request) if taken is None else SocketBody(taken, pace_of(request))
    patch = Patch(
        offset=offset,
        source=counted(body, metrics.upload_bytes.inc),
        size_hint=request.content_length if request.body_exists else 0,
        length=_number(request, "Upload-Length"),
        checks=checks,
        value_sha256=digests.sha256_field(request.headers, digests.REPR_DIGEST),
    )
    try:
        with _translated(case_id, name):
            return await request.app[keys.UPLOADS].patch(
                upload_id or _upload_id(request),
                case_id,
                name,
                patch,
                resumed=metrics.tus_bytes_resumed.inc,
            )
    except (ChecksumMismatch, digests.DigestMismatch):
        metrics.tus_checksum_mismatches.inc()
        raise


async def delete(request: web.Request) -> web.Response:
    """DELETE .../uploads/{uploadId}: termination (204). The upload and what it stored
    go; a committed upload's value stays the variable's."""
    _check_version(request)
    case_id, name = paths.case_id(request), paths.variable_name(request)
    with _translated(case_id, name):
        await request.app[keys.UPLOADS].terminate(_upload_id(request), case_id, name)
    return web.Response(status=204)


async def method_override(request: web.Request) -> web.Response:
    """POST .../uploads/{uploadId} with `X-HTTP-Method-Override: PATCH` (or `DELETE`):
    the method it names, for clients behind proxies that pass only GET and POST (tus
    core). Without it the method is not allowed here (405)."""
    method = request.headers.get(METHOD_OVERRIDE, "").strip().upper()
    if method == "PATCH":
        return await patch(request)
    if method == "DELETE":
        return await delete(request)
    raise web.HTTPMethodNotAllowed("POST", ["OPTIONS", "HEAD", "PATCH", "DELETE"])
