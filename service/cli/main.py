"""The `casevars` command: serve, migrate, collect, check."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any

import orjson
import structlog
from aiohttp import web

from service import private_api
from service.app import create_app
from service.cli import client
from service.cli.embedded import EmbeddedError, EmbeddedServices
from service.config import ConfigError, Endpoints, Settings, parse_seconds
from service.errors import Unavailable
from service.http import logs
from service.http.errors import connection_failure, connection_refusal
from service.http.keys import IN_FLIGHT
from service.storage import check, collector
from service.storage.blobstore import open_blob_store
from service.storage.migrate import MigrationError, migrate

log = structlog.get_logger("casevars")

EXIT_FAILURE = 1
EXIT_CONFIG = 2

# The HTTP server reads the socket in chunks this large (fewer, larger reads keep the
# multipart parser's cost per GiB low).
READ_BUFFER_BYTES = 256 * 1024
# Limits on what a client may send before any handler runs; beyond them the request
# is refused by the HTTP layer with a 400.
MAX_REQUEST_LINE_BYTES = 8190
MAX_HEADER_FIELD_BYTES = 8190
MAX_HEADERS = 100
# Requests still running when the grace period ends get this long to be cancelled.
CANCEL_AFTER_GRACE_SECONDS = 1.0


@contextlib.asynccontextmanager
async def resolved_endpoints(
    settings: Settings, *, reuse_running: bool
) -> AsyncIterator[Endpoints]:
    """The configured Postgres and S3, starting the embedded ones for what is not configured."""
    if settings.embedded_postgres or settings.embedded_s3:
        embedded = EmbeddedServices(settings, reuse_running=reuse_running)
        async with embedded.running() as endpoints:
            yield endpoints
        return
    assert settings.database_url is not None
    yield Endpoints(
        dsn=settings.database_url,
        s3_endpoint_url=settings.s3_endpoint_url,
        s3_bucket=settings.s3_bucket,
        s3_prefix=settings.s3_prefix,
        s3_region=settings.s3_region,
    )


def make_runner(app: web.Application, settings: Settings) -> web.AppRunner:
    """The runner `serve` serves the app with: casevars's access log, its limits on
    request lines and headers, its header and idle timeouts, and Camunda's error format
    for what the HTTP layer refuses before any handler runs."""
    return private_api.app_runner(
        app,
        refusal=functools.partial(
            connection_refusal, header_timeout=settings.header_timeout_seconds
        ),
        connection_failure=connection_failure,
        header_timeout=settings.header_timeout_seconds,
        keepalive_timeout=settings.keepalive_timeout_seconds,
        access_log_class=logs.AccessLogger,
        # After the grace period (shutdown.drain), what still runs gets this long
        # before it is cancelled (uploads then abort their multipart upload).
        shutdown_timeout=CANCEL_AFTER_GRACE_SECONDS,
        read_bufsize=READ_BUFFER_BYTES,
        max_line_size=MAX_REQUEST_LINE_BYTES,
        max_field_size=MAX_HEADER_FIELD_BYTES,
        max_headers=MAX_HEADERS,
    )


async def serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with resolved_endpoints(settings, reuse_running=False) as endpoints:
        if stop.is_set():
            return
        applied = await migrate(endpoints.dsn, timeout=settings.db_timeout_seconds)
        log.info("migrate.done", applied=len(applied))
        app = create_app(settings, endpoints)
        runner = make_runner(app, settings)
        await runner.setup()
        try:
            site = web.TCPSite(runner, settings.host, settings.port)
            await site.start()
            log.info(
                "serve.started", url=f"http://{settings.host}:{settings.port}", pid=os.getpid()
            )
            await stop.wait()
            app[IN_FLIGHT].stopping.set()
            await site.stop()
            log.info(
                "serve.stopping",
                grace_seconds=settings.shutdown_grace_seconds,
                in_flight=app[IN_FLIGHT].count,
            )
            left = await app[IN_FLIGHT].drain(settings.shutdown_grace_seconds)
            log.info("serve.drained", cancelled=left)
        finally:
            await runner.cleanup()
    log.info("serve.stopped")


async def run_migrate(settings: Settings) -> None:
    async with resolved_endpoints(settings, reuse_running=True) as endpoints:
        applied = await migrate(endpoints.dsn, timeout=settings.db_timeout_seconds)
    log.info("migrate.done", applied=applied)


async def run_collect(settings: Settings, arguments: argparse.Namespace) -> int:
    """One collector pass; --grace, --pending-timeout and --history-ttl override the
    settings."""
    pending_timeout, history_ttl = arguments.pending_timeout, arguments.history_ttl
    async with (
        resolved_endpoints(settings, reuse_running=True) as endpoints,
        open_blob_store(settings, endpoints) as store,
    ):
        result = await collector.collect_once(
            endpoints.dsn,
            store,
            prefix=endpoints.s3_prefix,
            pending_timeout_seconds=(
                settings.pending_timeout_seconds if pending_timeout is None else pending_timeout
            ),
            grace_seconds=arguments.grace,
            configured_grace_seconds=settings.gc_grace_seconds,
            history_ttl_seconds=settings.history_ttl_seconds
            if history_ttl is None
            else history_ttl,
        )
    log.info("collect.done", **dataclasses.asdict(result))
    sys.stdout.write(
        f"removed {result.history_removed} closed case instances past the history time to "
        f"live, deleted {result.garbage_deleted} garbage and {result.pending_deleted} stale "
        f"pending blobs, aborted {result.uploads_aborted} stale multipart uploads, removed "
        f"{result.uploads_expired} expired resumable uploads\n"
    )
    return 0


async def run_check(settings: Settings, arguments: argparse.Namespace) -> int:
    """Compare Postgres with the bucket; 0 when consistent, 1 when not."""
    async with (
        resolved_endpoints(settings, reuse_running=True) as endpoints,
        open_blob_store(settings, endpoints) as store,
    ):
        report = await check.check(
            endpoints.dsn,
            store,
            prefix=endpoints.s3_prefix,
            pending_timeout_seconds=settings.pending_timeout_seconds,
        )
    log.info("check.done", consistent=report.consistent)
    if arguments.json:
        sys.stdout.write(orjson.dumps(report.as_dict()).decode() + "\n")
    else:
        sys.stdout.write(report.summary() + "\n")
    return 0 if report.consistent else EXIT_FAILURE


def _seconds(text: str) -> float:
    try:
        return parse_seconds(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="casevars",
        description="Camunda 7 case-instance variables, with binary values streamed to S3.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("serve", help="run the HTTP service (embedded Postgres and S3 by default)")
    commands.add_parser("migrate", help="apply database migrations and exit")
    collect = commands.add_parser(
        "collect",
        help="remove expired history, delete due garbage and stale pending blobs, abort stale "
        "uploads",
    )
    collect.add_argument(
        "--grace",
        type=_seconds,
        metavar="SECONDS",
        help="delete garbage that became garbage more than SECONDS ago "
        "(default: when its delete-after time, set from CASEVARS_GC_GRACE_SECONDS, has passed)",
    )
    collect.add_argument(
        "--pending-timeout",
        type=_seconds,
        metavar="SECONDS",
        help="age of a pending blob or multipart upload that counts as a crash leftover "
        "(default: CASEVARS_PENDING_TIMEOUT_SECONDS)",
    )
    collect.add_argument(
        "--history-ttl",
        type=_seconds,
        metavar="SECONDS",
        help="remove case instances closed more than SECONDS ago, with their variables "
        "(default: CASEVARS_HISTORY_TTL_SECONDS)",
    )
    check_command = commands.add_parser(
        "check", help="compare Postgres with the bucket; exit 1 on any inconsistency"
    )
    check_command.add_argument("--json", action="store_true", help="print the report as JSON")
    client.add_commands(commands.add_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    if arguments.command in client.COMMANDS:
        # Clients of a running service: no service settings, no embedded servers.
        return client.run(arguments, os.environ)
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as error:
        print(f"casevars: configuration error: {error}", file=sys.stderr)  # noqa: T201
        return EXIT_CONFIG
    logs.configure(settings.log_format, settings.log_level)
    if arguments.command in {"collect", "check"}:
        # Their stdout is the report; log lines go to stderr.
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(sys.stderr)
    commands: dict[str, Callable[[Settings], Coroutine[Any, Any, int | None]]] = {
        "serve": serve,
        "migrate": run_migrate,
        "collect": functools.partial(run_collect, arguments=arguments),
        "check": functools.partial(run_check, arguments=arguments),
    }
    try:
        status = asyncio.run(commands[arguments.command](settings))
    except ConfigError as error:
        print(f"casevars: configuration error: {error}", file=sys.stderr)  # noqa: T201
        return EXIT_CONFIG
    except (EmbeddedError, MigrationError, Unavailable, OSError) as error:
        message = error.message if isinstance(error, Unavailable) else str(error)
        log.error("casevars.failed", command=arguments.command, error=message)  # noqa: TRY400 - the message says it all; no traceback for users
        print(f"casevars: {message}", file=sys.stderr)  # noqa: T201
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE
    return status or 0
