"""The OpenAPI 3.1 document of the service, served at GET /openapi.json.

It is Python data rather than a JSON file so that the limits and lists it states (id
lengths, sort keys, operators, refused filters, form limits) are the constants the
handlers use, and so that it ships with the package without package-data. The
document is built once, here, from its parts: `components` (what every route shares),
`operations` (probes, metrics, this document, security), `cases` (case-instance
routes and queries) and `variables` (variable routes, downloads and the upload form);
`blocks` holds the helpers they build with. tests/test_openapi.py checks it against
the router (every route documented, nothing documented that is not routed) and runs
schemathesis against the live service.
"""

from __future__ import annotations

import copy
import functools
import importlib.metadata

import orjson
from aiohttp import web

from service.http.openapi import (
    case_activities,
    case_executions,
    cases,
    components,
    definitions,
    lifecycle,
    operations,
    tus,
    variable_instances,
    variables,
)
from service.http.openapi.blocks import Json
from service.http.openapi.components import EXAMPLE_CASE_ID, EXAMPLE_KEY, EXAMPLE_VARIABLE
from service.http.openapi.description import DESCRIPTION

__all__ = [
    "EXAMPLE_CASE_ID",
    "EXAMPLE_KEY",
    "EXAMPLE_VARIABLE",
    "OPENAPI_VERSION",
    "document",
    "serve",
]

OPENAPI_VERSION = "3.1.0"


@functools.cache
def _built() -> Json:
    # The parts are merged in the order the document has always listed them: the
    # served JSON keeps dictionary order.
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "casevars",
            "version": importlib.metadata.version("casevars"),
            "summary": "Camunda 7 REST API for case-instance variables, binary values in S3",
            "description": DESCRIPTION,
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "tags": [
            {"name": "Variables", "description": "Camunda's case-instance variable routes."},
            {"name": "Case instances", "description": "Query, create, read and delete."},
            {"name": "Operations", "description": "Probes, metrics and this document."},
            {
                "name": "Case executions",
                "description": "A case instance's root case execution and its variables.",
            },
            *lifecycle.tags(),
            *case_activities.tags(),
            *variable_instances.tags(),
            *tus.tags(),
        ],
        "servers": operations.servers(),
        "security": operations.security(),
        "paths": {
            **operations.paths(),
            **operations.engine_paths(),
            **cases.paths(),
            **lifecycle.paths(),
            **case_activities.paths(),
            **definitions.paths(),
            **case_executions.paths(),
            **variables.paths(),
            **variable_instances.paths(),
            **tus.paths(),
        },
        "components": {
            "schemas": {
                **components.error_schema(),
                **operations.schemas(),
                **components.value_schemas(),
                **cases.schemas(),
                **case_executions.schemas(),
                **definitions.schemas(),
                **lifecycle.schemas(),
                **case_activities.schemas(),
                **variables.schemas(),
                **variable_instances.schemas(),
            },
            "parameters": {
                **components.path_parameters(),
                **variables.deserialize_parameters(),
                **cases.paging_parameters(),
                **variables.download_parameters(),
                **cases.filter_parameters(),
                **lifecycle.filter_parameters(),
                **variable_instances.path_parameters(),
                **variable_instances.filter_parameters(),
            },
            "headers": {**components.headers(), **variables.download_headers()},
            "responses": components.responses(),
            "securitySchemes": operations.security_schemes(),
        },
    }


def document() -> Json:
    """The OpenAPI document (a copy: callers may change it)."""
    return copy.deepcopy(_built())


@functools.cache
def _serialized() -> bytes:
    return orjson.dumps(_built())


async def serve(_request: web.Request) -> web.Response:
    """GET /openapi.json."""
    return web.Response(body=_serialized(), content_type="application/json")
