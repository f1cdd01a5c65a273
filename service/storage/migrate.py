"""Applies migrations/NNNN_name.sql in order, each in its own transaction, under a
Postgres advisory lock so that replicas starting together apply each file once. The
lock is a transaction's, not the session's, so that migrating works through a pooler
in transaction mode too (PgBouncer), where a session lock would stay behind on
whichever server connection took it."""

from __future__ import annotations

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
# A migration waits at most this long for a table lock, so it never queues live traffic.
LOCK_TIMEOUT = "4s"
STATEMENT_TIMEOUT = "10min"
FILE_PATTERN = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")


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
        return await _apply_pending(connection, migrations)
    finally:
        await connection.close()


async def _apply_pending(connection: asyncpg.Connection, migrations: list[Migration]) -> list[str]:
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
            applied = await _apply_one(connection, migration)
        except asyncpg.PostgresError as error:
            raise MigrationError(f"{migration.name}: {error}") from error
        if applied:
            log.info("migrate.applied", migration=migration.name)
            done.append(migration.name)
    return done


async def _apply_one(connection: asyncpg.Connection, migration: Migration) -> bool:
    """Apply migration unless it is applied already; whether it was applied now."""
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
