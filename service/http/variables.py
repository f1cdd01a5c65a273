"""Variable handlers. The binary upload (POST .../data) streams the `data` part into a
pending blob while the form is read, decides what the form means once it is complete,
and only then points the variable at the blob: three files tell the whole story, this
one, blobstore.py and repository.py."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import structlog
from aiohttp import web

from service.camunda import jsontext, mime
from service.camunda.values import (
    ParsedValue,
    ShapeProblem,
    ValueProblem,
    parse_value,
    render_value,
)
from service.errors import (
    REST,
    InvalidInput,
    NotFound,
    RangeNotSatisfiable,
    TooLarge,
    Unavailable,
    UnsupportedMediaType,
)
from service.http import keys, paths
from service.http.body import NOT_SUPPORTED, json_response, read_json
from service.http.logs import RELAYED_BYTES_KEY
from service.http.metrics import METRICS, counted, counts_uploads
from service.http.multipart import DataPart, Form, is_multipart_form, read_form
from service.storage import relay
from service.storage.blobstore import BlobReader, BlobStore, finish_even_if_cancelled
from service.storage.repository import (
    Blob,
    LostPendingBlob,
    NewValue,
    NoSuchCaseInstance,
    StoredVariable,
)

log = structlog.get_logger("casevars.variables")

BINARY_TYPES = frozenset({"Bytes", "File"})
ILLEGAL_ARGUMENT = "IllegalArgumentException"
NOT_FOUND_EXCEPTION = "NotFoundException"
MISSING_DATA = "Form part with name 'data' is missing"
NO_FILENAME = (
    "Cannot create file without filename! Please set a name into ValueInfo with key filename"
)
# A canonical Java type name: dotted identifiers, optional <type, ...> arguments
# (wildcards included), optional [] suffixes.
_JAVA_IDENTIFIER = r"[A-Za-z_$][A-Za-z0-9_$]*"
_JAVA_NAME = re.compile(rf"{_JAVA_IDENTIFIER}(?:\.{_JAVA_IDENTIFIER})*")


# --- messages of unknown case instances (spec section 6) ---------------------


def _missing_case_on_write(case_id: str) -> str:
    return f"There does not exist any case execution with id: '{case_id}': caseExecution is null"


def missing_case_on_read(case_id: str) -> str:
    return f"case execution {case_id} doesn't exist: caseExecution is null"


def variable_not_found(name: str) -> NotFound:
    return NotFound(f"case execution variable with name {name} does not exist")


# --- upload ----------------------------------------------------------------


def new_blob_key(prefix: str) -> str:
    """Keys are made here, never from a path, a variable name or a filename."""
    return f"{prefix}{uuid.uuid4().hex}"


@contextlib.asynccontextmanager
async def lost_blobs_deleted(request: web.Request) -> AsyncIterator[None]:
    """Around a write that makes new blobs live: if the collector took a blob's pending
    row first (its upload outlived CASEVARS_PENDING_TIMEOUT_SECONDS), the object may
    have been completed after the collector deleted it, with no row left to name it:
    delete it here, and answer 503."""
    try:
        yield
    except LostPendingBlob as lost:
        await finish_even_if_cancelled(request.app[keys.BLOBS].delete_many([lost.key]))
        raise Unavailable(
            "The upload outlived CASEVARS_PENDING_TIMEOUT_SECONDS and was collected; try again"
        ) from None


class _UploadSinks:
    """Where `data` parts go: a new pending blob each, or nowhere when the case
    instance is unknown (the form is still read and checked, as Camunda does)."""

    def __init__(self, request: web.Request, *, store: bool) -> None:
        app = request.app
        self._repository = app[keys.REPOSITORY]
        self._blobs = app[keys.BLOBS]
        self._settings = app[keys.SETTINGS]
        self._prefix = app[keys.ENDPOINTS].s3_prefix
        self._store = store
        self._uploaded = app[METRICS].upload_bytes
        self.pending: list[str] = []

    async def __call__(self, chunks: AsyncIterator[bytes]) -> Blob | None:
        limit = self._settings.max_upload_bytes
        if not self._store:
            size = 0
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"The value is larger than the limit of {limit} bytes")
            return None
        key = new_blob_key(self._prefix)
        await self._repository.add_pending_blob(key)
        self.pending.append(key)
        stored = await self._blobs.put_stream(key, counted(chunks, self._uploaded), max_bytes=limit)
        return Blob(key, stored.size, stored.sha256)


def _is_java_type_name(text: str) -> bool:
    """Checks the syntax of a canonical Java type name such as
    java.util.ArrayList<java.lang.Object> or java.util.Map<java.lang.String, ?>[]."""
    position = _parse_java_type(text.strip(), 0)
    return position == len(text.strip())


def _parse_java_type(text: str, position: int) -> int:
    """Index after the type starting at position, or -1 if there is none."""
    if text.startswith("?", position):
        position += 1
        bound = re.compile(r"\s+(?:extends|super)\s+").match(text, position)
        if bound is None:
            return position
        position = bound.end()
    match = _JAVA_NAME.match(text, position)
    if match is None:
        return -1
    position = match.end()
    if text.startswith("<", position):
        while True:
            position = _parse_java_type(text, _skip_spaces(text, position + 1))
            if position < 0:
                return -1
            position = _skip_spaces(text, position)
            if text.startswith(",", position):
                continue
            if not text.startswith(">", position):
                return -1
            position += 1
            break
    while text.startswith("[]", position):
        position += 2
    return position


def _skip_spaces(text: str, position: int) -> int:
    while position < len(text) and text[position] == " ":
        position += 1
    return position


async def _object_value(form: Form, blobs: BlobStore, max_json: int) -> NewValue | None:
    """Object mode (a `type` part was sent): the serialized object, or None for JSON null."""
    data = form.data
    if data is None:
        raise InvalidInput(MISSING_DATA)
    content_type = data.content_type
    if content_type is None or "application/json" not in content_type.lower():
        shown = "null" if content_type is None else content_type
        raise InvalidInput(f"Unrecognized content type for serialized java type: {shown}")
    assert form.type is not None
    type_name = form.type.text
    if type_name is None:
        raise InvalidInput("Could not deserialize JSON object: the type part is not text")
    if not _is_java_type_name(type_name):
        raise InvalidInput(f"Could not deserialize JSON object: Invalid type name '{type_name}'")
    raw = await _data_bytes(data, blobs, max_json)
    try:
        text = raw.decode("utf-8")
        parsed = jsontext.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise InvalidInput(f"Could not deserialize JSON object: {error}") from None
    if parsed is None:
        return None
    return NewValue(
        type="Object",
        value=text,
        value_info={"objectTypeName": type_name, "serializationDataFormat": "application/json"},
    )


async def _data_bytes(data: DataPart, blobs: BlobStore, limit: int) -> bytes:
    """The bytes of a `data` part that turned out to be a serialized object."""
    if data.in_memory is not None:
        return data.in_memory
    blob: Blob = data.stored
    if blob.size > limit:
        raise TooLarge(f"A serialized object is larger than the limit of {limit} bytes")
    return await blobs.read_all(blob.key)


def _binary_value(form: Form) -> NewValue | None:
    """Binary mode: Bytes or File from the `data` part; None for a transient File."""
    if form.value_type is not None and form.value_type.text is None:
        raise InvalidInput("Form part with name 'valueType' must have a text/plain value")
    data = form.data
    if data is None:
        raise InvalidInput(MISSING_DATA)
    requested = "Bytes" if form.value_type is None else form.value_type.text
    assert requested is not None
    media_type = None
    if requested in {"File", "file"}:
        media_type = mime.parse(data.content_type or "application/octet-stream")
        if media_type is None:
            raise InvalidInput("Invalid mime type given", type_name=REST)
    # Camunda lower-cases only the first letter of a type name (spec 3.2).
    resolved = {"bytes": "Bytes", "file": "File"}.get(requested[:1].lower() + requested[1:])
    if resolved is None:
        raise InvalidInput(f"Unsupported value type '{requested}'", type_name=REST)
    blob = data.stored
    if resolved == "Bytes":
        return NewValue(type="Bytes", blob=blob)
    assert media_type is not None
    if data.filename is None:
        raise InvalidInput(NO_FILENAME, type_name=ILLEGAL_ARGUMENT)
    if media_type.parameters.get("transient", "").lower() == "true":
        return None
    value_info = {"filename": data.filename, "mimeType": media_type.essence}
    if "encoding" in media_type.parameters:
        value_info["encoding"] = media_type.parameters["encoding"]
    return NewValue(type="File", value_info=value_info, blob=blob)


@counts_uploads
async def post_variable_data(request: web.Request) -> web.Response:
    """POST /case-instance/{id}/variables/{name}/data (spec 5.5)."""
    case_id = paths.case_id(request)
    name = paths.variable_name(request)
    if not is_multipart_form(request):
        raise UnsupportedMediaType(
            "HTTP 415 Unsupported Media Type: expected multipart/form-data",
            type_name=NOT_SUPPORTED,
        )
    app = request.app
    settings, repository = app[keys.SETTINGS], app[keys.REPOSITORY]
    may_store = settings.auto_create_case_instances or await repository.case_instance_exists(
        case_id
    )
    sinks = _UploadSinks(request, store=may_store)
    form = Form()
    kept: str | None = None
    try:
        await read_form(
            request,
            form,
            data_sink=sinks,
            max_in_memory=settings.max_json_bytes,
            read_timeout=settings.client_read_timeout_seconds,
        )
        object_mode = form.type is not None
        if object_mode:
            new = await _object_value(form, app[keys.BLOBS], settings.max_json_bytes)
        else:
            new = _binary_value(form)
        if not may_store:
            raise _upload_to_missing_case(case_id, name, object_mode=object_mode)
        if new is not None:
            await _commit(request, case_id, name, new, object_mode=object_mode)
            kept = None if new.blob is None else new.blob.key
    finally:
        # Every pending blob but the one now live becomes garbage: failed uploads,
        # replaced `data` parts, objects read back into Postgres, transient values.
        unused = [key for key in sinks.pending if key != kept]
        if unused:
            await finish_even_if_cancelled(repository.discard_blobs(unused))
    return web.Response(status=204)


def _upload_to_missing_case(case_id: str, name: str, *, object_mode: bool) -> NotFound:
    message = _missing_case_on_write(case_id)
    if object_mode:
        return NotFound(message, type_name=NOT_FOUND_EXCEPTION, code=0)
    return NotFound(f"Cannot put case execution variable {name}: {message}", type_name=REST, code=0)


async def _commit(
    request: web.Request, case_id: str, name: str, new: NewValue, *, object_mode: bool
) -> None:
    repository = request.app[keys.REPOSITORY]
    auto_create = request.app[keys.SETTINGS].auto_create_case_instances
    try:
        async with lost_blobs_deleted(request):
            await repository.write_variables(case_id, {name: new}, create_case_instance=auto_create)
    except NoSuchCaseInstance:
        # Deleted while the value was streaming.
        raise _upload_to_missing_case(case_id, name, object_mode=object_mode) from None


# --- download --------------------------------------------------------------


async def stored_variable(request: web.Request, case_id: str, name: str) -> StoredVariable:
    """The variable, or the 404 a GET of it answers."""
    try:
        variable = await request.app[keys.REPOSITORY].get_variable(case_id, name)
    except NoSuchCaseInstance:
        message = f"Cannot get case execution variable {name}: {missing_case_on_read(case_id)}"
        raise NotFound(message, type_name=REST, code=0) from None
    if variable is None:
        raise variable_not_found(name)
    return variable


def content_disposition(filename: str | None) -> str:
    """Camunda's form: the raw name, then RFC 5987 UTF-8 percent-encoding as Java's
    URLEncoder does it, with %20 for a space."""
    shown = "null" if filename is None else filename
    # Control characters would let a stored name inject headers.
    raw = re.sub(r"[\x00-\x1f\x7f]", "_", shown)
    return f"attachment; filename=\"{raw}\"; filename*=UTF-8''{mime.url_encode(shown)}"


def _binary_headers(variable: StoredVariable) -> dict[str, str]:
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


def _etag_matches(header: str, etag: str) -> bool:
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


async def get_variable_data(request: web.Request) -> web.StreamResponse:
    """GET (and HEAD) /case-instance/{id}/variables/{name}/data (spec 5.3), with ETag,
    If-None-Match and single byte ranges beyond Camunda."""
    case_id = paths.case_id(request)
    name = paths.variable_name(request)
    variable = await stored_variable(request, case_id, name)
    if variable.type not in BINARY_TYPES:
        raise InvalidInput(f"Value of variable with id {case_id} is not a binary value.")
    headers = _binary_headers(variable)
    blob = variable.blob
    if blob is None:
        return web.Response(status=200, headers=headers)
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None and _etag_matches(if_none_match, headers["ETag"]):
        return web.Response(status=304, headers={"ETag": headers["ETag"]})
    wanted = _range_if_current(request, headers["ETag"], blob.size)
    status, first, last = 200, 0, blob.size - 1
    if wanted is not None:
        status, (first, last) = 206, wanted
        headers["Content-Range"] = f"bytes {first}-{last}/{blob.size}"
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = last - first + 1
    if request.method == "HEAD" or blob.size == 0:
        await response.prepare(request)
        return response
    await _stream(request, response, blob.key, first, last)
    return response


def _range_if_current(request: web.Request, etag: str, size: int) -> tuple[int, int] | None:
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range.strip() != etag:
        return None  # the client's copy is stale: send the whole current value
    return byte_range(request.headers.get("Range"), size)


# A smaller download goes through Python: it costs little there, and its S3 connection
# goes back to the pool (a relayed one is closed).
RELAY_MIN_BYTES = 1024 * 1024


async def _stream(
    request: web.Request, response: web.StreamResponse, key: str, first: int, last: int
) -> None:
    downloaded = request.app[METRICS].download_bytes
    # Opening the object before prepare() lets an S3 outage still be a 503.
    async with request.app[keys.BLOBS].open_read(key, first=first, last=last) as reader:
        try:
            await response.prepare(request)
            if not await _relayed(request, response, reader, downloaded.inc):
                async for chunk in reader:
                    await response.write(chunk)
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
    await response.write_eof()


async def _relayed(
    request: web.Request,
    response: web.StreamResponse,
    reader: BlobReader,
    sent: Callable[[int], None],
) -> bool:
    """Send the value from S3's socket to the client's in the kernel (relay.py) when
    both are plain TCP; False, with nothing sent, when the value must go through Python."""
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
        await response.write(source.received)
        sent(len(source.received))
    request[RELAYED_BYTES_KEY] = 0

    def relayed(count: int) -> None:
        request[RELAYED_BYTES_KEY] += count
        sent(count)

    await relay.relay(
        source.fd, client, source.remaining, source_timeout=source.timeout, sent=relayed
    )
    return True


# --- JSON variable routes (spec 5.1, 5.2, 5.4, 5.6, 5.7) ---------------------------

# Bytes contents fetched from S3 at once while a list of variables is rendered.
INLINE_FETCHES_AT_ONCE = 8

Prefixes = tuple[str, str, str]  # conversion, engine and lookup message prefixes


def query_flag(request: web.Request, name: str) -> bool:
    """JAX-RS boolean parsing: `true` in any letter case is true, anything else false;
    absent means the default, true."""
    raw = request.query.get(name)
    return True if raw is None else raw.lower() == "true"


def data_url(case_id: str, name: str) -> str:
    return f"/case-instance/{mime.url_encode(case_id)}/variables/{mime.url_encode(name)}/data"


async def render_variable(
    request: web.Request, case_id: str, variable: StoredVariable, *, deserialize: bool
) -> dict[str, Any]:
    """The value object of GET responses; Bytes content inline up to the configured limit."""
    if variable.type == "Bytes" and variable.blob is not None:
        blob = variable.blob
        if blob.size <= request.app[keys.SETTINGS].inline_bytes_limit:
            content = await request.app[keys.BLOBS].read_all(blob.key)
            return render_value("Bytes", None, {}, deserialize=deserialize, content=content)
        url = data_url(case_id, variable.name)
        return render_value(
            "Bytes", None, {}, deserialize=deserialize, size=blob.size, data_url=url
        )
    return render_value(variable.type, variable.value, variable.value_info, deserialize=deserialize)


async def get_variables(request: web.Request) -> web.Response:
    """GET /case-instance/{id}/variables: name -> value object."""
    case_id = paths.case_id(request)
    deserialize = query_flag(request, "deserializeValues")
    try:
        variables = await request.app[keys.REPOSITORY].list_variables(case_id)
    except NoSuchCaseInstance:
        raise NotFound(
            missing_case_on_read(case_id), type_name=NOT_FOUND_EXCEPTION, code=0
        ) from None
    fetches = asyncio.Semaphore(INLINE_FETCHES_AT_ONCE)

    async def render(variable: StoredVariable) -> dict[str, Any]:
        async with fetches:
            return await render_variable(request, case_id, variable, deserialize=deserialize)

    rendered = await asyncio.gather(*(render(variable) for variable in variables))
    return json_response({v.name: shown for v, shown in zip(variables, rendered, strict=True)})


async def get_variable(request: web.Request) -> web.Response:
    """GET /case-instance/{id}/variables/{name}."""
    case_id = paths.case_id(request)
    name = paths.variable_name(request)
    variable = await stored_variable(request, case_id, name)
    deserialize = query_flag(request, "deserializeValue")
    return json_response(await render_variable(request, case_id, variable, deserialize=deserialize))


def value_problem(problem: ValueProblem, prefixes: Prefixes) -> InvalidInput:
    """A refused value, worded as the route Camunda answers it from words it."""
    conversion_prefix, engine_prefix, _ = prefixes
    if problem.kind == "illegal_argument":
        return InvalidInput(problem.message, type_name=ILLEGAL_ARGUMENT)
    if problem.kind == "engine":
        return InvalidInput(engine_prefix + problem.message, type_name=REST)
    return InvalidInput(conversion_prefix + problem.message)


def parse_values(raw: Any, prefixes: Prefixes) -> dict[str, ParsedValue]:
    """Every value of a {name: value object} map, all converted before any is used;
    refusals in Camunda's order: shape, then conversion, then engine problems."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidInput("")
    parsed: dict[str, ParsedValue] = {}
    problems: list[ValueProblem] = []
    for name, obj in raw.items():
        paths.checked_name(name)
        try:
            parsed[name] = parse_value(name, obj)
        except ShapeProblem:
            raise InvalidInput("") from None
        except ValueProblem as problem:
            problems.append(problem)
    first = next((p for p in problems if p.kind != "engine"), None) or next(iter(problems), None)
    if first is not None:
        raise value_problem(first, prefixes)
    return parsed


class PendingBlobs:
    """Contents of Bytes and File values written to new pending blobs; whatever is not
    made live by the end of the request becomes garbage."""

    def __init__(self, request: web.Request) -> None:
        self._repository = request.app[keys.REPOSITORY]
        self._blobs = request.app[keys.BLOBS]
        self._prefix = request.app[keys.ENDPOINTS].s3_prefix
        self.keys: list[str] = []

    async def stored(self, values: dict[str, ParsedValue]) -> dict[str, NewValue]:
        """The values to store (transient ones left out), contents uploaded."""
        stored = {}
        for name, value in values.items():
            if value.transient:
                continue
            blob = None
            if value.content is not None:
                key = new_blob_key(self._prefix)
                await self._repository.add_pending_blob(key)
                self.keys.append(key)
                written = await self._blobs.put_bytes(key, value.content)
                blob = Blob(key, written.size, written.sha256)
            stored[name] = NewValue(value.type, value.value, value.value_info, blob)
        return stored

    async def discard_unused(self, used: dict[str, NewValue]) -> None:
        live = {new.blob.key for new in used.values() if new.blob is not None}
        unused = [key for key in self.keys if key not in live]
        if unused:
            await finish_even_if_cancelled(self._repository.discard_blobs(unused))


async def write_values(
    request: web.Request,
    case_id: str,
    values: dict[str, ParsedValue],
    deletions: list[str],
    lookup_message: str,
) -> None:
    """Store values and apply deletions in one transaction; 404 with lookup_message
    when the case instance does not exist (and may not be created)."""
    auto_create = request.app[keys.SETTINGS].auto_create_case_instances
    repository = request.app[keys.REPOSITORY]
    pending = PendingBlobs(request)
    stored: dict[str, NewValue] = {}
    writes = {name: value for name, value in values.items() if not value.transient}
    try:
        # Look first only when there are contents to upload (no blob for a missing
        # case instance) or nothing to write; otherwise the write itself finds out.
        look_first = any(v.content is not None for v in writes.values()) or not (
            writes or deletions
        )
        if look_first and not auto_create and not await repository.case_instance_exists(case_id):
            raise NotFound(lookup_message, type_name=REST, code=0)
        stored = await pending.stored(writes)
        if stored or deletions:
            async with lost_blobs_deleted(request):
                await repository.write_variables(
                    case_id, stored, deletions, create_case_instance=auto_create and bool(stored)
                )
    except NoSuchCaseInstance:
        stored = {}
        raise NotFound(lookup_message, type_name=REST, code=0) from None
    finally:
        await pending.discard_unused(stored)


def _put_prefixes(name: str) -> Prefixes:
    prefix = f"Cannot put case execution variable {name}: "
    return prefix, prefix, prefix


async def put_variable(request: web.Request) -> web.Response:
    """PUT /case-instance/{id}/variables/{name}: create or replace one variable."""
    case_id = paths.case_id(request)
    name = paths.variable_name(request)
    body = await read_json(request, limit=request.app[keys.SETTINGS].max_json_bytes)
    values = parse_values({name: body}, _put_prefixes(name))
    lookup = f"Cannot put case execution variable {name}: {_missing_case_on_write(case_id)}"
    await write_values(request, case_id, values, [], lookup)
    return web.Response(status=204)


async def delete_variable(request: web.Request) -> web.Response:
    """DELETE /case-instance/{id}/variables/{name}: fine if the variable does not exist."""
    case_id = paths.case_id(request)
    name = paths.variable_name(request)
    try:
        await request.app[keys.REPOSITORY].delete_variable(case_id, name)
    except NoSuchCaseInstance:
        message = f"Cannot delete case execution variable {name}: {_missing_case_on_write(case_id)}"
        raise NotFound(message, type_name=REST, code=0) from None
    return web.Response(status=204)


def _deletions(raw: Any) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(name, str) for name in raw):
        raise InvalidInput("")
    return [paths.checked_name(name) for name in raw]


async def modify_variables(request: web.Request) -> web.Response:
    """POST /case-instance/{id}/variables: modifications and deletions, all or nothing."""
    case_id = paths.case_id(request)
    body = await read_json(request, limit=request.app[keys.SETTINGS].max_json_bytes)
    if not isinstance(body, dict):
        raise InvalidInput("")
    engine_prefix = f"Cannot modify variables for case execution {case_id}: "
    prefixes = ("Cannot modify variables for case execution: ", engine_prefix, engine_prefix)
    values = parse_values(body.get("modifications"), prefixes)
    deletions = _deletions(body.get("deletions"))
    both = next((name for name in values if name in set(deletions)), None)
    if both is not None:
        raise InvalidInput(
            f"{engine_prefix}Cannot set and remove a variable with the same variable name: "
            f"'{both}' within a command.",
            type_name=REST,
            code=0,
        )
    await write_values(
        request, case_id, values, deletions, engine_prefix + _missing_case_on_write(case_id)
    )
    return web.Response(status=204)
