"""The route table: one named line per route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from service import http_cases, http_ops, http_variables, openapi

CASE = "/case-instance/{id}"
VARIABLE = CASE + "/variables/{name}"


ExpectHandler = Callable[[web.Request], Awaitable[web.StreamResponse | None]]


def add_routes(app: web.Application, *, expect_handler: ExpectHandler | None = None) -> None:
    """expect_handler answers `Expect: 100-continue` on routes that take a body."""
    router = app.router
    body = {"expect_handler": expect_handler}
    router.add_get("/health/live", http_ops.live, name="health-live", allow_head=False)
    router.add_get("/health/ready", http_ops.ready, name="health-ready", allow_head=False)
    router.add_get("/metrics", http_ops.metrics, name="metrics", allow_head=False)
    router.add_get("/openapi.json", openapi.serve, name="openapi", allow_head=False)

    router.add_get(
        "/case-instance", http_cases.list_case_instances, name="case-list", allow_head=False
    )
    router.add_post("/case-instance", http_cases.query_case_instances, name="case-query", **body)
    router.add_get(
        "/case-instance/count", http_cases.count_case_instances, name="case-count", allow_head=False
    )
    router.add_post(
        "/case-instance/count",
        http_cases.query_case_instance_count,
        name="case-query-count",
        **body,
    )
    router.add_post(
        "/case-definition/key/{key}/create",
        http_cases.create_from_definition,
        name="case-create",
        **body,
    )
    router.add_get(CASE, http_cases.get_case_instance, name="case-get", allow_head=False)
    router.add_put(CASE, http_cases.put_case_instance, name="case-put", **body)
    router.add_delete(CASE, http_cases.delete_case_instance, name="case-delete")

    router.add_get(
        CASE + "/variables", http_variables.get_variables, name="variables-get", allow_head=False
    )
    router.add_post(
        CASE + "/variables", http_variables.modify_variables, name="variables-modify", **body
    )
    router.add_get(VARIABLE, http_variables.get_variable, name="variable-get", allow_head=False)
    router.add_put(VARIABLE, http_variables.put_variable, name="variable-put", **body)
    router.add_delete(VARIABLE, http_variables.delete_variable, name="variable-delete")
    router.add_get(VARIABLE + "/data", http_variables.get_variable_data, name="variable-data-get")
    router.add_post(
        VARIABLE + "/data", http_variables.post_variable_data, name="variable-data-post", **body
    )
