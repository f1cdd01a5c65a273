"""Creating case instances from a case definition: POST /case-definition/key/{key}/create,
/case-definition/key/{key}/tenant-id/{tenantId}/create and /case-definition/{id}/create
with Camunda's CreateCaseInstanceDto ({"variables": {...}, "businessKey": ...}; other
keys, such as the `id` and `key` camunda-bpm-sdk-js sends along, are ignored as
Camunda's Jackson ignores them). casevars has no CMMN models: a key (per tenant) is a
definition, recorded on first use under an id of Camunda's shape
(service/camunda/definitions.py), which the instances created from it report."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from service.camunda.cmmn import case_definition_xml
from service.camunda.definitions import DEFINITION_VERSION, case_definition_id
from service.camunda.queries import MAX_INTEGER, MIN_INTEGER
from service.errors import BAD_USER_REQUEST, INVALID_REQUEST, REST, InvalidInput, NotFound
from service.http import keys, paths, query_params, variables
from service.http.body import json_response, read_json
from service.http.cases import case_instance_json
from service.storage.repository import CaseInstance, DefinitionQuery


def _prefix(definition_id: str) -> str:
    # Camunda finds the definition of a key first, so every route words its refusals
    # with the definition's id.
    return f"Cannot instantiate case definition {definition_id}: "


async def _create(
    request: web.Request, definition_id: str, definition: tuple[str, str | None] | None
) -> web.Response:
    """A new instance of the definition, (key, tenant id) or None to look it up by id,
    with a generated id and its first variables, in one transaction; nothing is
    created on a bad variable. As in Camunda, the body and its values are read first,
    then the definition is looked for."""
    body = await read_json(request, limit=request.app[keys.SETTINGS].max_json_bytes, required=False)
    body = {} if body is None else body
    if not isinstance(body, dict):
        raise InvalidInput("")
    business_key = body.get("businessKey")
    if business_key is not None and not isinstance(business_key, str):
        raise InvalidInput("")
    if business_key is not None:
        paths.checked_field(business_key, "businessKey")
    prefix = _prefix(definition_id)
    values = variables.parse_values(body.get("variables"), (prefix, prefix, prefix))
    repository = request.app[keys.REPOSITORY]
    if definition is None:
        definition = await repository.find_case_definition(definition_id)
        if definition is None:
            raise NotFound(
                f"{prefix}no deployed case definition found with id '{definition_id}': "
                "caseDefinition is null",
                code=0,
            )
    else:
        await repository.record_case_definition(definition_id, *definition)
    key, tenant_id = definition
    case = CaseInstance(str(uuid.uuid4()), business_key, key, definition_id, tenant_id)
    async with variables.new_blobs(request) as blobs:
        stored = await variables.stored_values(blobs, values)
        async with blobs.committing(new.blob for new in stored.values()):
            await repository.create_case_instance(case, stored)
    return json_response(case_instance_json(case))


async def create_from_key(request: web.Request) -> web.Response:
    """POST /case-definition/key/{key}/create: the definition of the key without tenant."""
    key = paths.definition_key(request)
    return await _create(request, case_definition_id(key, None), (key, None))


async def create_from_key_and_tenant(request: web.Request) -> web.Response:
    """POST /case-definition/key/{key}/tenant-id/{tenantId}/create."""
    key = paths.definition_key(request)
    tenant_id = paths.tenant_id(request)
    return await _create(request, case_definition_id(key, tenant_id), (key, tenant_id))


async def create_from_id(request: web.Request) -> web.Response:
    """POST /case-definition/{id}/create: an id an instance created from a key reported."""
    return await _create(request, paths.definition_id(request), None)


# --- reading the definitions: GET /case-definition/{id}, /key/{key}, queries ----------

# Camunda's sortBy values of case-definition queries and the column each sorts by;
# None: the same for every casevars definition (version 1, no name, category or
# deployment), so no order.
SORT_KEYS: dict[str, str | None] = {
    "id": "id",
    "key": "key",
    "tenantId": "tenant_id",
    "version": None,
    "name": None,
    "category": None,
    "deploymentId": None,
}
# Filters on what casevars definitions do not have (no CMMN resource, name, category or
# deployment): any value matches none of them.
_ABSENT = (
    "category",
    "categoryLike",
    "name",
    "nameLike",
    "deploymentId",
    "resourceName",
    "resourceNameLike",
)


def case_definition_json(
    definition_id: str, key: str, tenant_id: str | None, history_ttl_days: int | None
) -> dict[str, Any]:
    """Camunda's CaseDefinitionDto: version 1 of the key, no CMMN resource."""
    return {
        "id": definition_id,
        "key": key,
        "category": None,
        "name": None,
        "version": DEFINITION_VERSION,
        "resource": None,
        "deploymentId": None,
        "tenantId": tenant_id,
        "historyTimeToLive": history_ttl_days,
    }


def _unknown_id(definition_id: str, type_name: str = INVALID_REQUEST) -> NotFound:
    return NotFound(
        f"no deployed case definition found with id '{definition_id}': caseDefinition is null",
        type_name=type_name,
        code=0,
    )


async def _found(request: web.Request, definition_id: str) -> tuple[str, str | None, int | None]:
    found = await request.app[keys.REPOSITORY].case_definition(definition_id)
    if found is None:
        raise _unknown_id(definition_id)
    return found


async def _id_of_key(request: web.Request, key: str, tenant_id: str | None) -> str:
    """The id of the key's recorded definition (for the tenant, or without one), or
    Camunda's 404 for a key it has no definition of."""
    definition_id = case_definition_id(key, tenant_id)
    if await request.app[keys.REPOSITORY].find_case_definition(definition_id) is None:
        tenant = "no tenant-id" if tenant_id is None else f"tenant-id: {tenant_id}"
        raise NotFound(f"No matching case definition with key: {key} and {tenant}", type_name=REST)
    return definition_id


async def _addressed(request: web.Request) -> str:
    """The id of the definition the path names: /case-definition/{id}/...,
    /key/{key}/... or /key/{key}/tenant-id/{tenantId}/... (its latest version, the
    only one in casevars)."""
    if "key" not in request.match_info:
        return paths.definition_id(request)
    key = paths.definition_key(request)
    tenant_id = paths.tenant_id(request) if "tenantId" in request.match_info else None
    return await _id_of_key(request, key, tenant_id)


async def get_case_definition(request: web.Request) -> web.Response:
    """GET /case-definition/{id}, /key/{key} and /key/{key}/tenant-id/{tenantId}."""
    definition_id = await _addressed(request)
    return json_response(case_definition_json(definition_id, *await _found(request, definition_id)))


async def get_case_definition_xml(request: web.Request) -> web.Response:
    """GET /case-definition/{id}/xml (and by key): Camunda's CaseDefinitionDiagramDto,
    {"id", "cmmnXml"}, the document service/camunda/cmmn.py writes for the definition."""
    definition_id = await _addressed(request)
    key, _, history_ttl_days = await _found(request, definition_id)
    return json_response(
        {"id": definition_id, "cmmnXml": case_definition_xml(definition_id, key, history_ttl_days)}
    )


async def get_case_definition_diagram(request: web.Request) -> web.Response:
    """GET /case-definition/{id}/diagram (and by key): Camunda answers 204 for a
    definition deployed without a diagram, as every casevars definition is. An unknown
    id is the engine's own NotFoundException, which Camunda does not wrap here."""
    definition_id = await _addressed(request)
    if await request.app[keys.REPOSITORY].find_case_definition(definition_id) is None:
        raise _unknown_id(definition_id, "NotFoundException")
    return web.Response(status=204)


async def put_history_time_to_live(request: web.Request) -> web.Response:
    """PUT /case-definition/{id}/history-time-to-live (and by key), Camunda's
    HistoryTimeToLiveDto {"historyTimeToLive": days or null}: the collector removes the
    definition's closed instances that many days after they closed (null: after
    CASEVARS_HISTORY_TTL_SECONDS, the service's default). As in Camunda, the body is
    read before the definition is looked for."""
    body = await read_json(request, limit=request.app[keys.SETTINGS].max_json_bytes, required=False)
    body = {} if body is None else body
    if not isinstance(body, dict):
        raise InvalidInput("")
    days = body.get("historyTimeToLive")
    # Java's Integer, as Jackson reads it: a JSON integer (or a float without fraction).
    if days is not None and (
        isinstance(days, bool) or not isinstance(days, int | float) or days != int(days)
    ):
        raise InvalidInput("")
    if days is not None and not MIN_INTEGER <= int(days) <= MAX_INTEGER:
        raise InvalidInput("")
    if days is not None and days < 0:
        raise InvalidInput(
            "historyTimeToLive is not greater than or equal to 0",
            type_name=BAD_USER_REQUEST,
            code=0,
        )
    definition_id = await _addressed(request)
    ttl = None if days is None else int(days)
    if not await request.app[keys.REPOSITORY].set_case_definition_history_ttl(definition_id, ttl):
        raise _unknown_id(definition_id)
    return web.Response(status=204)


def _definition_query(request: web.Request) -> DefinitionQuery | None:
    """The query of the query string; None when it can match no definition."""
    params = query_params.split_lists(request.query, ("caseDefinitionIdIn", "tenantIdIn"))
    limit = query_params.MAX_LISTED_IDS
    ids = query_params.text_list(params, "caseDefinitionIdIn", limit, "ids (caseDefinitionIdIn)")
    tenants = query_params.text_list(
        params, "tenantIdIn", query_params.MAX_TENANT_IDS, "tenant ids (tenantIdIn)"
    )
    texts = {name: params.get(name) for name in ("caseDefinitionId", "key", "keyLike")}
    query_params.refuse_nul([*texts.values(), *(ids or ()), *(tenants or ())])
    version = params.get("version")
    if version is not None:
        # Java's Integer: ASCII digits, a sign, at most 2^31 - 1 (counted before int()).
        digits = version.removeprefix("-").lstrip("0")
        if (
            not (version.removeprefix("-").isascii() and version.removeprefix("-").isdigit())
            or len(digits) > len(str(MAX_INTEGER))
            or int(digits or "0") > MAX_INTEGER
        ):
            raise query_params.bad_parameter("version", version)
    sorting = query_params.sorting_from_string(request.query, SORT_KEYS)
    if (version is not None and int(version) != DEFINITION_VERSION) or any(
        params.get(name) is not None for name in _ABSENT
    ):
        return None
    one = texts["caseDefinitionId"]
    if one is not None:
        if ids is not None and one not in ids:
            return None
        ids = [one]
    return DefinitionQuery(
        ids=None if ids is None else tuple(ids),
        key=texts["key"],
        key_like=texts["keyLike"],
        tenant_ids=None if tenants is None else tuple(tenants),
        without_tenant_id=query_params.flag(params.get("withoutTenantId")),
        include_without_tenant_id=query_params.flag(
            params.get("includeCaseDefinitionsWithoutTenantId")
        ),
        sorting=tuple((column, desc) for column, desc in sorting if column is not None),
    )


async def list_case_definitions(request: web.Request) -> web.Response:
    """GET /case-definition: the recorded definitions matching the filters."""
    first, limit = query_params.paging(request)
    query = _definition_query(request)
    if query is None:
        return json_response([])
    found = await request.app[keys.REPOSITORY].query_case_definitions(
        query, first=first, limit=limit
    )
    return json_response([case_definition_json(*definition) for definition in found])


async def count_case_definitions(request: web.Request) -> web.Response:
    """GET /case-definition/count."""
    query = _definition_query(request)
    count = 0 if query is None else await request.app[keys.REPOSITORY].count_case_definitions(query)
    return json_response({"count": count})
