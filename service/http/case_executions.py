"""Case executions: casevars has no CMMN plan items, so a case instance has one case
execution, its root, whose id is the case instance id (as in Camunda) and whose
variables are the case instance's. GET /case-execution/{id}, the queries (GET and POST
/case-execution and /count) and the transitions: complete and terminate are the case
instance's (transitions.py), manual-start, disable and re-enable are refused as
Camunda's engine refuses them for a case instance. The variable routes
(/case-execution/{id}/variables and /localVariables) are the case instance's handlers,
routed (routes.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from service.camunda.messages import missing_case_on_write
from service.errors import Forbidden, InvalidInput, NotFound
from service.http import keys, paths, query_params, transitions
from service.http.body import json_response, read_json
from service.storage.case_query import CaseAttribute, CaseQuery
from service.storage.conditions import VariableCondition
from service.storage.repository import CaseInstance

# Camunda's sortBy values of case-execution queries.
SORT_KEYS = {
    "caseExecutionId": CaseAttribute.ID,
    "caseDefinitionKey": CaseAttribute.CASE_DEFINITION_KEY,
    "caseDefinitionId": CaseAttribute.CASE_DEFINITION_ID,
    "tenantId": CaseAttribute.TENANT_ID,
}
# The activity type of a case instance's root execution: its case plan model.
ROOT_ACTIVITY_TYPE = "casePlanModel"
# Flags no root execution has (it is never required, enabled or disabled): asking for
# one of them finds nothing.
_NEVER = ("required", "enabled", "disabled")


def case_execution_json(case: CaseInstance) -> dict[str, Any]:
    """Camunda's CaseExecutionDto of the case instance's root execution. casevars has no
    plan model, so activityId, activityName and activityDescription are null."""
    return {
        "id": case.id,
        "caseInstanceId": case.id,
        "caseDefinitionId": case.case_definition_id,
        "activityId": None,
        "activityName": None,
        "activityType": ROOT_ACTIVITY_TYPE,
        "activityDescription": None,
        "parentId": None,
        "tenantId": case.tenant_id,
        "required": False,
        "enabled": False,
        "active": case.state == "active",
        "disabled": False,
    }


async def get_case_execution(request: web.Request) -> web.Response:
    """GET /case-execution/{id}: the root execution of the case instance with that id."""
    case_id = paths.case_id(request)
    case = await request.app[keys.REPOSITORY].get_case_instance(case_id)
    if case is None:
        raise NotFound(f"Case execution with id {case_id} does not exist.")
    return json_response(case_execution_json(case))


# --- queries: GET and POST /case-execution and /count -----------------------------------


def _query(
    filters: Mapping[str, Any], conditions: tuple[VariableCondition, ...]
) -> CaseQuery | None:
    """The query of the root executions the filters ask for; None when they can match
    none (another activity, a flag no root execution has, two different ids)."""
    names = (
        "caseExecutionId",
        "caseInstanceId",
        "businessKey",
        "caseDefinitionKey",
        "caseDefinitionId",
        "activityId",
    )
    texts = {name: query_params.text(filters, name) for name in names}
    tenants = query_params.text_list(
        filters, "tenantIdIn", query_params.MAX_TENANT_IDS, "tenant ids (tenantIdIn)"
    )
    query_params.refuse_nul([*texts.values(), *(tenants or ())], conditions)
    ids = {texts["caseExecutionId"], texts["caseInstanceId"]} - {None}
    flag = query_params.flag
    if (
        len(ids) > 1
        or texts["activityId"] is not None
        or any(flag(filters.get(name)) for name in _NEVER)
    ):
        return None
    return CaseQuery(
        case_instance_id=next(iter(ids), None),
        business_key=texts["businessKey"],
        case_definition_key=texts["caseDefinitionKey"],
        case_definition_id=texts["caseDefinitionId"],
        # Camunda ignores an empty tenantIdIn here.
        tenant_ids=tuple(tenants) if tenants else None,
        variables=conditions,
        variable_names_ignore_case=flag(filters.get("variableNamesIgnoreCase")),
        variable_values_ignore_case=flag(filters.get("variableValuesIgnoreCase")),
        state="active" if flag(filters.get("active")) else None,
    )


def _conditions(*found: tuple[VariableCondition, ...]) -> tuple[VariableCondition, ...]:
    """`variables` and `caseInstanceVariables` together: on a root execution its
    variables are its case instance's, so both conditions apply to the same variables."""
    conditions = tuple(condition for part in found for condition in part)
    query_params.bounded(list(conditions), query_params.MAX_QUERY_CONDITIONS, "variable conditions")
    return conditions


def _query_from_string(request: web.Request) -> CaseQuery | None:
    params = query_params.split_lists(request.query, ("tenantIdIn",))
    conditions = _conditions(
        *(
            query_params.conditions_from_text(params[name])
            for name in ("variables", "caseInstanceVariables")
            if name in params
        )
    )
    query = _query(params, conditions)
    sorting = query_params.sorting_from_string(request.query, SORT_KEYS)
    return None if query is None else dataclasses.replace(query, sorting=sorting)


def _query_from_body(body: Any) -> CaseQuery | None:
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise InvalidInput("")
    raw_sorting = body.get("sorting")
    sorting_entries = query_params.objects(raw_sorting)
    query_params.bounded(sorting_entries, query_params.MAX_SORTING_ENTRIES, "sorting entries")
    conditions = _conditions(
        query_params.conditions_from_body(body.get("variables")),
        query_params.conditions_from_body(body.get("caseInstanceVariables")),
    )
    query = _query(body, conditions)
    sorting = query_params.sorting_from_body(body, SORT_KEYS)
    return None if query is None else dataclasses.replace(query, sorting=sorting)


async def _listed(request: web.Request, query: CaseQuery | None) -> web.Response:
    first, limit = query_params.paging(request)
    if query is None:
        return json_response([])
    repository = request.app[keys.REPOSITORY]
    cases = await repository.query_case_instances(query, first=first, limit=limit)
    return json_response([case_execution_json(case) for case in cases])


async def _counted(request: web.Request, query: CaseQuery | None) -> web.Response:
    count = 0 if query is None else await request.app[keys.REPOSITORY].count_case_instances(query)
    return json_response({"count": count})


async def _body_query(request: web.Request) -> CaseQuery | None:
    limit = request.app[keys.SETTINGS].max_json_bytes
    return _query_from_body(await read_json(request, limit=limit, required=False))


async def list_case_executions(request: web.Request) -> web.Response:
    """GET /case-execution."""
    return await _listed(request, _query_from_string(request))


async def count_case_executions(request: web.Request) -> web.Response:
    """GET /case-execution/count."""
    return await _counted(request, _query_from_string(request))


async def query_case_executions(request: web.Request) -> web.Response:
    """POST /case-execution."""
    return await _listed(request, await _body_query(request))


async def query_case_execution_count(request: web.Request) -> web.Response:
    """POST /case-execution/count."""
    return await _counted(request, await _body_query(request))


# --- transitions ---------------------------------------------------------------------


async def complete(request: web.Request) -> web.Response:
    """POST /case-execution/{id}/complete: the case instance completes."""
    return await transitions.transition(request, "complete", "case execution")


async def terminate(request: web.Request) -> web.Response:
    """POST /case-execution/{id}/terminate: the case instance terminates."""
    return await transitions.transition(request, "terminate", "case execution")


def impossible_transition(transition: str, case_id: str) -> str:
    """Camunda's CmmnBehaviorLogger text (ENGINE-05012) for a transition that a case
    instance, unlike its plan items, never takes; its unbalanced quote included."""
    return (
        f"ENGINE-05012 Could not perform transition '{transition} on case execution with "
        f"id '{case_id}'.Reason: The transition is not possible for this case instance."
    )


async def _refused(request: web.Request, route: str, transition: str) -> web.Response:
    """A transition of plan items, refused for the root execution after the body has
    been read and its values converted (nothing is written), as Camunda refuses it:
    404 when there is no such execution, otherwise 403."""
    case_id = paths.case_id(request)
    await transitions.read_trigger(request, case_id, route, "case execution")
    prefix = f"Cannot {route} case execution {case_id}: "
    if not await request.app[keys.REPOSITORY].case_instance_exists(case_id):
        raise NotFound(prefix + missing_case_on_write(case_id), code=0)
    raise Forbidden(prefix + impossible_transition(transition, case_id), code=0)


async def manual_start(request: web.Request) -> web.Response:
    """POST /case-execution/{id}/manual-start."""
    return await _refused(request, "manualStart", "manualStart")


async def disable(request: web.Request) -> web.Response:
    """POST /case-execution/{id}/disable."""
    return await _refused(request, "disable", "disable")


async def reenable(request: web.Request) -> web.Response:
    """POST /case-execution/{id}/reenable."""
    return await _refused(request, "reenable", "re-enable")
