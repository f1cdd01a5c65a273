"""Historic case instances: GET and POST /history/case-instance (+ /count) and GET
/history/case-instance/{id}, Camunda's HistoricCaseInstanceDto read from the same
table as the runtime routes. History lists every case instance, closed ones included
until the history time to live (CASEVARS_HISTORY_TTL_SECONDS) removes them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from service.camunda.values import format_date, parse_date
from service.errors import InvalidInput, NotFound
from service.http import keys, paths, query_params
from service.http.body import json_response, read_json
from service.storage.case_history import HistoricAttribute, HistoricCaseQuery
from service.storage.case_query import CaseQuery
from service.storage.conditions import VariableCondition
from service.storage.repository import CaseInstance

# Camunda's sortBy values of historic case-instance queries.
SORT_KEYS = {
    "instanceId": HistoricAttribute.ID,
    "definitionId": HistoricAttribute.CASE_DEFINITION_ID,
    "businessKey": HistoricAttribute.BUSINESS_KEY,
    "createTime": HistoricAttribute.CREATE_TIME,
    "closeTime": HistoricAttribute.CLOSE_TIME,
    "duration": HistoricAttribute.DURATION,
    "tenantId": HistoricAttribute.TENANT_ID,
}
# Filters Camunda has that need what casevars does not record.
UNSUPPORTED_FILTERS = (
    "caseDefinitionName",
    "caseDefinitionNameLike",
    "createdBy",
    "caseActivityIdIn",
    "superCaseInstanceId",
    "subCaseInstanceId",
    "superProcessInstanceId",
    "subProcessInstanceId",
)
_TEXTS = (
    "caseInstanceId",
    "caseInstanceBusinessKey",
    "caseInstanceBusinessKeyLike",
    "caseDefinitionId",
    "caseDefinitionKey",
)
_LISTS = ("caseInstanceIds", "caseDefinitionKeyNotIn", "tenantIdIn")
_DATES = ("createdBefore", "createdAfter", "closedBefore", "closedAfter")
# The state flags in the order Camunda applies them, with the state codes its messages
# name (CaseExecutionState).
_STATE_FLAGS = (("active", 4), ("completed", 7), ("terminated", 6), ("closed", 9))
_CLOSED_CODE = 9
_STATE_NAMES = {4: "active", 7: "completed", 6: "terminated", 9: "closed"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def historic_case_json(case: CaseInstance) -> dict[str, Any]:
    """Camunda's HistoricCaseInstanceDto: every key present, null where casevars has no
    value (definition names, creating users, case hierarchies)."""
    created, closed = case.created_at, case.closed_at
    duration = None
    if created is not None and closed is not None:
        # Of the millisecond times shown, as Camunda subtracts its stored times.
        duration = _millis(closed) - _millis(created)
    return {
        "id": case.id,
        "businessKey": case.business_key,
        "caseDefinitionId": case.case_definition_id,
        "caseDefinitionKey": case.case_definition_key,
        "caseDefinitionName": None,
        "createTime": None if created is None else format_date(created),
        "closeTime": None if closed is None else format_date(closed),
        "durationInMillis": duration,
        "createUserId": None,
        "superCaseInstanceId": None,
        "superProcessInstanceId": None,
        "tenantId": case.tenant_id,
        "active": case.state == "active",
        "completed": case.state == "completed",
        "terminated": case.state == "terminated",
        "closed": case.state == "closed",
    }


def _millis(moment: datetime) -> int:
    """Whole milliseconds since 1970, cut as format_date cuts them."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


async def get_historic_case_instance(request: web.Request) -> web.Response:
    """GET /history/case-instance/{id}: the instance in any state, closed included."""
    case_id = paths.case_id(request)
    case = await request.app[keys.REPOSITORY].get_historic_case_instance(case_id)
    if case is None:
        raise NotFound(f"Historic case instance with id '{case_id}' does not exist")
    return json_response(historic_case_json(case))


# --- the query ----------------------------------------------------------------------


def date_from_string(name: str, raw: str) -> datetime:
    """A date of the query string as Camunda's DateConverter reads it."""
    if raw.startswith('"') or raw.endswith('"'):
        raise InvalidInput(
            f"Cannot set query parameter '{name}' to value '{raw}': Cannot convert value "
            f"{raw} to java type java.util.Date because of double quotes"
        )
    try:
        return parse_date(raw)
    except ValueError:
        raise InvalidInput(
            f"Cannot set query parameter '{name}' to value '{raw}': Cannot convert value "
            f'"{raw}" to java type java.util.Date'
        ) from None


def _date_from_body(raw: Any) -> datetime | None:
    """A Date field as Jackson reads it: the REST format, or milliseconds since 1970."""
    if raw is None:
        return None
    if isinstance(raw, str):
        try:
            return parse_date(raw)
        except ValueError:
            raise InvalidInput("") from None
    if isinstance(raw, int) and not isinstance(raw, bool):
        try:
            return datetime.fromtimestamp(raw / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise InvalidInput("") from None
    raise InvalidInput("")


def _state(filters: Mapping[str, Any], dates: Mapping[str, datetime | None]) -> str | None:
    """The one state asked for. Camunda's query takes one: a close time asks for closed,
    and a second state flag is refused naming the state code asked for first."""
    state: int | None = None
    for name in ("closedBefore", "closedAfter"):
        if dates[name] is not None:
            if state not in (None, _CLOSED_CODE):
                raise _state_conflict(f"Already querying for case instance state '{state}'")
            state = _CLOSED_CODE
    for name, code in _STATE_FLAGS:
        if query_params.flag(filters.get(name)):
            if state is not None:
                raise _state_conflict(
                    f"Already querying for case instance state '{state}': state is not null"
                )
            state = code
    return None if state is None else _STATE_NAMES[state]


def _state_conflict(message: str) -> InvalidInput:
    return InvalidInput(message, type_name="NotValidException", code=0)


def _query(
    filters: Mapping[str, Any],
    conditions: tuple[VariableCondition, ...],
    dates: Mapping[str, datetime | None],
) -> HistoricCaseQuery:
    for name in UNSUPPORTED_FILTERS:
        if filters.get(name) is not None:
            raise InvalidInput(
                f"The filter '{name}' is not supported: casevars records no case definition "
                "names, creating users, case activities or case hierarchies"
            )
    texts = {name: query_params.text(filters, name) for name in _TEXTS}
    lists = {
        name: query_params.text_list(filters, name, query_params.MAX_LISTED_IDS, f"ids ({name})")
        for name in _LISTS
    }
    if lists["caseInstanceIds"] == []:
        raise InvalidInput(
            "Set of case instance ids is empty", type_name="ProcessEngineException", code=0
        )
    listed = [text for values in lists.values() for text in values or ()]
    query_params.refuse_nul([*texts.values(), *listed], conditions)
    # Camunda applies an empty tenantIdIn as no filter.
    tenants = lists["tenantIdIn"] or None
    case = CaseQuery(
        case_instance_id=texts["caseInstanceId"],
        business_key=texts["caseInstanceBusinessKey"],
        case_definition_key=texts["caseDefinitionKey"],
        case_definition_id=texts["caseDefinitionId"],
        tenant_ids=None if tenants is None else tuple(tenants),
        without_tenant_id=query_params.flag(filters.get("withoutTenantId")),
        variables=conditions,
        variable_names_ignore_case=query_params.flag(filters.get("variableNamesIgnoreCase")),
        variable_values_ignore_case=query_params.flag(filters.get("variableValuesIgnoreCase")),
        state=_state(filters, dates),
    )
    ids, not_in = lists["caseInstanceIds"], lists["caseDefinitionKeyNotIn"]
    return HistoricCaseQuery(
        case=case,
        case_instance_ids=None if ids is None else tuple(ids),
        business_key_like=texts["caseInstanceBusinessKeyLike"],
        case_definition_key_not_in=None if not_in is None else tuple(not_in),
        not_closed=query_params.flag(filters.get("notClosed")),
        created_before=dates["createdBefore"],
        created_after=dates["createdAfter"],
        closed_before=dates["closedBefore"],
        closed_after=dates["closedAfter"],
    )


def _query_from_string(request: web.Request) -> HistoricCaseQuery:
    params = query_params.split_lists(request.query, _LISTS)
    dates = {
        name: None if name not in params else date_from_string(name, params[name])
        for name in _DATES
    }
    conditions = (
        query_params.conditions_from_text(params["variables"]) if "variables" in params else ()
    )
    query = _query(params, conditions, dates)
    sorting = query_params.sorting_from_string(request.query, SORT_KEYS)
    return dataclasses.replace(query, sorting=sorting)


def _query_from_body(body: Any) -> HistoricCaseQuery:
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise InvalidInput("")
    raw_sorting = body.get("sorting")
    query_params.objects(raw_sorting)  # both lists' shapes before any condition
    dates = {name: _date_from_body(body.get(name)) for name in _DATES}
    conditions = query_params.conditions_from_body(body.get("variables"))
    query = _query(body, conditions, dates)
    sorting = query_params.sorting_from_body(body, SORT_KEYS)
    return dataclasses.replace(query, sorting=sorting)


async def _listed(request: web.Request, query: HistoricCaseQuery) -> web.Response:
    first, limit = query_params.paging(request)
    repository = request.app[keys.REPOSITORY]
    found = await repository.query_historic_case_instances(query, first=first, limit=limit)
    return json_response([historic_case_json(case) for case in found])


async def _counted(request: web.Request, query: HistoricCaseQuery) -> web.Response:
    count = await request.app[keys.REPOSITORY].count_historic_case_instances(query)
    return json_response({"count": count})


async def _body_query(request: web.Request) -> HistoricCaseQuery:
    limit = request.app[keys.SETTINGS].max_json_bytes
    return _query_from_body(await read_json(request, limit=limit, required=False))


async def list_historic_case_instances(request: web.Request) -> web.Response:
    """GET /history/case-instance."""
    return await _listed(request, _query_from_string(request))


async def count_historic_case_instances(request: web.Request) -> web.Response:
    """GET /history/case-instance/count."""
    return await _counted(request, _query_from_string(request))


async def query_historic_case_instances(request: web.Request) -> web.Response:
    """POST /history/case-instance: the same query with a JSON body."""
    return await _listed(request, await _body_query(request))


async def query_historic_case_instance_count(request: web.Request) -> web.Response:
    """POST /history/case-instance/count."""
    return await _counted(request, await _body_query(request))
