"""The resumable upload routes (tus 1.0.0) of the OpenAPI document: creation, HEAD,
PATCH, termination and OPTIONS at /case-instance/{id}/variables/{name}/uploads."""

from __future__ import annotations

from service.http.openapi.blocks import (
    CASE_ID,
    NAME,
    TEXT,
    Json,
    common,
    empty_response,
    errors,
    operation,
)

TAG = "Resumable uploads"
UPLOADS = "/case-instance/{id}/variables/{name}/uploads"
UPLOAD = UPLOADS + "/{uploadId}"
_NUMBER: Json = {"type": "string", "pattern": "^[0-9]{1,18}$"}
_MISSING_CASE = (
    "`RestException` `Cannot put case execution variable {name}: There does not exist any "
    "case execution with id: '{id}': caseExecution is null`, `code` 0, as the multipart "
    "upload answers"
)


def tags() -> list[Json]:
    return [
        {
            "name": TAG,
            "description": (
                "tus 1.0.0 (tus.io) with the extensions creation, creation-with-upload, "
                "creation-defer-length, termination, checksum (sha256) and expiration: a "
                "value sent in as many requests as it takes, to any replica, and "
                "committed into its variable like a finished multipart upload. Not in "
                "Camunda."
            ),
        }
    ]


def _header(name: str, description: str, schema: Json = TEXT, *, required: bool = False) -> Json:
    return {
        "name": name,
        "in": "header",
        "required": required,
        "description": description,
        "schema": schema,
    }


_TUS_RESUMABLE = _header(
    "Tus-Resumable",
    "`1.0.0`; any other value, or none, is a 412.",
    {"type": "string", "enum": ["1.0.0"]},
    required=True,
)
_UPLOAD_ID: Json = {
    "name": "uploadId",
    "in": "path",
    "required": True,
    "description": "The id in the `Location` of the creation (32 hexadecimal digits).",
    "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
}
_BODY: Json = {
    "required": False,
    "content": {
        "application/offset+octet-stream": {"schema": {"type": "string", "format": "binary"}}
    },
}


def _answer_header(description: str, schema: Json = TEXT, *, required: bool = True) -> Json:
    return {"description": description, "required": required, "schema": schema}


_RESUMABLE_HEADER = {"Tus-Resumable": _answer_header("`1.0.0`, on every answer of these routes.")}
_OFFSET_HEADER = _answer_header("The upload's offset: how many of its bytes are stored.", _NUMBER)
_EXPIRES_HEADER = _answer_header(
    "When the upload expires unless a PATCH comes first (an HTTP date; "
    "`CASEVARS_UPLOAD_EXPIRY_SECONDS` after the last PATCH)."
)


def _errors(**described: str) -> Json:
    """Error responses, each with Tus-Resumable."""
    found = errors(**described)
    for response in found.values():
        response["headers"] = {**response["headers"], **_RESUMABLE_HEADER}
    return found


_VERSION_412 = "No `Tus-Resumable: 1.0.0`: `RestException`, with `Tus-Version: 1.0.0`."
_GONE = (
    "The upload expired (`CASEVARS_UPLOAD_EXPIRY_SECONDS`) and the collector has not "
    "removed it yet; after that, 404."
)
_LOCKED = "Another request is writing to the upload (its lease); try again."
_UNKNOWN = (
    "No such upload of this variable (never made, terminated, collected after expiry, or "
    "removed with its case instance)."
)


def _creation() -> Json:
    return operation(
        "createUpload",
        "Create a resumable upload",
        "A new upload of the variable's next value, with `Upload-Length` or "
        "`Upload-Defer-Length: 1`. `Upload-Metadata` carries what the multipart form "
        "does: `valueType` (`Bytes` or `File`; `File` by default when a `filename` is "
        "given, else `Bytes`), `filename`, the mime type as `mimeType` or `filetype`, "
        "and `encoding`, checked as the form's are. `Repr-Digest` (RFC 9530, sha-256) "
        "is checked against the whole value at the end. With a body of "
        "`application/offset+octet-stream` the request is also the first PATCH; an "
        "`Upload-Length` of 0 commits the empty value at once. The variable keeps its "
        "old value until the last byte is in.",
        {
            "201": empty_response(
                "Created; `Location` is this URL and the upload's id.",
                {
                    "Location": _answer_header("The upload's URL (a path)."),
                    "Upload-Expires": _EXPIRES_HEADER,
                    "Upload-Offset": {**_OFFSET_HEADER, "required": False},
                    **_RESUMABLE_HEADER,
                },
            ),
            **common(body=True),
            **_errors(
                s400="No length, a malformed length, `Upload-Metadata` or digest field, a "
                "value type other than Bytes and File, a File without filename "
                "(`IllegalArgumentException`), an invalid mime type; with a body, what "
                "PATCH refuses with 400.",
                s404=f"Unknown or closed case instance: {_MISSING_CASE}. With "
                "`CASEVARS_AUTO_CREATE_CASE_INSTANCES=true` the instance is created.",
                s409="With a body: see PATCH.",
                s412=_VERSION_412,
                s413="`Upload-Length` (or the body) beyond `Tus-Max-Size`.",
                s415="A body that is not `application/offset+octet-stream`.",
                s423=_LOCKED,
                s460="With a body: its `Upload-Checksum` does not match.",
                s503="Postgres or S3 did not answer, or `CASEVARS_MAX_OPEN_UPLOADS` "
                "uploads are open.",
            ),
        },
        parameters=[
            CASE_ID,
            NAME,
            _TUS_RESUMABLE,
            _header("Upload-Length", "The value's length in bytes.", _NUMBER),
            _header("Upload-Defer-Length", "`1`: the length comes with a later PATCH."),
            _header("Upload-Metadata", "Comma-separated `key base64(value)` pairs."),
            _header("Repr-Digest", "RFC 9530 `sha-256=:{base64}:` of the whole value."),
            _header("Upload-Checksum", "With a body: `sha256 {base64}` of the body."),
        ],
        body=_BODY,
        tags=(TAG,),
    )


def _head() -> Json:
    return operation(
        "headUpload",
        "Offset of a resumable upload",
        "How much of the upload is stored. A finished upload stays visible (offset = "
        "length) until it expires, so a client whose last answer was lost sees it is "
        "done; offset = length always means the value is committed (a commit that "
        "failed, with Postgres or S3 down, is retried here first).",
        {
            "200": empty_response(
                "The upload's state.",
                {
                    "Upload-Offset": _OFFSET_HEADER,
                    "Upload-Length": {**_OFFSET_HEADER, "required": False},
                    "Upload-Defer-Length": _answer_header(
                        "`1` while the length is not known.", required=False
                    ),
                    "Upload-Metadata": _answer_header("As given at creation.", required=False),
                    "Upload-Expires": _EXPIRES_HEADER,
                    "Cache-Control": _answer_header("`no-store`."),
                    **_RESUMABLE_HEADER,
                },
            ),
            **common(),
            **_errors(
                s404=_UNKNOWN + f" Or, retrying a commit: {_MISSING_CASE}.",
                s410=_GONE,
                s412=_VERSION_412,
                s423=_LOCKED,
            ),
        },
        parameters=[CASE_ID, NAME, _UPLOAD_ID, _TUS_RESUMABLE],
        tags=(TAG,),
    )


def _patch() -> Json:
    return operation(
        "patchUpload",
        "Continue a resumable upload",
        "The body's bytes at `Upload-Offset`, which must be the upload's offset. Each "
        "part S3 confirms is recorded at once; a body that ends early keeps what "
        "arrived. With `Upload-Checksum` (`sha256 {base64}`) or `Content-Digest` "
        "(RFC 9530) the body is all or nothing: kept only once it matches. The last byte "
        "commits the value into the variable in the transaction a multipart upload uses "
        "(the previous blob to garbage, ETag = SHA-256); `Repr-Digest` here or at "
        "creation is checked then, and a mismatch discards the upload.",
        {
            "204": empty_response(
                "Stored.",
                {
                    "Upload-Offset": _OFFSET_HEADER,
                    "Upload-Expires": _EXPIRES_HEADER,
                    **_RESUMABLE_HEADER,
                },
            ),
            **common(body=True),
            **_errors(
                s400="No or a malformed `Upload-Offset`, a malformed checksum or digest, "
                "a checksum algorithm other than sha256, an `Upload-Length` other than "
                "the one set, or below the offset; `Content-Digest` or `Repr-Digest` "
                "not matching (`The {field} sha-256 does not match the bytes received; "
                "nothing was stored`; for `Repr-Digest` the upload is discarded).",
                s404=f"{_UNKNOWN} At commit time: {_MISSING_CASE} (the upload is discarded).",
                s409="`Upload-Offset` is not the upload's offset (the message says which it is).",
                s410=_GONE,
                s412=_VERSION_412,
                s413="Bytes beyond `Upload-Length` (or `Tus-Max-Size`).",
                s415="Not `application/offset+octet-stream`.",
                s423=_LOCKED,
                s460="The body does not match `Upload-Checksum`; nothing of it was kept.",
            ),
        },
        parameters=[
            CASE_ID,
            NAME,
            _UPLOAD_ID,
            _TUS_RESUMABLE,
            _header("Upload-Offset", "Where the body's bytes go.", _NUMBER, required=True),
            _header("Upload-Length", "The length of an upload created without one."),
            _header("Upload-Checksum", "`sha256 {base64}` of the body."),
            _header("Content-Digest", "RFC 9530 `sha-256=:{base64}:` of the body."),
            _header("Repr-Digest", "RFC 9530 `sha-256=:{base64}:` of the whole value."),
        ],
        body={**_BODY, "required": True},
        tags=(TAG,),
    )


def _termination() -> Json:
    return operation(
        "terminateUpload",
        "Terminate a resumable upload",
        "The upload and what it stored go (its multipart upload is aborted). A finished "
        "upload only stops being visible: its value stays the variable's.",
        {
            "204": empty_response("Terminated.", _RESUMABLE_HEADER),
            **common(),
            **_errors(s404=_UNKNOWN, s410=_GONE, s412=_VERSION_412, s423=_LOCKED),
        },
        parameters=[CASE_ID, NAME, _UPLOAD_ID, _TUS_RESUMABLE],
        tags=(TAG,),
    )


def _method_override() -> Json:
    patching, terminating = _patch(), _termination()
    responses = {**terminating["responses"], **patching["responses"]}
    responses["405"] = _errors(
        s405="No `X-HTTP-Method-Override` naming `PATCH` or `DELETE`: `NotAllowedException`."
    )["405"]
    return operation(
        "overrideUploadMethod",
        "PATCH or DELETE through POST",
        "tus core: `X-HTTP-Method-Override: PATCH` (or `DELETE`) on a POST is that "
        "request, for clients behind proxies that pass only GET and POST.",
        responses,
        parameters=[
            *(
                {**parameter, "required": False}
                if parameter.get("name") == "Upload-Offset"
                else parameter
                for parameter in patching["parameters"]
            ),
            _header(
                "X-HTTP-Method-Override",
                "`PATCH` or `DELETE`.",
                {"type": "string", "enum": ["PATCH", "DELETE"]},
                required=True,
            ),
        ],
        body={**_BODY, "required": False},
        tags=(TAG,),
    )


def _options(operation_id: str, parameters: list[Json]) -> Json:
    return operation(
        operation_id,
        "What the tus server offers",
        "Needs no `Tus-Resumable`.",
        {
            "204": empty_response(
                "The protocol's version, extensions, largest value and checksum algorithm.",
                {
                    "Tus-Version": _answer_header("`1.0.0`."),
                    "Tus-Extension": _answer_header(
                        "`creation,creation-with-upload,creation-defer-length,termination,"
                        "checksum,expiration`."
                    ),
                    "Tus-Max-Size": _answer_header(
                        "The largest value: `CASEVARS_MAX_UPLOAD_BYTES`, or less when parts "
                        "that large would not fit the memory budget.",
                        _NUMBER,
                    ),
                    "Tus-Checksum-Algorithm": _answer_header("`sha256`."),
                    **_RESUMABLE_HEADER,
                },
            ),
            **common(),
        },
        parameters=parameters,
        tags=(TAG,),
    )


def paths() -> Json:
    return {
        UPLOADS: {
            "options": _options("uploadOptions", [CASE_ID, NAME]),
            "post": _creation(),
        },
        UPLOAD: {
            "options": _options("uploadOptionsOfUpload", [CASE_ID, NAME, _UPLOAD_ID]),
            "head": _head(),
            "patch": _patch(),
            "delete": _termination(),
            "post": _method_override(),
        },
    }
