"""Process engines as Camunda's REST API names them: casevars is one engine, `default`.
Routes under /engine/{name} (paths.REST_ROOTS) answer for it only; any other name gets
Camunda's refusal, and GET /engine lists the one engine."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from service.errors import InvalidInput, NotFound
from service.http.body import json_response
from service.http.errors import refusal_before_middlewares
from service.private_api import default_expect_handler

ENGINE_NAME = "default"

ExpectHandler = Callable[[web.Request], Awaitable[web.StreamResponse | None]]


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

    def _refused(self, request: web.Request) -> InvalidInput | NotFound | None:
        name = request.match_info.get("engine")
        if name is not None and name != ENGINE_NAME:
            return refusal(name, authenticating=self._authenticating)
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        refused = self._refused(request)
        if refused is not None:
            raise refused
        return await handler(request)

    def expecting(self, then: ExpectHandler | None) -> ExpectHandler:
        """The answer to `Expect: 100-continue`, which aiohttp asks for before any
        middleware runs: the same refusal for another engine (no 100 Continue, so the
        body is never sent), before `then` (authentication's check) is asked; else
        `then`, or aiohttp's 100 Continue."""

        async def expect(request: web.Request) -> web.StreamResponse | None:
            refused = self._refused(request)
            if refused is not None:
                return refusal_before_middlewares(request, refused)
            if then is not None:
                return await then(request)
            await default_expect_handler(request)
            return None

        return expect


async def list_engines(_request: web.Request) -> web.Response:
    """GET /engine: Camunda's ProcessEngineDto list."""
    return json_response([{"name": ENGINE_NAME}])
