"""create_app(): the aiohttp application, its middlewares and its resources."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from service import private_api
from service.config import Endpoints, Settings
from service.http import engines, keys, request_memory, routes, tus
from service.http.auth import Authenticator
from service.http.errors import error_middleware
from service.http.logs import REQUEST_ID_KEY
from service.http.metrics import METRICS, Metrics
from service.http.shutdown import InFlight
from service.storage import blobstore, collector, db
from service.storage.budget import MemoryBudget
from service.storage.repository import Repository
from service.storage.resumable import ResumableUploads
from service.storage.upload_rows import UploadRows


async def _postgres(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    pool = await db.create_pool(
        app[keys.ENDPOINTS].dsn,
        max_size=settings.db_pool_max_size,
        timeout=settings.db_timeout_seconds,
        gc_grace_seconds=settings.gc_grace_seconds,
        transaction_pooling=settings.db_transaction_pooling,
    )
    app[keys.POOL] = pool
    app[keys.REPOSITORY] = Repository(pool, observe=app[METRICS].postgres_call)
    yield
    await asyncio.wait_for(pool.close(), timeout=settings.db_timeout_seconds)


async def _s3(app: web.Application) -> AsyncIterator[None]:
    async with blobstore.open_blob_store(
        app[keys.SETTINGS],
        app[keys.ENDPOINTS],
        observe=app[METRICS].s3_call,
        budget=app[keys.BUDGET],
    ) as store:
        app[keys.BLOBS] = store
        settings = app[keys.SETTINGS]
        app[keys.UPLOADS] = ResumableUploads(
            UploadRows(
                app[keys.POOL],
                lease_seconds=settings.upload_lease_seconds,
                observe=app[METRICS].postgres_call,
            ),
            store,
            app[keys.REPOSITORY],
            prefix=app[keys.ENDPOINTS].s3_prefix,
            expiry_seconds=settings.upload_expiry_seconds,
            max_open=settings.max_open_uploads,
            max_bytes=settings.max_upload_bytes,
        )
        yield


async def _collector(app: web.Application) -> AsyncIterator[None]:
    """The collector runs in the background every collector_interval_seconds (0: never)
    and is cancelled at shutdown, before the pool and the S3 client close."""
    settings = app[keys.SETTINGS]
    if settings.collector_interval_seconds <= 0:
        yield
        return
    task = asyncio.create_task(
        collector.collect_forever(
            app[keys.POOL],
            app[keys.BLOBS],
            prefix=app[keys.ENDPOINTS].s3_prefix,
            interval_seconds=settings.collector_interval_seconds,
            pending_timeout_seconds=settings.pending_timeout_seconds,
            history_ttl_seconds=settings.history_ttl_seconds,
            on_pass=app[METRICS].collector_pass,
        )
    )
    app[keys.COLLECTOR] = task
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _echo_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """Streamed responses (downloads) are prepared inside their handler, before the
    error middleware sees them: they get their X-Request-Id here."""
    if REQUEST_ID_KEY in request:
        response.headers.setdefault("X-Request-Id", request[REQUEST_ID_KEY])


def create_app(settings: Settings, endpoints: Endpoints) -> web.Application:
    """The app. ConfigError when an auth file (read here, once) is malformed.

    Middlewares, outermost first: metrics (it sees the status the client gets), errors
    (every refusal gets the error body and the request id), requests in flight, the
    memory a request took from the budget (given back however it ends), and
    authentication last, right before the handler and before any body is read.
    """
    in_flight = InFlight()
    metrics = Metrics()
    middlewares = [
        metrics.middleware,
        error_middleware,
        in_flight.middleware,
        request_memory.release_at_end,
    ]
    authenticator = Authenticator.from_settings(settings)
    # An engine other than `default` is refused before credentials are checked, as
    # Camunda's authentication filter does.
    engine_check = engines.EngineCheck(authenticating=authenticator is not None)
    middlewares.append(engine_check.middleware)
    if authenticator is not None:
        middlewares.append(authenticator.middleware)
    app = web.Application(middlewares=middlewares, handler_args={})
    app.on_response_prepare.append(_echo_request_id)
    app.on_response_prepare.append(tus.tus_headers)
    app.on_response_prepare.append(private_api.announce_close)
    app[METRICS] = metrics
    app[keys.IN_FLIGHT] = in_flight
    app[keys.SETTINGS] = settings
    app[keys.ENDPOINTS] = endpoints
    app[keys.BUDGET] = MemoryBudget(settings.memory_budget_bytes)
    app.cleanup_ctx.append(_postgres)
    app.cleanup_ctx.append(_s3)
    app.cleanup_ctx.append(_collector)
    # `Expect: 100-continue` is answered before any middleware: the engine is checked
    # there first too, then the credentials.
    expect = engine_check.expecting(None if authenticator is None else authenticator.expect)
    routes.add_routes(app, expect_handler=expect)
    return app
