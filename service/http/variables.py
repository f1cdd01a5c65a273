"""The JSON variable routes: GET one and all, PUT, DELETE, and the modification POST.
Bytes and File contents in JSON bodies go to the blob store through the same life
cycle as a multipart upload (storage/lifecycle.py); uploads.py and downloads.py hold
the `/data` routes."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from aiohttp import web

from service.camunda import mime
from service.camunda.messages import missing_case_on_read, missing_case_on_write, missing_variable
from service.camunda.values import (
    ParsedValue,
    ShapeProblem,
    ValueProblem,
    parse_value,
    render_value,
)
from service.config import inline_cost
from service.errors import REST, CamundaError, InvalidInput, NotFound
from service.http import keys, paths
from service.http.body import json_response, read_json
from service.http.listing import inlined_size, send_listing
from service.storage.lifecycle import NewBlobs
from service.storage.repository import NewValue, NoSuchCaseInstance, StoredVariable

ILLEGAL_ARGUMENT = "IllegalArgumentException"
NOT_FOUND_EXCEPTION = "NotFoundException"
# Values one request writes (modifications, or the variables of a case created from a
# definition key) and names it deletes: each costs a statement in one transaction.
MAX_MODIFICATIONS = 1000
MAX_DELETIONS = 1000


def new_blobs(request: web.Request) -> NewBlobs:
    """The life cycle of the blobs this request writes."""
    app = request.app
    return NewBlobs(app[keys.REPOSITORY], app[keys.BLOBS], prefix=app[keys.ENDPOINTS].s3_prefix)


async def stored_variable(request: web.Request, case_id: str, name: str) -> StoredVariable:
    """The variable, or the 404 a GET of it answers."""
    try:
        variable = await request.app[keys.REPOSITORY].get_variable(case_id, name)
    except NoSuchCaseInstance:
        message = f"Cannot get case execution variable {name}: {missing_case_on_read(case_id)}"
        raise NotFound(message, type_name=REST, code=0) from None
    if variable is None:
        raise NotFound(missing_variable(name))
    return variable


Prefixes = tuple[str, str, str]  # conversion, engine and lookup message prefixes
# A route whose refusals name the variable: (name, problem) -> the error to raise.
Wording = Callable[[str, ValueProblem], CamundaError]


def query_flag(request: web.Request, name: str) -> bool:
    """JAX-RS boolean parsing: `true` in any letter case is true, anything else false;
    absent means the default, true."""
    raw = request.query.get(name)
    return True if raw is None else raw.lower() == "true"


def data_url(case_id: str, name: str) -> str:
    return f"/case-instance/{mime.url_encode(case_id)}/variables/{mime.url_encode(name)}/data"


async def render_variable(
    request: web.Request,
    case_id: str,
    variable: StoredVariable,
    *,
    deserialize: bool,
    reserved: bool = False,
) -> dict[str, Any]:
    """The value object of GET responses; Bytes content inline up to the configured
    limit, fetched and encoded in memory taken from the budget (reserved: the caller
    holds it already)."""
    if variable.type == "Bytes" and variable.blob is not None:
        blob = variable.blob
        settings = request.app[keys.SETTINGS]
        if inlined_size(variable, settings.inline_bytes_limit) is not None:
            async with contextlib.AsyncExitStack() as stack:
                if not reserved:
                    await stack.enter_async_context(
                        request.app[keys.BUDGET].reserved(
                            inline_cost(blob.size), timeout=settings.client_read_timeout_seconds
                        )
                    )
                content = await request.app[keys.BLOBS].read_all(blob.key)
                return render_value("Bytes", None, {}, deserialize=deserialize, content=content)
        url = paths.rest_root(request) + data_url(case_id, variable.name)
        return render_value(
            "Bytes", None, {}, deserialize=deserialize, size=blob.size, data_url=url
        )
    return render_value(variable.type, variable.value, variable.value_info, deserialize=deserialize)


async def get_variables(request: web.Request) -> web.StreamResponse:
    """GET /case-instance/{id}/variables: name -> value object."""
    case_id = paths.case_id(request)
    deserialize = query_flag(request, "deserializeValues")
    try:
        variables = await request.app[keys.REPOSITORY].list_variables(case_id)
    except NoSuchCaseInstance:
        raise NotFound(
            missing_case_on_read(case_id), type_name=NOT_FOUND_EXCEPTION, code=0
        ) from None

    async def render(variable: StoredVariable) -> dict[str, Any]:
        return await render_variable(
            request, case_id, variable, deserialize=deserialize, reserved=True
        )

    # Inlined Bytes in memory taken from the budget, the JSON streamed when large.
    return await send_listing(request, variables, render)


async def get_variable(request: web.Request) -> web.Response:
    """GET /case-instance/{id}/variables/{name}."""
    case_id = paths.case_id(request)
    name = paths.variable_name(request)
    variable = await stored_variable(request, case_id, name)
    deserialize = query_flag(request, "deserializeValue")
    return json_response(await render_variable(request, case_id, variable, deserialize=deserialize))


def value_problem(problem: ValueProblem, prefixes: Prefixes) -> InvalidInput:
    """A refused value, worded as the route Camunda answers it from words it."""
    conversion_prefix, engine_prefix, _ = prefixes
    if problem.kind == "illegal_argument":
        return InvalidInput(problem.message, type_name=ILLEGAL_ARGUMENT)
    if problem.kind == "engine":
        return InvalidInput(engine_prefix + problem.message, type_name=REST)
    return InvalidInput(conversion_prefix + problem.message)


def parse_values(
    raw: Any, prefixes: Prefixes, *, wording: Wording | None = None
) -> dict[str, ParsedValue]:
    """Every value of a {name: value object} map, all converted before any is used;
    refusals in Camunda's order: shape, then conversion, then engine problems, worded
    by value_problem with prefixes, or by `wording` when the route names the variable."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidInput("")
    if len(raw) > MAX_MODIFICATIONS:
        raise InvalidInput(
            f"{prefixes[0]}At most {MAX_MODIFICATIONS} variables can be written in one "
            f"request, not {len(raw)}"
        )
    parsed: dict[str, ParsedValue] = {}
    problems: list[tuple[str, ValueProblem]] = []
    for name, obj in raw.items():
        paths.checked_new_name(name)
        try:
            parsed[name] = parse_value(name, obj)
        except ShapeProblem:
            raise InvalidInput("") from None
        except ValueProblem as problem:
            problems.append((name, problem))
    first = next((p for p in problems if p[1].kind != "engine"), None) or next(iter(problems), None)
    if first is not None:
        refused_name, refused = first
        raise (
            value_problem(refused, prefixes) if wording is None else wording(refused_name, refused)
        )
    return parsed


async def write_values(
    request: web.Request,
    case_id: str,
    values: dict[str, ParsedValue],
    deletions: list[str],
    lookup_message: str,
) -> None:
    """Store values and apply deletions in one transaction; 404 with lookup_message
    when the case instance does not exist (and may not be created)."""
    auto_create = request.app[keys.SETTINGS].auto_create_case_instances
    repository = request.app[keys.REPOSITORY]
    writes = {name: value for name, value in values.items() if not value.transient}
    # Look first only when there are contents to upload (no blob for a missing case
    # instance) or nothing to write; otherwise the write itself finds out.
    look_first = any(v.content is not None for v in writes.values()) or not (writes or deletions)
    if look_first and not auto_create and not await repository.case_instance_exists(case_id):
        raise NotFound(lookup_message, type_name=REST, code=0)
    async with new_blobs(request) as blobs:
        stored = await stored_values(blobs, writes)
        if not (stored or deletions):
            return
        try:
            async with blobs.committing(new.blob for new in stored.values()):
                await repository.write_variables(
                    case_id, stored, deletions, create_case_instance=auto_create and bool(stored)
                )
        except NoSuchCaseInstance:
            raise NotFound(lookup_message, type_name=REST, code=0) from None


async def stored_values(blobs: NewBlobs, values: dict[str, ParsedValue]) -> dict[str, NewValue]:
    """The values to store (transient ones left out), their contents in new blobs."""
    stored = {}
    for name, value in values.items():
        if value.transient:
            continue
        blob = None if value.content is None else await blobs.put_bytes(value.content)
        stored[name] = NewValue(value.type, value.value, value.value_info, blob)
    return stored


def _put_prefixes(name: str) -> Prefixes:
    prefix = f"Cannot put case execution variable {name}: "
    return prefix, prefix, prefix


async def put_variable(request: web.Request) -> web.Response:
    """PUT /case-instance/{id}/variables/{name}: create or replace one variable."""
    case_id = paths.case_id(request)
    name = paths.variable_name(request)
    body = await read_json(request, limit=request.app[keys.SETTINGS].max_json_bytes)
    values = parse_values({name: body}, _put_prefixes(name))
    lookup = f"Cannot put case execution variable {name}: {missing_case_on_write(case_id)}"
    await write_values(request, case_id, values, [], lookup)
    return web.Response(status=204)


async def delete_variable(request: web.Request) -> web.Response:
    """DELETE /case-instance/{id}/variables/{name}: fine if the variable does not exist."""
    case_id = paths.case_id(request)
    name = paths.variable_name(request)
    try:
        await request.app[keys.REPOSITORY].delete_variable(case_id, name)
    except NoSuchCaseInstance:
        message = f"Cannot delete case execution variable {name}: {missing_case_on_write(case_id)}"
        raise NotFound(message, type_name=REST, code=0) from None
    return web.Response(status=204)


def deletion_names(raw: Any, prefix: str) -> list[str]:
    """A list of names to delete (null: none), bounded; prefix words the bound's refusal."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidInput("")
    if len(raw) > MAX_DELETIONS:
        raise InvalidInput(
            f"{prefix}At most {MAX_DELETIONS} variables can be deleted in one request, "
            f"not {len(raw)}"
        )
    if not all(isinstance(name, str) for name in raw):
        raise InvalidInput("")
    return [paths.checked_name(name) for name in raw]


async def modify_variables(request: web.Request) -> web.Response:
    """POST /case-instance/{id}/variables: modifications and deletions, all or nothing."""
    case_id = paths.case_id(request)
    body = await read_json(request, limit=request.app[keys.SETTINGS].max_json_bytes)
    if not isinstance(body, dict):
        raise InvalidInput("")
    engine_prefix = f"Cannot modify variables for case execution {case_id}: "
    prefixes = ("Cannot modify variables for case execution: ", engine_prefix, engine_prefix)
    values = parse_values(body.get("modifications"), prefixes)
    deletions = deletion_names(body.get("deletions"), prefixes[0])
    deleted = set(deletions)
    both = next((name for name in values if name in deleted), None)
    if both is not None:
        raise InvalidInput(
            f"{engine_prefix}Cannot set and remove a variable with the same variable name: "
            f"'{both}' within a command.",
            type_name=REST,
            code=0,
        )
    await write_values(
        request, case_id, values, deletions, engine_prefix + missing_case_on_write(case_id)
    )
    return web.Response(status=204)
