"""The components every kind of route shares: the error and value-object schemas, the
path parameters, the request-id and authentication headers, the common error
responses."""

from __future__ import annotations

from service.camunda.values import MAX_FILE_INFO_LENGTH, TYPE_NAMES
from service.http.openapi.blocks import TEXT, Json, error, nullable, ref, schema
from service.http.paths import MAX_ID_LENGTH, MAX_NAME_LENGTH
from service.http.variables import MAX_DELETIONS, MAX_MODIFICATIONS

# The example path values: tests/test_openapi.py creates these before schemathesis runs.
EXAMPLE_CASE_ID = "order-4711"
EXAMPLE_VARIABLE = "invoice"
EXAMPLE_KEY = "claims"


def _lower_first(type_name: str) -> str:
    """Camunda looks type names up after lower-casing their first letter only."""
    return type_name[0].lower() + type_name[1:]


def values_in() -> Json:
    """A map of variable names to value objects, as request bodies give it."""
    return nullable(
        {
            "type": "object",
            "maxProperties": MAX_MODIFICATIONS,
            "additionalProperties": schema("VariableValueIn"),
        }
    )


def error_schema() -> Json:
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
                "type": TEXT,
                "message": TEXT,
                "code": nullable({"type": "integer"}),
            },
        },
    }


def value_schemas() -> Json:
    return {
        "ValueInfoIn": {
            "type": "object",
            "description": (
                "Per type: File takes `filename` (required), `mimeType`, `encoding`; "
                "Object takes `objectTypeName` and `serializationDataFormat`; every type "
                "takes `transient` (a boolean: the value is used for this request only "
                "and never stored). Other keys are ignored. A File's `mimeType` is "
                "`type/subtype` of RFC 9110 tokens without parameters, its `encoding` a "
                "token, its `filename` free of control characters (they become download "
                "headers; 400 `IllegalArgumentException` otherwise)."
            ),
            "properties": {
                "filename": {"type": "string", "maxLength": MAX_FILE_INFO_LENGTH},
                "mimeType": {"type": "string", "maxLength": MAX_FILE_INFO_LENGTH},
                "encoding": {"type": "string", "maxLength": MAX_FILE_INFO_LENGTH},
                "objectTypeName": TEXT,
                "serializationDataFormat": TEXT,
                "transient": {"type": "boolean"},
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
                "type": nullable({"enum": [*TYPE_NAMES, *map(_lower_first, TYPE_NAMES)]}),
                "valueInfo": nullable(schema("ValueInfoIn")),
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
                        "filename": TEXT,
                        "mimeType": TEXT,
                        "encoding": TEXT,
                        "objectTypeName": TEXT,
                        "serializationDataFormat": TEXT,
                        "size": {"type": "integer", "minimum": 0},
                        "dataUrl": TEXT,
                    },
                },
            },
        },
        "VariableMap": {
            "type": "object",
            "description": "Variable name -> value object.",
            "additionalProperties": schema("VariableValue"),
        },
        "Modifications": {
            "type": "object",
            "description": (
                "Both keys are optional; `{}` changes nothing. Every modification is "
                "converted before anything changes; then deletions and modifications are "
                "applied in one transaction. Deleting a name that does not exist is fine."
            ),
            "properties": {
                "modifications": values_in(),
                "deletions": nullable({"type": "array", "maxItems": MAX_DELETIONS, "items": TEXT}),
            },
        },
    }


def path_parameters() -> Json:
    identifier = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH}
    return {
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
    }


def headers() -> Json:
    return {
        "X-Request-Id": {
            "description": (
                "The request's id, as logged: its own `X-Request-Id` when that is printable "
                "ASCII of up to 128 characters, else a new one."
            ),
            "required": True,
            "schema": TEXT,
        },
        "WWW-Authenticate": {
            "description": 'Basic realm="casevars", Bearer realm="casevars"',
            "required": True,
            "schema": TEXT,
        },
    }


def responses() -> Json:
    return {
        "Unauthorized": error(
            "Authentication is on and the request has no valid credentials: "
            "`NotAuthorizedException`. Never answered with authentication off.",
            {"WWW-Authenticate": ref("headers", "WWW-Authenticate")},
        ),
        "Unavailable": error(
            "Postgres or S3 did not answer (within `CASEVARS_DB_TIMEOUT_SECONDS` / "
            "`CASEVARS_S3_TIMEOUT_SECONDS`): `RestException`. Safe to retry."
        ),
        "RequestTimeout": error(
            "The client sent nothing for `CASEVARS_CLIENT_READ_TIMEOUT_SECONDS`: "
            "`RestException` `Upload aborted: ...`; the connection is closed and nothing "
            "is stored."
        ),
        "JsonTooLarge": error(
            "The body is larger than `CASEVARS_MAX_JSON_BYTES` (refused as soon as the "
            "limit is crossed; a casevars limit)."
        ),
        "NotJson": error("A body whose `Content-Type` is not JSON: `NotSupportedException`."),
    }
