"""Applies migrations/NNNN_name.sql in order, each in its own transaction, under a
Postgres advisory lock so that replicas starting together apply each file once."""

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
    connection = await asyncpg.connect(dsn, timeout=timeout)
    try:
        await connection.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_ID)
        try:
            return await _apply_pending(connection, migrations)
        finally:
            await connection.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_ID)
    finally:
        await connection.close()


async def _apply_pending(connection: asyncpg.Connection, migrations: list[Migration]) -> list[str]:
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
    applied = {
        row["version"]: row["checksum"]
        for row in await connection.fetch("SELECT version, checksum FROM schema_migration")
    }
    done = []
    for migration in migrations:
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                log.warning("migrate.changed_after_apply", migration=migration.name)
            continue
        try:
            async with connection.transaction():
                await connection.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                await connection.execute(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'")
                await connection.execute(migration.sql)
                await connection.execute(
                    "INSERT INTO schema_migration (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
        except asyncpg.PostgresError as error:
            raise MigrationError(f"{migration.name}: {error}") from error
        log.info("migrate.applied", migration=migration.name)
        done.append(migration.name)
    return done
