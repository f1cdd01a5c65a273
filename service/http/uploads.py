"""POST /case-instance/{id}/variables/{name}/data: the multipart upload. The `data`
part streams into a new pending blob while the form is read; once the form is complete
it is clear what it means (Bytes, File or a serialized object), and only then is the
variable pointed at the blob. The story in order: this module, multipart.py,
storage/lifecycle.py, storage/blobstore.py, storage/repository.py."""

from __future__ import annotations

import hashlib

from aiohttp import web

from service.camunda import jsontext, mime
from service.camunda.javatypes import is_java_type_name
from service.camunda.messages import missing_case_on_write
from service.camunda.values import NO_FILENAME, file_info_problem
from service.errors import REST, InvalidInput, NotFound, TooLarge, UnsupportedMediaType
from service.http import keys, paths, request_memory
from service.http.body import NOT_SUPPORTED
from service.http.metrics import METRICS, counts_uploads
from service.http.multipart import DataPart, Form, is_multipart_form, read_form
from service.http.upload_digests import HashedBody, ValueDigest, value_digests
from service.http.variables import ILLEGAL_ARGUMENT, NOT_FOUND_EXCEPTION, new_blobs
from service.storage.blobstore import Blob, ValueSource, ValueTooLarge, as_filler, counted
from service.storage.lifecycle import NewBlobs
from service.storage.repository import NewValue, NoSuchCaseInstance

MISSING_DATA = "Form part with name 'data' is missing"
# A value read only to be forgotten is read through a buffer this large.
SKIP_BUFFER_BYTES = 256 * 1024


def value_too_large(limit: int) -> TooLarge:
    return TooLarge(f"The value is larger than the limit of {limit} bytes")


class _DataSink:
    """Where `data` parts go: a new pending blob each, or nowhere when the case
    instance is unknown (the form is still read and checked, as Camunda does)."""

    def __init__(self, request: web.Request, blobs: NewBlobs, *, store: bool) -> None:
        self._blobs = blobs
        self._limit = request.app[keys.SETTINGS].max_upload_bytes
        self._uploaded = request.app[METRICS].upload_bytes
        self._store = store
        # The value is shorter than the whole body: a small one takes only a small buffer.
        self._size_hint = request.content_length

    async def __call__(self, source: ValueSource) -> Blob | None:
        if not self._store:
            await _skip(source, self._limit)
            return None
        try:
            return await self._blobs.put_stream(
                counted(source, self._uploaded.inc),
                max_bytes=self._limit,
                size_hint=self._size_hint,
            )
        except ValueTooLarge as too_large:
            # too_large.limit: less than the setting when parts that large would not
            # fit the memory budget.
            raise value_too_large(too_large.limit) from None


async def _skip(source: ValueSource, limit: int) -> None:
    """Read a value to its end and forget it; TooLarge past limit bytes."""
    fill, scratch, size = as_filler(source).fill, bytearray(SKIP_BUFFER_BYTES), 0
    while added := await fill(scratch, 0, len(scratch)):
        size += added
        if size > limit:
            raise value_too_large(limit)


@counts_uploads
async def post_variable_data(request: web.Request) -> web.Response:
    """Bytes or File from the `data` part, or a serialized object when a `type` part
    names its Java type."""
    case_id = paths.case_id(request)
    name = paths.variable_name(request)
    if not is_multipart_form(request):
        raise UnsupportedMediaType(
            "HTTP 415 Unsupported Media Type: expected multipart/form-data",
            type_name=NOT_SUPPORTED,
        )
    # Malformed digest fields are refused before any byte is read.
    value_digests_sent = value_digests(request.headers, part=False)
    hashed_body = HashedBody.of(request)
    app = request.app
    settings, repository = app[keys.SETTINGS], app[keys.REPOSITORY]
    auto_create = settings.auto_create_case_instances
    # The upload belongs to the instance it started in: if that one is deleted meanwhile,
    # the upload fails even when the id is created again before it ends.
    incarnation = await repository.case_incarnation(case_id)
    may_store = auto_create or incarnation is not None
    async with new_blobs(request) as blobs:
        form = Form()
        await read_form(
            request,
            form,
            data_sink=_DataSink(request, blobs, store=may_store),
            max_in_memory=settings.max_json_bytes,
            body=None if hashed_body is None else hashed_body.stream,
        )
        if may_store:
            # Before the form is read for its meaning: corrupted bytes are named as such.
            await _check_digests(form, hashed_body, value_digests_sent)
        object_mode = form.type is not None
        if object_mode:
            new = await _object_value(request, form)
        else:
            new = _binary_value(form)
        if not may_store:
            raise _upload_to_missing_case(case_id, name, object_mode=object_mode)
        if new is not None:
            try:
                async with blobs.committing([new.blob]):
                    await repository.write_variables(
                        case_id,
                        {name: new},
                        create_case_instance=auto_create and incarnation is None,
                        incarnation=incarnation,
                    )
            except NoSuchCaseInstance:
                # Deleted (and maybe created again) while the value was streaming.
                raise _upload_to_missing_case(case_id, name, object_mode=object_mode) from None
    return web.Response(status=204)


async def _check_digests(
    form: Form, hashed_body: HashedBody | None, sent: tuple[ValueDigest, ...]
) -> None:
    """DigestMismatch unless the body and the value have the digests their fields give
    (the value: the `data` part's bytes, hashed on the way to S3 or held in memory)."""
    if hashed_body is not None:
        await hashed_body.check()
    data = form.data
    if data is None:
        return  # refused as a form without `data` next
    wanted = sent + data.digests
    if not wanted:
        return
    if data.in_memory is not None:
        actual = hashlib.sha256(data.in_memory).digest()
    else:
        stored: Blob = data.stored
        actual = stored.sha256
    for digest in wanted:
        digest.check(actual)


def _upload_to_missing_case(case_id: str, name: str, *, object_mode: bool) -> NotFound:
    message = missing_case_on_write(case_id)
    if object_mode:
        return NotFound(message, type_name=NOT_FOUND_EXCEPTION, code=0)
    return NotFound(f"Cannot put case execution variable {name}: {message}", type_name=REST, code=0)


async def _object_value(request: web.Request, form: Form) -> NewValue | None:
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
    if not is_java_type_name(type_name):
        raise InvalidInput(f"Could not deserialize JSON object: Invalid type name '{type_name}'")
    raw = await _data_bytes(request, data)
    # The bytes, the text decoded from them and what parsing them takes.
    await request_memory.cover(request, 2 * len(raw) + jsontext.parse_cost(raw))
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


async def _data_bytes(request: web.Request, data: DataPart) -> bytes:
    """The bytes of a `data` part that turned out to be a serialized object (its `type`
    part came after it, so it was streamed to a blob first)."""
    if data.in_memory is not None:
        return data.in_memory
    limit = request.app[keys.SETTINGS].max_json_bytes
    blob: Blob = data.stored
    if blob.size > limit:
        raise TooLarge(f"A serialized object is larger than the limit of {limit} bytes")
    await request_memory.cover(request, blob.size)
    return await request.app[keys.BLOBS].read_all(blob.key)


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
    # Camunda lower-cases only the first letter of a type name: "bytes" and "file" are
    # known, "BYTES" is not.
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
    return NewValue(type="File", value_info=_checked_file_info(value_info), blob=blob)


def _checked_file_info(value_info: dict[str, str]) -> dict[str, str]:
    """A File's filename, mimeType and encoding, by the rules of values.py for every
    route that writes one (downloads send them as headers); and UTF-8, which a part
    header's bytes need not be. (aiohttp refuses a part header with a control
    character; filename* can still spell one.)"""
    for key, text in value_info.items():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(
                f"Invalid {key} given: not valid UTF-8", type_name=ILLEGAL_ARGUMENT
            ) from None
        problem = file_info_problem(key, text)
        if problem is not None:
            raise InvalidInput(problem, type_name=ILLEGAL_ARGUMENT)
    return value_info
