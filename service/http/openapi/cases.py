"""The case-instance routes of the OpenAPI document: queries and counts (in the query
string or as a JSON body), creation, read, update and delete, with their schemas,
filter and paging parameters."""

from __future__ import annotations

from service.camunda.queries import MAX_INTEGER, VARIABLE_OPERATORS
from service.http.cases import SORT_KEYS, UNSUPPORTED_FILTERS
from service.http.openapi.blocks import (
    BAD_JSON,
    CASE_ID,
    TEXT,
    Json,
    body_sort_properties,
    common,
    empty_response,
    errors,
    json_body,
    json_body_common,
    json_response,
    links,
    nullable,
    operation,
    parameter_refs,
    schema,
)
from service.http.openapi.components import values_in
from service.http.paths import MAX_ID_LENGTH
from service.http.query_params import MAX_QUERY_CONDITIONS, MAX_SORTING_ENTRIES, MAX_TENANT_IDS

_TAGS = ("Case instances",)
_SORT_ORDERS = {"enum": ["asc", "desc"]}


def schemas() -> Json:
    nullable_text = nullable(TEXT)
    # Stored case-instance fields are limited like ids.
    field = nullable({"type": "string", "maxLength": MAX_ID_LENGTH})
    flag = {"type": "boolean"}
    return {
        "CaseInstance": {
            "type": "object",
            "description": (
                "Camunda's CaseInstanceDto: every key is present, null where there is "
                "no value; one of `active`, `completed`, `terminated` is true (closed "
                "instances are history only)."
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
                "id": TEXT,
                "caseDefinitionId": nullable_text,
                "businessKey": nullable_text,
                "tenantId": nullable_text,
                "active": flag,
                "completed": flag,
                "terminated": flag,
            },
        },
        "CaseInstanceList": {"type": "array", "items": schema("CaseInstance")},
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
            "properties": {"businessKey": field, "variables": values_in()},
        },
        "CaseInstanceQuery": _query_body_schema(),
        "Count": {
            "type": "object",
            "required": ["count"],
            "properties": {"count": {"type": "integer", "minimum": 0}},
        },
    }


def _query_body_schema() -> Json:
    nullable_text = nullable(TEXT)
    flag = nullable({"type": "boolean"})
    properties: Json = {
        "caseInstanceId": nullable_text,
        "businessKey": nullable_text,
        "caseDefinitionKey": nullable_text,
        "caseDefinitionId": nullable_text,
        "tenantIdIn": nullable({"type": "array", "maxItems": MAX_TENANT_IDS, "items": TEXT}),
        "withoutTenantId": flag,
        "active": flag,
        "completed": flag,
        "terminated": flag,
        "variableNamesIgnoreCase": flag,
        "variableValuesIgnoreCase": flag,
        "variables": nullable(
            {
                "type": "array",
                "maxItems": MAX_QUERY_CONDITIONS,
                "items": {
                    "type": "object",
                    "required": ["name", "operator"],
                    "properties": {
                        "name": TEXT,
                        "operator": {"enum": list(VARIABLE_OPERATORS)},
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
        **body_sort_properties(SORT_KEYS),
        "sorting": nullable(
            {
                "type": "array",
                "maxItems": MAX_SORTING_ENTRIES,
                "items": {
                    "type": "object",
                    "required": ["sortBy", "sortOrder"],
                    "properties": {
                        "sortBy": {"enum": list(SORT_KEYS)},
                        "sortOrder": _SORT_ORDERS,
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
            "optional, other keys ignored. Of `active`, `completed` and `terminated` "
            "true, the last wins, as in Camunda; closed instances are never listed."
        ),
        "properties": properties,
    }


# --- parameters -------------------------------------------------------------------------


def paging_parameters() -> Json:
    """Paging and sorting in the query string."""
    index = {"type": "integer", "minimum": 0, "maximum": MAX_INTEGER}
    return {
        "FirstResult": {
            "name": "firstResult",
            "in": "query",
            "description": (
                "Index of the first result (default 0). Not a non-negative 32-bit "
                "integer: 400 `Cannot set query parameter 'firstResult' to value '...'` "
                "(Camunda: 404)."
            ),
            "schema": index,
        },
        "MaxResults": {
            "name": "maxResults",
            "in": "query",
            "description": "Most results to return (default: all). Refused like `firstResult`.",
            "schema": index,
        },
        "SortBy": {
            "name": "sortBy",
            "in": "query",
            "description": (
                "Only together with `sortOrder`, otherwise 400 `Only a single sorting "
                "parameter specified. sortBy and sortOrder required`."
            ),
            "schema": {"enum": list(SORT_KEYS)},
        },
        "SortOrder": {
            "name": "sortOrder",
            "in": "query",
            "description": "Only together with `sortBy`.",
            "schema": _SORT_ORDERS,
        },
    }


_FLAG_TEXT = "`true` in any letter case means true; anything else is no filter."
_QUERY_FILTERS = {
    "caseInstanceId": "Exactly this id.",
    "businessKey": "Exactly this business key.",
    "caseDefinitionKey": "Exactly this case definition key.",
    "caseDefinitionId": "Exactly this case definition id.",
    "tenantIdIn": f"A comma-separated list of at most {MAX_TENANT_IDS} tenant ids.",
    "withoutTenantId": f"Only instances without a tenant. {_FLAG_TEXT}",
    "active": f"Only active instances. {_FLAG_TEXT}",
    "completed": f"Only completed instances (wins over `active`). {_FLAG_TEXT}",
    "terminated": f"Only terminated instances (wins over the others). {_FLAG_TEXT}",
    "variables": (
        f"Comma-separated `name_operator_value` conditions (at most {MAX_QUERY_CONDITIONS}), "
        "operator one of "
        f"{', '.join(VARIABLE_OPERATORS)}. A value in the query string is text (or a date in "
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
_BOOLEAN_FILTERS = (
    "withoutTenantId",
    "active",
    "completed",
    "terminated",
    "variableNamesIgnoreCase",
    "variableValuesIgnoreCase",
)
_QUERY_FILTER_SCHEMAS: Json = {
    "tenantIdIn": {"type": "array", "maxItems": MAX_TENANT_IDS, "items": TEXT},
    **{name: {"type": "boolean"} for name in _BOOLEAN_FILTERS},
    "variables": {
        "type": "array",
        "maxItems": MAX_QUERY_CONDITIONS,
        "items": {
            "type": "string",
            "pattern": f"^[^_,]*_(?:{'|'.join(VARIABLE_OPERATORS)})_[^_,]*$",
        },
    },
}
# Lists in the query string are comma-separated, not repeated.
_LIST_FILTERS = frozenset({"tenantIdIn", "variables"})


def filter_parameters() -> Json:
    """The query-string filters of the GET queries, as `Filter-{name}`."""
    return {
        f"Filter-{name}": {
            "name": name,
            "in": "query",
            "description": description,
            "schema": _QUERY_FILTER_SCHEMAS.get(name, TEXT),
            **({"explode": False} if name in _LIST_FILTERS else {}),
        }
        for name, description in _QUERY_FILTERS.items()
    }


# --- paths ------------------------------------------------------------------------------

_QUERY_400 = (
    "A filter or paging parameter Camunda refuses (`Cannot set query parameter '...' to "
    "value '...'`, `Only a single sorting parameter specified. sortBy and sortOrder "
    "required`, `Invalid variable comparator specified: ...`, `variable query parameter "
    "has to have format KEY_OPERATOR_VALUE.`, `Only string values can be used with 'like' "
    "condition`), an unsupported filter, or text containing "
    "NUL: `InvalidRequestException`."
)


def _query(  # noqa: PLR0913 - an operation's texts, its answer and how it is asked
    operation_id: str,
    summary: str,
    description: str,
    ok: Json,
    *,
    paging: bool,
    by_body: bool,
) -> Json:
    """A query or count, its filters in the query string or (`by_body`) a JSON body;
    paging (`firstResult`, `maxResults`) stays in the query string, and sorting with it
    when the filters are there too."""
    paging_names = ("FirstResult", "MaxResults") if paging else ()
    if by_body:
        return operation(
            operation_id,
            summary,
            description,
            {"200": ok, **json_body_common(), **errors(s400=f"{_QUERY_400} {BAD_JSON}")},
            parameters=parameter_refs(*paging_names),
            body=json_body(
                schema("CaseInstanceQuery"),
                "The query; no body is the empty query.",
                required=False,
            ),
            tags=_TAGS,
        )
    filters = parameter_refs(*(f"Filter-{name}" for name in _QUERY_FILTERS))
    sorting = ("SortBy", "SortOrder") if paging else ()
    return operation(
        operation_id,
        summary,
        description,
        {"200": ok, **common(path=False), **errors(s400=_QUERY_400)},
        parameters=[*filters, *parameter_refs(*sorting, *paging_names)],
        tags=_TAGS,
    )


def _case_links() -> Json:
    return links(
        {"id": "$response.body#/id"},
        GetCaseInstance="getCaseInstance",
        GetVariables="getVariables",
        ModifyVariables="modifyVariables",
        PutVariable="putVariable",
        UploadVariableData="postVariableData",
        DeleteCaseInstance="deleteCaseInstance",
    )


def paths() -> Json:
    list_ok = json_response(schema("CaseInstanceList"), "The matching case instances, in order.")
    count_ok = json_response(schema("Count"), "How many case instances match.")
    not_found = errors(
        s404="Unknown or closed case instance: `InvalidRequestException` `Case instance "
        "with id {id} does not exist.`"
    )
    return {
        "/case-instance": {
            "get": _query(
                "queryCaseInstances",
                "Query case instances",
                "Case instances matching the filters, with paging and sorting.",
                list_ok,
                paging=True,
                by_body=False,
            ),
            "post": _query(
                "queryCaseInstancesByBody",
                "Query case instances (JSON body)",
                "The same query with a JSON body (as in Camunda, a query, not a creation); "
                "`firstResult` and `maxResults` stay in the query string. Numbers and "
                "booleans in `variables` compare as such.",
                list_ok,
                paging=True,
                by_body=True,
            ),
        },
        "/case-instance/count": {
            "get": _query(
                "countCaseInstances",
                "Count case instances",
                "How many case instances match the filters.",
                count_ok,
                paging=False,
                by_body=False,
            ),
            "post": _query(
                "countCaseInstancesByBody",
                "Count case instances (JSON body)",
                "The count of the query given as a JSON body.",
                count_ok,
                paging=False,
                by_body=True,
            ),
        },
        "/case-instance/{id}": {
            "get": operation(
                "getCaseInstance",
                "Get a case instance",
                "The case instance.",
                {
                    "200": json_response(schema("CaseInstance"), "The case instance."),
                    **common(),
                    **not_found,
                },
                parameters=[CASE_ID],
                tags=_TAGS,
            ),
            "put": operation(
                "putCaseInstance",
                "Create or update a case instance",
                "casevars extension (Camunda creates instances from CMMN definitions): "
                "creates the case instance with this id (201), or updates the fields the "
                "body gives (200). Idempotent.",
                {
                    "201": json_response(schema("CaseInstance"), "Created.", links=_case_links()),
                    "200": json_response(
                        schema("CaseInstance"),
                        "It existed; given fields updated.",
                        links=_case_links(),
                    ),
                    **json_body_common(),
                    **errors(
                        s400=f"{BAD_JSON} An id or field longer than {MAX_ID_LENGTH} "
                        f"characters or containing NUL (`The businessKey is longer than "
                        f"{MAX_ID_LENGTH} characters`).",
                        s409="The id is a closed case instance's, kept for history until "
                        "its time to live passes: `InvalidRequestException`.",
                    ),
                },
                parameters=[CASE_ID],
                body=json_body(
                    schema("CaseInstanceFields"), "Fields; no body is `{}`.", required=False
                ),
                tags=_TAGS,
            ),
            "delete": operation(
                "deleteCaseInstance",
                "Delete a case instance",
                "casevars extension (Camunda has no DELETE): the instance and all its "
                "variables go in one transaction; their S3 objects are collected after "
                "`CASEVARS_GC_GRACE_SECONDS`, so downloads already running finish.",
                {"204": empty_response("Deleted."), **common(), **not_found},
                parameters=[CASE_ID],
                tags=_TAGS,
            ),
        },
    }
