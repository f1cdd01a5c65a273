"""The operations routes of the OpenAPI document: the health probes, the metrics, the
document itself, and the security schemes of the service."""

from __future__ import annotations

from service.http.openapi.blocks import (
    TEXT,
    Json,
    empty_response,
    json_response,
    operation,
    ref,
    schema,
)

_TAGS = ("Operations",)


def schemas() -> Json:
    return {
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {
                "status": {"enum": ["up", "down"]},
                "failed": {
                    "type": "array",
                    "items": TEXT,
                    "description": 'What did not answer: "postgres", "s3", "shutting down".',
                },
            },
        },
    }


def paths() -> Json:
    no_auth: list[Json] = []
    up = json_response(schema("Health"), '`{"status": "up"}`')
    unauthorized = ref("responses", "Unauthorized")
    return {
        "/health/live": {
            "servers": _ROOT_ONLY,
            "get": operation(
                "getLiveness",
                "Liveness",
                "200 while the process runs and its event loop answers. No credentials.",
                {"200": up},
                tags=_TAGS,
                security=no_auth,
            ),
        },
        "/health/ready": {
            "servers": _ROOT_ONLY,
            "get": operation(
                "getReadiness",
                "Readiness",
                "200 when a Postgres query and an S3 HeadBucket both succeed. No credentials.",
                {
                    "200": up,
                    "503": json_response(
                        schema("Health"),
                        'Something did not answer, or the service is shutting down: `{"status": '
                        '"down", "failed": [...]}` (not the error format).',
                    ),
                },
                tags=_TAGS,
                security=no_auth,
            ),
        },
        "/metrics": {
            "servers": _ROOT_ONLY,
            "get": operation(
                "getMetrics",
                "Prometheus metrics",
                "The Prometheus text exposition of the service's metrics. Needs credentials "
                "when authentication is on, unless `CASEVARS_METRICS_PUBLIC=true`.",
                {
                    "200": empty_response(
                        "Prometheus text format (`text/plain; version=0.0.4`), or "
                        "OpenMetrics when the `Accept` header asks for it.",
                        content={
                            "text/plain": {"schema": TEXT},
                            "application/openmetrics-text": {"schema": TEXT},
                        },
                    ),
                    "401": unauthorized,
                },
                tags=_TAGS,
            ),
        },
        "/openapi.json": {
            "servers": _ROOT_ONLY,
            "get": operation(
                "getOpenApi",
                "This document",
                "The OpenAPI 3.1 document of the service.",
                {
                    "200": json_response({"type": "object"}, "The document."),
                    "401": unauthorized,
                },
                tags=_TAGS,
            ),
        },
    }


_ENGINE = {
    "engineName": {
        "default": "default",
        "enum": ["default"],
        "description": "casevars is one engine, `default`; another name is refused (400 "
        "`No process engine available`, or 404 `Process engine {name} not available` "
        "with authentication on, before credentials are checked).",
    }
}
# The operations routes are at the service root only.
_ROOT_ONLY = [{"url": "/", "description": "The service root"}]


def servers() -> list[Json]:
    """Where the REST routes are: the same routes, the same answers, under each root."""
    return [
        {"url": "/", "description": "The REST root of casevars"},
        {"url": "/engine-rest", "description": "Where Camunda's web application mounts it"},
        {
            "url": "/engine/{engineName}",
            "description": "Camunda's named-engine form (camunda-bpm-sdk-js's default)",
            "variables": _ENGINE,
        },
        {
            "url": "/engine-rest/engine/{engineName}",
            "description": "The named-engine form under /engine-rest",
            "variables": _ENGINE,
        },
    ]


def engine_paths() -> Json:
    """GET /engine, Camunda's list of engines, at the roots that name no engine."""
    return {
        "/engine": {
            "servers": [*_ROOT_ONLY, {"url": "/engine-rest", "description": "Under /engine-rest"}],
            "get": operation(
                "getProcessEngineNames",
                "The engines",
                "Camunda's list of process engines: casevars is one, `default`. No "
                "credentials, as Camunda's authentication filter lets it through.",
                {
                    "200": json_response(
                        {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {"name": {"const": "default"}},
                            },
                        },
                        '`[{"name": "default"}]`',
                    )
                },
                tags=_TAGS,
                security=[],
            ),
        }
    }


def security() -> list[Json]:
    """The document's default requirement: credentials are optional; the empty
    requirement allows anonymous requests, which is what the service accepts with
    authentication off."""
    return [{"basicAuth": []}, {"bearerAuth": []}, {}]


def security_schemes() -> Json:
    return {
        "basicAuth": {
            "type": "http",
            "scheme": "basic",
            "description": "Users of the htpasswd file `CASEVARS_AUTH_FILE` (bcrypt hashes).",
        },
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "description": "Tokens of the file `CASEVARS_AUTH_TOKENS_FILE`, one a line.",
        },
    }
