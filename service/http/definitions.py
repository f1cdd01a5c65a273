"""Creating case instances from a case definition: POST /case-definition/key/{key}/create,
/case-definition/key/{key}/tenant-id/{tenantId}/create and /case-definition/{id}/create
with Camunda's CreateCaseInstanceDto ({"variables": {...}, "businessKey": ...}; other
keys, such as the `id` and `key` camunda-bpm-sdk-js sends along, are ignored as
Camunda's Jackson ignores them). casevars has no CMMN models: a key (per tenant) is a
definition, recorded on first use under an id of Camunda's shape
(service/camunda/definitions.py), which the instances created from it report."""

from __future__ import annotations

import uuid

from aiohttp import web

from service.camunda.definitions import case_definition_id
from service.errors import InvalidInput, NotFound
from service.http import keys, paths, variables
from service.http.body import json_response, read_json
from service.http.cases import case_instance_json
from service.storage.repository import CaseInstance


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
