"""Applies migrations/NNNN_name.sql in order, each in its own transaction, under a
Postgres advisory lock so that replicas starting together apply each file once. The
lock is a transaction's, not the session's, so that migrating works through a pooler
in transaction mode too (PgBouncer), where a session lock would stay behind on
whichever server connection took it.

A file whose first line is `-- casevars: no transaction` runs its statements one by
one outside a transaction, for what Postgres refuses in one (CREATE INDEX
CONCURRENTLY, which builds an index on a live table without blocking its writes).
Each statement ends with a semicolon at the end of a line. A lock of their own, held
in an open transaction meanwhile, makes another replica wait rather than build too,
and the file is marked applied only once every index it names is valid. Run again
after a crash, an index the crash left INVALID is dropped and built again: the
statements must therefore be idempotent (IF NOT EXISTS). They run with the server's
own timeouts: a pooler in transaction mode allows no session setting, and a
concurrent build blocks no one."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
from importlib import resources
from importlib.resources.abc import Traversable

import asyncpg
import structlog

log = structlog.get_logger("casevars.migrate")

# Any fixed 64-bit number; the same in every replica.
ADVISORY_LOCK_ID = 0x6361_7365_7661_7273  # "casevars"
# The lock of no-transaction files while they build (see _apply_outside_transaction),
# and how often a replica waiting for it tries it.
BUILD_LOCK_ID = ADVISORY_LOCK_ID + 1
BUILD_LOCK_POLL_SECONDS = 0.5
# A migration waits at most this long for a table lock, so it never queues live traffic.
LOCK_TIMEOUT = "4s"
STATEMENT_TIMEOUT = "10min"
FILE_PATTERN = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")
NO_TRANSACTION = "-- casevars: no transaction"
_STATEMENT_END = re.compile(r";[ \t]*$", re.MULTILINE)
_INDEX_NAME = re.compile(
    r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)",
    re.IGNORECASE,
)


class MigrationError(Exception):
    """A migration failed; its transaction was rolled back and later ones not applied."""


@dataclasses.dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def in_transaction(self) -> bool:
        return self.sql.splitlines()[:1] != [NO_TRANSACTION]

    def statements(self) -> list[str]:
        """The statements of a no-transaction file, in order, without blank ones."""
        parts = (part.strip() for part in _STATEMENT_END.split(self.sql))
        return [part for part in parts if _has_code(part)]

    def index_names(self) -> list[str]:
        """The indexes a no-transaction file builds concurrently."""
        return _INDEX_NAME.findall(self.sql)


def _has_code(statement: str) -> bool:
    lines = (line.strip() for line in statement.splitlines())
    return any(line and not line.startswith("--") for line in lines)


def migrations_dir() -> Traversable:
    """migrations/ of the source tree, installed (wheel, sdist, editable) as the package
    service.migrations; see pyproject.toml."""
    try:
        return resources.files("service.migrations")
    except ModuleNotFoundError as error:
        raise MigrationError("the migrations folder is missing from this installation") from error


def load_migrations(folder: Traversable) -> list[Migration]:
    found = []
    for entry in sorted(folder.iterdir(), key=lambda entry: entry.name):
        if not entry.name.endswith(".sql"):
            continue
        match = FILE_PATTERN.fullmatch(entry.name)
        if match is None:
            raise MigrationError(f"{entry.name}: migration files are named NNNN_name.sql")
        found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a number")
    return found


async def migrate(
    dsn: str, *, folder: Traversable | None = None, timeout: float = 30.0
) -> list[str]:
    """Apply what is not applied yet; returns the names applied now."""
    migrations = load_migrations(folder or migrations_dir())
    # No statement cache: through a pooler the next transaction may run on another
    # server connection, which does not have the statements this one prepared.
    connection = await asyncpg.connect(dsn, timeout=timeout, statement_cache_size=0)
    try:
        return await _apply_pending(connection, migrations, Connect(dsn, timeout))
    finally:
        await connection.close()


@dataclasses.dataclass(frozen=True)
class Connect:
    """How to open one more connection to the database being migrated."""

    dsn: str
    timeout: float

    async def __call__(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.dsn, timeout=self.timeout, statement_cache_size=0)


async def _apply_pending(
    connection: asyncpg.Connection, migrations: list[Migration], connect: Connect
) -> list[str]:
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", ADVISORY_LOCK_ID)
        await connection.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migration (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
    done = []
    for migration in migrations:
        try:
            applied = await _apply_one(connection, migration, connect)
        except asyncpg.PostgresError as error:
            raise MigrationError(f"{migration.name}: {error}") from error
        if applied:
            log.info("migrate.applied", migration=migration.name)
            done.append(migration.name)
    return done


async def _apply_one(
    connection: asyncpg.Connection, migration: Migration, connect: Connect
) -> bool:
    """Apply migration unless it is applied already; whether it was applied now."""
    if not migration.in_transaction:
        return await _apply_outside_transaction(connection, migration, connect)
    async with connection.transaction():
        # Read under the lock: a replica starting at the same time may have applied it
        # a moment ago.
        await connection.execute("SELECT pg_advisory_xact_lock($1)", ADVISORY_LOCK_ID)
        checksum = await connection.fetchval(
            "SELECT checksum FROM schema_migration WHERE version = $1", migration.version
        )
        if checksum is not None:
            if checksum != migration.checksum:
                log.warning("migrate.changed_after_apply", migration=migration.name)
            return False
        await connection.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        await connection.execute(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'")
        await connection.execute(migration.sql)
        await connection.execute(
            "INSERT INTO schema_migration (version, name, checksum) VALUES ($1, $2, $3)",
            migration.version,
            migration.name,
            migration.checksum,
        )
    return True


async def _apply_outside_transaction(
    connection: asyncpg.Connection, migration: Migration, connect: Connect
) -> bool:
    """A no-transaction file: connection holds BUILD_LOCK_ID in an open transaction
    while a second connection, the builder, runs the statements, each on its own.

    CREATE INDEX CONCURRENTLY waits for every transaction that held a snapshot when it
    started, so nobody waiting for the build may hold one: a replica waiting in `SELECT
    pg_advisory_xact_lock(...)` does, for as long as it waits. Hence a lock of its own,
    which replicas on older code (waiting for ADVISORY_LOCK_ID only) never ask for; and
    others wait for it by trying, outside any transaction, now and again. The holder
    reads nothing until the build is over (the builder reads what is applied, in
    statements of its own that see every commit made under the lock)."""
    while True:
        async with connection.transaction(isolation="read_committed"):
            locked = await connection.fetchval(
                "SELECT pg_try_advisory_xact_lock($1)", BUILD_LOCK_ID
            )
            # A query of the simple protocol drops the unnamed portal of the one
            # above, and with it the snapshot the transaction would go on holding.
            await connection.execute("SELECT 1")
            if locked:
                return await _build(connection, migration, connect)
        await asyncio.sleep(BUILD_LOCK_POLL_SECONDS)


async def _build(connection: asyncpg.Connection, migration: Migration, connect: Connect) -> bool:
    builder = await connect()
    try:
        checksum = await builder.fetchval(
            "SELECT checksum FROM schema_migration WHERE version = $1", migration.version
        )
        if checksum is not None:
            if checksum != migration.checksum:
                log.warning("migrate.changed_after_apply", migration=migration.name)
            return False
        names = migration.index_names()
        # What an earlier attempt left half-built is dropped, then built again.
        for name in await _invalid_indexes(builder, names):
            log.warning("migrate.rebuild_invalid_index", migration=migration.name, index=name)
            await builder.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
        for statement in migration.statements():
            await builder.execute(statement)
        invalid = await _invalid_indexes(builder, names)
        missing = set(names) - set(await _existing_indexes(builder, names))
    finally:
        await builder.close()
    if invalid or missing:
        raise MigrationError(
            f"{migration.name}: indexes not valid after the build: {sorted({*invalid, *missing})}"
        )
    await connection.execute(
        "INSERT INTO schema_migration (version, name, checksum) VALUES ($1, $2, $3)",
        migration.version,
        migration.name,
        migration.checksum,
    )
    return True


async def _invalid_indexes(connection: asyncpg.Connection, names: list[str]) -> list[str]:
    rows = await connection.fetch(
        """
        SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE c.relname = ANY($1::text[]) AND c.relnamespace = current_schema()::regnamespace
          AND NOT i.indisvalid
        """,
        names,
    )
    return [row["relname"] for row in rows]


async def _existing_indexes(connection: asyncpg.Connection, names: list[str]) -> list[str]:
    rows = await connection.fetch(
        """
        SELECT relname FROM pg_class
        WHERE relname = ANY($1::text[]) AND relnamespace = current_schema()::regnamespace
          AND relkind = 'i'
        """,
        names,
    )
    return [row["relname"] for row in rows]
