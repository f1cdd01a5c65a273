"""The CMMN life cycle of a case instance: POST /case-instance/{id}/complete, /close
and /terminate, each with Camunda's CaseExecutionTriggerDto body
({"variables": {...}, "deletions": [{"name": ...}]}) applied in the same transaction
as the transition. Values go through the same parsing and blob life cycle as the
variable routes (variables.py)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from service.camunda.messages import missing_case_on_write
from service.camunda.values import ParsedValue, ValueProblem
from service.errors import REST, CamundaError, Forbidden, InvalidInput, NotFound
from service.http import keys, paths, variables
from service.http.body import read_json
from service.storage.repository import (
    TRANSITIONS,
    CaseState,
    IllegalTransition,
    NoSuchCaseInstance,
)

# Camunda's CmmnBehaviorLogger texts (ENGINE-05...), its unbalanced quote included.
_TRANSITION = "Could not perform transition '{transition} on case execution with id '{id}'."


def refusal(transition: str, case_id: str, state: CaseState) -> str:
    """Why Camunda refuses the transition of a case instance in this state: the same
    state as the target (ENGINE-05010), a state it does not lead from (05011), or a
    close of an active instance (05008)."""
    head = _TRANSITION.format(transition=transition, id=case_id)
    sources, target = TRANSITIONS[transition]
    if transition == "close":
        # CMMN allows suspended too; casevars has no suspension.
        return (
            f"ENGINE-05008 {head}Reason: The case instance must be in state "
            f"'[completed|terminated|suspended]' to close it, but the state is '{state}'."
        )
    if state == target:
        return f"ENGINE-05010 {head}Reason: The case execution is already in state '{state}'."
    return (
        f"ENGINE-05011 {head}Reason: The case execution must be in state '{sources[0]}' "
        f"to {transition}, but it was in state '{state}'"
    )


def _wording(transition: str, case_id: str, subject: str) -> variables.Wording:
    """Refused values as CaseInstanceResourceImpl (subject "case instance") and
    CaseExecutionResourceImpl ("case execution") word them: a conversion names the
    variable (RestException), the engine's problems come from the command."""

    def word(name: str, problem: ValueProblem) -> CamundaError:
        if problem.kind == "conversion":
            return InvalidInput(
                f"Cannot {transition} {subject} {case_id} due to invalid variable "
                f"{name}: {problem.message}",
                type_name=REST,
            )
        prefix = f"Cannot {transition} {subject} {case_id}: "
        return variables.value_problem(problem, (prefix, prefix, prefix))

    return word


def _jackson_boolean(value: Any) -> bool:
    """A Java `boolean` field as Jackson reads it: null is false; true, false, 0, 1
    and their text as such; anything else a malformed body."""
    if value is None or value in (False, 0, "false"):
        return False
    if value in (True, 1, "true"):
        return True
    raise InvalidInput("")


def _deletion_items(raw: Any) -> list[tuple[str | None, bool]]:
    """(name, local) of VariableNameDto items, other keys ignored as Jackson does; a
    body of another shape is malformed (Jackson reads the whole body first)."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise InvalidInput("")
    items = []
    for item in raw:
        name = item.get("name")
        if name is not None and not isinstance(name, str):
            raise InvalidInput("")
        items.append((name, _jackson_boolean(item.get("local"))))
    return items


def _deletions(
    items: list[tuple[str | None, bool]], prefix: str, values: dict[str, Any]
) -> list[str]:
    """The names to delete, refused as Camunda's command builder refuses them (after
    it has taken the values)."""
    names = []
    for name, local in items:
        if name is None:
            what = "localVariableName" if local else "variableName"
            raise InvalidInput(f"{prefix}{what} is null", code=0)
        if name in values:
            raise InvalidInput(
                f"{prefix}Cannot set and remove a variable with the same variable name: "
                f"'{name}' within a command.",
                code=0,
            )
        names.append(name)
    return variables.deletion_names(names, prefix)


async def read_trigger(
    request: web.Request, case_id: str, transition: str, subject: str
) -> tuple[dict[str, ParsedValue], list[str]]:
    """The values and deletions of a CaseExecutionTriggerDto body, refused as the
    resource of subject ("case instance" or "case execution") refuses them."""
    body = await read_json(request, limit=request.app[keys.SETTINGS].max_json_bytes, required=False)
    body = {} if body is None else body
    if not isinstance(body, dict):
        raise InvalidInput("")
    prefix = f"Cannot {transition} {subject} {case_id}: "
    raw_values = body.get("variables")
    if isinstance(raw_values, dict):
        for obj in raw_values.values():
            if isinstance(obj, dict):
                # TriggerVariableValueDto's `local`: on a case instance, its own
                # variables are its local ones, so only its shape matters.
                _jackson_boolean(obj.get("local"))
    items = _deletion_items(body.get("deletions"))
    values = variables.parse_values(
        raw_values, (prefix, prefix, prefix), wording=_wording(transition, case_id, subject)
    )
    return values, _deletions(items, prefix, values)


async def transition(
    request: web.Request, transition: str, subject: str = "case instance"
) -> web.Response:
    """POST .../{id}/{transition} of a case instance, or of its root case execution."""
    case_id = paths.case_id(request)
    values, deletions = await read_trigger(request, case_id, transition, subject)
    prefix = f"Cannot {transition} {subject} {case_id}: "
    missing = NotFound(prefix + missing_case_on_write(case_id), code=0)
    repository = request.app[keys.REPOSITORY]
    uploads = any(value.content is not None and not value.transient for value in values.values())
    if uploads and not await repository.case_instance_exists(case_id):
        raise missing  # before any content goes to S3
    async with variables.new_blobs(request) as blobs:
        stored = await variables.stored_values(blobs, values)
        try:
            async with blobs.committing(new.blob for new in stored.values()):
                await repository.transition_case_instance(case_id, transition, stored, deletions)
        except NoSuchCaseInstance:
            raise missing from None
        except IllegalTransition as refused:
            raise Forbidden(prefix + refusal(transition, case_id, refused.state), code=0) from None
    return web.Response(status=204)


async def complete_case_instance(request: web.Request) -> web.Response:
    """POST /case-instance/{id}/complete: active -> completed."""
    return await transition(request, "complete")


async def close_case_instance(request: web.Request) -> web.Response:
    """POST /case-instance/{id}/close: completed or terminated -> closed (history only)."""
    return await transition(request, "close")


async def terminate_case_instance(request: web.Request) -> web.Response:
    """POST /case-instance/{id}/terminate: active -> terminated."""
    return await transition(request, "terminate")
