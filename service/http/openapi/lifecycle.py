"""The case life cycle in the OpenAPI document: the transitions (complete, close,
terminate) with Camunda's trigger body, and the historic case-instance routes with
their DTO, query body and query-string filters."""

from __future__ import annotations

from service.http.history_cases import SORT_KEYS, UNSUPPORTED_FILTERS
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
    nullable,
    operation,
    parameter_refs,
    schema,
)
from service.http.openapi.components import values_in
from service.http.paths import MAX_ID_LENGTH
from service.http.query_params import (
    MAX_LISTED_IDS,
    MAX_QUERY_CONDITIONS,
    MAX_SORTING_ENTRIES,
    MAX_TENANT_IDS,
)
from service.http.variables import MAX_DELETIONS

_TAGS = ("Case instances",)
_HISTORY_TAGS = ("Historic case instances",)
_SORT_ORDERS = {"enum": ["asc", "desc"]}
_DATE = {
    "type": "string",
    "description": "`yyyy-MM-dd'T'HH:mm:ss.SSSZ`",
    "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{4}$",
}
_FLAG_TEXT = "`true` in any letter case means true; anything else is no filter."
_STATES = ("active", "completed", "terminated", "closed")


def tags() -> list[Json]:
    return [
        {
            "name": "Historic case instances",
            "description": "Every case instance, closed ones included until the history "
            "time to live.",
        }
    ]


def schemas() -> Json:
    flag = {"type": "boolean"}
    nullable_text = nullable(TEXT)
    return {
        "CaseExecutionTrigger": {
            "type": "object",
            "description": (
                "Camunda's CaseExecutionTriggerDto; other keys are ignored. `deletions` "
                "are applied before `variables`, both in the transition's transaction. "
                "`local` changes nothing: a case instance's own variables are its local ones."
            ),
            "properties": {
                "variables": values_in(),
                "deletions": nullable(
                    {
                        "type": "array",
                        "maxItems": MAX_DELETIONS,
                        "items": {
                            "type": "object",
                            "description": "Camunda's VariableNameDto; other keys are ignored.",
                            "properties": {
                                "name": nullable({"type": "string", "maxLength": MAX_ID_LENGTH}),
                                "local": nullable(flag),
                            },
                        },
                    }
                ),
            },
        },
        "HistoricCaseInstance": {
            "type": "object",
            "description": (
                "Camunda's HistoricCaseInstanceDto: every key present; definition names, "
                "creating users and case hierarchies are null (casevars records none). "
                "`closeTime` and `durationInMillis` are set once the instance is closed; "
                "exactly one of the four state flags is true."
            ),
            "required": [
                "id",
                "businessKey",
                "caseDefinitionId",
                "caseDefinitionKey",
                "caseDefinitionName",
                "createTime",
                "closeTime",
                "durationInMillis",
                "createUserId",
                "superCaseInstanceId",
                "superProcessInstanceId",
                "tenantId",
                *_STATES,
            ],
            "properties": {
                "id": TEXT,
                "businessKey": nullable_text,
                "caseDefinitionId": nullable_text,
                "caseDefinitionKey": nullable_text,
                "caseDefinitionName": {"type": "null"},
                "createTime": _DATE,
                "closeTime": nullable(_DATE),
                "durationInMillis": nullable({"type": "integer", "minimum": 0}),
                "createUserId": {"type": "null"},
                "superCaseInstanceId": {"type": "null"},
                "superProcessInstanceId": {"type": "null"},
                "tenantId": nullable_text,
                **dict.fromkeys(_STATES, flag),
            },
        },
        "HistoricCaseInstanceList": {"type": "array", "items": schema("HistoricCaseInstance")},
        "HistoricCaseInstanceQuery": _query_body_schema(),
    }


def _query_body_schema() -> Json:
    nullable_text = nullable(TEXT)
    flag = nullable({"type": "boolean"})
    date = nullable({"anyOf": [_DATE, {"type": "integer", "description": "ms since 1970"}]})
    ids = nullable({"type": "array", "maxItems": MAX_LISTED_IDS, "items": TEXT})
    properties: Json = {
        "caseInstanceId": nullable_text,
        "caseInstanceIds": nullable(
            {"type": "array", "minItems": 1, "maxItems": MAX_LISTED_IDS, "items": TEXT}
        ),
        "caseInstanceBusinessKey": nullable_text,
        "caseInstanceBusinessKeyLike": nullable_text,
        "caseDefinitionKey": nullable_text,
        "caseDefinitionKeyNotIn": ids,
        "caseDefinitionId": nullable_text,
        "tenantIdIn": nullable({"type": "array", "maxItems": MAX_TENANT_IDS, "items": TEXT}),
        "withoutTenantId": flag,
        **dict.fromkeys(_STATES, flag),
        "notClosed": flag,
        **dict.fromkeys(("createdBefore", "createdAfter", "closedBefore", "closedAfter"), date),
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
                        "operator": TEXT,
                        "value": {"type": ["string", "number", "boolean", "null"]},
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
                    "properties": {"sortBy": {"enum": list(SORT_KEYS)}, "sortOrder": _SORT_ORDERS},
                },
            }
        ),
    }
    for name in UNSUPPORTED_FILTERS:
        properties[name] = {"description": "Not supported: any value other than null answers 400."}
    return {
        "type": "object",
        "description": (
            "Camunda's HistoricCaseInstanceQueryDto: filters combined with AND, every key "
            "optional, other keys ignored. At most one state flag may be true, and a close "
            "time asks for closed instances (a second state: 400 `NotValidException`)."
        ),
        "properties": properties,
    }


# --- query-string filters ---------------------------------------------------------------

_FILTERS = {
    "caseInstanceId": ("Exactly this id.", TEXT),
    "caseInstanceIds": (
        f"A comma-separated list of at most {MAX_LISTED_IDS} ids.",
        {"type": "array", "maxItems": MAX_LISTED_IDS, "items": TEXT},
    ),
    "caseInstanceBusinessKey": ("Exactly this business key.", TEXT),
    "caseInstanceBusinessKeyLike": ("Business keys matching this LIKE pattern.", TEXT),
    "caseDefinitionKey": ("Exactly this case definition key.", TEXT),
    "caseDefinitionKeyNotIn": (
        "Comma-separated keys; instances with none of them (and with a key).",
        {"type": "array", "maxItems": MAX_LISTED_IDS, "items": TEXT},
    ),
    "caseDefinitionId": ("Exactly this case definition id.", TEXT),
    "tenantIdIn": (
        f"A comma-separated list of at most {MAX_TENANT_IDS} tenant ids.",
        {"type": "array", "maxItems": MAX_TENANT_IDS, "items": TEXT},
    ),
    "withoutTenantId": (f"Only instances without a tenant. {_FLAG_TEXT}", {"type": "boolean"}),
    **{
        state: (f"Only {state} instances; one state at most. {_FLAG_TEXT}", {"type": "boolean"})
        for state in _STATES
    },
    "notClosed": (f"Only instances not closed. {_FLAG_TEXT}", {"type": "boolean"}),
    "createdBefore": ("Created at or before this time.", _DATE),
    "createdAfter": ("Created at or after this time.", _DATE),
    "closedBefore": ("Closed at or before this time (so closed).", _DATE),
    "closedAfter": ("Closed at or after this time (so closed).", _DATE),
    "variables": (
        (
            f"Comma-separated `name_operator_value` conditions (at most "
            f"{MAX_QUERY_CONDITIONS}); a value in the query string is text (or a date in the "
            "REST format)."
        ),
        {"type": "array", "maxItems": MAX_QUERY_CONDITIONS, "items": TEXT},
    ),
    "variableNamesIgnoreCase": (f"Compare names ignoring case. {_FLAG_TEXT}", {"type": "boolean"}),
    "variableValuesIgnoreCase": (
        f"Compare text values ignoring case. {_FLAG_TEXT}",
        {"type": "boolean"},
    ),
    **dict.fromkeys(
        UNSUPPORTED_FILTERS,
        (
            (
                "Not supported (casevars records no definition names, creating users, case "
                "activities or hierarchies): any value answers 400 naming the filter."
            ),
            TEXT,
        ),
    ),
}
_LISTS = frozenset({"caseInstanceIds", "caseDefinitionKeyNotIn", "tenantIdIn", "variables"})


def filter_parameters() -> Json:
    """The query-string filters of GET /history/case-instance, as `HistoricCase-{name}`."""
    found = {
        f"HistoricCase-{name}": {
            "name": name,
            "in": "query",
            "description": description,
            "schema": value_schema,
            **({"explode": False} if name in _LISTS else {}),
        }
        for name, (description, value_schema) in _FILTERS.items()
    }
    found["HistoricCase-sortBy"] = {
        "name": "sortBy",
        "in": "query",
        "description": "Only together with `sortOrder`.",
        "schema": {"enum": list(SORT_KEYS)},
    }
    return found


# --- paths ------------------------------------------------------------------------------

_QUERY_400 = (
    "A filter or paging parameter Camunda refuses (`Cannot set query parameter '...' to "
    "value '...'`, a date not in the REST format, `Only a single sorting parameter "
    "specified. sortBy and sortOrder required`, `Invalid variable comparator specified: "
    "...`), an unsupported filter, text containing NUL: `InvalidRequestException`; two "
    "states: `NotValidException` `Already querying for case instance state '...'`; an "
    "empty `caseInstanceIds`: `ProcessEngineException`."
)


def _query(  # noqa: PLR0913 - an operation's texts, its answer and how it is asked
    operation_id: str, summary: str, description: str, ok: Json, *, paging: bool, by_body: bool
) -> Json:
    paging_names = ("FirstResult", "MaxResults") if paging else ()
    if by_body:
        return operation(
            operation_id,
            summary,
            description,
            {"200": ok, **json_body_common(), **errors(s400=f"{_QUERY_400} {BAD_JSON}")},
            parameters=parameter_refs(*paging_names),
            body=json_body(
                schema("HistoricCaseInstanceQuery"),
                "The query; no body is the empty query.",
                required=False,
            ),
            tags=_HISTORY_TAGS,
        )
    filters = [f"HistoricCase-{name}" for name in _FILTERS]
    sorting = ("HistoricCase-sortBy", "SortOrder") if paging else ()
    return operation(
        operation_id,
        summary,
        description,
        {"200": ok, **common(path=False), **errors(s400=_QUERY_400)},
        parameters=parameter_refs(*filters, *sorting, *paging_names),
        tags=_HISTORY_TAGS,
    )


def _transition(name: str, summary: str, description: str) -> Json:
    return operation(
        f"{name}CaseInstance",
        summary,
        description,
        {
            "204": empty_response("Done; the variables and deletions applied with it."),
            **json_body_common(),
            **errors(
                s400=f"{BAD_JSON} A variable Camunda refuses: `RestException` `Cannot {name} "
                "case instance {id} due to invalid variable {name}: ...` (its conversion), "
                "`IllegalArgumentException`, or `InvalidRequestException` `Cannot "
                f"{name} case instance {{id}}: ...` (a name both set and deleted, a deletion "
                "without a name); an id longer than 255 characters. Nothing changes.",
                s403=f"The state does not lead to it: `InvalidRequestException` `Cannot {name} "
                "case instance {id}: ENGINE-050.. Could not perform transition ...`. "
                "Nothing changes.",
                s404=f"Unknown or closed case instance: `InvalidRequestException` `Cannot {name} "
                "case instance {id}: There does not exist any case execution with id: "
                "'{id}': caseExecution is null`.",
            ),
        },
        parameters=[CASE_ID],
        body=json_body(
            schema("CaseExecutionTrigger"),
            "Variables and deletions; no body is `{}`.",
            required=False,
        ),
        tags=_TAGS,
    )


def paths() -> Json:
    list_ok = json_response(
        schema("HistoricCaseInstanceList"), "The matching historic case instances, in order."
    )
    count_ok = json_response(schema("Count"), "How many historic case instances match.")
    return {
        "/case-instance/{id}/complete": {
            "post": _transition(
                "complete", "Complete a case instance", "Active -> completed (Camunda's CMMN)."
            )
        },
        "/case-instance/{id}/close": {
            "post": _transition(
                "close",
                "Close a case instance",
                "Completed or terminated -> closed: the instance leaves every runtime route "
                "and stays in history, with its variables, for CASEVARS_HISTORY_TTL_SECONDS.",
            )
        },
        "/case-instance/{id}/terminate": {
            "post": _transition(
                "terminate", "Terminate a case instance", "Active -> terminated (Camunda's CMMN)."
            )
        },
        "/history/case-instance": {
            "get": _query(
                "queryHistoricCaseInstances",
                "Query historic case instances",
                "Every case instance matching the filters, closed ones included, with paging "
                "and sorting.",
                list_ok,
                paging=True,
                by_body=False,
            ),
            "post": _query(
                "queryHistoricCaseInstancesByBody",
                "Query historic case instances (JSON body)",
                "The same query with a JSON body; `firstResult` and `maxResults` stay in the "
                "query string.",
                list_ok,
                paging=True,
                by_body=True,
            ),
        },
        "/history/case-instance/count": {
            "get": _query(
                "countHistoricCaseInstances",
                "Count historic case instances",
                "How many historic case instances match the filters.",
                count_ok,
                paging=False,
                by_body=False,
            ),
            "post": _query(
                "countHistoricCaseInstancesByBody",
                "Count historic case instances (JSON body)",
                "The count of the query given as a JSON body.",
                count_ok,
                paging=False,
                by_body=True,
            ),
        },
        "/history/case-instance/{id}": {
            "get": operation(
                "getHistoricCaseInstance",
                "Get a historic case instance",
                "The case instance in any state, closed ones included.",
                {
                    "200": json_response(schema("HistoricCaseInstance"), "The instance."),
                    **common(),
                    **errors(
                        s404="Unknown (or removed after its history time to live): "
                        "`InvalidRequestException` `Historic case instance with id '{id}' "
                        "does not exist`"
                    ),
                },
                parameters=[CASE_ID],
                tags=_HISTORY_TAGS,
            ),
        },
    }
