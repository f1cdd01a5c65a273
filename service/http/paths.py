"""Path parameters (case-instance ids and variable names) and the lookups shared by
the variable and case-instance handlers."""

from __future__ import annotations

from aiohttp import web

from service.errors import InvalidInput

# Camunda's columns hold 64-character ids and 255-character names; casevars allows
# 255 for both and refuses longer ones with a 400 instead of truncating.
MAX_ID_LENGTH = 255
MAX_NAME_LENGTH = 255


def route_of(request: web.BaseRequest) -> str | None:
    """The canonical path of the route the request matched, such as
    /case-instance/{id}/variables/{name}/data; None when it matched none (404, 405, or a
    request aiohttp's parser refused before routing, which has no match at all)."""
    if not isinstance(request, web.Request):
        return None
    try:
        resource = request.match_info.route.resource
    except (AssertionError, AttributeError):  # aiohttp asserts a match exists
        return None
    return None if resource is None else resource.canonical


def _checked(value: str, what: str, limit: int) -> str:
    if len(value) > limit:
        raise InvalidInput(f"The {what} is longer than {limit} characters")
    if "\x00" in value:
        raise InvalidInput(f"The {what} contains a NUL character")
    return value


def case_id(request: web.Request) -> str:
    return _checked(request.match_info["id"], "case instance id", MAX_ID_LENGTH)


def variable_name(request: web.Request) -> str:
    return _checked(request.match_info["name"], "variable name", MAX_NAME_LENGTH)


def checked_name(name: str) -> str:
    """A variable name from a body (modifications, deletions) checked like a path one."""
    return _checked(name, "variable name", MAX_NAME_LENGTH)


def checked_key(key: str) -> str:
    """A case definition key from the path."""
    return _checked(key, "case definition key", MAX_ID_LENGTH)


def checked_field(value: str, what: str) -> str:
    """A case-instance field from a body (businessKey, tenantId, ...), checked like an id:
    Postgres cannot hold NUL, and its indexes refuse long keys."""
    return _checked(value, what, MAX_ID_LENGTH)
