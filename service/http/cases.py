"""Case-instance handlers: create (PUT, a casevars extension), read, delete, create from
a definition key, and the queries (GET and POST /case-instance and /count)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from service.camunda.queries import MAX_INTEGER, VARIABLE_OPERATORS
from service.camunda.values import format_date, parse_date
from service.errors import InvalidInput, NotFound
from service.http import keys, paths, variables
from service.http.body import json_response, read_json
from service.storage.case_query import CaseAttribute, CaseQuery, VariableCondition
from service.storage.repository import CaseInstance

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
        "active": True,
        "completed": False,
        "terminated": False,
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
    case, created = await request.app[keys.REPOSITORY].put_case_instance(case_id, fields)
    return json_response(case_instance_json(case), status=201 if created else 200)


async def delete_case_instance(request: web.Request) -> web.Response:
    """Delete the instance and all its variables; their blobs go to the collector."""
    case_id = paths.case_id(request)
    if not await request.app[keys.REPOSITORY].delete_case_instance(case_id):
        raise _not_found(case_id)
    return web.Response(status=204)


# --- creation from a case definition key -----------------------------------------


async def create_from_definition(request: web.Request) -> web.Response:
    """POST /case-definition/key/{key}/create: a new instance with a generated id and
    its first variables, in one transaction; nothing is created on a bad variable."""
    key = paths.definition_key(request)
    body = await read_json(request, limit=request.app[keys.SETTINGS].max_json_bytes, required=False)
    body = {} if body is None else body
    if not isinstance(body, dict):
        raise InvalidInput("")
    business_key = body.get("businessKey")
    if business_key is not None and not isinstance(business_key, str):
        raise InvalidInput("")
    if business_key is not None:
        paths.checked_field(business_key, "businessKey")
    prefix = f"Cannot instantiate case definition {key}: "
    values = variables.parse_values(body.get("variables"), (prefix, prefix, prefix))
    case = CaseInstance(str(uuid.uuid4()), business_key, key, None, None)
    async with variables.new_blobs(request) as blobs:
        stored = await variables.stored_values(blobs, values)
        async with blobs.committing(new.blob for new in stored.values()):
            await request.app[keys.REPOSITORY].create_case_instance(case, stored)
    return json_response(case_instance_json(case))


# --- queries: GET and POST /case-instance and /count --------------------------------

# Bounds on one query (each condition is a subquery with two bound arguments; asyncpg
# takes at most 32,767 arguments).
MAX_QUERY_CONDITIONS = 100
MAX_TENANT_IDS = 1000
MAX_SORTING_ENTRIES = 10
# The digits of the largest firstResult or maxResults, after leading zeros.
_MAX_INTEGER_DIGITS = len(str(MAX_INTEGER))

# Filters Camunda has that need process instances, deployments or case hierarchies.
UNSUPPORTED_FILTERS = (
    "deploymentId",
    "superProcessInstance",
    "subProcessInstance",
    "superCaseInstance",
    "subCaseInstance",
)


def _bad_parameter(name: str, value: object) -> InvalidInput:
    return InvalidInput(f"Cannot set query parameter '{name}' to value '{value}'")


def _paging(request: web.Request) -> tuple[int, int | None]:
    """firstResult and maxResults from the query string (both optional, 0 and more)."""
    found: dict[str, int | None] = {"firstResult": 0, "maxResults": None}
    for name in found:
        raw = request.query.get(name)
        if raw is None:
            continue
        # Camunda's Integer: ASCII digits (str.isdigit also takes '²'), at most 2^31 - 1;
        # counted before int(), which refuses more than 4,300 digits.
        digits = raw.lstrip("0")
        if (
            not (raw.isascii() and raw.isdigit())
            or len(digits) > _MAX_INTEGER_DIGITS
            or int(digits or "0") > MAX_INTEGER
        ):
            raise _bad_parameter(name, raw)
        found[name] = int(digits or "0")
    return found["firstResult"] or 0, found["maxResults"]


def _query_value(value: Any) -> tuple[Any, bool]:
    """A condition's value as Camunda resolves it: text in the REST date format is a
    date, anything else is used as it is. Returns (value, is_date)."""
    if isinstance(value, str):
        try:
            return format_date(parse_date(value)), True
        except ValueError:
            return value, False
    if isinstance(value, bool | int | float) or value is None:
        return value, False
    raise InvalidInput("")


def _condition(name: Any, operator: Any, value: Any) -> VariableCondition:
    if not isinstance(name, str) or not isinstance(operator, str):
        raise InvalidInput("")
    if operator not in VARIABLE_OPERATORS:
        raise InvalidInput(f"Invalid variable comparator specified: {operator}")
    resolved, is_date = _query_value(value)
    if operator == "like" and not isinstance(resolved, str):
        raise InvalidInput("Only string values can be used with 'like' condition")
    return VariableCondition(name, operator, resolved, is_date)


def _bounded(items: list[Any], limit: int, what: str) -> list[Any]:
    if len(items) > limit:
        raise InvalidInput(f"At most {limit} {what} are allowed in one query, not {len(items)}")
    return items


def _conditions_from_text(text: str) -> tuple[VariableCondition, ...]:
    conditions = []
    for expression in _bounded(text.split(","), MAX_QUERY_CONDITIONS, "variable conditions"):
        triple = expression.split("_")
        if len(triple) != 3:
            raise InvalidInput("variable query parameter has to have format KEY_OPERATOR_VALUE.")
        conditions.append(_condition(*triple))
    return tuple(conditions)


def _sorting(pairs: list[tuple[Any, Any]]) -> tuple[tuple[CaseAttribute, bool], ...]:
    checked = []
    for sort_by, sort_order in pairs:
        if not isinstance(sort_by, str) or sort_by not in SORT_KEYS:
            raise _bad_parameter("sortBy", sort_by)
        if not isinstance(sort_order, str) or sort_order not in {"asc", "desc"}:
            raise _bad_parameter("sortOrder", sort_order)
        checked.append((SORT_KEYS[sort_by], sort_order == "desc"))
    return tuple(checked)


def _flag(value: Any) -> bool:
    """JAX-RS and Jackson booleans: `true` in any letter case, or JSON true."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _query(filters: Mapping[str, Any], conditions: tuple[VariableCondition, ...]) -> CaseQuery:
    """The query from filters read from the query string or a JSON body."""
    for name in UNSUPPORTED_FILTERS:
        if filters.get(name) is not None:
            raise InvalidInput(
                f"The filter '{name}' is not supported: casevars has no process instances, "
                "deployments or case hierarchies"
            )
    texts = {}
    for name in ("caseInstanceId", "businessKey", "caseDefinitionKey", "caseDefinitionId"):
        value = filters.get(name)
        if value is not None and not isinstance(value, str):
            raise InvalidInput("")
        texts[name] = value
    tenants = filters.get("tenantIdIn")
    if tenants is not None:
        if not isinstance(tenants, list):
            raise InvalidInput("")
        _bounded(tenants, MAX_TENANT_IDS, "tenant ids (tenantIdIn)")
        if not all(isinstance(t, str) for t in tenants):
            raise InvalidInput("")
    compared = [
        *(text for text in texts.values() if text is not None),
        *(tenants or ()),
        *(condition.name for condition in conditions),
        *(condition.value for condition in conditions if isinstance(condition.value, str)),
    ]
    if any("\x00" in text for text in compared):
        # Postgres text cannot hold it (so nothing stored can equal it).
        raise InvalidInput("Query values cannot contain the NUL character (\\u0000)")
    return CaseQuery(
        case_instance_id=texts["caseInstanceId"],
        business_key=texts["businessKey"],
        case_definition_key=texts["caseDefinitionKey"],
        case_definition_id=texts["caseDefinitionId"],
        tenant_ids=None if tenants is None else tuple(tenants),
        without_tenant_id=_flag(filters.get("withoutTenantId")),
        variables=conditions,
        variable_names_ignore_case=_flag(filters.get("variableNamesIgnoreCase")),
        variable_values_ignore_case=_flag(filters.get("variableValuesIgnoreCase")),
        match_nothing=_flag(filters.get("completed")) or _flag(filters.get("terminated")),
    )


def _query_from_string(request: web.Request) -> CaseQuery:
    params: dict[str, Any] = dict(request.query)
    conditions = _conditions_from_text(params["variables"]) if "variables" in params else ()
    if "tenantIdIn" in params:
        params["tenantIdIn"] = params["tenantIdIn"].split(",")
    query = _query(params, conditions)
    sort_by, sort_order = params.get("sortBy"), params.get("sortOrder")
    if (sort_by is None) != (sort_order is None):
        raise InvalidInput(
            "Only a single sorting parameter specified. sortBy and sortOrder required"
        )
    if sort_by is None:
        return query
    return dataclasses.replace(query, sorting=_sorting([(sort_by, sort_order)]))


def _query_from_body(body: Any) -> CaseQuery:
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise InvalidInput("")
    raw_conditions = body.get("variables") or []
    raw_sorting = body.get("sorting") or []
    if not isinstance(raw_conditions, list) or not isinstance(raw_sorting, list):
        raise InvalidInput("")
    _bounded(raw_conditions, MAX_QUERY_CONDITIONS, "variable conditions")
    _bounded(raw_sorting, MAX_SORTING_ENTRIES, "sorting entries")
    if not all(isinstance(item, dict) for item in [*raw_conditions, *raw_sorting]):
        raise InvalidInput("")
    conditions = tuple(
        _condition(item.get("name"), item.get("operator"), item.get("value"))
        for item in raw_conditions
    )
    query = _query(body, conditions)
    sorting = _sorting([(item.get("sortBy"), item.get("sortOrder")) for item in raw_sorting])
    return dataclasses.replace(query, sorting=sorting)


async def _listed(request: web.Request, query: CaseQuery) -> web.Response:
    first, limit = _paging(request)
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
