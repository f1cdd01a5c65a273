"""Process engines as Camunda's REST API names them: casevars is one engine, `default`.
Routes under /engine/{name} (paths.REST_ROOTS) answer for it only; any other name gets
Camunda's refusal, and GET /engine lists the one engine."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from service.errors import InvalidInput, NotFound
from service.http.body import json_response

ENGINE_NAME = "default"


def refusal(name: str, *, authenticating: bool) -> InvalidInput | NotFound:
    """Camunda's answer to an engine name it does not know. With authentication on, its
    authentication filter looks the engine up first and answers 404 before any
    credentials are checked; without, the resource finds no engine and answers 400."""
    if authenticating:
        return NotFound(f"Process engine {name} not available")
    return InvalidInput("No process engine available")


class EngineCheck:
    """Refuses a request naming another engine than `default`, before authentication
    (as Camunda's filter does) and before any byte of its body is read."""

    def __init__(self, *, authenticating: bool) -> None:
        self._authenticating = authenticating

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        name = request.match_info.get("engine")
        if name is not None and name != ENGINE_NAME:
            raise refusal(name, authenticating=self._authenticating)
        return await handler(request)


async def list_engines(_request: web.Request) -> web.Response:
    """GET /engine: Camunda's ProcessEngineDto list."""
    return json_response([{"name": ENGINE_NAME}])
