"""The asyncpg pool: one per process, jsonb encoded and decoded with orjson."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, Self

import asyncpg
import orjson

from service.errors import Unavailable
from service.storage import CallObserver

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    AnyConnection = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]

# Errors that mean "Postgres is not there or not answering" when is_outage() says so:
# callers answer 503.
CONNECTION_ERRORS = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.PostgresConnectionError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
)

# asyncpg's InterfaceError says a connection or pool is closed, or that asyncpg refuses
# what it was asked to send (more than 32,767 arguments, a misused connection): the
# latter is a bug no retry cures, not an outage.
_CLOSED = ("connection is closed", "pool is closed", "pool is closing")


def is_outage(error: BaseException) -> bool:
    """Whether an error among CONNECTION_ERRORS means Postgres cannot be reached."""
    if isinstance(error, asyncpg.InterfaceError):
        return any(text in str(error) for text in _CLOSED)
    return True


Pool = asyncpg.Pool
Connection = asyncpg.Connection
# A one-shot command's own connection: connect timeout, and a bound on any one query.
CONNECT_TIMEOUT_SECONDS = 30.0
QUERY_TIMEOUT_SECONDS = 300.0
# Where the collector and the check read and write: the service's pool, or a DSN of
# their own (the one-shot commands).
Database = asyncpg.Pool | str


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


# Replicas behind one pooler share this row: the one started last sets it.
_KEEP_GRACE = """
    INSERT INTO casevars_setting (name, value) VALUES ('gc_grace_seconds', $1)
    ON CONFLICT (name) DO UPDATE SET value = excluded.value
"""


async def create_pool(
    dsn: str,
    *,
    max_size: int,
    timeout: float,
    gc_grace_seconds: float,
    transaction_pooling: bool = False,
) -> asyncpg.Pool:
    """A pool whose connections speak jsonb through orjson; Unavailable if Postgres is down.

    The trigger that hands released blobs to the collector (migrations/0003) takes its
    garbage grace period from each connection's session. Through a pooler in
    transaction mode there is no session to rely on: the grace goes to the
    casevars_setting table instead (migrations/0009), and prepared statements are not
    cached (a named statement lives on one server connection, the next transaction may
    run on another).
    """
    session: dict[str, Any] = (
        {"statement_cache_size": 0}
        if transaction_pooling
        else {
            "server_settings": {
                "casevars.gc_grace_seconds": str(gc_grace_seconds),
                # A cached statement's generic plan cannot know that a condition's
                # value is rare (true in one case, a bound near the top), and reads
                # every variable of the name; planned with its values each time, the
                # condition starts from its index. (Uncached through a pooler: the
                # same.)
                "plan_cache_mode": "force_custom_plan",
            }
        }
    )
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=1,
            max_size=max_size,
            timeout=timeout,
            command_timeout=timeout,
            init=init_connection,
            reset=_keep_session,
            **session,
        )
    except (TimeoutError, OSError, asyncpg.PostgresError) as error:
        raise Unavailable(f"Postgres is unavailable: {error}") from error
    if transaction_pooling:
        try:
            await pool.execute(_KEEP_GRACE, str(gc_grace_seconds))
        except BaseException:
            await pool.close()
            raise
    return pool


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


@contextlib.asynccontextmanager
async def observed_connection(
    pool: asyncpg.Pool, operation: str, observe: CallObserver | None
) -> AsyncIterator[PoolConnectionProxy[asyncpg.Record]]:
    """A pooled connection; Unavailable when Postgres cannot be reached. observe
    (metrics) hears how long `operation` waited for and held it, and whether Postgres
    failed it (a constraint a caller turns into a 404 is no failure)."""
    started, failed = time.monotonic(), False
    try:
        async with pool.acquire() as connection:
            yield connection
    except CONNECTION_ERRORS as error:
        failed = True
        if not is_outage(error):
            raise
        raise Unavailable(f"Postgres is unavailable: {type(error).__name__}") from error
    except asyncpg.PostgresError as error:
        failed = not isinstance(error, asyncpg.IntegrityConstraintViolationError)
        raise
    finally:
        if observe is not None:
            observe(operation, time.monotonic() - started, failed)


@contextlib.contextmanager
def postgres_errors() -> Iterator[None]:
    """Unavailable when Postgres cannot be reached or lacks the casevars schema."""
    try:
        yield
    except CONNECTION_ERRORS as error:
        if not is_outage(error):
            raise
        raise Unavailable(f"Postgres is unavailable: {type(error).__name__}") from error
    except (asyncpg.UndefinedTableError, asyncpg.UndefinedColumnError) as error:
        raise Unavailable(
            f"the database lacks the casevars schema ({error}); run `casevars migrate`"
        ) from error


class Connections:
    """Where a pass gets connections: from the pool, one per page (so requests are not
    starved), or the single connection opened from a DSN for the whole pass."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._connection: asyncpg.Connection[asyncpg.Record] | None = None

    async def __aenter__(self) -> Self:
        if isinstance(self._database, str):
            with postgres_errors():
                # No statement cache: it saves nothing here, and a pooler in
                # transaction mode would lose its statements between transactions.
                self._connection = await asyncpg.connect(
                    self._database,
                    timeout=CONNECT_TIMEOUT_SECONDS,
                    command_timeout=QUERY_TIMEOUT_SECONDS,
                    statement_cache_size=0,
                )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            with contextlib.suppress(*CONNECTION_ERRORS):
                await connection.close(timeout=CONNECT_TIMEOUT_SECONDS)

    @contextlib.asynccontextmanager
    async def one(self) -> AsyncIterator[AnyConnection]:
        with postgres_errors():
            if self._connection is not None:
                yield self._connection
                return
            assert not isinstance(self._database, str)
            async with self._database.acquire() as connection:
                yield connection
