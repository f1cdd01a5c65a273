"""The variable routes of the OpenAPI document: all variables of a case instance, one
variable, and its binary content (download with ranges and ETags, multipart upload),
with the upload form, their parameters and the download headers."""

from __future__ import annotations

from service.http.multipart import MAX_FORM_PARTS, MAX_TEXT_PART_BYTES
from service.http.openapi.blocks import (
    BAD_JSON,
    CASE_ID,
    NAME,
    TEXT,
    Json,
    common,
    empty_response,
    error,
    errors,
    json_body,
    json_body_common,
    json_response,
    links,
    operation,
    parameter_refs,
    ref,
    schema,
)
from service.http.paths import MAX_ID_LENGTH


def schemas() -> Json:
    return {
        "UploadForm": {
            "type": "object",
            "description": (
                "Parts are kept by name (the last of a name wins) and may come in any "
                "order; other parts are ignored. At most "
                f"{MAX_FORM_PARTS} parts; parts other than `data` at most "
                f"{MAX_TEXT_PART_BYTES} bytes. `Content-Transfer-Encoding` is ignored."
            ),
            "required": ["data"],
            "properties": {
                "data": {
                    "type": "string",
                    "format": "binary",
                    "description": (
                        "The value, streamed to S3. With `valueType` File: the part's "
                        "`filename` (required) and `Content-Type` (its type as `mimeType`, "
                        "its `encoding` parameter as `encoding`, `transient=true` for a "
                        "value that is not stored). With `type`: JSON "
                        "(`Content-Type` containing `application/json`)."
                    ),
                },
                "type": {
                    "type": "string",
                    "description": (
                        "A canonical Java type name such as "
                        "`java.util.ArrayList<java.lang.Object>`: `data` is then a JSON "
                        "serialized object, stored as an Object value with "
                        "`serializationDataFormat` `application/json` and this text as "
                        "`objectTypeName` (casevars deviation: Camunda stores it in the "
                        "engine's default format). JSON `null` stores nothing."
                    ),
                },
                "valueType": {
                    "type": "string",
                    "enum": ["Bytes", "File", "bytes", "file"],
                    "description": "Bytes (the default) or File; ignored with `type`.",
                },
            },
        },
    }


def _deserialize(name: str) -> Json:
    return {
        "name": name,
        "in": "query",
        "description": (
            "`true` in any letter case means true, any other value false (JAX-RS). "
            "False shows Object values in their serialized form."
        ),
        "schema": {"type": "boolean", "default": True},
    }


def deserialize_parameters() -> Json:
    """`deserializeValue` (one variable) and `deserializeValues` (all of them)."""
    return {
        "DeserializeValue": _deserialize("deserializeValue"),
        "DeserializeValues": _deserialize("deserializeValues"),
    }


def download_parameters() -> Json:
    """The conditional and range headers of a download."""
    return {
        "Range": {
            "name": "Range",
            "in": "header",
            "description": (
                "One range, `bytes=first-last`, `bytes=first-` or `bytes=-suffix` "
                "(206, or 416 when no byte of it exists). Several ranges, other units and "
                "anything unreadable are ignored (200 with the whole value). A casevars "
                "extension."
            ),
            "schema": TEXT,
        },
        "IfRange": {
            "name": "If-Range",
            "in": "header",
            "description": "An ETag: `Range` applies only while it is current.",
            "schema": TEXT,
        },
        "IfNoneMatch": {
            "name": "If-None-Match",
            "in": "header",
            "description": "ETags (or `*`): 304 when the current one is among them.",
            "schema": TEXT,
        },
        "WantReprDigest": {
            "name": "Want-Repr-Digest",
            "in": "header",
            "description": (
                "RFC 9530 preferences: `sha-256=0` leaves `Repr-Digest` out; anything else "
                "(other algorithms, other weights, a field that cannot be read) changes "
                "nothing, since sha-256 is the one algorithm casevars has."
            ),
            "schema": TEXT,
        },
        "ContentDigest": {
            "name": "Content-Digest",
            "in": "header",
            "description": (
                "RFC 9530: `sha-256=:{base64}:` of the whole request body as sent (the "
                "multipart bytes, boundaries and all). The body is hashed only when this "
                "field is there; a mismatch is a 400 and nothing is stored. Other "
                "algorithms are ignored; a field that is not a structured dictionary, or "
                "whose sha-256 is not 32 bytes, is a 400 before any byte is read."
            ),
            "schema": TEXT,
        },
        "ReprDigest": {
            "name": "Repr-Digest",
            "in": "header",
            "description": (
                "RFC 9530: `sha-256=:{base64}:` of the value, that is of the `data` part's "
                "bytes (for a serialized object, its JSON text as sent); a mismatch is a "
                "400 and nothing is stored. Other algorithms are ignored; a malformed "
                "field is a 400 before any byte is read."
            ),
            "schema": TEXT,
        },
    }


def download_headers() -> Json:
    return {
        "ETag": {
            "description": (
                "Strong ETag: the SHA-256 of the content in hex, quoted (casevars "
                "extension). Absent for a null value."
            ),
            "schema": TEXT,
        },
        "Repr-Digest": {
            "description": (
                "RFC 9530: `sha-256=:{base64}:`, the SHA-256 of the whole value (also on a "
                "206, where it is not the digest of the bytes sent, and on a 304), the "
                "same digest as the ETag. Absent for a null value and when "
                "`Want-Repr-Digest` gives sha-256 the weight 0."
            ),
            "schema": TEXT,
        },
        "Accept-Ranges": {"required": True, "schema": {"const": "bytes"}},
        "Content-Range": {
            "description": "`bytes first-last/size` (206) or `bytes */size` (416).",
            "required": True,
            "schema": TEXT,
        },
        "Content-Disposition": {
            "description": (
                'File values only: `attachment; filename="{raw name}"; '
                "filename*=UTF-8''{percent-encoded name}` (`null` for a missing name), as "
                "Camunda writes it."
            ),
            "schema": TEXT,
        },
    }


# --- paths ------------------------------------------------------------------------------

_NO_CASE_EXECUTION = (
    "There does not exist any case execution with id: '{id}': caseExecution is null"
)
_READ_404 = (
    "Unknown case instance (Camunda: 500): `RestException` `Cannot get case execution "
    "variable {name}: case execution {id} doesn't exist: caseExecution is null`, `code` "
    "0; or no such variable: `InvalidRequestException` `case execution variable with name "
    "{name} does not exist`."
)


def _write_404(prefix: str) -> str:
    return (
        f"Unknown case instance (Camunda: 400 or 500): `RestException` `{prefix}"
        f"{_NO_CASE_EXECUTION}`, `code` 0. With `CASEVARS_AUTO_CREATE_CASE_INSTANCES=true` "
        "the instance is created instead."
    )


def _variable_links() -> Json:
    return links(
        {"id": "$request.path.id", "name": "$request.path.name"},
        GetVariable="getVariable",
        GetVariableData="getVariableData",
        DeleteVariable="deleteVariable",
    )


def paths() -> Json:
    variable = "/case-instance/{id}/variables/{name}"
    return {
        "/case-instance/{id}/variables": {
            "get": operation(
                "getVariables",
                "Get all variables",
                "Every variable of the case instance (`{}` when none), Bytes contents inline "
                "up to `CASEVARS_INLINE_BYTES_LIMIT`.",
                {
                    "200": json_response(schema("VariableMap"), "Variable name -> value object."),
                    **common(),
                    **errors(
                        s404="Unknown case instance (Camunda: 400): `NotFoundException` `case "
                        "execution {id} doesn't exist: caseExecution is null`, `code` 0."
                    ),
                },
                parameters=[CASE_ID, *parameter_refs("DeserializeValues")],
            ),
            "post": operation(
                "modifyVariables",
                "Modify variables",
                "Modifications and deletions, all or nothing, in one transaction.",
                {
                    "204": empty_response("Applied."),
                    **json_body_common(),
                    **errors(
                        s400="A modification Camunda refuses: `InvalidRequestException` "
                        "`Cannot modify variables for case execution: {message}` for "
                        "conversion errors, `RestException` `Cannot modify variables for "
                        "case execution {id}: {message}` for engine errors (including a name "
                        "both modified and deleted, Camunda: 500), `IllegalArgumentException` "
                        f"for File and `transient` mistakes (Camunda: 500). {BAD_JSON}",
                        s404=_write_404("Cannot modify variables for case execution {id}: "),
                    ),
                },
                parameters=[CASE_ID],
                body=json_body(schema("Modifications"), "The changes.", required=True),
            ),
        },
        variable: {
            "get": operation(
                "getVariable",
                "Get a variable",
                "One value object.",
                {
                    "200": json_response(schema("VariableValue"), "The value object."),
                    **common(),
                    **errors(s404=_READ_404),
                },
                parameters=[CASE_ID, NAME, *parameter_refs("DeserializeValue")],
            ),
            "put": operation(
                "putVariable",
                "Set a variable",
                "Creates or replaces the variable (its type may change). Bytes and File "
                "contents go to S3. The value is checked before the case instance is "
                "looked up.",
                {
                    "204": empty_response(
                        "Stored (or used and dropped, for a transient value).",
                        links=_variable_links(),
                    ),
                    **json_body_common(),
                    **errors(
                        s400="A value Camunda refuses: `InvalidRequestException` `Cannot put "
                        "case execution variable {name}: {message}` for conversion errors "
                        "(e.g. `Unsupported value type 'X'`), `RestException` with the same "
                        "prefix for engine errors (Camunda: 500 for serialized Objects "
                        "without `objectTypeName` or format, or in Java serialization), "
                        "`IllegalArgumentException` `Cannot create file without valueInfo.` "
                        "and similar (Camunda: 500); text containing NUL; an id or name "
                        f"longer than {MAX_ID_LENGTH} characters. {BAD_JSON}",
                        s404=_write_404("Cannot put case execution variable {name}: "),
                    ),
                },
                parameters=[CASE_ID, NAME],
                body=json_body(schema("VariableValueIn"), "The value object.", required=True),
            ),
            "delete": operation(
                "deleteVariable",
                "Delete a variable",
                "Deleting a variable that does not exist is not an error. A delete never "
                "creates a case instance.",
                {
                    "204": empty_response("Deleted, or there was nothing to delete."),
                    **common(),
                    **errors(
                        s404="Unknown case instance (Camunda: 500): `RestException` `Cannot "
                        f"delete case execution variable {{name}}: {_NO_CASE_EXECUTION}`, "
                        "`code` 0."
                    ),
                },
                parameters=[CASE_ID, NAME],
            ),
        },
        f"{variable}/data": {
            "get": download("getVariableData", with_body=True),
            "head": download("headVariableData", with_body=False),
            "post": _upload(),
        },
    }


def download(
    operation_id: str,
    *,
    with_body: bool,
    parameters: tuple[Json, ...] = (CASE_ID, NAME),
    not_found: str = _READ_404,
    id_meaning: str = "the case instance id",
) -> Json:
    """A `/data` route: GET (with_body) or HEAD, its path parameters, its 404 text, and
    what `{id}` in its not-binary message is."""
    content = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
    headers = {
        name: ref("headers", name)
        for name in ("ETag", "Repr-Digest", "Accept-Ranges", "Content-Disposition")
    }
    range_header = {"Content-Range": ref("headers", "Content-Range")}

    def binary(description: str, extra: Json | None = None) -> Json:
        return empty_response(
            description,
            {**headers, **(extra or {})},
            **({"content": content} if with_body else {}),
        )

    return operation(
        operation_id,
        "Download a binary variable" if with_body else "Headers of a binary variable",
        "The raw content of a Bytes or File variable, streamed from S3. Bytes: "
        "`Content-Type: application/octet-stream`, no `Content-Disposition`. File: "
        "`Content-Type` = the stored `mimeType` (or `application/octet-stream`), "
        "followed by `; charset={encoding}` when an encoding is stored, and Camunda's "
        "`Content-Disposition`. Beyond Camunda: a strong `ETag`, `If-None-Match`, single "
        "byte ranges (`Range`, `If-Range`), `HEAD`, and `Repr-Digest` (RFC 9530; "
        "`Want-Repr-Digest: sha-256=0` turns it off).",
        {
            "200": binary("The whole content (empty for a null value)."),
            "206": binary("The requested range.", range_header),
            "304": empty_response(
                "`If-None-Match` names the current ETag.",
                {"ETag": ref("headers", "ETag"), "Repr-Digest": ref("headers", "Repr-Digest")},
            ),
            "416": error(
                "No byte of the range exists: `InvalidRequestException`.",
                range_header,
            ),
            **common(),
            # Instead of common()'s 400: this route also refuses non-binary variables.
            "400": error(
                "Not a Bytes or File variable: `InvalidRequestException` `Value of variable "
                f"with id {{id}} is not a binary value.` (`{{id}}` is {id_meaning}); an id "
                f"or name longer than {MAX_ID_LENGTH} characters."
            ),
            **errors(s404=not_found),
        },
        parameters=[
            *parameters,
            *parameter_refs("Range", "IfRange", "IfNoneMatch", "WantReprDigest"),
        ],
    )


def _upload() -> Json:
    return operation(
        "postVariableData",
        "Upload a binary variable",
        "Multipart upload of a Bytes or File value, or of a serialized object (with "
        "a `type` part). The `data` part is streamed to S3 while the form is read; "
        "the variable points at it only once the whole form is read and valid, so "
        "a failed upload leaves the previous value in place. Beyond Camunda, RFC 9530 "
        "digests hold the upload to what the client sent: `Repr-Digest` (on the "
        "request, or as a header of the `data` part, where `Content-Digest` means the "
        "same) is the SHA-256 of the value, `Content-Digest` on the request that of the "
        "whole body.",
        {
            "204": empty_response(
                "Stored (or nothing stored, for JSON `null` or a transient File).",
                links=_variable_links(),
            ),
            **common(body=True),
            "413": error(
                "The value is larger than `CASEVARS_MAX_UPLOAD_BYTES`, a serialized "
                "object larger than `CASEVARS_MAX_JSON_BYTES`, more than "
                f"{MAX_FORM_PARTS} parts, or another part larger than "
                f"{MAX_TEXT_PART_BYTES} bytes; refused as soon as the limit is "
                "crossed (the rest is not read)."
            ),
            "415": error("Not `multipart/form-data`: `NotSupportedException`."),
            **errors(
                s400="A form Camunda refuses: `RestException` `multipart/form-data "
                "cannot be processed` (a broken form), `InvalidRequestException` "
                "`Form part with name 'data' is missing` (Camunda: 500), `Form part "
                "with name 'valueType' must have a text/plain value`, `Unrecognized "
                "content type for serialized java type: ...`, `Could not deserialize "
                "JSON object: ...` (Camunda: 500), `RestException` `Invalid mime type "
                "given`, `Unsupported value type '...'` (also for non-binary value "
                "types, which Camunda accepts), `IllegalArgumentException` for a File "
                "without filename (Camunda: 500); an id or name longer than "
                f"{MAX_ID_LENGTH} characters. A digest that does not match: "
                "`InvalidRequestException` `The {field} sha-256 does not match the bytes "
                "received; nothing was stored` (`{field}`: `Repr-Digest`, "
                "`Content-Digest`, `data part's Repr-Digest` or `data part's "
                "Content-Digest`); a malformed digest field (`... is not a structured "
                "dictionary (RFC 9530)`, `... sha-256 must be a byte sequence of 32 "
                "bytes, as :base64:`).",
                s404="Unknown case instance (also when it is deleted during the "
                "upload): Bytes and File `RestException` `Cannot put case execution "
                f"variable {{name}}: {_NO_CASE_EXECUTION}` (Camunda: 500); with `type` "
                "`NotFoundException` without the prefix (Camunda: 400); `code` 0. "
                "The form is still read and checked first. With "
                "`CASEVARS_AUTO_CREATE_CASE_INSTANCES=true` the instance is created "
                "instead.",
            ),
        },
        parameters=[CASE_ID, NAME, *parameter_refs("ContentDigest", "ReprDigest")],
        body={
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": schema("UploadForm"),
                    "encoding": {
                        "data": {
                            "contentType": "application/octet-stream",
                            "headers": {
                                field: {
                                    "description": (
                                        "RFC 9530 `sha-256=:{base64}:` of this part's "
                                        "bytes, the value (either field, or both)."
                                    ),
                                    "schema": TEXT,
                                }
                                for field in ("Content-Digest", "Repr-Digest")
                            },
                        },
                        "type": {"contentType": "text/plain"},
                        "valueType": {"contentType": "text/plain"},
                    },
                }
            },
        },
    )
