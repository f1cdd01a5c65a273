"""Case-instance handlers: create (PUT, a casevars extension), read, delete."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from service import http_paths, keys
from service.errors import InvalidInput, NotFound
from service.http_body import read_json
from service.repository import CaseInstance

# Body keys of PUT /case-instance/{id} and the columns they fill.
_FIELDS = {
    "businessKey": "business_key",
    "caseDefinitionKey": "case_definition_key",
    "caseDefinitionId": "case_definition_id",
    "tenantId": "tenant_id",
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
    case_id = http_paths.case_id(request)
    case = await request.app[keys.REPOSITORY].get_case_instance(case_id)
    if case is None:
        raise _not_found(case_id)
    return web.json_response(case_instance_json(case))


def _fields(body: Any) -> dict[str, str | None]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidInput("")
    fields: dict[str, str | None] = {}
    for key, column in _FIELDS.items():
        if key in body:
            value = body[key]
            if value is not None and not isinstance(value, str):
                raise InvalidInput("")
            fields[column] = value
    return fields


async def put_case_instance(request: web.Request) -> web.Response:
    """Create the case instance (201) or update the given fields of it (200)."""
    case_id = http_paths.case_id(request)
    settings = request.app[keys.SETTINGS]
    body = await read_json(request, limit=settings.max_json_bytes, required=False)
    fields = _fields(body)
    case, created = await request.app[keys.REPOSITORY].put_case_instance(case_id, fields)
    return web.json_response(case_instance_json(case), status=201 if created else 200)


async def delete_case_instance(request: web.Request) -> web.Response:
    """Delete the instance and all its variables; their blobs go to the collector."""
    case_id = http_paths.case_id(request)
    if not await request.app[keys.REPOSITORY].delete_case_instance(case_id):
        raise _not_found(case_id)
    return web.Response(status=204)
