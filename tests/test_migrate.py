import asyncio
import os
import subprocess
import sys

import asyncpg
import pytest

from service.storage.migrate import MigrationError, load_migrations, migrate, migrations_dir
from tests.conftest import ROOT


async def _tables(dsn):
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        )
        versions = await connection.fetch("SELECT version FROM schema_migration ORDER BY 1")
    finally:
        await connection.close()
    return [r["tablename"] for r in rows], [r["version"] for r in versions]


async def _empty_database(server_dsn, name):
    connection = await asyncpg.connect(server_dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return server_dsn.rsplit("/", 1)[0] + "/" + name


async def test_migrations_apply_once_and_are_idempotent(server_dsn):
    dsn = await _empty_database(server_dsn, "migrate_idempotent")
    first = await migrate(dsn)
    assert first == [m.name for m in load_migrations(migrations_dir())]
    assert await migrate(dsn) == []
    tables, versions = await _tables(dsn)
    assert {"case_instance", "variable", "blob", "schema_migration"} <= set(tables)
    assert versions == [m.version for m in load_migrations(migrations_dir())]


async def test_two_concurrent_migrate_processes(server_dsn):
    dsn = await _empty_database(server_dsn, "migrate_concurrent")
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "S3_ENDPOINT_URL": "http://127.0.0.1:1",
        "CASEVARS_LOG_FORMAT": "json",
    }
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "service",
            "migrate",
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    results = [await p.communicate() for p in processes]
    assert [p.returncode for p in processes] == [0, 0], results
    _, versions = await _tables(dsn)
    assert versions == sorted(set(versions))
    assert len(versions) == len(load_migrations(migrations_dir()))


async def test_failing_migration_leaves_schema_as_it_was(server_dsn, tmp_path):
    dsn = await _empty_database(server_dsn, "migrate_failing")
    for migration in load_migrations(migrations_dir()):
        (tmp_path / migration.name).write_text(migration.sql)
    (tmp_path / "9998_good.sql").write_text("CREATE TABLE extra_ok (id int);")
    (tmp_path / "9999_bad.sql").write_text(
        "CREATE TABLE half_done (id int); SELECT no_such_function();"
    )
    with pytest.raises(MigrationError, match=r"9999_bad\.sql"):
        await migrate(dsn, folder=tmp_path)
    tables, versions = await _tables(dsn)
    assert "half_done" not in tables
    assert "extra_ok" in tables
    assert 9999 not in versions
    assert 9998 in versions


def test_migrations_are_the_package_made_of_the_repository_folder():
    """service.migrations is migrations/ (pyproject.toml maps it); its __init__.py is no
    migration. tests/test_wheel.py checks the same of an installed wheel."""
    found = {m.name: m.sql for m in load_migrations(migrations_dir())}
    expected = {p.name: p.read_text() for p in (ROOT / "migrations").glob("*.sql")}
    assert expected
    assert found == expected


def test_migration_files_are_numbered(tmp_path):
    (tmp_path / "init.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        load_migrations(tmp_path)


def test_migrate_command_fails_with_nonzero_status_when_database_is_down():
    result = subprocess.run(
        [sys.executable, "-m", "service", "migrate"],
        env={
            **os.environ,
            "DATABASE_URL": "postgresql://x:y@127.0.0.1:1/none",
            "S3_ENDPOINT_URL": "http://127.0.0.1:1",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
