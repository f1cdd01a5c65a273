"""The route table: one named line per route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import HttpVersion11, hdrs, web
from aiohttp.typedefs import Handler

from service.http import (
    cases,
    downloads,
    openapi,
    ops,
    transitions,
    uploads,
    variable_instances,
    variables,
)
from service.http.errors import answer_before_middlewares
from service.private_api import default_expect_handler

CASE = "/case-instance/{id}"
VARIABLE = CASE + "/variables/{name}"
VARIABLE_INSTANCE = "/variable-instance/{id}"
HISTORIC_VARIABLE_INSTANCE = "/history/variable-instance/{id}"


ExpectHandler = Callable[[web.Request], Awaitable[web.StreamResponse | None]]


def add_routes(app: web.Application, *, expect_handler: ExpectHandler | None = None) -> None:
    """expect_handler answers `Expect: 100-continue`: it may refuse a body before it
    is sent (auth.py)."""
    expect = _expecting(expect_handler)

    def route(method: str, path: str, handler: Handler, name: str) -> None:
        app.router.add_route(method, path, handler, name=name, expect_handler=expect)

    route("GET", "/health/live", ops.live, "health-live")
    route("GET", "/health/ready", ops.ready, "health-ready")
    route("GET", "/metrics", ops.metrics, "metrics")
    route("GET", "/openapi.json", openapi.serve, "openapi")

    route("GET", "/case-instance", cases.list_case_instances, "case-list")
    route("POST", "/case-instance", cases.query_case_instances, "case-query")
    route("GET", "/case-instance/count", cases.count_case_instances, "case-count")
    route("POST", "/case-instance/count", cases.query_case_instance_count, "case-query-count")
    route("POST", "/case-definition/key/{key}/create", cases.create_from_definition, "case-create")
    route("GET", CASE, cases.get_case_instance, "case-get")
    route("PUT", CASE, cases.put_case_instance, "case-put")
    route("DELETE", CASE, cases.delete_case_instance, "case-delete")
    route("POST", CASE + "/complete", transitions.complete_case_instance, "case-complete")
    route("POST", CASE + "/close", transitions.close_case_instance, "case-close")
    route("POST", CASE + "/terminate", transitions.terminate_case_instance, "case-terminate")

    route("GET", CASE + "/variables", variables.get_variables, "variables-get")
    route("POST", CASE + "/variables", variables.modify_variables, "variables-modify")
    route("GET", VARIABLE, variables.get_variable, "variable-get")
    route("PUT", VARIABLE, variables.put_variable, "variable-put")
    route("DELETE", VARIABLE, variables.delete_variable, "variable-delete")
    route("GET", VARIABLE + "/data", downloads.get_variable_data, "variable-data-get")
    route("HEAD", VARIABLE + "/data", downloads.get_variable_data, "variable-data-get")
    route("POST", VARIABLE + "/data", uploads.post_variable_data, "variable-data-post")

    vi = variable_instances
    route("GET", "/variable-instance", vi.list_variable_instances, "variable-instance-list")
    route("POST", "/variable-instance", vi.query_variable_instances, "variable-instance-query")
    route("GET", "/variable-instance/count", vi.count_variable_instances, "variable-instance-count")
    route(
        "POST",
        "/variable-instance/count",
        vi.query_variable_instance_count,
        "variable-instance-query-count",
    )
    route("GET", VARIABLE_INSTANCE, vi.get_variable_instance, "variable-instance-get")
    route(
        "GET", VARIABLE_INSTANCE + "/data", vi.get_variable_instance_data, "variable-instance-data"
    )
    route(
        "HEAD", VARIABLE_INSTANCE + "/data", vi.get_variable_instance_data, "variable-instance-data"
    )
    route(
        "GET",
        "/history/variable-instance",
        vi.list_historic_variable_instances,
        "historic-variable-instance-list",
    )
    route(
        "POST",
        "/history/variable-instance",
        vi.query_historic_variable_instances,
        "historic-variable-instance-query",
    )
    route(
        "GET",
        "/history/variable-instance/count",
        vi.count_historic_variable_instances,
        "historic-variable-instance-count",
    )
    route(
        "POST",
        "/history/variable-instance/count",
        vi.query_historic_variable_instance_count,
        "historic-variable-instance-query-count",
    )
    route(
        "GET",
        HISTORIC_VARIABLE_INSTANCE,
        vi.get_historic_variable_instance,
        "historic-variable-instance-get",
    )
    route(
        "DELETE",
        HISTORIC_VARIABLE_INSTANCE,
        vi.delete_historic_variable_instance,
        "historic-variable-instance-delete",
    )
    route(
        "GET",
        HISTORIC_VARIABLE_INSTANCE + "/data",
        vi.get_historic_variable_instance_data,
        "historic-variable-instance-data",
    )
    route(
        "HEAD",
        HISTORIC_VARIABLE_INSTANCE + "/data",
        vi.get_historic_variable_instance_data,
        "historic-variable-instance-data",
    )


def _expecting(then: ExpectHandler | None) -> ExpectHandler:
    """The expect handler of every route: `100-continue` goes to `then` (or gets
    aiohttp's 100 Continue); any other expectation is refused with a 417 in Camunda's
    format (aiohttp's own refusal is plain text, and quotes the header). As in aiohttp,
    HTTP/1.0 requests have no expectations. (A path no route matches gets aiohttp's
    refusal, which serve's runner answers in Camunda's format too.)"""

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
