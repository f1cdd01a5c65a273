"""Path parameters (case-instance ids and variable names) and the lookups shared by
the variable and case-instance handlers."""

from __future__ import annotations

from aiohttp import web

from service.errors import InvalidInput, NotFound

# Camunda's columns hold 64-character ids and 255-character names; casevars allows
# 255 for both and refuses longer ones with a 400 instead of truncating.
MAX_ID_LENGTH = 255
MAX_NAME_LENGTH = 255
# What no path segment can be once URLs are resolved: aiohttp routes %2F (decoded to
# '/') and a raw '.' or '..' that clients would have resolved away.
_NOT_SEGMENTS = frozenset({"", ".", ".."})


# Where Camunda clients find the REST root besides casevars's own `/` (routes.py serves
# every REST route under each): Camunda's web application mounts it at /engine-rest,
# and its named-engine form adds /engine/{name}, which camunda-bpm-sdk-js appends to
# any apiUri it is given. Longest first, so that rest_path strips the whole root.
REST_ROOTS = ("/engine-rest/engine/{engine}", "/engine-rest", "/engine/{engine}")


def rest_path(canonical: str) -> str:
    """A route's path relative to its REST root: /engine-rest/case-instance/{id} and
    /engine/{engine}/case-instance/{id} are /case-instance/{id}."""
    for root in REST_ROOTS:
        if canonical.startswith(root + "/"):
            return canonical[len(root) :]
    return canonical


def rest_root(request: web.Request) -> str:
    """The REST root the request came in at: '' (the service root), '/engine-rest',
    '/engine/default' or '/engine-rest/engine/default'; URLs casevars puts in bodies
    (a Bytes value's dataUrl) start with it, so they work wherever the client points."""
    resource = request.match_info.route.resource
    canonical = "" if resource is None else resource.canonical
    root = canonical[: len(canonical) - len(rest_path(canonical))]
    return root.replace("{engine}", request.match_info.get("engine", ""))


def route_of(request: web.BaseRequest) -> str | None:
    """The canonical path of the route the request matched, relative to its REST root
    (so that one route has one metrics label and log value under every root), such as
    /case-instance/{id}/variables/{name}/data; None when it matched none (404, 405, or a
    request aiohttp's parser refused before routing, which has no match at all)."""
    if not isinstance(request, web.Request):
        return None
    try:
        resource = request.match_info.route.resource
    except (AssertionError, AttributeError):  # aiohttp asserts a match exists
        return None
    return None if resource is None else rest_path(resource.canonical)


def _checked(value: str, what: str, limit: int) -> str:
    if len(value) > limit:
        raise InvalidInput(f"The {what} is longer than {limit} characters")
    if "\x00" in value:
        raise InvalidInput(f"The {what} contains a NUL character")
    return value


def is_segment(value: str) -> bool:
    """Whether value can be one path segment: not '.', '..' or empty, and no '/'."""
    return value not in _NOT_SEGMENTS and "/" not in value


def _segment(request: web.Request, key: str, what: str, limit: int) -> str:
    value = _checked(request.match_info[key], what, limit)
    if not is_segment(value):
        # README: '/' cannot appear in a path segment and '..' is resolved before
        # routing, so such a URL names nothing, as an unknown route does.
        raise NotFound(
            f"'{value}' cannot be a {what} in a URL path: '/' separates path segments, "
            "and '.' and '..' are resolved before routing",
            type_name="NotFoundException",
        )
    return value


def case_id(request: web.Request) -> str:
    return _segment(request, "id", "case instance id", MAX_ID_LENGTH)


def variable_name(request: web.Request) -> str:
    return _segment(request, "name", "variable name", MAX_NAME_LENGTH)


def variable_instance_id(request: web.Request) -> str:
    return _segment(request, "id", "variable instance id", MAX_ID_LENGTH)


def case_activity_instance_id(request: web.Request) -> str:
    return _segment(request, "id", "case activity instance id", MAX_ID_LENGTH)


def definition_key(request: web.Request) -> str:
    """The case definition key from the path."""
    return _segment(request, "key", "case definition key", MAX_ID_LENGTH)


def definition_id(request: web.Request) -> str:
    """The case definition id from the path."""
    return _segment(request, "id", "case definition id", MAX_ID_LENGTH)


def tenant_id(request: web.Request) -> str:
    """The tenant id from the path (/case-definition/key/{key}/tenant-id/{tenantId})."""
    return _segment(request, "tenantId", "tenant id", MAX_ID_LENGTH)


def checked_name(name: str) -> str:
    """A variable name from a body (deletions) checked like a path one; it may name a
    variable only GET .../variables shows."""
    return _checked(name, "variable name", MAX_NAME_LENGTH)


def checked_new_name(name: str) -> str:
    """The name of a variable a body writes (modifications, creation), which must be
    one path segment, or the variable could be written but never read by its path."""
    checked_name(name)
    if not is_segment(name):
        raise InvalidInput(
            f"'{name}' cannot be a variable name: it must be one URL path segment "
            "(not empty, '.' or '..', and without '/')"
        )
    return name


def checked_field(value: str, what: str) -> str:
    """A case-instance field from a body (businessKey, tenantId, ...), checked like an id:
    Postgres cannot hold NUL, and its indexes refuse long keys."""
    return _checked(value, what, MAX_ID_LENGTH)
