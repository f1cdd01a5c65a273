"""Historic case activity instances and their statistics: GET
/history/case-activity-instance (+ /count, /{id}) and GET
/history/case-definition/{id}/statistics. A case activity is a plan item of a CMMN
model (a task, a stage, a milestone); casevars has no models, so no case has any: the
queries answer Camunda's empty shapes, after refusing what Camunda refuses of their
parameters (sorting, paging, dates, lists), so that a client's mistake shows here as it
would against Camunda."""

from __future__ import annotations

from aiohttp import web

from service.errors import NotFound
from service.http import history_cases, paths, query_params
from service.http.body import json_response

# Camunda's sortBy values of historic case activity instance queries.
SORT_KEYS = dict.fromkeys(
    (
        "caseActivityInstanceId",
        "caseInstanceId",
        "caseExecutionId",
        "caseActivityId",
        "caseActivityName",
        "caseActivityType",
        "createTime",
        "endTime",
        "duration",
        "caseDefinitionId",
        "tenantId",
    )
)
DATE_FILTERS = ("createdBefore", "createdAfter", "endedBefore", "endedAfter")
LIST_FILTERS = ("caseActivityInstanceIdIn", "caseActivityIdIn", "tenantIdIn")


def _checked_query(request: web.Request) -> None:
    """Refuses the parameters Camunda refuses; every other filter matches nothing."""
    params = query_params.split_lists(request.query, LIST_FILTERS)
    for name in DATE_FILTERS:
        if name in params:
            history_cases.date_from_string(name, params[name])
    limit = query_params.MAX_LISTED_IDS
    for name in LIST_FILTERS:
        query_params.text_list(params, name, limit, f"ids ({name})")
    query_params.sorting_from_string(request.query, SORT_KEYS)


async def list_historic_case_activity_instances(request: web.Request) -> web.Response:
    """GET /history/case-activity-instance: none (no plan items)."""
    query_params.paging(request)
    _checked_query(request)
    return json_response([])


async def count_historic_case_activity_instances(request: web.Request) -> web.Response:
    """GET /history/case-activity-instance/count."""
    _checked_query(request)
    return json_response({"count": 0})


async def get_historic_case_activity_instance(request: web.Request) -> web.Response:
    """GET /history/case-activity-instance/{id}: Camunda's answer for an unknown id."""
    activity_id = paths.case_activity_instance_id(request)
    raise NotFound(f"Historic case activity instance with id '{activity_id}' does not exist")


async def case_activity_statistics(request: web.Request) -> web.Response:
    """GET /history/case-definition/{id}/statistics: Camunda's statistics per plan
    item of the definition, none here; as in Camunda, an id no definition has is not an
    error (the statistics query finds no activities of it)."""
    paths.definition_id(request)
    return json_response([])
