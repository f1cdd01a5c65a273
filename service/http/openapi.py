"""The OpenAPI 3.1 document of the service, served at GET /openapi.json.

It is Python data rather than a JSON file so that the limits and lists it states (id
lengths, sort keys, operators, refused filters, form limits) are the constants the
handlers use, and so that it ships with the package without package-data. The
document is built once; tests/test_openapi.py checks it against the router (every
route documented, nothing documented that is not routed) and runs schemathesis
against the live service.
"""

from __future__ import annotations

import copy
import functools
import importlib.metadata
from typing import Any

import orjson
from aiohttp import web

from service.camunda.values import TYPE_NAMES
from service.http.cases import MAX_INTEGER, QUERY_OPERATORS, UNSUPPORTED_FILTERS
from service.http.multipart import MAX_FORM_PARTS, MAX_TEXT_PART_BYTES
from service.http.paths import MAX_ID_LENGTH, MAX_NAME_LENGTH
from service.storage.repository import SORT_COLUMNS

Json = dict[str, Any]

OPENAPI_VERSION = "3.1.0"
# The example path values: tests/test_openapi.py creates these before schemathesis runs.
EXAMPLE_CASE_ID = "order-4711"
EXAMPLE_VARIABLE = "invoice"
EXAMPLE_KEY = "claims"

_DESCRIPTION = f"""\
casevars implements Camunda 7's REST API for the variables of case instances. Paths
are relative to the REST root (Camunda mounts it at `/engine-rest`; casevars serves it
at `/`). Binary values (Bytes, File) are streamed into S3; everything else lives in
Postgres.

**Errors.** Every error a handler answers, unknown routes (404) and wrong methods
(405, with `Allow`) included, is JSON: `{{"type", "message", "code"}}` with Camunda's
exception type names and message texts (`code` is `null` for errors of the REST layer
and `0` for errors Camunda's engine raises). Every response carries `X-Request-Id`: the
request's own `X-Request-Id` header when it is printable ASCII of up to 128
characters, else a new id; logs carry the same id.
Only malformed HTTP (a request line or header over 8190 bytes, more than 100 headers)
is refused by the HTTP layer before any of this, with a plain-text 400 or 431.

**Authentication** is off unless `CASEVARS_AUTH_FILE` (HTTP Basic, bcrypt htpasswd) or
`CASEVARS_AUTH_TOKENS_FILE` (bearer tokens) is set. When it is on, every route but
`/health/live` and `/health/ready` (and `/metrics` with
`CASEVARS_METRICS_PUBLIC=true`) answers 401 `NotAuthorizedException` without valid
credentials, before any byte of the body is read.

**Where casevars differs from Camunda.** Where Camunda answers 500 for a mistake the
client made, casevars answers the 4xx the client can act on, with the same `type` and
`message`:

- an unknown case instance on a variable route: 404 (Camunda: 400 or 500 by route);
- the same name in `modifications` and `deletions`: 400 (Camunda: 500);
- a multipart form without `data`: 400 `Form part with name 'data' is missing`;
- a `type` part whose JSON cannot be read: 400; only the syntax of the Java type name
  is checked (casevars has no Java classes);
- a File without `filename` (upload or PUT), a File PUT without `valueInfo`: 400;
- a `valueType` naming a non-binary type, `type` `Number` or empty: 400
  `Unsupported value type '...'`;
- a serialized Object without `objectTypeName`, without format or in Java
  serialization, a non-boolean `valueInfo.transient`: 400;
- a non-integer or negative `firstResult` / `maxResults`: 400 (Camunda: 404);
- the filters {", ".join(f"`{name}`" for name in UNSUPPORTED_FILTERS)}: 400, never
  silently ignored (casevars has no process instances, deployments or case
  hierarchies);
- text containing the NUL character, ids and names longer than {MAX_ID_LENGTH}
  characters: 400;
- bodies and uploads over their configured limits (`CASEVARS_MAX_JSON_BYTES`,
  `CASEVARS_MAX_UPLOAD_BYTES`): 413 as soon as the limit is crossed;
- a client that sends nothing for `CASEVARS_CLIENT_READ_TIMEOUT_SECONDS`: 408, and the
  connection is closed;
- Postgres or S3 not answering: 503 `RestException`.

Values: deserialized Object values are the JSON parsed for `application/json` and the
serialized text otherwise; Json and Xml values are their document text in both modes;
dates are printed in UTC (`+0000`) with milliseconds; a Bytes value larger than
`CASEVARS_INLINE_BYTES_LIMIT` shows `"value": null` and `valueInfo` `{{"size",
"dataUrl"}}` in JSON views. Case instances are created with `PUT /case-instance/{{id}}`
or `POST /case-definition/key/{{key}}/create` (casevars has no case definitions), and
deleted with `DELETE /case-instance/{{id}}`; all are casevars extensions of Camunda's
API.
"""


# --- building blocks ------------------------------------------------------------------


def _ref(kind: str, name: str) -> Json:
    return {"$ref": f"#/components/{kind}/{name}"}


def _schema(name: str) -> Json:
    return _ref("schemas", name)


def _nullable(schema: Json) -> Json:
    return {"anyOf": [schema, {"type": "null"}]}


def _lower_first(type_name: str) -> str:
    """Camunda looks type names up after lower-casing their first letter only."""
    return type_name[0].lower() + type_name[1:]


_REQUEST_ID_HEADER = {"X-Request-Id": _ref("headers", "X-Request-Id")}


def _json(schema: Json, description: str, headers: Json | None = None, **extra: Any) -> Json:
    return {
        "description": description,
        "headers": {**_REQUEST_ID_HEADER, **(headers or {})},
        "content": {"application/json": {"schema": schema}},
        **extra,
    }


def _empty(description: str, headers: Json | None = None, **extra: Any) -> Json:
    return {
        "description": description,
        "headers": {**_REQUEST_ID_HEADER, **(headers or {})},
        **extra,
    }


def _error(description: str, headers: Json | None = None) -> Json:
    return _json(_schema("Error"), description, headers)


def _errors(**described: str) -> Json:
    """Error responses by status (keyword s400 -> "400") with route-specific texts."""
    return {name.removeprefix("s"): _error(text) for name, text in described.items()}


def _common(*, body: bool = False, path: bool = True) -> Json:
    """The error responses every route of a kind can answer."""
    responses: Json = {
        "401": _ref("responses", "Unauthorized"),
        "503": _ref("responses", "Unavailable"),
    }
    if body:
        responses["408"] = _ref("responses", "RequestTimeout")
    if path and not body:
        responses["400"] = _error(
            f"An id or name longer than {MAX_ID_LENGTH} characters, or one containing NUL."
        )
    return responses


def _operation(  # noqa: PLR0913 - the fields of an OpenAPI operation object
    operation_id: str,
    summary: str,
    description: str,
    responses: Json,
    *,
    parameters: list[Json] | None = None,
    body: Json | None = None,
    tags: tuple[str, ...] = ("Variables",),
    security: list[Json] | None = None,
) -> Json:
    operation: Json = {
        "operationId": operation_id,
        "summary": summary,
        "description": description,
        "tags": list(tags),
        "parameters": parameters or [],
        "responses": dict(sorted(responses.items())),
    }
    if body is not None:
        operation["requestBody"] = body
    if security is not None:
        operation["security"] = security
    return operation


def _json_body(schema: Json, description: str, *, required: bool) -> Json:
    return {
        "description": description,
        "required": required,
        "content": {"application/json": {"schema": schema}},
    }


# --- components -------------------------------------------------------------------------


def _schemas() -> Json:
    text = {"type": "string"}
    nullable_text = _nullable(text)
    # Stored case-instance fields are limited like ids.
    field = _nullable({"type": "string", "maxLength": MAX_ID_LENGTH})
    flag = {"type": "boolean"}
    return {
        "Error": {
            "type": "object",
            "description": (
                "Camunda's ExceptionDto. `type` is the simple name of the Java exception "
                "Camunda raises in the same situation (`InvalidRequestException`, "
                "`RestException`, `NotFoundException`, `IllegalArgumentException`, "
                "`NotSupportedException`, `NotAuthorizedException`, ...); `message` is "
                "Camunda's text; `code` is null for errors of the REST layer and an "
                "integer (0) for engine errors."
            ),
            "required": ["type", "message", "code"],
            "properties": {
                "type": text,
                "message": text,
                "code": _nullable({"type": "integer"}),
            },
        },
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {
                "status": {"enum": ["up", "down"]},
                "failed": {
                    "type": "array",
                    "items": text,
                    "description": 'What did not answer: "postgres", "s3", "shutting down".',
                },
            },
        },
        "ValueInfoIn": {
            "type": "object",
            "description": (
                "Per type: File takes `filename` (required), `mimeType`, `encoding`; "
                "Object takes `objectTypeName` and `serializationDataFormat`; every type "
                "takes `transient` (a boolean: the value is used for this request only "
                "and never stored). Other keys are ignored."
            ),
            "properties": {
                "filename": text,
                "mimeType": text,
                "encoding": text,
                "objectTypeName": text,
                "serializationDataFormat": text,
                "transient": flag,
            },
        },
        "VariableValueIn": {
            "type": "object",
            "description": (
                "A value object as Camunda reads it; every key is optional and unknown "
                "keys are ignored. Without `type` the type is inferred from the JSON value "
                "(string, Integer or Long, Double, Boolean, Null; objects, arrays and "
                "integers beyond 64 bits become `application/json` Object values). Type "
                "names are looked up after lower-casing their first letter only "
                "(`string` works, `STRING` does not). Typed values are converted the "
                "Java way (`Cannot convert value ...` on failure); Date is "
                "`yyyy-MM-dd'T'HH:mm:ss.SSSZ`; Bytes and File values are base64; Object, "
                "Json and Xml values are their serialized text. `Number` and Java "
                "serialization (`application/x-java-serialized-object`) are refused."
            ),
            "properties": {
                "value": {"description": "Any JSON value."},
                "type": _nullable({"enum": [*TYPE_NAMES, *map(_lower_first, TYPE_NAMES)]}),
                "valueInfo": _nullable(_schema("ValueInfoIn")),
            },
        },
        "VariableValue": {
            "type": "object",
            "description": (
                "A variable as GET answers it. `value` is null for File values (their "
                "content is at `.../data`) and for null values; a Bytes value is its "
                "base64 text, or, beyond `CASEVARS_INLINE_BYTES_LIMIT`, null with "
                "`valueInfo.size` and `valueInfo.dataUrl` (a casevars deviation). "
                "Deserialized `application/json` Object values are the parsed JSON; "
                "other formats, Json and Xml are their text."
            ),
            "required": ["type", "value", "valueInfo"],
            "properties": {
                "type": {"enum": list(TYPE_NAMES)},
                "value": {},
                "valueInfo": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "filename": text,
                        "mimeType": text,
                        "encoding": text,
                        "objectTypeName": text,
                        "serializationDataFormat": text,
                        "size": {"type": "integer", "minimum": 0},
                        "dataUrl": text,
                    },
                },
            },
        },
        "VariableMap": {
            "type": "object",
            "description": "Variable name -> value object.",
            "additionalProperties": _schema("VariableValue"),
        },
        "Modifications": {
            "type": "object",
            "description": (
                "Both keys are optional; `{}` changes nothing. Every modification is "
                "converted before anything changes; then deletions and modifications are "
                "applied in one transaction. Deleting a name that does not exist is fine."
            ),
            "properties": {
                "modifications": _nullable(
                    {"type": "object", "additionalProperties": _schema("VariableValueIn")}
                ),
                "deletions": _nullable({"type": "array", "items": text}),
            },
        },
        "CaseInstance": {
            "type": "object",
            "description": (
                "Camunda's CaseInstanceDto. casevars has no case definitions: every key "
                "is present, null where there is no value; `active` is always true, "
                "`completed` and `terminated` false."
            ),
            "required": [
                "links",
                "id",
                "caseDefinitionId",
                "businessKey",
                "tenantId",
                "active",
                "completed",
                "terminated",
            ],
            "properties": {
                "links": {"type": "array", "items": {"type": "object"}},
                "id": text,
                "caseDefinitionId": nullable_text,
                "businessKey": nullable_text,
                "tenantId": nullable_text,
                "active": flag,
                "completed": flag,
                "terminated": flag,
            },
        },
        "CaseInstanceList": {"type": "array", "items": _schema("CaseInstance")},
        "CaseInstanceFields": {
            "type": "object",
            "description": (
                "Fields of a case instance; every key optional, null clears it, other "
                "keys are ignored."
            ),
            "properties": {
                "businessKey": field,
                "caseDefinitionKey": field,
                "caseDefinitionId": field,
                "tenantId": field,
            },
        },
        "CreateCaseInstance": {
            "type": "object",
            "description": "Camunda's CreateCaseInstanceDto; other keys are ignored.",
            "properties": {
                "businessKey": field,
                "variables": _nullable(
                    {"type": "object", "additionalProperties": _schema("VariableValueIn")}
                ),
            },
        },
        "CaseInstanceQuery": _query_body_schema(),
        "Count": {
            "type": "object",
            "required": ["count"],
            "properties": {"count": {"type": "integer", "minimum": 0}},
        },
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


def _query_body_schema() -> Json:
    text = {"type": "string"}
    nullable_text = _nullable(text)
    flag = _nullable({"type": "boolean"})
    properties: Json = {
        "caseInstanceId": nullable_text,
        "businessKey": nullable_text,
        "caseDefinitionKey": nullable_text,
        "caseDefinitionId": nullable_text,
        "tenantIdIn": _nullable({"type": "array", "items": text}),
        "withoutTenantId": flag,
        "active": flag,
        "completed": flag,
        "terminated": flag,
        "variableNamesIgnoreCase": flag,
        "variableValuesIgnoreCase": flag,
        "variables": _nullable(
            {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "operator"],
                    "properties": {
                        "name": text,
                        "operator": {"enum": list(QUERY_OPERATORS)},
                        "value": {
                            "type": ["string", "number", "boolean", "null"],
                            "description": (
                                "Text in the REST date format compares with Date "
                                "variables; `like` takes text with `%` wildcards."
                            ),
                        },
                    },
                },
            }
        ),
        "sorting": _nullable(
            {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["sortBy", "sortOrder"],
                    "properties": {
                        "sortBy": {"enum": list(SORT_COLUMNS)},
                        "sortOrder": {"enum": ["asc", "desc"]},
                    },
                },
            }
        ),
    }
    for name in UNSUPPORTED_FILTERS:
        properties[name] = {
            "description": "Not supported: any value other than null answers 400.",
        }
    return {
        "type": "object",
        "description": (
            "Camunda's CaseInstanceQueryDto: filters combined with AND, every key "
            "optional, other keys ignored. `completed` or `terminated` true matches "
            "nothing (casevars's case instances are always active)."
        ),
        "properties": properties,
    }


def _parameters() -> Json:
    text = {"type": "string"}
    identifier = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH}
    parameters: Json = {
        "CaseInstanceId": {
            "name": "id",
            "in": "path",
            "required": True,
            "description": (
                f"The case instance id (up to {MAX_ID_LENGTH} characters; `/` cannot "
                "appear in a path segment)."
            ),
            "schema": identifier,
            "example": EXAMPLE_CASE_ID,
        },
        "VariableName": {
            "name": "name",
            "in": "path",
            "required": True,
            "description": (
                f"The variable name (Camunda's `varName`, up to {MAX_NAME_LENGTH} characters)."
            ),
            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH},
            "example": EXAMPLE_VARIABLE,
        },
        "CaseDefinitionKey": {
            "name": "key",
            "in": "path",
            "required": True,
            "description": (
                "The case definition key, recorded as the new instance's "
                "`caseDefinitionKey` (casevars has no definitions to check it against)."
            ),
            "schema": identifier,
            "example": EXAMPLE_KEY,
        },
        "DeserializeValue": {
            "name": "deserializeValue",
            "in": "query",
            "description": (
                "`true` in any letter case means true, any other value false (JAX-RS). "
                "False shows Object values in their serialized form."
            ),
            "schema": {"type": "boolean", "default": True},
        },
        "DeserializeValues": {
            "name": "deserializeValues",
            "in": "query",
            "description": (
                "`true` in any letter case means true, any other value false (JAX-RS). "
                "False shows Object values in their serialized form."
            ),
            "schema": {"type": "boolean", "default": True},
        },
        "FirstResult": {
            "name": "firstResult",
            "in": "query",
            "description": (
                "Index of the first result (default 0). Not a non-negative 32-bit "
                "integer: 400 `Cannot set query parameter 'firstResult' to value '...'` "
                "(Camunda: 404)."
            ),
            "schema": {"type": "integer", "minimum": 0, "maximum": MAX_INTEGER},
        },
        "MaxResults": {
            "name": "maxResults",
            "in": "query",
            "description": "Most results to return (default: all). Refused like `firstResult`.",
            "schema": {"type": "integer", "minimum": 0, "maximum": MAX_INTEGER},
        },
        "SortBy": {
            "name": "sortBy",
            "in": "query",
            "description": (
                "Only together with `sortOrder`, otherwise 400 `Only a single sorting "
                "parameter specified. sortBy and sortOrder required`."
            ),
            "schema": {"enum": list(SORT_COLUMNS)},
        },
        "SortOrder": {
            "name": "sortOrder",
            "in": "query",
            "description": "Only together with `sortBy`.",
            "schema": {"enum": ["asc", "desc"]},
        },
        "Range": {
            "name": "Range",
            "in": "header",
            "description": (
                "One range, `bytes=first-last`, `bytes=first-` or `bytes=-suffix` "
                "(206, or 416 when no byte of it exists). Several ranges, other units and "
                "anything unreadable are ignored (200 with the whole value). A casevars "
                "extension."
            ),
            "schema": text,
        },
        "IfRange": {
            "name": "If-Range",
            "in": "header",
            "description": "An ETag: `Range` applies only while it is current.",
            "schema": text,
        },
        "IfNoneMatch": {
            "name": "If-None-Match",
            "in": "header",
            "description": "ETags (or `*`): 304 when the current one is among them.",
            "schema": text,
        },
    }
    for name, description in _QUERY_FILTERS.items():
        parameters[f"Filter-{name}"] = {
            "name": name,
            "in": "query",
            "description": description,
            "schema": _QUERY_FILTER_SCHEMAS.get(name, text),
            **({"explode": False} if name in {"tenantIdIn", "variables"} else {}),
        }
    return parameters


_FLAG_TEXT = "`true` in any letter case means true; anything else is no filter."
_QUERY_FILTERS = {
    "caseInstanceId": "Exactly this id.",
    "businessKey": "Exactly this business key.",
    "caseDefinitionKey": "Exactly this case definition key.",
    "caseDefinitionId": "Exactly this case definition id.",
    "tenantIdIn": "A comma-separated list of tenant ids.",
    "withoutTenantId": f"Only instances without a tenant. {_FLAG_TEXT}",
    "active": f"Every casevars instance is active. {_FLAG_TEXT}",
    "completed": f"Matches nothing when true (instances are never completed). {_FLAG_TEXT}",
    "terminated": f"Matches nothing when true (instances are never terminated). {_FLAG_TEXT}",
    "variables": (
        "Comma-separated `name_operator_value` conditions, operator one of "
        f"{', '.join(QUERY_OPERATORS)}. A value in the query string is text (or a date in "
        "the REST format); compare numbers and booleans through the JSON body of "
        "`POST /case-instance`."
    ),
    "variableNamesIgnoreCase": f"Compare variable names ignoring case. {_FLAG_TEXT}",
    "variableValuesIgnoreCase": f"Compare text values ignoring case. {_FLAG_TEXT}",
    **dict.fromkeys(
        UNSUPPORTED_FILTERS,
        "Not supported (casevars has no process instances, deployments or case "
        "hierarchies): any value answers 400 naming the filter (Camunda applies it).",
    ),
}
_QUERY_FILTER_SCHEMAS: Json = {
    "tenantIdIn": {"type": "array", "items": {"type": "string"}},
    "withoutTenantId": {"type": "boolean"},
    "active": {"type": "boolean"},
    "completed": {"type": "boolean"},
    "terminated": {"type": "boolean"},
    "variableNamesIgnoreCase": {"type": "boolean"},
    "variableValuesIgnoreCase": {"type": "boolean"},
    "variables": {
        "type": "array",
        "items": {
            "type": "string",
            "pattern": f"^[^_,]*_(?:{'|'.join(QUERY_OPERATORS)})_[^_,]*$",
        },
    },
}


def _headers() -> Json:
    text = {"type": "string"}
    return {
        "X-Request-Id": {
            "description": (
                "The request's id, as logged: its own `X-Request-Id` when that is printable "
                "ASCII of up to 128 characters, else a new one."
            ),
            "required": True,
            "schema": text,
        },
        "WWW-Authenticate": {
            "description": 'Basic realm="casevars", Bearer realm="casevars"',
            "required": True,
            "schema": text,
        },
        "ETag": {
            "description": (
                "Strong ETag: the SHA-256 of the content in hex, quoted (casevars "
                "extension). Absent for a null value."
            ),
            "schema": text,
        },
        "Accept-Ranges": {"required": True, "schema": {"const": "bytes"}},
        "Content-Range": {
            "description": "`bytes first-last/size` (206) or `bytes */size` (416).",
            "required": True,
            "schema": text,
        },
        "Content-Disposition": {
            "description": (
                'File values only: `attachment; filename="{raw name}"; '
                "filename*=UTF-8''{percent-encoded name}` (`null` for a missing name), as "
                "Camunda writes it."
            ),
            "schema": text,
        },
    }


def _responses() -> Json:
    return {
        "Unauthorized": _error(
            "Authentication is on and the request has no valid credentials: "
            "`NotAuthorizedException`. Never answered with authentication off.",
            {"WWW-Authenticate": _ref("headers", "WWW-Authenticate")},
        ),
        "Unavailable": _error(
            "Postgres or S3 did not answer (within `CASEVARS_DB_TIMEOUT_SECONDS` / "
            "`CASEVARS_S3_TIMEOUT_SECONDS`): `RestException`. Safe to retry."
        ),
        "RequestTimeout": _error(
            "The client sent nothing for `CASEVARS_CLIENT_READ_TIMEOUT_SECONDS`: "
            "`RestException` `Upload aborted: ...`; the connection is closed and nothing "
            "is stored."
        ),
        "JsonTooLarge": _error(
            "The body is larger than `CASEVARS_MAX_JSON_BYTES` (refused as soon as the "
            "limit is crossed; a casevars limit)."
        ),
        "NotJson": _error("A body whose `Content-Type` is not JSON: `NotSupportedException`."),
    }


# --- operations -------------------------------------------------------------------------

_CASE_ID = _ref("parameters", "CaseInstanceId")
_NAME = _ref("parameters", "VariableName")
_BAD_JSON = (
    "A body that is not JSON of the expected shape: `InvalidRequestException` with an "
    "empty message, as Camunda answers it."
)
_WRITE_404 = (
    "Unknown case instance (Camunda: 400 or 500): `RestException` `{prefix}There does "
    "not exist any case execution with id: '{{id}}': caseExecution is null`, `code` 0. "
    "With `CASEVARS_AUTO_CREATE_CASE_INSTANCES=true` the instance is created instead."
)


def _body_errors() -> Json:
    return {
        "408": _ref("responses", "RequestTimeout"),
        "413": _ref("responses", "JsonTooLarge"),
        "415": _ref("responses", "NotJson"),
    }


def _health_paths() -> Json:
    no_auth: list[Json] = []
    return {
        "/health/live": {
            "get": _operation(
                "getLiveness",
                "Liveness",
                "200 while the process runs and its event loop answers. No credentials.",
                {"200": _json(_schema("Health"), '`{"status": "up"}`')},
                tags=("Operations",),
                security=no_auth,
            )
        },
        "/health/ready": {
            "get": _operation(
                "getReadiness",
                "Readiness",
                "200 when a Postgres query and an S3 HeadBucket both succeed. No credentials.",
                {
                    "200": _json(_schema("Health"), '`{"status": "up"}`'),
                    "503": _json(
                        _schema("Health"),
                        'Something did not answer, or the service is shutting down: `{"status": '
                        '"down", "failed": [...]}` (not the error format).',
                    ),
                },
                tags=("Operations",),
                security=no_auth,
            )
        },
        "/metrics": {
            "get": _operation(
                "getMetrics",
                "Prometheus metrics",
                "The Prometheus text exposition of the service's metrics. Needs credentials "
                "when authentication is on, unless `CASEVARS_METRICS_PUBLIC=true`.",
                {
                    "200": {
                        "description": (
                            "Prometheus text format (`text/plain; version=0.0.4`), or "
                            "OpenMetrics when the `Accept` header asks for it."
                        ),
                        "headers": _REQUEST_ID_HEADER,
                        "content": {
                            "text/plain": {"schema": {"type": "string"}},
                            "application/openmetrics-text": {"schema": {"type": "string"}},
                        },
                    },
                    "401": _ref("responses", "Unauthorized"),
                },
                tags=("Operations",),
            )
        },
        "/openapi.json": {
            "get": _operation(
                "getOpenApi",
                "This document",
                "The OpenAPI 3.1 document of the service.",
                {
                    "200": _json({"type": "object"}, "The document."),
                    "401": _ref("responses", "Unauthorized"),
                },
                tags=("Operations",),
            )
        },
    }


def _query_parameters(*, paging: bool) -> list[Json]:
    filters = [_ref("parameters", f"Filter-{name}") for name in _QUERY_FILTERS]
    if not paging:
        return filters
    return [
        *filters,
        _ref("parameters", "SortBy"),
        _ref("parameters", "SortOrder"),
        _ref("parameters", "FirstResult"),
        _ref("parameters", "MaxResults"),
    ]


_QUERY_400 = (
    "A filter or paging parameter Camunda refuses (`Cannot set query parameter '...' to "
    "value '...'`, `Only a single sorting parameter specified. sortBy and sortOrder "
    "required`, `Invalid variable comparator specified: ...`, `variable query parameter "
    "has to have format KEY_OPERATOR_VALUE.`, `Only string values can be used with 'like' "
    "condition`), an unsupported filter, or text containing "
    "NUL: `InvalidRequestException`."
)


def _case_paths() -> Json:
    tags = ("Case instances",)
    query_body = _json_body(
        _schema("CaseInstanceQuery"), "The query; no body is the empty query.", required=False
    )
    paging = [_ref("parameters", "FirstResult"), _ref("parameters", "MaxResults")]
    list_ok = _json(_schema("CaseInstanceList"), "The matching case instances, in order.")
    count_ok = _json(_schema("Count"), "How many case instances match.")
    case_ok = _json(_schema("CaseInstance"), "The case instance.")
    not_found = _errors(
        s404="Unknown case instance: `InvalidRequestException` `Case instance with id {id} "
        "does not exist.`"
    )
    return {
        "/case-instance": {
            "get": _operation(
                "queryCaseInstances",
                "Query case instances",
                "Case instances matching the filters, with paging and sorting.",
                {"200": list_ok, **_common(path=False), **_errors(s400=_QUERY_400)},
                parameters=_query_parameters(paging=True),
                tags=tags,
            ),
            "post": _operation(
                "queryCaseInstancesByBody",
                "Query case instances (JSON body)",
                "The same query with a JSON body (as in Camunda, a query, not a creation); "
                "`firstResult` and `maxResults` stay in the query string. Numbers and "
                "booleans in `variables` compare as such.",
                {
                    "200": list_ok,
                    **_common(body=True),
                    **_body_errors(),
                    **_errors(s400=f"{_QUERY_400} {_BAD_JSON}"),
                },
                parameters=paging,
                body=query_body,
                tags=tags,
            ),
        },
        "/case-instance/count": {
            "get": _operation(
                "countCaseInstances",
                "Count case instances",
                "How many case instances match the filters.",
                {"200": count_ok, **_common(path=False), **_errors(s400=_QUERY_400)},
                parameters=_query_parameters(paging=False),
                tags=tags,
            ),
            "post": _operation(
                "countCaseInstancesByBody",
                "Count case instances (JSON body)",
                "The count of the query given as a JSON body.",
                {
                    "200": count_ok,
                    **_common(body=True),
                    **_body_errors(),
                    **_errors(s400=f"{_QUERY_400} {_BAD_JSON}"),
                },
                body=query_body,
                tags=tags,
            ),
        },
        "/case-definition/key/{key}/create": {
            "post": _operation(
                "createCaseInstance",
                "Create a case instance",
                "Camunda's route, without a case definition (casevars has none): a new case "
                "instance with a generated id (a UUID), `caseDefinitionKey` = `{key}`, and "
                "its first variables, in one transaction. Bytes and File contents go to "
                "S3.",
                {
                    "200": _json(_schema("CaseInstance"), "The new case instance."),
                    **_common(body=True),
                    **_body_errors(),
                    **_errors(
                        s400="A variable Camunda refuses: the PUT's type and message with "
                        "the prefix `Cannot instantiate case definition {key}: `; nothing "
                        f"is created. {_BAD_JSON} A key or `businessKey` longer than "
                        f"{MAX_ID_LENGTH} characters or containing NUL."
                    ),
                },
                parameters=[_ref("parameters", "CaseDefinitionKey")],
                body=_json_body(
                    _schema("CreateCaseInstance"),
                    "The business key and variables; no body creates a bare instance.",
                    required=False,
                ),
                tags=tags,
            )
        },
        "/case-instance/{id}": {
            "get": _operation(
                "getCaseInstance",
                "Get a case instance",
                "The case instance.",
                {"200": case_ok, **_common(), **not_found},
                parameters=[_CASE_ID],
                tags=tags,
            ),
            "put": _operation(
                "putCaseInstance",
                "Create or update a case instance",
                "casevars extension (Camunda creates instances from CMMN definitions): "
                "creates the case instance with this id (201), or updates the fields the "
                "body gives (200). Idempotent.",
                {
                    "201": _json(_schema("CaseInstance"), "Created.", links=_case_links()),
                    "200": _json(
                        _schema("CaseInstance"),
                        "It existed; given fields updated.",
                        links=_case_links(),
                    ),
                    **_common(body=True),
                    **_body_errors(),
                    **_errors(
                        s400=f"{_BAD_JSON} An id or field longer than {MAX_ID_LENGTH} "
                        f"characters or containing NUL (`The businessKey is longer than "
                        f"{MAX_ID_LENGTH} characters`)."
                    ),
                },
                parameters=[_CASE_ID],
                body=_json_body(
                    _schema("CaseInstanceFields"), "Fields; no body is `{}`.", required=False
                ),
                tags=tags,
            ),
            "delete": _operation(
                "deleteCaseInstance",
                "Delete a case instance",
                "casevars extension (Camunda has no DELETE): the instance and all its "
                "variables go in one transaction; their S3 objects are collected after "
                "`CASEVARS_GC_GRACE_SECONDS`, so downloads already running finish.",
                {"204": _empty("Deleted."), **_common(), **not_found},
                parameters=[_CASE_ID],
                tags=tags,
            ),
        },
    }


def _case_links() -> Json:
    by_id = {"id": "$response.body#/id"}
    return {
        "GetCaseInstance": {"operationId": "getCaseInstance", "parameters": by_id},
        "GetVariables": {"operationId": "getVariables", "parameters": by_id},
        "ModifyVariables": {"operationId": "modifyVariables", "parameters": by_id},
        "PutVariable": {"operationId": "putVariable", "parameters": by_id},
        "UploadVariableData": {"operationId": "postVariableData", "parameters": by_id},
        "DeleteCaseInstance": {"operationId": "deleteCaseInstance", "parameters": by_id},
    }


def _variable_links() -> Json:
    same = {"id": "$request.path.id", "name": "$request.path.name"}
    return {
        "GetVariable": {"operationId": "getVariable", "parameters": same},
        "GetVariableData": {"operationId": "getVariableData", "parameters": same},
        "DeleteVariable": {"operationId": "deleteVariable", "parameters": same},
    }


_READ_404 = (
    "Unknown case instance (Camunda: 500): `RestException` `Cannot get case execution "
    "variable {name}: case execution {id} doesn't exist: caseExecution is null`, `code` "
    "0; or no such variable: `InvalidRequestException` `case execution variable with name "
    "{name} does not exist`."
)


def _variable_paths() -> Json:
    variable = "/case-instance/{id}/variables/{name}"
    return {
        "/case-instance/{id}/variables": {
            "get": _operation(
                "getVariables",
                "Get all variables",
                "Every variable of the case instance (`{}` when none), Bytes contents inline "
                "up to `CASEVARS_INLINE_BYTES_LIMIT`.",
                {
                    "200": _json(_schema("VariableMap"), "Variable name -> value object."),
                    **_common(),
                    **_errors(
                        s404="Unknown case instance (Camunda: 400): `NotFoundException` `case "
                        "execution {id} doesn't exist: caseExecution is null`, `code` 0."
                    ),
                },
                parameters=[_CASE_ID, _ref("parameters", "DeserializeValues")],
            ),
            "post": _operation(
                "modifyVariables",
                "Modify variables",
                "Modifications and deletions, all or nothing, in one transaction.",
                {
                    "204": _empty("Applied."),
                    **_common(body=True),
                    **_body_errors(),
                    **_errors(
                        s400="A modification Camunda refuses: `InvalidRequestException` "
                        "`Cannot modify variables for case execution: {message}` for "
                        "conversion errors, `RestException` `Cannot modify variables for "
                        "case execution {id}: {message}` for engine errors (including a name "
                        "both modified and deleted, Camunda: 500), `IllegalArgumentException` "
                        f"for File and `transient` mistakes (Camunda: 500). {_BAD_JSON}",
                        s404=_WRITE_404.format(
                            prefix="Cannot modify variables for case execution {id}: "
                        ),
                    ),
                },
                parameters=[_CASE_ID],
                body=_json_body(_schema("Modifications"), "The changes.", required=True),
            ),
        },
        variable: {
            "get": _operation(
                "getVariable",
                "Get a variable",
                "One value object.",
                {
                    "200": _json(_schema("VariableValue"), "The value object."),
                    **_common(),
                    **_errors(s404=_READ_404),
                },
                parameters=[_CASE_ID, _NAME, _ref("parameters", "DeserializeValue")],
            ),
            "put": _operation(
                "putVariable",
                "Set a variable",
                "Creates or replaces the variable (its type may change). Bytes and File "
                "contents go to S3. The value is checked before the case instance is "
                "looked up.",
                {
                    "204": _empty(
                        "Stored (or used and dropped, for a transient value).",
                        links=_variable_links(),
                    ),
                    **_common(body=True),
                    **_body_errors(),
                    **_errors(
                        s400="A value Camunda refuses: `InvalidRequestException` `Cannot put "
                        "case execution variable {name}: {message}` for conversion errors "
                        "(e.g. `Unsupported value type 'X'`), `RestException` with the same "
                        "prefix for engine errors (Camunda: 500 for serialized Objects "
                        "without `objectTypeName` or format, or in Java serialization), "
                        "`IllegalArgumentException` `Cannot create file without valueInfo.` "
                        "and similar (Camunda: 500); text containing NUL; an id or name "
                        f"longer than {MAX_ID_LENGTH} characters. {_BAD_JSON}",
                        s404=_WRITE_404.format(
                            prefix="Cannot put case execution variable {name}: "
                        ),
                    ),
                },
                parameters=[_CASE_ID, _NAME],
                body=_json_body(_schema("VariableValueIn"), "The value object.", required=True),
            ),
            "delete": _operation(
                "deleteVariable",
                "Delete a variable",
                "Deleting a variable that does not exist is not an error. A delete never "
                "creates a case instance.",
                {
                    "204": _empty("Deleted, or there was nothing to delete."),
                    **_common(),
                    **_errors(
                        s404="Unknown case instance (Camunda: 500): `RestException` `Cannot "
                        "delete case execution variable {name}: There does not exist any "
                        "case execution with id: '{id}': caseExecution is null`, `code` 0."
                    ),
                },
                parameters=[_CASE_ID, _NAME],
            ),
        },
        f"{variable}/data": {
            "get": _data_get("getVariableData", with_body=True),
            "head": _data_get("headVariableData", with_body=False),
            "post": _operation(
                "postVariableData",
                "Upload a binary variable",
                "Multipart upload of a Bytes or File value, or of a serialized object (with "
                "a `type` part). The `data` part is streamed to S3 while the form is read; "
                "the variable points at it only once the whole form is read and valid, so "
                "a failed upload leaves the previous value in place.",
                {
                    "204": _empty(
                        "Stored (or nothing stored, for JSON `null` or a transient File).",
                        links=_variable_links(),
                    ),
                    **_common(body=True),
                    "413": _error(
                        "The value is larger than `CASEVARS_MAX_UPLOAD_BYTES`, a serialized "
                        "object larger than `CASEVARS_MAX_JSON_BYTES`, more than "
                        f"{MAX_FORM_PARTS} parts, or another part larger than "
                        f"{MAX_TEXT_PART_BYTES} bytes; refused as soon as the limit is "
                        "crossed (the rest is not read)."
                    ),
                    "415": _error("Not `multipart/form-data`: `NotSupportedException`."),
                    **_errors(
                        s400="A form Camunda refuses: `RestException` `multipart/form-data "
                        "cannot be processed` (a broken form), `InvalidRequestException` "
                        "`Form part with name 'data' is missing` (Camunda: 500), `Form part "
                        "with name 'valueType' must have a text/plain value`, `Unrecognized "
                        "content type for serialized java type: ...`, `Could not deserialize "
                        "JSON object: ...` (Camunda: 500), `RestException` `Invalid mime type "
                        "given`, `Unsupported value type '...'` (also for non-binary value "
                        "types, which Camunda accepts), `IllegalArgumentException` for a File "
                        "without filename (Camunda: 500); an id or name longer than "
                        f"{MAX_ID_LENGTH} characters.",
                        s404="Unknown case instance (also when it is deleted during the "
                        "upload): Bytes and File `RestException` `Cannot put case execution "
                        "variable {name}: There does not exist any case execution with id: "
                        "'{id}': caseExecution is null` (Camunda: 500); with `type` "
                        "`NotFoundException` without the prefix (Camunda: 400); `code` 0. "
                        "The form is still read and checked first. With "
                        "`CASEVARS_AUTO_CREATE_CASE_INSTANCES=true` the instance is created "
                        "instead.",
                    ),
                },
                parameters=[_CASE_ID, _NAME],
                body={
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": _schema("UploadForm"),
                            "encoding": {
                                "data": {"contentType": "application/octet-stream"},
                                "type": {"contentType": "text/plain"},
                                "valueType": {"contentType": "text/plain"},
                            },
                        }
                    },
                },
            ),
        },
    }


def _data_get(operation_id: str, *, with_body: bool) -> Json:
    content = {"*/*": {"schema": {"type": "string", "format": "binary"}}} if with_body else None
    headers = {
        name: _ref("headers", name) for name in ("ETag", "Accept-Ranges", "Content-Disposition")
    }

    def binary(description: str, extra: Json | None = None) -> Json:
        response = _empty(description, {**headers, **(extra or {})})
        if content is not None:
            response["content"] = content
        return response

    range_header = {"Content-Range": _ref("headers", "Content-Range")}
    return _operation(
        operation_id,
        "Download a binary variable" if with_body else "Headers of a binary variable",
        "The raw content of a Bytes or File variable, streamed from S3. Bytes: "
        "`Content-Type: application/octet-stream`, no `Content-Disposition`. File: "
        "`Content-Type` = the stored `mimeType` (or `application/octet-stream`), "
        "followed by `; charset={encoding}` when an encoding is stored, and Camunda's "
        "`Content-Disposition`. Beyond Camunda: a strong `ETag`, `If-None-Match`, single "
        "byte ranges (`Range`, `If-Range`) and `HEAD`.",
        {
            "200": binary("The whole content (empty for a null value)."),
            "206": binary("The requested range.", range_header),
            "304": _empty(
                "`If-None-Match` names the current ETag.",
                {"ETag": _ref("headers", "ETag")},
            ),
            "416": _error(
                "No byte of the range exists: `InvalidRequestException`.",
                range_header,
            ),
            **_common(),
            "400": _error(
                "Not a Bytes or File variable: `InvalidRequestException` `Value of variable "
                "with id {id} is not a binary value.` (`{id}` is the case instance id); an id "
                f"or name longer than {MAX_ID_LENGTH} characters."
            ),
            **_errors(s404=_READ_404),
        },
        parameters=[
            _CASE_ID,
            _NAME,
            _ref("parameters", "Range"),
            _ref("parameters", "IfRange"),
            _ref("parameters", "IfNoneMatch"),
        ],
    )


# --- the document ------------------------------------------------------------------------


@functools.cache
def _built() -> Json:
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "casevars",
            "version": importlib.metadata.version("casevars"),
            "summary": "Camunda 7 REST API for case-instance variables, binary values in S3",
            "description": _DESCRIPTION,
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "tags": [
            {"name": "Variables", "description": "Camunda's case-instance variable routes."},
            {"name": "Case instances", "description": "Query, create, read and delete."},
            {"name": "Operations", "description": "Probes, metrics and this document."},
        ],
        # Credentials are optional: the empty requirement allows anonymous requests,
        # which is what the service accepts with authentication off.
        "security": [{"basicAuth": []}, {"bearerAuth": []}, {}],
        "paths": {**_health_paths(), **_case_paths(), **_variable_paths()},
        "components": {
            "schemas": _schemas(),
            "parameters": _parameters(),
            "headers": _headers(),
            "responses": _responses(),
            "securitySchemes": {
                "basicAuth": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "Users of the htpasswd file `CASEVARS_AUTH_FILE` "
                    "(bcrypt hashes).",
                },
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Tokens of the file `CASEVARS_AUTH_TOKENS_FILE`, one a line.",
                },
            },
        },
    }


def document() -> Json:
    """The OpenAPI document (a copy: callers may change it)."""
    return copy.deepcopy(_built())


@functools.cache
def _serialized() -> bytes:
    return orjson.dumps(_built())


async def serve(_request: web.Request) -> web.Response:
    """GET /openapi.json."""
    return web.Response(body=_serialized(), content_type="application/json")
