"""Prometheus metrics: the definitions, on one registry per app (several apps in one
process, as in the tests, never share counts), and the middleware that times requests.

Labels come from small fixed sets only: a route's canonical path (never the raw path),
an S3 operation name, a repository method name, a reason from a list below.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from service import errors
from service.http import paths
from service.http.digests import DigestMismatch
from service.storage.collector import CollectResult

# No *_created series beside each counter: they double the output and say little about
# a long-running service. (A process-wide switch of prometheus_client.)
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in prometheus_client

R = TypeVar("R", bound=web.StreamResponse)

# Requests run from milliseconds (JSON) to an hour (a multi-GiB upload).
HTTP_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
)  # fmt: skip
# One S3 call moves at most one part (8 MiB and up) and retries inside botocore.
S3_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# One repository method: a connection from the pool and one or a few statements.
POSTGRES_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

# Why an upload (POST .../data) did not end in a stored value.
UPLOAD_REFUSALS = (
    "too_large",  # past CASEVARS_MAX_UPLOAD_BYTES or a form limit (413)
    "bad_form",  # not multipart, or a form Camunda refuses (400, 415)
    "digest_mismatch",  # the body or value is not what its Content-/Repr-Digest says (400)
    "not_found",  # unknown case instance (404)
    "disconnect",  # the client went away or stalled mid-upload
    "unavailable",  # S3 or Postgres failed (503); the operation error counters say which
    "cancelled",  # cut by shutdown after the grace period
    "error",  # anything else (500)
)
# Why a request was refused with 401 (auth.py).
AUTH_FAILURES = (
    "missing",  # no Authorization header
    "scheme",  # a scheme other than Basic or Bearer, or one not configured
    "malformed",  # Basic credentials that are not base64 of user:password
    "invalid",  # unknown user, wrong password or unknown token
)
# Methods kept as label values; anything else a client invents counts as "other".
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
# The route label of requests that matched no route (404, 405).
UNMATCHED = "unmatched"


class Metrics:
    """Every metric of one app, on its own registry."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        # process_* (memory, CPU, open files) and python_info, on this registry too.
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)

        self.requests = Counter(
            "casevars_http_requests",
            "HTTP requests answered, by method, route (its canonical path) and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "casevars_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        )
        self.requests_in_flight = Gauge(
            "casevars_http_requests_in_flight", "HTTP requests being handled", registry=registry
        )
        self.uploads_in_flight = Gauge(
            "casevars_uploads_in_flight",
            "Uploads (POST .../data) being handled",
            registry=registry,
        )
        self.uploads_refused = Counter(
            "casevars_uploads_refused",
            "Uploads (POST .../data) that stored nothing, by reason",
            ["reason"],
            registry=registry,
        )
        self.upload_bytes = Counter(
            "casevars_upload_bytes",
            "Bytes of binary values received from clients and streamed to S3",
            registry=registry,
        )
        self.download_bytes = Counter(
            "casevars_download_bytes",
            "Bytes of binary values streamed from S3 to clients (GET .../data)",
            registry=registry,
        )
        self.tus_uploads_open = Gauge(
            "casevars_resumable_uploads_open",
            "Resumable (tus) uploads neither committed nor expired, in Postgres at the scrape",
            registry=registry,
        )
        self.tus_bytes_resumed = Counter(
            "casevars_resumable_bytes_resumed",
            "Bytes received by tus PATCHes that continue an upload (offset above 0)",
            registry=registry,
        )
        self.tus_checksum_mismatches = Counter(
            "casevars_resumable_checksum_mismatches",
            "tus requests refused because a body or value did not match its checksum or digest",
            registry=registry,
        )
        self.collector_uploads_expired = Counter(
            "casevars_collector_resumable_uploads_expired",
            "Expired resumable uploads removed by the collector, with what they stored",
            registry=registry,
        )
        self.auth_failures = Counter(
            "casevars_auth_failures",
            "Requests refused with 401, by reason",
            ["reason"],
            registry=registry,
        )
        self.s3_seconds = Histogram(
            "casevars_s3_operation_duration_seconds",
            "S3 API calls by operation (PutObject, UploadPart, GetObject, ...), retries included",
            ["operation"],
            buckets=S3_BUCKETS,
            registry=registry,
        )
        self.s3_errors = Counter(
            "casevars_s3_operation_errors",
            "S3 API calls that failed (no answer, or an error status other than 404)",
            ["operation"],
            registry=registry,
        )
        self.postgres_seconds = Histogram(
            "casevars_postgres_operation_duration_seconds",
            "Repository methods: time a pooled connection is waited for and used",
            ["operation"],
            buckets=POSTGRES_BUCKETS,
            registry=registry,
        )
        self.postgres_errors = Counter(
            "casevars_postgres_operation_errors",
            "Repository methods that failed in Postgres or could not reach it",
            ["operation"],
            registry=registry,
        )
        self.collector_passes = Counter(
            "casevars_collector_passes", "Collector passes that completed", registry=registry
        )
        self.collector_errors = Counter(
            "casevars_collector_errors",
            "Collector passes that failed (retried at the next interval)",
            registry=registry,
        )
        self.collector_garbage_deleted = Counter(
            "casevars_collector_garbage_deleted",
            "Garbage blobs deleted (object and row) by the collector",
            registry=registry,
        )
        self.collector_pending_deleted = Counter(
            "casevars_collector_pending_deleted",
            "Stale pending blobs (left by crashed uploads) deleted by the collector",
            registry=registry,
        )
        self.collector_uploads_aborted = Counter(
            "casevars_collector_uploads_aborted",
            "Stale multipart uploads aborted by the collector",
            registry=registry,
        )
        self.collector_history_removed = Counter(
            "casevars_collector_history_removed",
            "Closed case instances removed with their variables past the history time to live",
            registry=registry,
        )
        # Fixed label sets show as zeros from the start, so rate() works from the first
        # refusal on.
        for reason in UPLOAD_REFUSALS:
            self.uploads_refused.labels(reason)
        for reason in AUTH_FAILURES:
            self.auth_failures.labels(reason)

    # --- callbacks given to the layers that know nothing of HTTP ------------------

    def s3_call(self, operation: str, seconds: float, failed: bool) -> None:
        self.s3_seconds.labels(operation).observe(seconds)
        if failed:
            self.s3_errors.labels(operation).inc()

    def postgres_call(self, operation: str, seconds: float, failed: bool) -> None:
        self.postgres_seconds.labels(operation).observe(seconds)
        if failed:
            self.postgres_errors.labels(operation).inc()

    def collector_pass(self, result: CollectResult | None) -> None:
        """After each background pass: its counts, or None when it failed."""
        if result is None:
            self.collector_errors.inc()
            return
        self.collector_passes.inc()
        self.collector_garbage_deleted.inc(result.garbage_deleted)
        self.collector_pending_deleted.inc(result.pending_deleted)
        self.collector_uploads_aborted.inc(result.uploads_aborted)
        self.collector_history_removed.inc(result.history_removed)
        self.collector_uploads_expired.inc(result.uploads_expired)

    # --- HTTP -------------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Counts and times every request by its route's canonical path. It runs outside
        the error middleware, so it sees the status a client gets."""
        started = time.monotonic()
        status = "cancelled"  # unless a response comes back (shutdown cancels the rest)
        self.requests_in_flight.inc()
        try:
            response = await handler(request)
            status = str(response.status)
            return response
        finally:
            self.requests_in_flight.dec()
            method = request.method if request.method in _METHODS else "other"
            route = paths.route_of(request) or UNMATCHED
            self.requests.labels(method, route, status).inc()
            self.request_seconds.labels(method, route).observe(time.monotonic() - started)


METRICS = web.AppKey("metrics", Metrics)


def refusal_reason(error: BaseException) -> str:
    """The UPLOAD_REFUSALS label of an exception that ended an upload."""
    reasons: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...] = (
        (errors.TooLarge, "too_large"),
        (DigestMismatch, "digest_mismatch"),
        ((errors.InvalidInput, errors.UnsupportedMediaType), "bad_form"),
        (errors.NotFound, "not_found"),
        ((errors.UploadAborted, ConnectionError), "disconnect"),
        (errors.Unavailable, "unavailable"),
        (asyncio.CancelledError, "cancelled"),
    )
    for kinds, reason in reasons:
        if isinstance(error, kinds):
            return reason
    return "error"


def counts_uploads(
    handler: Callable[[web.Request], Awaitable[R]],
) -> Callable[[web.Request], Awaitable[R]]:
    """Wraps the upload handler: uploads in flight, and uploads refused by reason."""

    @functools.wraps(handler)
    async def counted(request: web.Request) -> R:
        metrics = request.app[METRICS]
        metrics.uploads_in_flight.inc()
        try:
            return await handler(request)
        except BaseException as error:
            metrics.uploads_refused.labels(refusal_reason(error)).inc()
            raise
        finally:
            metrics.uploads_in_flight.dec()

    return counted
