"""The historic case activity routes of the OpenAPI document: Camunda's queries of plan
items, which casevars does not have (no CMMN models), so every answer is empty."""

from __future__ import annotations

from service.http.case_activities import DATE_FILTERS, LIST_FILTERS, SORT_KEYS
from service.http.openapi.blocks import (
    TEXT,
    Json,
    common,
    errors,
    json_response,
    operation,
    parameter_refs,
    schema,
)
from service.http.paths import MAX_ID_LENGTH
from service.http.query_params import MAX_LISTED_IDS

_TAGS = ("Historic case activities",)
_NONE = "casevars has no plan items (no CMMN models): there are none, whatever the filters."
_TEXT_FILTERS = (
    "caseActivityInstanceId",
    "caseInstanceId",
    "caseDefinitionId",
    "caseExecutionId",
    "caseActivityId",
    "caseActivityName",
    "caseActivityType",
)
_FLAGS = (
    "required",
    "finished",
    "unfinished",
    "available",
    "enabled",
    "disabled",
    "active",
    "completed",
    "terminated",
    "withoutTenantId",
)
_QUERY_400 = (
    "A parameter Camunda refuses: `Cannot set query parameter '...' to value '...'` (a "
    "sortBy or paging value, a date not in the REST format), `Only a single sorting "
    "parameter specified. sortBy and sortOrder required`, or a list of more than "
    f"{MAX_LISTED_IDS} ids: `InvalidRequestException`."
)
_ID = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH}


def tags() -> list[Json]:
    return [{"name": _TAGS[0], "description": _NONE}]


def schemas() -> Json:
    return {
        "HistoricCaseActivityInstanceList": {
            "type": "array",
            "maxItems": 0,
            "description": f"Camunda's HistoricCaseActivityInstanceDto list. {_NONE}",
            "items": {"type": "object"},
        },
        "HistoricCaseActivityStatisticsList": {
            "type": "array",
            "maxItems": 0,
            "description": f"Camunda's HistoricCaseActivityStatisticsDto list. {_NONE}",
            "items": {
                "type": "object",
                "properties": {
                    "id": TEXT,
                    **{
                        count: {"type": "integer"}
                        for count in (
                            "available",
                            "active",
                            "completed",
                            "disabled",
                            "enabled",
                            "terminated",
                        )
                    },
                },
            },
        },
    }


def _parameters(*, listing: bool) -> list[Json]:
    found: list[Json] = [{"name": name, "in": "query", "schema": TEXT} for name in _TEXT_FILTERS]
    found += [
        {
            "name": name,
            "in": "query",
            "description": "A comma-separated list.",
            "schema": {"type": "array", "maxItems": MAX_LISTED_IDS, "items": TEXT},
            "explode": False,
        }
        for name in LIST_FILTERS
    ]
    found += [
        {
            "name": name,
            "in": "query",
            "description": "A date in Camunda's REST format.",
            "schema": {"type": "string", "format": "date-time"},
        }
        for name in DATE_FILTERS
    ]
    found += [{"name": name, "in": "query", "schema": {"type": "boolean"}} for name in _FLAGS]
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


def paths() -> Json:
    responses = {**common(path=False), **errors(s400=_QUERY_400)}
    return {
        "/history/case-activity-instance": {
            "get": operation(
                "queryHistoricCaseActivityInstances",
                "Query historic case activity instances",
                _NONE,
                {
                    "200": json_response(schema("HistoricCaseActivityInstanceList"), "Empty."),
                    **responses,
                },
                parameters=_parameters(listing=True),
                tags=_TAGS,
            )
        },
        "/history/case-activity-instance/count": {
            "get": operation(
                "countHistoricCaseActivityInstances",
                "Count historic case activity instances",
                _NONE,
                {"200": json_response(schema("Count"), '`{"count": 0}`.'), **responses},
                parameters=_parameters(listing=False),
                tags=_TAGS,
            )
        },
        "/history/case-activity-instance/{id}": {
            "get": operation(
                "getHistoricCaseActivityInstance",
                "Get a historic case activity instance",
                _NONE,
                {
                    **common(),
                    **errors(
                        s404="Every id: `InvalidRequestException` `Historic case activity "
                        "instance with id '{id}' does not exist`."
                    ),
                },
                parameters=[{"name": "id", "in": "path", "required": True, "schema": _ID}],
                tags=_TAGS,
            )
        },
        "/history/case-definition/{id}/statistics": {
            "get": operation(
                "getHistoricCaseActivityStatistics",
                "Statistics of a case definition's activities",
                f"{_NONE} As in Camunda, an id no definition has is no error.",
                {
                    "200": json_response(schema("HistoricCaseActivityStatisticsList"), "Empty."),
                    **common(),
                },
                parameters=[{"name": "id", "in": "path", "required": True, "schema": _ID}],
                tags=_TAGS,
            )
        },
    }
