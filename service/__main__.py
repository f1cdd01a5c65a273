"""The `casevars` command: serve, migrate."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence

import structlog
from aiohttp import web

from service import logs
from service.app import create_app
from service.config import ConfigError, Endpoints, Settings
from service.embedded import EmbeddedError, EmbeddedServices
from service.errors import Unavailable
from service.keys import SHUTTING_DOWN
from service.migrate import MigrationError, migrate

log = structlog.get_logger("casevars")

EXIT_FAILURE = 1
EXIT_CONFIG = 2


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
        runner = web.AppRunner(
            app,
            access_log_class=logs.AccessLogger,
            shutdown_timeout=settings.shutdown_grace_seconds,
            read_bufsize=256 * 1024,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, settings.host, settings.port)
            await site.start()
            log.info(
                "serve.started", url=f"http://{settings.host}:{settings.port}", pid=os.getpid()
            )
            await stop.wait()
            app[SHUTTING_DOWN].set()
            log.info("serve.stopping", grace_seconds=settings.shutdown_grace_seconds)
        finally:
            await runner.cleanup()
    log.info("serve.stopped")


async def run_migrate(settings: Settings) -> None:
    async with resolved_endpoints(settings, reuse_running=True) as endpoints:
        applied = await migrate(endpoints.dsn, timeout=settings.db_timeout_seconds)
    log.info("migrate.done", applied=applied)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="casevars",
        description="Camunda 7 case-instance variables, with binary values streamed to S3.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("serve", help="run the HTTP service (embedded Postgres and S3 by default)")
    commands.add_parser("migrate", help="apply database migrations and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as error:
        print(f"casevars: configuration error: {error}", file=sys.stderr)  # noqa: T201
        return EXIT_CONFIG
    logs.configure(settings.log_format, settings.log_level)
    commands = {"serve": serve, "migrate": run_migrate}
    try:
        asyncio.run(commands[arguments.command](settings))
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
