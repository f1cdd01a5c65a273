"""The route table: one named line per route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import HttpVersion11, hdrs, web

from service.http import cases, downloads, openapi, ops, uploads, variables
from service.http.errors import answer_before_middlewares
from service.private_api import default_expect_handler

CASE = "/case-instance/{id}"
VARIABLE = CASE + "/variables/{name}"


ExpectHandler = Callable[[web.Request], Awaitable[web.StreamResponse | None]]


def add_routes(app: web.Application, *, expect_handler: ExpectHandler | None = None) -> None:
    """expect_handler answers `Expect: 100-continue` on routes that take a body."""
    router = app.router
    body = {"expect_handler": _expecting(expect_handler)}
    router.add_get("/health/live", ops.live, name="health-live", allow_head=False)
    router.add_get("/health/ready", ops.ready, name="health-ready", allow_head=False)
    router.add_get("/metrics", ops.metrics, name="metrics", allow_head=False)
    router.add_get("/openapi.json", openapi.serve, name="openapi", allow_head=False)

    router.add_get("/case-instance", cases.list_case_instances, name="case-list", allow_head=False)
    router.add_post("/case-instance", cases.query_case_instances, name="case-query", **body)
    router.add_get(
        "/case-instance/count", cases.count_case_instances, name="case-count", allow_head=False
    )
    router.add_post(
        "/case-instance/count",
        cases.query_case_instance_count,
        name="case-query-count",
        **body,
    )
    router.add_post(
        "/case-definition/key/{key}/create",
        cases.create_from_definition,
        name="case-create",
        **body,
    )
    router.add_get(CASE, cases.get_case_instance, name="case-get", allow_head=False)
    router.add_put(CASE, cases.put_case_instance, name="case-put", **body)
    router.add_delete(CASE, cases.delete_case_instance, name="case-delete")

    router.add_get(
        CASE + "/variables", variables.get_variables, name="variables-get", allow_head=False
    )
    router.add_post(
        CASE + "/variables", variables.modify_variables, name="variables-modify", **body
    )
    router.add_get(VARIABLE, variables.get_variable, name="variable-get", allow_head=False)
    router.add_put(VARIABLE, variables.put_variable, name="variable-put", **body)
    router.add_delete(VARIABLE, variables.delete_variable, name="variable-delete")
    router.add_get(VARIABLE + "/data", downloads.get_variable_data, name="variable-data-get")
    router.add_post(
        VARIABLE + "/data", uploads.post_variable_data, name="variable-data-post", **body
    )


def _expecting(then: ExpectHandler | None) -> ExpectHandler:
    """The expect handler of the routes that take a body: `100-continue` goes to `then`
    (or gets aiohttp's 100 Continue); any other expectation is refused with a 417 in
    Camunda's format (aiohttp's own refusal is plain text). As in aiohttp, HTTP/1.0
    requests have no expectations."""

    async def expect(request: web.Request) -> web.StreamResponse | None:
        expectation = request.headers.get(hdrs.EXPECT, "")
        if request.version == HttpVersion11 and expectation.strip().lower() != "100-continue":
            return answer_before_middlewares(
                request, 417, "HTTP 417 Expectation Failed: only 100-continue is supported"
            )
        if then is not None:
            return await then(request)
        await default_expect_handler(request)
        return None

    return expect
