"""Operational routes: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web
from prometheus_client.exposition import choose_encoder

from service.errors import Unavailable
from service.http import keys
from service.http.metrics import METRICS

# Readiness must answer well within a Kubernetes probe's timeout.
READY_CHECK_TIMEOUT_SECONDS = 3.0


async def live(_request: web.Request) -> web.Response:
    """The process is up and its event loop answers."""
    return web.json_response({"status": "up"})


async def _check(name: str, probe: asyncio.Future[None]) -> str | None:
    try:
        await asyncio.wait_for(probe, READY_CHECK_TIMEOUT_SECONDS)
    except (TimeoutError, Unavailable, OSError):
        return name
    return None


async def ready(request: web.Request) -> web.Response:
    """200 when a Postgres query and an S3 HeadBucket both succeed; 503 naming what failed."""
    app = request.app
    if app[keys.IN_FLIGHT].stopping.is_set():
        return web.json_response({"status": "down", "failed": ["shutting down"]}, status=503)
    results = await asyncio.gather(
        _check("postgres", asyncio.ensure_future(app[keys.REPOSITORY].ping())),
        _check("s3", asyncio.ensure_future(app[keys.BLOBS].ping())),
    )
    failed = [name for name in results if name is not None]
    if failed:
        return web.json_response({"status": "down", "failed": failed}, status=503)
    return web.json_response({"status": "up"})


async def metrics(request: web.Request) -> web.Response:
    """The app's metrics in Prometheus text format (OpenMetrics when the scraper asks)."""
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    metrics = request.app[METRICS]
    # Open resumable uploads are counted in Postgres, the one place that knows them all;
    # without Postgres the gauge keeps its last value.
    with contextlib.suppress(TimeoutError, Unavailable):
        count = request.app[keys.UPLOADS].rows.count_open()
        metrics.tus_uploads_open.set(await asyncio.wait_for(count, READY_CHECK_TIMEOUT_SECONDS))
    body = encode(metrics.registry)
    return web.Response(body=body, headers={"Content-Type": content_type})
