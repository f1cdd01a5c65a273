"""Building blocks of the OpenAPI document: references, responses, operation objects
and the texts several routes share."""

from __future__ import annotations

from typing import Any

from service.http.paths import MAX_ID_LENGTH

Json = dict[str, Any]

TEXT: Json = {"type": "string"}


def ref(kind: str, name: str) -> Json:
    return {"$ref": f"#/components/{kind}/{name}"}


def schema(name: str) -> Json:
    return ref("schemas", name)


def nullable(schema: Json) -> Json:
    return {"anyOf": [schema, {"type": "null"}]}


def parameter_refs(*names: str) -> list[Json]:
    return [ref("parameters", name) for name in names]


def body_sort_properties(sort_keys: Any) -> Json:
    """The top-level `sortBy` and `sortOrder` of a query body, applied before the
    `sorting` list, as in Camunda's query DTOs."""
    both = "Both or neither (else 400); applied before the `sorting` entries."
    return {
        "sortBy": {**nullable({"enum": list(sort_keys)}), "description": both},
        "sortOrder": {**nullable({"enum": ["asc", "desc"]}), "description": both},
    }


REQUEST_ID_HEADER = {"X-Request-Id": ref("headers", "X-Request-Id")}
CASE_ID = ref("parameters", "CaseInstanceId")
NAME = ref("parameters", "VariableName")
BAD_JSON = (
    "A body that is not JSON of the expected shape: `InvalidRequestException` with an "
    "empty message, as Camunda answers it."
)


def empty_response(description: str, headers: Json | None = None, **extra: Any) -> Json:
    """A response without a JSON body (`extra` may still give its content)."""
    return {
        "description": description,
        "headers": {**REQUEST_ID_HEADER, **(headers or {})},
        **extra,
    }


def json_response(
    schema: Json, description: str, headers: Json | None = None, **extra: Any
) -> Json:
    return empty_response(
        description, headers, content={"application/json": {"schema": schema}}, **extra
    )


def error(description: str, headers: Json | None = None) -> Json:
    return json_response(schema("Error"), description, headers)


def errors(**described: str) -> Json:
    """Error responses by status (keyword s400 -> "400") with route-specific texts."""
    return {name.removeprefix("s"): error(text) for name, text in described.items()}


def common(*, body: bool = False, path: bool = True) -> Json:
    """The error responses every route of a kind can answer."""
    responses: Json = {
        "401": ref("responses", "Unauthorized"),
        "503": ref("responses", "Unavailable"),
    }
    if body:
        responses["408"] = ref("responses", "RequestTimeout")
    if path and not body:
        responses["400"] = error(
            f"An id or name longer than {MAX_ID_LENGTH} characters, or one containing NUL."
        )
    return responses


def json_body_common() -> Json:
    """The error responses of every route that reads a JSON body."""
    return {
        **common(body=True),
        "413": ref("responses", "JsonTooLarge"),
        "415": ref("responses", "NotJson"),
    }


def operation(  # noqa: PLR0913 - the fields of an OpenAPI operation object
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


def json_body(schema: Json, description: str, *, required: bool) -> Json:
    return {
        "description": description,
        "required": required,
        "content": {"application/json": {"schema": schema}},
    }


def links(parameters: Json, **operation_ids: str) -> Json:
    """OpenAPI links by name, each to an operation with the same parameters."""
    return {
        name: {"operationId": operation_id, "parameters": parameters}
        for name, operation_id in operation_ids.items()
    }
