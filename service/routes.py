"""The route table: one named line per route."""

from __future__ import annotations

from aiohttp import web

from service import http_ops


def add_routes(app: web.Application) -> None:
    router = app.router
    router.add_get("/health/live", http_ops.live, name="health-live", allow_head=False)
    router.add_get("/health/ready", http_ops.ready, name="health-ready", allow_head=False)
