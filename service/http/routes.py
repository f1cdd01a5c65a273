"""The route table: one named line per route.

Every REST route (`route(...)`) is served at the REST root `/` and under each root
Camunda clients point at (paths.REST_ROOTS: /engine-rest, /engine/{name} and
/engine-rest/engine/{name}), each form its own named resource: the name gets the
root's label (`engine-rest:case-get`), and metrics and logs show the path relative
to the root (paths.route_of), the same for every form. The probes, the metrics and
the OpenAPI document (`operational(...)`) are the operator's, not a Camunda client's:
they are served at `/` only, where probes, Prometheus and the document's own
`servers` list look for them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import HttpVersion11, hdrs, web
from aiohttp.typedefs import Handler

from service.http import (
    case_activities,
    case_executions,
    cases,
    definitions,
    downloads,
    engines,
    history_cases,
    openapi,
    ops,
    paths,
    transitions,
    tus,
    uploads,
    variable_instances,
    variables,
)
from service.http.errors import answer_before_middlewares
from service.private_api import default_expect_handler

CASE = "/case-instance/{id}"
VARIABLE = CASE + "/variables/{name}"
UPLOADS = VARIABLE + "/uploads"
UPLOAD = UPLOADS + "/{uploadId}"
DEFINITION_KEY = "/case-definition/key/{key}"
DEFINITION_KEY_TENANT = DEFINITION_KEY + "/tenant-id/{tenantId}"
EXECUTION = "/case-execution/{id}"
HISTORY_CASE = "/history/case-instance"
HISTORY_ACTIVITY = "/history/case-activity-instance"
VARIABLE_INSTANCE = "/variable-instance/{id}"
HISTORIC_VARIABLE_INSTANCE = "/history/variable-instance/{id}"

# The name labels of paths.REST_ROOTS, in the same order.
_ROOT_LABELS = ("engine-rest-engine", "engine-rest", "engine")
ENGINE_LIST = "engine-list"

ExpectHandler = Callable[[web.Request], Awaitable[web.StreamResponse | None]]


def add_routes(  # noqa: PLR0915 - the route table: one statement per route
    app: web.Application, *, expect_handler: ExpectHandler | None = None
) -> None:
    """expect_handler answers `Expect: 100-continue`: it may refuse a body before it
    is sent (auth.py)."""
    expect = _expecting(expect_handler)

    def operational(method: str, path: str, handler: Handler, name: str) -> None:
        # A second method of a path joins the resource its name made (GET and HEAD).
        resource = app.router.named_resources().get(name)
        if resource is None:
            resource = app.router.add_resource(path, name=name)
        assert isinstance(resource, web.Resource), name
        assert resource.canonical == path, (name, path)
        resource.add_route(method, handler, expect_handler=expect)

    def route(method: str, path: str, handler: Handler, name: str) -> None:
        operational(method, path, handler, name)
        for root, label in zip(paths.REST_ROOTS, _ROOT_LABELS, strict=True):
            operational(method, root + path, handler, f"{label}:{name}")

    operational("GET", "/health/live", ops.live, "health-live")
    operational("GET", "/health/ready", ops.ready, "health-ready")
    operational("GET", "/metrics", ops.metrics, "metrics")
    operational("GET", "/openapi.json", openapi.serve, "openapi")
    # Camunda's list of engines, at /engine of the REST roots that have no engine.
    operational("GET", "/engine", engines.list_engines, ENGINE_LIST)
    operational("GET", "/engine-rest/engine", engines.list_engines, f"engine-rest:{ENGINE_LIST}")

    route("GET", "/case-instance", cases.list_case_instances, "case-list")
    route("POST", "/case-instance", cases.query_case_instances, "case-query")
    route("GET", "/case-instance/count", cases.count_case_instances, "case-count")
    route("POST", "/case-instance/count", cases.query_case_instance_count, "case-query-count")
    route("GET", "/case-definition", definitions.list_case_definitions, "definition-list")
    route("GET", "/case-definition/count", definitions.count_case_definitions, "definition-count")
    # A definition by key and tenant, by key, or by id: the same three readings, its
    # CMMN document, its (absent) diagram and its history time to live. The key forms
    # come first, so that /case-definition/key/xml is the key `xml`, as in Camunda.
    for base, label in (
        (DEFINITION_KEY_TENANT, "definition-key-tenant"),
        (DEFINITION_KEY, "definition-key"),
        ("/case-definition/{id}", "definition"),
    ):
        route("GET", base, definitions.get_case_definition, f"{label}-get")
        route("GET", base + "/xml", definitions.get_case_definition_xml, f"{label}-xml")
        route("GET", base + "/diagram", definitions.get_case_definition_diagram, f"{label}-diagram")
        route(
            "PUT",
            base + "/history-time-to-live",
            definitions.put_history_time_to_live,
            f"{label}-history-ttl",
        )
    route("POST", DEFINITION_KEY + "/create", definitions.create_from_key, "case-create")
    route(
        "POST",
        DEFINITION_KEY_TENANT + "/create",
        definitions.create_from_key_and_tenant,
        "case-create-tenant",
    )
    route("POST", "/case-definition/{id}/create", definitions.create_from_id, "case-create-id")
    route("GET", CASE, cases.get_case_instance, "case-get")
    route("PUT", CASE, cases.put_case_instance, "case-put")
    route("DELETE", CASE, cases.delete_case_instance, "case-delete")
    route("POST", CASE + "/complete", transitions.complete_case_instance, "case-complete")
    route("POST", CASE + "/close", transitions.close_case_instance, "case-close")
    route("POST", CASE + "/terminate", transitions.terminate_case_instance, "case-terminate")

    route("GET", HISTORY_CASE, history_cases.list_historic_case_instances, "history-case-list")
    route("POST", HISTORY_CASE, history_cases.query_historic_case_instances, "history-case-query")
    route(
        "GET",
        HISTORY_CASE + "/count",
        history_cases.count_historic_case_instances,
        "history-case-count",
    )
    route(
        "POST",
        HISTORY_CASE + "/count",
        history_cases.query_historic_case_instance_count,
        "history-case-query-count",
    )
    route(
        "GET", HISTORY_CASE + "/{id}", history_cases.get_historic_case_instance, "history-case-get"
    )

    # Case activities are plan items of CMMN models: casevars has none (case_activities.py).
    ca = case_activities
    route(
        "GET", HISTORY_ACTIVITY, ca.list_historic_case_activity_instances, "history-activity-list"
    )
    route(
        "GET",
        HISTORY_ACTIVITY + "/count",
        ca.count_historic_case_activity_instances,
        "history-activity-count",
    )
    route(
        "GET",
        HISTORY_ACTIVITY + "/{id}",
        ca.get_historic_case_activity_instance,
        "history-activity-get",
    )
    route(
        "GET",
        "/history/case-definition/{id}/statistics",
        ca.case_activity_statistics,
        "history-activity-statistics",
    )

    route("GET", CASE + "/variables", variables.get_variables, "variables-get")
    route("POST", CASE + "/variables", variables.modify_variables, "variables-modify")
    route("GET", VARIABLE, variables.get_variable, "variable-get")
    route("PUT", VARIABLE, variables.put_variable, "variable-put")
    route("DELETE", VARIABLE, variables.delete_variable, "variable-delete")
    route("GET", VARIABLE + "/data", downloads.get_variable_data, "variable-data-get")
    route("HEAD", VARIABLE + "/data", downloads.get_variable_data, "variable-data-get")
    route("POST", VARIABLE + "/data", uploads.post_variable_data, "variable-data-post")
    # Resumable uploads (tus 1.0.0) of one variable's value.
    route("OPTIONS", UPLOADS, tus.options, tus.CREATION_ROUTE)
    route("POST", UPLOADS, tus.create, tus.CREATION_ROUTE)
    route("OPTIONS", UPLOAD, tus.options, tus.UPLOAD_ROUTE)
    route("HEAD", UPLOAD, tus.head, tus.UPLOAD_ROUTE)
    route("PATCH", UPLOAD, tus.patch, tus.UPLOAD_ROUTE)
    route("DELETE", UPLOAD, tus.delete, tus.UPLOAD_ROUTE)
    route("POST", UPLOAD, tus.method_override, tus.UPLOAD_ROUTE)

    # A case instance's root case execution: its id and variables are the instance's.
    ce = case_executions
    route("GET", "/case-execution", ce.list_case_executions, "execution-list")
    route("POST", "/case-execution", ce.query_case_executions, "execution-query")
    route("GET", "/case-execution/count", ce.count_case_executions, "execution-count")
    route("POST", "/case-execution/count", ce.query_case_execution_count, "execution-query-count")
    route("GET", EXECUTION, ce.get_case_execution, "execution-get")
    route("POST", EXECUTION + "/complete", ce.complete, "execution-complete")
    route("POST", EXECUTION + "/terminate", ce.terminate, "execution-terminate")
    route("POST", EXECUTION + "/manual-start", ce.manual_start, "execution-manual-start")
    route("POST", EXECUTION + "/disable", ce.disable, "execution-disable")
    route("POST", EXECUTION + "/reenable", ce.reenable, "execution-reenable")
    # The same variable handlers and streams as the case instance's, the id from the
    # path: `variables` and `localVariables` of a root execution are the same.
    for kind, label in (
        ("variables", "execution-variables"),
        ("localVariables", "execution-local"),
    ):
        base, one = f"{EXECUTION}/{kind}", f"{EXECUTION}/{kind}/{{name}}"
        route("GET", base, variables.get_variables, f"{label}-get")
        route("POST", base, variables.modify_variables, f"{label}-modify")
        route("GET", one, variables.get_variable, f"{label}-one-get")
        route("PUT", one, variables.put_variable, f"{label}-one-put")
        route("DELETE", one, variables.delete_variable, f"{label}-one-delete")
        route("GET", one + "/data", downloads.get_variable_data, f"{label}-data-get")
        route("HEAD", one + "/data", downloads.get_variable_data, f"{label}-data-get")
        route("POST", one + "/data", uploads.post_variable_data, f"{label}-data-post")

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
