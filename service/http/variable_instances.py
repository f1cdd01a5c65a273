"""Camunda's variable-instance routes over the case variables: `/variable-instance`
(the variables of case instances not closed) and `/history/variable-instance` (those
of every case instance, closed ones included: casevars keeps one copy of each
variable, its last value, so history is that copy). Queries and counts in the query
string or a JSON body, one instance by id, its binary content, and the deletion of a
historic one."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiohttp import web

from service.camunda import mime
from service.camunda.values import format_date, render_value
from service.errors import InvalidInput, NotFound
from service.http import keys, paths, query_params
from service.http.body import json_response, read_json
from service.http.downloads import send_binary
from service.http.listing import send_array
from service.http.variables import query_flag
from service.storage.conditions import VariableCondition
from service.storage.repository import HistoricDeletion, VariableInstance
from service.storage.variable_query import VariableAttribute, VariableQuery

BAD_USER_REQUEST = "BadUserRequestException"

# Camunda's sortBy values of the two queries.
RUNTIME_SORT_KEYS = {
    "variableName": VariableAttribute.NAME,
    "variableType": VariableAttribute.TYPE,
    "activityInstanceId": VariableAttribute.CASE_INSTANCE_ID,
    "tenantId": VariableAttribute.TENANT_ID,
}
HISTORY_SORT_KEYS = {
    "instanceId": VariableAttribute.NOTHING,  # the process instance id
    "variableName": VariableAttribute.NAME,
    "tenantId": VariableAttribute.TENANT_ID,
}
# Id lists that, for a case variable, all name its case instance: the case execution,
# the variable's scope and its activity instance are the case instance's root execution,
# whose id is the case instance's.
RUNTIME_CASE_LISTS = (
    "caseInstanceIdIn",
    "caseExecutionIdIn",
    "activityInstanceIdIn",
    "variableScopeIdIn",
)
# caseInstanceIdIn is a casevars extension in history (Camunda 7 has caseInstanceId).
HISTORY_CASE_LISTS = ("caseInstanceIdIn", "caseExecutionIdIn", "activityInstanceIdIn")
# Filters on what case variables never have: a non-empty one matches nothing.
RUNTIME_EMPTY_LISTS = ("executionIdIn", "processInstanceIdIn", "taskIdIn", "batchIdIn")
HISTORY_EMPTY_LISTS = ("executionIdIn", "processInstanceIdIn", "taskIdIn", "caseActivityIdIn")
HISTORY_EMPTY_TEXTS = ("processInstanceId", "processDefinitionId", "processDefinitionKey")
HISTORY_OTHER_LISTS = ("variableTypeIn", "variableNameIn")
# Camunda's state of a historic variable that still exists (deleted ones are gone).
CREATED = "CREATED"


@dataclasses.dataclass(frozen=True)
class _Kind:
    """What differs between the runtime and the history routes."""

    history: bool
    sort_keys: Mapping[str, VariableAttribute]
    case_lists: tuple[str, ...]
    empty_lists: tuple[str, ...]
    resource: str  # Camunda's name of the resource in its 404 message
    base: str  # the route's path, for dataUrl

    @property
    def lists(self) -> tuple[str, ...]:
        extra = HISTORY_OTHER_LISTS if self.history else ()
        return ("tenantIdIn", *self.case_lists, *self.empty_lists, *extra)


RUNTIME = _Kind(
    history=False,
    sort_keys=RUNTIME_SORT_KEYS,
    case_lists=RUNTIME_CASE_LISTS,
    empty_lists=RUNTIME_EMPTY_LISTS,
    resource="Variable instance",
    base="/variable-instance",
)
HISTORY = _Kind(
    history=True,
    sort_keys=HISTORY_SORT_KEYS,
    case_lists=HISTORY_CASE_LISTS,
    empty_lists=HISTORY_EMPTY_LISTS,
    resource="Historic variable instance",
    base="/history/variable-instance",
)


# --- the DTOs -----------------------------------------------------------------------


def _value(instance: VariableInstance, kind: _Kind, *, deserialize: bool) -> dict[str, Any]:
    """type, value and valueInfo as Camunda's queries give them: without binary
    contents (Camunda does not fetch them there); a Bytes value's valueInfo says how
    large it is and where its content is, as the case routes do for large ones."""
    variable = instance.variable
    if variable.type == "Bytes" and variable.blob is not None:
        url = f"{kind.base}/{mime.url_encode(variable.id)}/data"
        return render_value(
            "Bytes", None, {}, deserialize=deserialize, size=variable.blob.size, data_url=url
        )
    return render_value(variable.type, variable.value, variable.value_info, deserialize=deserialize)


def variable_instance_json(instance: VariableInstance, *, deserialize: bool) -> dict[str, Any]:
    """Camunda's VariableInstanceDto of a case variable."""
    case_id = instance.case_instance_id
    return {
        **_value(instance, RUNTIME, deserialize=deserialize),
        "id": instance.variable.id,
        "name": instance.variable.name,
        "processDefinitionId": None,
        "processInstanceId": None,
        "executionId": None,
        "caseInstanceId": case_id,
        "caseExecutionId": case_id,
        "taskId": None,
        "batchId": None,
        "activityInstanceId": case_id,
        "errorMessage": None,
        "tenantId": instance.tenant_id,
    }


def historic_variable_instance_json(
    instance: VariableInstance, *, deserialize: bool
) -> dict[str, Any]:
    """Camunda's HistoricVariableInstanceDto of a case variable."""
    case_id = instance.case_instance_id
    return {
        **_value(instance, HISTORY, deserialize=deserialize),
        "id": instance.variable.id,
        "name": instance.variable.name,
        "processDefinitionKey": None,
        "processDefinitionId": None,
        "processInstanceId": None,
        "executionId": None,
        "activityInstanceId": case_id,
        "caseDefinitionKey": instance.case_definition_key,
        "caseDefinitionId": instance.case_definition_id,
        "caseInstanceId": case_id,
        "caseExecutionId": case_id,
        "taskId": None,
        "errorMessage": None,
        "tenantId": instance.tenant_id,
        "state": CREATED,
        "createTime": format_date(instance.created_at),
        "removalTime": None,
        "rootProcessInstanceId": None,
    }


def _json(kind: _Kind, instance: VariableInstance, *, deserialize: bool) -> dict[str, Any]:
    if kind.history:
        return historic_variable_instance_json(instance, deserialize=deserialize)
    return variable_instance_json(instance, deserialize=deserialize)


# --- the queries --------------------------------------------------------------------


def _conditions(
    kind: _Kind, filters: Mapping[str, Any], *, by_body: bool
) -> tuple[VariableCondition, ...]:
    """Runtime: `variableValues` (name_op_value); history: `variableValue`, equal to the
    value of the variable `variableName` names."""
    if not kind.history:
        raw = filters.get("variableValues")
        if by_body:
            return query_params.conditions_from_body(raw)
        return () if raw is None else query_params.conditions_from_text(raw)
    value = filters.get("variableValue")
    if value is None:
        return ()
    name = query_params.text(filters, "variableName")
    if name is None:
        raise InvalidInput(
            "Only a single variable value parameter specified: variable name and value "
            "are required to be able to query after a specific variable value."
        )
    if not isinstance(value, str | bool | int | float):
        raise InvalidInput("Object values cannot be used to query")
    return (VariableCondition(name, "eq", value),)


def _query(kind: _Kind, filters: Mapping[str, Any], *, by_body: bool) -> VariableQuery:
    """The query from filters read from the query string or a JSON body."""
    conditions = _conditions(kind, filters, by_body=by_body)
    bound, what = query_params.MAX_LISTED_IDS, "ids in a list filter"
    lists = {
        name: query_params.text_list(filters, name, bound, f"{what} ({name})")
        for name in kind.lists
    }
    text_names: tuple[str, ...] = ("variableName", "variableNameLike")
    if kind.history:
        text_names = (*text_names, "caseInstanceId", *HISTORY_EMPTY_TEXTS)
    texts = {name: query_params.text(filters, name) for name in text_names}
    query_params.refuse_nul(
        [*texts.values(), *(t for ids in lists.values() for t in ids or ())], conditions
    )
    # Camunda applies a list filter only when it holds an id.
    case_lists = [tuple(ids) for name in kind.case_lists if (ids := lists[name])]
    if (case_id := texts.get("caseInstanceId")) is not None:
        case_lists.append((case_id,))
    empty = any(lists[name] for name in kind.empty_lists)
    if kind.history:
        empty = empty or any(texts[name] is not None for name in HISTORY_EMPTY_TEXTS)
    flag = query_params.flag
    names_ignore_case = flag(filters.get("variableNamesIgnoreCase"))
    tenants = lists["tenantIdIn"]
    return VariableQuery(
        history=kind.history,
        name=texts["variableName"],
        name_like=texts["variableNameLike"],
        names=tuple(lists["variableNameIn"]) if kind.history and lists["variableNameIn"] else None,
        name_filters_ignore_case=kind.history and names_ignore_case,
        case_instance_ids=tuple(case_lists),
        tenant_ids=tuple(tenants) if tenants else None,
        without_tenant_id=kind.history and flag(filters.get("withoutTenantId")),
        types=tuple(lists["variableTypeIn"]) if kind.history and lists["variableTypeIn"] else None,
        conditions=conditions,
        names_ignore_case=names_ignore_case,
        values_ignore_case=flag(filters.get("variableValuesIgnoreCase")),
        match_nothing=empty,
    )


def _query_from_string(request: web.Request, kind: _Kind) -> VariableQuery:
    params = query_params.split_lists(request.query, kind.lists)
    query = _query(kind, params, by_body=False)
    sorting = query_params.sorting_from_string(request.query, kind.sort_keys)
    return dataclasses.replace(query, sorting=sorting)


async def _query_from_body(request: web.Request, kind: _Kind) -> VariableQuery:
    limit = request.app[keys.SETTINGS].max_json_bytes
    body = await read_json(request, limit=limit, required=False)
    body = {} if body is None else body
    if not isinstance(body, dict):
        raise InvalidInput("")
    sorting_entries = query_params.objects(body.get("sorting"))
    query_params.bounded(sorting_entries, query_params.MAX_SORTING_ENTRIES, "sorting entries")
    query = _query(kind, body, by_body=True)
    sorting = query_params.sorting_from_body(body, kind.sort_keys)
    return dataclasses.replace(query, sorting=sorting)


async def _listed(request: web.Request, kind: _Kind, query: VariableQuery) -> web.StreamResponse:
    first, limit = query_params.paging(request)
    deserialize = query_flag(request, "deserializeValues")
    found = request.app[keys.REPOSITORY].query_variable_instances(query, first=first, limit=limit)

    async def rendered() -> AsyncIterator[list[dict[str, Any]]]:
        async for page in found:
            yield [_json(kind, instance, deserialize=deserialize) for instance in page]

    # Read page by page and streamed once large: a query may match millions.
    return await send_array(request, rendered())


async def _counted(request: web.Request, query: VariableQuery) -> web.Response:
    count = await request.app[keys.REPOSITORY].count_variable_instances(query)
    return json_response({"count": count})


async def list_variable_instances(request: web.Request) -> web.StreamResponse:
    """GET /variable-instance."""
    return await _listed(request, RUNTIME, _query_from_string(request, RUNTIME))


async def query_variable_instances(request: web.Request) -> web.StreamResponse:
    """POST /variable-instance: the same query with a JSON body."""
    return await _listed(request, RUNTIME, await _query_from_body(request, RUNTIME))


async def count_variable_instances(request: web.Request) -> web.Response:
    """GET /variable-instance/count."""
    return await _counted(request, _query_from_string(request, RUNTIME))


async def query_variable_instance_count(request: web.Request) -> web.Response:
    """POST /variable-instance/count."""
    return await _counted(request, await _query_from_body(request, RUNTIME))


async def list_historic_variable_instances(request: web.Request) -> web.StreamResponse:
    """GET /history/variable-instance."""
    return await _listed(request, HISTORY, _query_from_string(request, HISTORY))


async def query_historic_variable_instances(request: web.Request) -> web.StreamResponse:
    """POST /history/variable-instance."""
    return await _listed(request, HISTORY, await _query_from_body(request, HISTORY))


async def count_historic_variable_instances(request: web.Request) -> web.Response:
    """GET /history/variable-instance/count."""
    return await _counted(request, _query_from_string(request, HISTORY))


async def query_historic_variable_instance_count(request: web.Request) -> web.Response:
    """POST /history/variable-instance/count."""
    return await _counted(request, await _query_from_body(request, HISTORY))


# --- one variable instance ----------------------------------------------------------


async def _instance(request: web.Request, kind: _Kind) -> tuple[str, VariableInstance]:
    variable_id = paths.variable_instance_id(request)
    repository = request.app[keys.REPOSITORY]
    instance = await repository.get_variable_instance(variable_id, history=kind.history)
    if instance is None:
        raise NotFound(f"{kind.resource} with Id '{variable_id}' does not exist.")
    return variable_id, instance


async def _get(request: web.Request, kind: _Kind) -> web.Response:
    _, instance = await _instance(request, kind)
    # Camunda reads deserializeValue; its OpenAPI document (and clients generated from
    # it) name the historic one deserializeValues, taken too when the other is absent.
    name = "deserializeValue" if "deserializeValue" in request.query else "deserializeValues"
    deserialize = query_flag(request, name)
    return json_response(_json(kind, instance, deserialize=deserialize))


async def _data(request: web.Request, kind: _Kind) -> web.StreamResponse:
    variable_id, instance = await _instance(request, kind)
    return await send_binary(request, instance.variable, variable_id)


async def get_variable_instance(request: web.Request) -> web.Response:
    """GET /variable-instance/{id}."""
    return await _get(request, RUNTIME)


async def get_variable_instance_data(request: web.Request) -> web.StreamResponse:
    """GET and HEAD /variable-instance/{id}/data."""
    return await _data(request, RUNTIME)


async def get_historic_variable_instance(request: web.Request) -> web.Response:
    """GET /history/variable-instance/{id}."""
    return await _get(request, HISTORY)


async def get_historic_variable_instance_data(request: web.Request) -> web.StreamResponse:
    """GET and HEAD /history/variable-instance/{id}/data."""
    return await _data(request, HISTORY)


async def delete_historic_variable_instance(request: web.Request) -> web.Response:
    """DELETE /history/variable-instance/{id}: the variable of a closed case instance
    goes (its blob to the collector). casevars keeps one copy of a variable, so the
    history of a case instance not closed is its runtime variable: refused (400)
    rather than deleting what the runtime routes still serve."""
    variable_id = paths.variable_instance_id(request)
    outcome = await request.app[keys.REPOSITORY].delete_historic_variable(variable_id)
    if outcome is HistoricDeletion.MISSING:
        raise NotFound(
            f"No historic variable instance found with id: {variable_id}: variable is null"
        )
    if outcome is HistoricDeletion.RUNNING:
        raise InvalidInput(
            f"Historic variable instance {variable_id} belongs to a case instance that is "
            "not closed: casevars keeps one copy of a variable, so its history can be "
            "deleted only once the case instance is closed (delete the variable itself "
            "through /case-instance/{id}/variables/{name})",
            type_name=BAD_USER_REQUEST,
            code=0,
        )
    return web.Response(status=204)
