"""The route table: one named line per route."""

from __future__ import annotations

from aiohttp import web

from service import http_cases, http_ops, http_variables

CASE = "/case-instance/{id}"
VARIABLE = CASE + "/variables/{name}"


def add_routes(app: web.Application) -> None:
    router = app.router
    router.add_get("/health/live", http_ops.live, name="health-live", allow_head=False)
    router.add_get("/health/ready", http_ops.ready, name="health-ready", allow_head=False)

    router.add_get(CASE, http_cases.get_case_instance, name="case-get", allow_head=False)
    router.add_put(CASE, http_cases.put_case_instance, name="case-put")
    router.add_delete(CASE, http_cases.delete_case_instance, name="case-delete")

    router.add_get(VARIABLE + "/data", http_variables.get_variable_data, name="variable-data-get")
    router.add_post(
        VARIABLE + "/data", http_variables.post_variable_data, name="variable-data-post"
    )
