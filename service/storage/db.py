"""The asyncpg pool: one per process, jsonb encoded and decoded with orjson."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import orjson

from service.errors import Unavailable

# Errors that mean "Postgres is not there or not answering": callers answer 503.
CONNECTION_ERRORS = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.PostgresConnectionError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
)

Pool = asyncpg.Pool
Connection = asyncpg.Connection


def _encode_json(value: Any) -> str:
    return orjson.dumps(value).decode()


async def init_connection(connection: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await connection.set_type_codec(
            type_name, schema="pg_catalog", encoder=_encode_json, decoder=orjson.loads
        )


async def _keep_session(_connection: asyncpg.Connection) -> None:
    """Released connections skip asyncpg's reset query (a round trip per request):
    casevars never changes session state (no SET, LISTEN, cursors or advisory locks
    on pooled connections), and asyncpg still rolls back an unfinished transaction."""


async def create_pool(
    dsn: str, *, max_size: int, timeout: float, gc_grace_seconds: float
) -> asyncpg.Pool:
    """A pool whose connections speak jsonb through orjson; Unavailable if Postgres is down.

    Each connection carries the garbage grace period for the trigger that hands
    released blobs to the collector (migrations/0003).
    """
    try:
        return await asyncpg.create_pool(
            dsn,
            min_size=1,
            max_size=max_size,
            timeout=timeout,
            command_timeout=timeout,
            init=init_connection,
            reset=_keep_session,
            server_settings={"casevars.gc_grace_seconds": str(gc_grace_seconds)},
        )
    except (TimeoutError, OSError, asyncpg.PostgresError) as error:
        raise Unavailable(f"Postgres is unavailable: {error}") from error


async def ping(dsn: str, *, timeout: float) -> None:
    """Open one connection and run a query; raises OSError or asyncpg errors when down."""
    connection = await asyncpg.connect(dsn, timeout=timeout)
    try:
        await connection.fetchval("SELECT 1", timeout=timeout)
    finally:
        await connection.close(timeout=timeout)


async def ensure_database(dsn: str, name: str, *, timeout: float) -> None:
    """Create database `name` on the server of dsn if it does not exist."""
    connection = await asyncpg.connect(dsn, timeout=timeout)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            # Identifiers cannot be bound as parameters; quote it as Postgres does.
            quoted = '"' + name.replace('"', '""') + '"'
            await connection.execute(f"CREATE DATABASE {quoted}")
    finally:
        await connection.close()
