"""The case-execution routes of the OpenAPI document: a case instance's root case
execution (its id the instance's id), its queries, transitions, and its variables and
local variables, which are the case-instance variable routes under another path."""

from __future__ import annotations

import copy

from service.camunda.queries import VARIABLE_OPERATORS
from service.http.case_executions import SORT_KEYS
from service.http.openapi import variables
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
from service.http.query_params import MAX_QUERY_CONDITIONS, MAX_SORTING_ENTRIES, MAX_TENANT_IDS

_TAGS = ("Case executions",)
_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "head"})
_SORT_ORDERS = {"enum": ["asc", "desc"]}
_FLAG = "`true` in any letter case means true; anything else is no filter."
_NEVER = "A root execution never is: `true` finds nothing."
_TEXT_FILTERS = {
    "caseExecutionId": "Exactly this id (a case instance id).",
    "caseInstanceId": "Exactly this case instance id.",
    "businessKey": "Exactly this business key.",
    "caseDefinitionKey": "Exactly this case definition key.",
    "caseDefinitionId": "Exactly this case definition id.",
    "activityId": "casevars's root executions have no activity id: any value finds nothing.",
}
_FLAGS = {
    "active": f"Only executions of active case instances. {_FLAG}",
    "required": f"{_NEVER} {_FLAG}",
    "enabled": f"{_NEVER} {_FLAG}",
    "disabled": f"{_NEVER} {_FLAG}",
    "variableNamesIgnoreCase": f"Compare variable names ignoring case. {_FLAG}",
    "variableValuesIgnoreCase": f"Compare text values ignoring case. {_FLAG}",
}
_CONDITIONS = (
    "Comma-separated `name_operator_value` conditions, operator one of "
    f"{', '.join(VARIABLE_OPERATORS)}; with `caseInstanceVariables` (the same variables, "
    f"on a root execution) at most {MAX_QUERY_CONDITIONS}. A value in the query string is "
    "text (or a date in the REST format)."
)
_QUERY_400 = (
    "A filter, sorting or paging parameter Camunda refuses (`Cannot set query parameter "
    "'...' to value '...'`, `Only a single sorting parameter specified. sortBy and "
    "sortOrder required`, `Invalid variable comparator specified: ...`), or text "
    "containing NUL: `InvalidRequestException`."
)


def schemas() -> Json:
    flag = {"type": "boolean"}
    nullable_text = nullable(TEXT)
    condition = {
        "type": "object",
        "required": ["name", "operator"],
        "properties": {
            "name": TEXT,
            "operator": {"enum": list(VARIABLE_OPERATORS)},
            "value": {"type": ["string", "number", "boolean", "null"]},
        },
    }
    conditions = nullable({"type": "array", "maxItems": MAX_QUERY_CONDITIONS, "items": condition})
    return {
        "CaseExecution": {
            "type": "object",
            "description": "Camunda's CaseExecutionDto of a case instance's root execution.",
            "required": [
                "id",
                "caseInstanceId",
                "caseDefinitionId",
                "activityId",
                "activityName",
                "activityType",
                "activityDescription",
                "parentId",
                "tenantId",
                "required",
                "enabled",
                "active",
                "disabled",
            ],
            "properties": {
                "id": TEXT,
                "caseInstanceId": TEXT,
                "caseDefinitionId": nullable_text,
                "activityId": {"type": "null"},
                "activityName": {"type": "null"},
                "activityType": {"const": "casePlanModel"},
                "activityDescription": {"type": "null"},
                "parentId": {"type": "null"},
                "tenantId": nullable_text,
                "required": {"const": False},
                "enabled": {"const": False},
                "active": flag,
                "disabled": {"const": False},
            },
        },
        "CaseExecutionList": {"type": "array", "items": schema("CaseExecution")},
        "CaseExecutionQuery": {
            "type": "object",
            "description": "Camunda's CaseExecutionQueryDto: filters combined with AND, "
            "every key optional, other keys ignored.",
            "properties": {
                **dict.fromkeys(_TEXT_FILTERS, nullable_text),
                "tenantIdIn": nullable(
                    {"type": "array", "maxItems": MAX_TENANT_IDS, "items": TEXT}
                ),
                **dict.fromkeys(_FLAGS, nullable(flag)),
                "variables": conditions,
                "caseInstanceVariables": conditions,
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
            },
        },
        "ExecutionTrigger": {
            "type": "object",
            "description": "Camunda's CaseExecutionTriggerDto: variables to set and "
            "deletions to apply with the transition, in its transaction.",
            "properties": {
                "variables": values_in(),
                "deletions": nullable(
                    {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"name": TEXT, "local": {"type": "boolean"}},
                        },
                    }
                ),
            },
        },
    }


def _query_parameters(*, sorting: bool) -> list[Json]:
    found: list[Json] = [
        {"name": name, "in": "query", "description": text, "schema": TEXT}
        for name, text in _TEXT_FILTERS.items()
    ]
    found.append(
        {
            "name": "tenantIdIn",
            "in": "query",
            "description": f"A comma-separated list of at most {MAX_TENANT_IDS} tenant ids.",
            "schema": {"type": "array", "maxItems": MAX_TENANT_IDS, "items": TEXT},
            "explode": False,
        }
    )
    found += [
        {"name": name, "in": "query", "description": text, "schema": {"type": "boolean"}}
        for name, text in _FLAGS.items()
    ]
    pattern = f"^[^_,]*_(?:{'|'.join(VARIABLE_OPERATORS)})_[^_,]*$"
    found += [
        {
            "name": name,
            "in": "query",
            "description": _CONDITIONS,
            "schema": {
                "type": "array",
                "maxItems": MAX_QUERY_CONDITIONS,
                "items": {"type": "string", "pattern": pattern},
            },
            "explode": False,
        }
        for name in ("variables", "caseInstanceVariables")
    ]
    if sorting:
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
                "schema": _SORT_ORDERS,
            },
            *parameter_refs("FirstResult", "MaxResults"),
        ]
    return found


def _query(operation_id: str, summary: str, ok: Json, *, by_body: bool, count: bool) -> Json:
    paging = [] if count else parameter_refs("FirstResult", "MaxResults")
    if by_body:
        return operation(
            operation_id,
            summary,
            "The same query with a JSON body; `firstResult` and `maxResults` stay in the "
            "query string.",
            {"200": ok, **json_body_common(), **errors(s400=f"{_QUERY_400} {BAD_JSON}")},
            parameters=paging,
            body=json_body(
                schema("CaseExecutionQuery"),
                "The query; no body is the empty query.",
                required=False,
            ),
            tags=_TAGS,
        )
    return operation(
        operation_id,
        summary,
        "The root executions of the case instances matching the filters (closed instances "
        "have none).",
        {"200": ok, **common(path=False), **errors(s400=_QUERY_400)},
        parameters=_query_parameters(sorting=not count),
        tags=_TAGS,
    )


def _transition(operation_id: str, route: str, description: str, refused: str) -> Json:
    return {
        "post": operation(
            operation_id,
            f"{route} the case execution",
            description,
            {
                "204": empty_response("Done."),
                **json_body_common(),
                **errors(
                    s400="A variable Camunda refuses, worded `Cannot {transition} case "
                    f"execution {{id}} ...`. {BAD_JSON}",
                    s403=refused,
                    s404="Unknown or closed case execution: `InvalidRequestException` "
                    "`Cannot {transition} case execution {id}: There does not exist any case "
                    "execution with id: '{id}': caseExecution is null`, `code` 0.",
                ),
            },
            parameters=[CASE_ID],
            body=json_body(
                schema("ExecutionTrigger"), "Variables and deletions; optional.", required=False
            ),
            tags=_TAGS,
        )
    }


def _variable_paths() -> Json:
    """The case-instance variable routes, under /case-execution/{id}/variables and
    /localVariables: the same handlers, bodies and answers."""
    found: Json = {}
    for kind, suffix in (("variables", "OfExecution"), ("localVariables", "OfExecutionLocal")):
        for path, item in variables.paths().items():
            copied = copy.deepcopy(item)
            for method, entry in copied.items():
                if method in _HTTP_METHODS:
                    entry["operationId"] += suffix
                    entry["tags"] = list(_TAGS)
            found[
                path.replace("/case-instance/{id}/variables", f"/case-execution/{{id}}/{kind}")
            ] = copied
    return found


def paths() -> Json:
    list_ok = json_response(schema("CaseExecutionList"), "The matching executions, in order.")
    count_ok = json_response(schema("Count"), "How many executions match.")
    impossible = (
        "Always, for a root execution: `InvalidRequestException` `Cannot {transition} case "
        "execution {id}: ENGINE-05012 Could not perform transition '{transition} on case "
        "execution with id '{id}'.Reason: The transition is not possible for this case "
        "instance.`, `code` 0; nothing is written."
    )
    state = (
        "The case instance is not active: ENGINE-05010 or 05011, as for the case "
        "instance's own transition."
    )
    return {
        "/case-execution": {
            "get": _query(
                "queryCaseExecutions", "Query case executions", list_ok, by_body=False, count=False
            ),
            "post": _query(
                "queryCaseExecutionsByBody",
                "Query case executions (JSON body)",
                list_ok,
                by_body=True,
                count=False,
            ),
        },
        "/case-execution/count": {
            "get": _query(
                "countCaseExecutions", "Count case executions", count_ok, by_body=False, count=True
            ),
            "post": _query(
                "countCaseExecutionsByBody",
                "Count case executions (JSON body)",
                count_ok,
                by_body=True,
                count=True,
            ),
        },
        "/case-execution/{id}": {
            "get": operation(
                "getCaseExecution",
                "Get a case execution",
                "The root execution of the case instance with this id.",
                {
                    "200": json_response(schema("CaseExecution"), "The case execution."),
                    **common(),
                    **errors(
                        s404="Unknown or closed: `InvalidRequestException` `Case execution "
                        "with id {id} does not exist.`"
                    ),
                },
                parameters=[CASE_ID],
                tags=_TAGS,
            )
        },
        "/case-execution/{id}/complete": _transition(
            "completeCaseExecution", "Complete", "The case instance completes.", state
        ),
        "/case-execution/{id}/terminate": _transition(
            "terminateCaseExecution", "Terminate", "The case instance terminates.", state
        ),
        "/case-execution/{id}/manual-start": _transition(
            "manualStartCaseExecution",
            "Start",
            "A plan item's transition: refused for a root execution, as Camunda does.",
            impossible,
        ),
        "/case-execution/{id}/disable": _transition(
            "disableCaseExecution",
            "Disable",
            "A plan item's transition: refused for a root execution, as Camunda does.",
            impossible,
        ),
        "/case-execution/{id}/reenable": _transition(
            "reenableCaseExecution",
            "Re-enable",
            "A plan item's transition: refused for a root execution, as Camunda does.",
            impossible,
        ),
        **_variable_paths(),
    }
