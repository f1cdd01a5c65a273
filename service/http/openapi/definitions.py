"""The case-definition routes of the OpenAPI document: creating a case instance from a
key, a key and tenant, or the definition id that instances report."""

from __future__ import annotations

from service.http.definitions import SORT_KEYS
from service.http.openapi.blocks import (
    BAD_JSON,
    TEXT,
    Json,
    common,
    empty_response,
    errors,
    json_body,
    json_body_common,
    json_response,
    nullable,
    operation,
    parameter_refs,
    schema,
)
from service.http.paths import MAX_ID_LENGTH
from service.http.query_params import MAX_LISTED_IDS, MAX_TENANT_IDS

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


def schemas() -> Json:
    return {
        "CaseDefinition": {
            "type": "object",
            "description": "Camunda's CaseDefinitionDto of a recorded key: version 1, no "
            "CMMN resource, name, category or deployment.",
            "required": [
                "id",
                "key",
                "category",
                "name",
                "version",
                "resource",
                "deploymentId",
                "tenantId",
                "historyTimeToLive",
            ],
            "properties": {
                "id": TEXT,
                "key": TEXT,
                "category": {"type": "null"},
                "name": {"type": "null"},
                "version": {"const": 1},
                "resource": {"type": "null"},
                "deploymentId": {"type": "null"},
                "tenantId": nullable(TEXT),
                "historyTimeToLive": nullable({"type": "integer", "minimum": 0}),
            },
        },
        "CaseDefinitionList": {"type": "array", "items": schema("CaseDefinition")},
        "CaseDefinitionDiagram": {
            "type": "object",
            "description": "Camunda's CaseDefinitionDiagramDto: the definition's CMMN 1.1 "
            "document. casevars deploys no models: one case whose id is the key (a key "
            "that is no XML NCName gets a derived id and is the case's `name`), an empty "
            "case plan model, and `camunda:historyTimeToLive` when one is set.",
            "required": ["id", "cmmnXml"],
            "properties": {"id": TEXT, "cmmnXml": TEXT},
        },
        "HistoryTimeToLive": {
            "type": "object",
            "description": "Camunda's HistoryTimeToLiveDto; other keys are ignored.",
            "properties": {
                "historyTimeToLive": nullable(
                    {"type": "integer", "minimum": -2147483648, "maximum": 2147483647}
                )
            },
        },
    }


_FLAG = "`true` in any letter case means true; anything else is no filter."
_NONE = "casevars definitions have none: any value finds nothing."
_FILTERS: dict[str, tuple[str, Json]] = {
    "caseDefinitionId": ("Exactly this id.", TEXT),
    "caseDefinitionIdIn": (
        f"A comma-separated list of at most {MAX_LISTED_IDS} ids.",
        {"type": "array", "maxItems": MAX_LISTED_IDS, "items": TEXT},
    ),
    "key": ("Exactly this key.", TEXT),
    "keyLike": ("Keys LIKE this (`%` and `_` wildcards).", TEXT),
    "tenantIdIn": (
        f"A comma-separated list of at most {MAX_TENANT_IDS} tenant ids.",
        {"type": "array", "maxItems": MAX_TENANT_IDS, "items": TEXT},
    ),
    "withoutTenantId": (f"Only definitions without a tenant. {_FLAG}", {"type": "boolean"}),
    "includeCaseDefinitionsWithoutTenantId": (
        f"With `tenantIdIn`: also those without a tenant. {_FLAG}",
        {"type": "boolean"},
    ),
    "version": (
        "Every casevars definition is version 1: another integer finds nothing.",
        {"type": "integer", "minimum": -2147483648, "maximum": 2147483647},
    ),
    "latest": ("Every definition is its key's latest: no filter.", {"type": "boolean"}),
    "latestVersion": ("Every definition is its key's latest: no filter.", {"type": "boolean"}),
    **dict.fromkeys(
        (
            "category",
            "categoryLike",
            "name",
            "nameLike",
            "deploymentId",
            "resourceName",
            "resourceNameLike",
        ),
        (_NONE, TEXT),
    ),
}
_LISTS = frozenset({"caseDefinitionIdIn", "tenantIdIn"})
_QUERY_400 = (
    "A filter, sorting or paging parameter Camunda refuses (`Cannot set query parameter "
    "'...' to value '...'`, `Only a single sorting parameter specified. sortBy and "
    "sortOrder required`), or text containing NUL: `InvalidRequestException`."
)


def _query_parameters(*, listing: bool) -> list[Json]:
    found: list[Json] = [
        {
            "name": name,
            "in": "query",
            "description": text,
            "schema": value,
            **({"explode": False} if name in _LISTS else {}),
        }
        for name, (text, value) in _FILTERS.items()
    ]
    if listing:
        found += [
            {
                "name": "sortBy",
                "in": "query",
                "description": "Only together with `sortOrder`.",
                "schema": {"enum": list(SORT_KEYS)},
            },
            {
                "name": "sortOrder",
                "in": "query",
                "description": "Only together with `sortBy`.",
                "schema": {"enum": ["asc", "desc"]},
            },
            *parameter_refs("FirstResult", "MaxResults"),
        ]
    return found


def _read_paths(tenant: Json, definition: Json) -> Json:
    found = json_response(schema("CaseDefinition"), "The case definition.")
    by_key_404 = (
        "No definition recorded for the key (and tenant): `RestException` `No matching case "
        "definition with key: {key} and no tenant-id` (`and tenant-id: {tenantId}`)."
    )
    return {
        "/case-definition": {
            "get": operation(
                "queryCaseDefinitions",
                "Query case definitions",
                "The recorded case definitions (one per key and tenant) matching the filters.",
                {
                    "200": json_response(schema("CaseDefinitionList"), "In order."),
                    **common(path=False),
                    **errors(s400=_QUERY_400),
                },
                parameters=_query_parameters(listing=True),
                tags=_TAGS,
            )
        },
        "/case-definition/count": {
            "get": operation(
                "countCaseDefinitions",
                "Count case definitions",
                "How many recorded case definitions match the filters.",
                {
                    "200": json_response(schema("Count"), "How many match."),
                    **common(path=False),
                    **errors(s400=_QUERY_400),
                },
                parameters=_query_parameters(listing=False),
                tags=_TAGS,
            )
        },
        "/case-definition/{id}": {
            "get": operation(
                "getCaseDefinition",
                "Get a case definition",
                "The recorded case definition with this id.",
                {
                    "200": found,
                    **common(),
                    **errors(
                        s404="No definition has this id: `InvalidRequestException` `no "
                        "deployed case definition found with id '{id}': caseDefinition is "
                        "null`, `code` 0."
                    ),
                },
                parameters=[definition],
                tags=_TAGS,
            )
        },
        "/case-definition/key/{key}": {
            "get": operation(
                "getCaseDefinitionByKey",
                "Get the case definition of a key",
                "The key's definition without tenant.",
                {"200": found, **common(), **errors(s404=by_key_404)},
                parameters=parameter_refs("CaseDefinitionKey"),
                tags=_TAGS,
            )
        },
        "/case-definition/key/{key}/tenant-id/{tenantId}": {
            "get": operation(
                "getCaseDefinitionByKeyAndTenantId",
                "Get the case definition of a key of a tenant",
                "The tenant's definition of the key.",
                {"200": found, **common(), **errors(s404=by_key_404)},
                parameters=[*parameter_refs("CaseDefinitionKey"), tenant],
                tags=_TAGS,
            )
        },
    }


def _by_key_404() -> str:
    return (
        "No definition recorded for the key (and tenant): `RestException` `No matching case "
        "definition with key: {key} and no tenant-id` (`and tenant-id: {tenantId}`)."
    )


_ID_404 = (
    "No definition has this id: `InvalidRequestException` `no deployed case definition "
    "found with id '{id}': caseDefinition is null`, `code` 0."
)
_TTL = (
    "Sets the definition's history time to live in days, as Camunda keeps it per "
    "definition: the collector removes its closed case instances, with their variables "
    "and blobs, that many days after they closed; `null` goes back to "
    "`CASEVARS_HISTORY_TTL_SECONDS`. The definition's `historyTimeToLive` shows it."
)


def _extra_paths(forms: list[tuple[str, str, list[Json], str]]) -> Json:
    """GET .../xml and PUT .../history-time-to-live of each way to name a definition:
    (path, operation id suffix, parameters, what the 404 says)."""
    found: Json = {}
    for path, suffix, parameters, not_found in forms:
        found[f"{path}/xml"] = {
            "get": operation(
                f"getCaseDefinitionCmmnXml{suffix}",
                "Get the CMMN document of a case definition",
                "Camunda's `{id, cmmnXml}`: the document casevars writes for the definition "
                "(it deploys no models).",
                {
                    "200": json_response(schema("CaseDefinitionDiagram"), "The document."),
                    **common(),
                    **errors(s404=not_found),
                },
                parameters=parameters,
                tags=_TAGS,
            )
        }
        found[f"{path}/diagram"] = {
            "get": operation(
                f"getCaseDefinitionDiagram{suffix}",
                "Get the diagram of a case definition",
                "Camunda answers 204 for a definition deployed without a diagram, as every "
                "casevars definition is.",
                {
                    "204": empty_response("No diagram."),
                    **common(),
                    **errors(
                        s404=not_found.replace("`InvalidRequestException`", "`NotFoundException`")
                    ),
                },
                parameters=parameters,
                tags=_TAGS,
            )
        }
        found[f"{path}/history-time-to-live"] = {
            "put": operation(
                f"updateHistoryTimeToLive{suffix}",
                "Set the history time to live of a case definition",
                _TTL,
                {
                    "204": empty_response("Set."),
                    **json_body_common(),
                    **errors(
                        s400=f"A negative number: `BadUserRequestException` "
                        "`historyTimeToLive is not greater than or equal to 0`, `code` 0. "
                        f"{BAD_JSON} An id, key or tenant id longer than {MAX_ID_LENGTH} "
                        "characters or containing NUL.",
                        s404=not_found,
                    ),
                },
                parameters=parameters,
                body=json_body(
                    schema("HistoryTimeToLive"),
                    "The days, or null; no body is null.",
                    required=False,
                ),
                tags=_TAGS,
            )
        }
    return found


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
    key = parameter_refs("CaseDefinitionKey")
    return {
        **_read_paths(tenant, definition),
        **_extra_paths(
            [
                ("/case-definition/{id}", "", [definition], _ID_404),
                ("/case-definition/key/{key}", "ByKey", key, _by_key_404()),
                (
                    "/case-definition/key/{key}/tenant-id/{tenantId}",
                    "ByKeyAndTenantId",
                    [*key, tenant],
                    _by_key_404(),
                ),
            ]
        ),
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
