"""Case-instance handlers: create (PUT, a casevars extension), read, delete, and the
queries (GET and POST /case-instance and /count); definitions.py creates instances
from a case definition."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from service.errors import Conflict, InvalidInput, NotFound
from service.http import keys, paths, query_params
from service.http.body import json_response, read_json
from service.storage.case_query import CaseAttribute, CaseQuery
from service.storage.conditions import VariableCondition
from service.storage.repository import CaseInstance, ClosedCaseInstance

# Body keys of PUT /case-instance/{id} and what they set.
_FIELDS = {
    "businessKey": CaseAttribute.BUSINESS_KEY,
    "caseDefinitionKey": CaseAttribute.CASE_DEFINITION_KEY,
    "caseDefinitionId": CaseAttribute.CASE_DEFINITION_ID,
    "tenantId": CaseAttribute.TENANT_ID,
}
# Camunda's sortBy values of case-instance queries.
SORT_KEYS = {
    "caseInstanceId": CaseAttribute.ID,
    "caseDefinitionKey": CaseAttribute.CASE_DEFINITION_KEY,
    "caseDefinitionId": CaseAttribute.CASE_DEFINITION_ID,
    "tenantId": CaseAttribute.TENANT_ID,
}


def case_instance_json(case: CaseInstance) -> dict[str, Any]:
    """Camunda's CaseInstanceDto: every key present, null where casevars has no value."""
    return {
        "links": [],
        "id": case.id,
        "caseDefinitionId": case.case_definition_id,
        "businessKey": case.business_key,
        "tenantId": case.tenant_id,
        "active": case.state == "active",
        "completed": case.state == "completed",
        "terminated": case.state == "terminated",
    }


def _not_found(case_id: str) -> NotFound:
    return NotFound(f"Case instance with id {case_id} does not exist.")


async def get_case_instance(request: web.Request) -> web.Response:
    case_id = paths.case_id(request)
    case = await request.app[keys.REPOSITORY].get_case_instance(case_id)
    if case is None:
        raise _not_found(case_id)
    return json_response(case_instance_json(case))


def _fields(body: Any) -> dict[CaseAttribute, str | None]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidInput("")
    fields: dict[CaseAttribute, str | None] = {}
    for key, attribute in _FIELDS.items():
        if key in body:
            value = body[key]
            if value is not None and not isinstance(value, str):
                raise InvalidInput("")
            fields[attribute] = None if value is None else paths.checked_field(value, key)
    return fields


async def put_case_instance(request: web.Request) -> web.Response:
    """Create the case instance (201) or update the given fields of it (200)."""
    case_id = paths.case_id(request)
    settings = request.app[keys.SETTINGS]
    body = await read_json(request, limit=settings.max_json_bytes, required=False)
    fields = _fields(body)
    try:
        case, created = await request.app[keys.REPOSITORY].put_case_instance(case_id, fields)
    except ClosedCaseInstance:
        raise Conflict(
            f"Case instance with id {case_id} is closed: its id stays taken until its history "
            "time to live (CASEVARS_HISTORY_TTL_SECONDS) has passed"
        ) from None
    return json_response(case_instance_json(case), status=201 if created else 200)


async def delete_case_instance(request: web.Request) -> web.Response:
    """Delete the instance and all its variables; their blobs go to the collector."""
    case_id = paths.case_id(request)
    if not await request.app[keys.REPOSITORY].delete_case_instance(case_id):
        raise _not_found(case_id)
    return web.Response(status=204)


# --- queries: GET and POST /case-instance and /count --------------------------------

# Filters Camunda has that need process instances, deployments or case hierarchies.
UNSUPPORTED_FILTERS = (
    "deploymentId",
    "superProcessInstance",
    "subProcessInstance",
    "superCaseInstance",
    "subCaseInstance",
)


def _query(filters: Mapping[str, Any], conditions: tuple[VariableCondition, ...]) -> CaseQuery:
    """The query from filters read from the query string or a JSON body."""
    for name in UNSUPPORTED_FILTERS:
        if filters.get(name) is not None:
            raise InvalidInput(
                f"The filter '{name}' is not supported: casevars has no process instances, "
                "deployments or case hierarchies"
            )
    names = ("caseInstanceId", "businessKey", "caseDefinitionKey", "caseDefinitionId")
    texts = {name: query_params.text(filters, name) for name in names}
    tenants = query_params.text_list(
        filters, "tenantIdIn", query_params.MAX_TENANT_IDS, "tenant ids (tenantIdIn)"
    )
    query_params.refuse_nul([*texts.values(), *(tenants or ())], conditions)
    flag = query_params.flag
    return CaseQuery(
        case_instance_id=texts["caseInstanceId"],
        business_key=texts["businessKey"],
        case_definition_key=texts["caseDefinitionKey"],
        case_definition_id=texts["caseDefinitionId"],
        tenant_ids=None if tenants is None else tuple(tenants),
        without_tenant_id=flag(filters.get("withoutTenantId")),
        variables=conditions,
        variable_names_ignore_case=flag(filters.get("variableNamesIgnoreCase")),
        variable_values_ignore_case=flag(filters.get("variableValuesIgnoreCase")),
        state=_state(filters),
    )


def _state(filters: Mapping[str, Any]) -> str | None:
    """The state asked for: as in Camunda, when several flags are true the last of
    active, completed, terminated wins."""
    states = ("active", "completed", "terminated")
    asked = [state for state in states if query_params.flag(filters.get(state))]
    return asked[-1] if asked else None


def _query_from_string(request: web.Request) -> CaseQuery:
    params = query_params.split_lists(request.query, ("tenantIdIn",))
    conditions = (
        query_params.conditions_from_text(params["variables"]) if "variables" in params else ()
    )
    query = _query(params, conditions)
    sorting = query_params.sorting_from_string(request.query, SORT_KEYS)
    return dataclasses.replace(query, sorting=sorting)


def _query_from_body(body: Any) -> CaseQuery:
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise InvalidInput("")
    raw_sorting = body.get("sorting")
    # Both lists' shapes and sizes before any condition is read.
    sorting_entries = query_params.objects(raw_sorting)
    query_params.bounded(sorting_entries, query_params.MAX_SORTING_ENTRIES, "sorting entries")
    conditions = query_params.conditions_from_body(body.get("variables"))
    query = _query(body, conditions)
    sorting = query_params.sorting_from_body(body, SORT_KEYS)
    return dataclasses.replace(query, sorting=sorting)


async def _listed(request: web.Request, query: CaseQuery) -> web.Response:
    first, limit = query_params.paging(request)
    found = await request.app[keys.REPOSITORY].query_case_instances(query, first=first, limit=limit)
    return json_response([case_instance_json(case) for case in found])


async def _counted(query: CaseQuery, request: web.Request) -> web.Response:
    return json_response({"count": await request.app[keys.REPOSITORY].count_case_instances(query)})


async def list_case_instances(request: web.Request) -> web.Response:
    """GET /case-instance."""
    return await _listed(request, _query_from_string(request))


async def count_case_instances(request: web.Request) -> web.Response:
    """GET /case-instance/count."""
    return await _counted(_query_from_string(request), request)


async def _body_query(request: web.Request) -> CaseQuery:
    limit = request.app[keys.SETTINGS].max_json_bytes
    return _query_from_body(await read_json(request, limit=limit, required=False))


async def query_case_instances(request: web.Request) -> web.Response:
    """POST /case-instance: the same query with a JSON body (not a creation)."""
    return await _listed(request, await _body_query(request))


async def query_case_instance_count(request: web.Request) -> web.Response:
    """POST /case-instance/count."""
    return await _counted(await _body_query(request), request)
