"""The case-definition routes of the OpenAPI document: creating a case instance from a
key, a key and tenant, or the definition id that instances report."""

from __future__ import annotations

from service.http.openapi.blocks import (
    BAD_JSON,
    Json,
    errors,
    json_body,
    json_body_common,
    json_response,
    operation,
    parameter_refs,
    schema,
)
from service.http.paths import MAX_ID_LENGTH

_TAGS = ("Case instances",)
_IDENTIFIER = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH}
_CREATED = (
    "A new case instance with a generated id (a UUID) and its first variables, in one "
    "transaction; Bytes and File contents go to S3. casevars has no CMMN models: a key "
    "(per tenant) is one definition, version 1, recorded on first use; its id, "
    "`{key}:1:{uuid}` (the UUID alone when that would pass 64 characters, as Camunda "
    "does), is the same every time and is the instance's `caseDefinitionId`."
)


def _refused(extra: str = "") -> str:
    return (
        "A variable Camunda refuses: the PUT's type and message with the prefix `Cannot "
        "instantiate case definition {definitionId}: `; nothing is created. "
        f"{BAD_JSON} A key, tenant id or `businessKey` longer than {MAX_ID_LENGTH} "
        f"characters or containing NUL.{extra}"
    )


def _create(
    operation_id: str,
    summary: str,
    description: str,
    parameters: list[Json],
    more: Json | None = None,
) -> Json:
    return {
        "post": operation(
            operation_id,
            summary,
            description,
            {
                "200": json_response(schema("CaseInstance"), "The new case instance."),
                **json_body_common(),
                **errors(s400=_refused()),
                **(more or {}),
            },
            parameters=parameters,
            body=json_body(
                schema("CreateCaseInstance"),
                "The business key and variables (other keys are ignored); no body creates "
                "a bare instance.",
                required=False,
            ),
            tags=_TAGS,
        )
    }


def paths() -> Json:
    tenant = {
        "name": "tenantId",
        "in": "path",
        "required": True,
        "description": "The tenant id, the new instance's `tenantId`.",
        "schema": _IDENTIFIER,
        "example": "acme",
    }
    definition = {
        "name": "id",
        "in": "path",
        "required": True,
        "description": "A case definition id a case instance reported as `caseDefinitionId`.",
        "schema": _IDENTIFIER,
        "example": "invoice:1:0b5ad4a3-3b5e-5c4e-9d61-2f6d0f4c7a10",
    }
    return {
        "/case-definition/key/{key}/create": _create(
            "createCaseInstanceByKey",
            "Create a case instance from a key",
            f"{_CREATED} The definition of the key without tenant.",
            parameters=parameter_refs("CaseDefinitionKey"),
        ),
        "/case-definition/key/{key}/tenant-id/{tenantId}/create": _create(
            "createCaseInstanceByKeyAndTenantId",
            "Create a case instance from a key of a tenant",
            f"{_CREATED} The definition of the key for the tenant; `tenantId` is set.",
            parameters=[*parameter_refs("CaseDefinitionKey"), tenant],
        ),
        "/case-definition/{id}/create": _create(
            "createCaseInstanceById",
            "Create a case instance from a definition id",
            f"{_CREATED} The key and tenant of the definition with this id.",
            parameters=[definition],
            more=errors(
                s404="No case definition has this id (none was recorded by a creation "
                "from a key): `InvalidRequestException`, `Cannot instantiate case "
                "definition {id}: no deployed case definition found with id '{id}': "
                "caseDefinition is null`."
            ),
        ),
    }
