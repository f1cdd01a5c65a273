import asyncio
import os
import subprocess
import sys

import asyncpg
import pytest

from service.storage.migrate import (
    Migration,
    MigrationError,
    load_migrations,
    migrate,
    migrations_dir,
)
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


# --- files that run without a transaction (CREATE INDEX CONCURRENTLY) -------------

NO_TRANSACTION = "-- casevars: no transaction\n"


def _folder_with(tmp_path, extra):
    for migration in load_migrations(migrations_dir()):
        (tmp_path / migration.name).write_text(migration.sql)
    for name, sql in extra.items():
        (tmp_path / name).write_text(sql)
    return tmp_path


async def _indexes(dsn, table):
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            """
            SELECT c.relname, i.indisvalid FROM pg_index i
            JOIN pg_class c ON c.oid = i.indexrelid
            WHERE i.indrelid = $1::regclass ORDER BY 1
            """,
            table,
        )
    finally:
        await connection.close()
    return {row["relname"]: row["indisvalid"] for row in rows}


def test_no_transaction_file_is_split_into_its_statements():
    sql = (
        NO_TRANSACTION + "-- a comment\nCREATE INDEX CONCURRENTLY IF NOT EXISTS a_idx\n"
        "    ON t (a);\n\nCREATE UNIQUE INDEX CONCURRENTLY b_idx ON t (b);  \n-- the end\n"
    )
    migration = Migration(9999, "9999_x.sql", sql)
    assert not migration.in_transaction
    assert [s.splitlines()[-1].strip() for s in migration.statements()] == [
        "ON t (a)",
        "CREATE UNIQUE INDEX CONCURRENTLY b_idx ON t (b)",
    ]
    assert migration.index_names() == ["a_idx", "b_idx"]
    assert Migration(1, "0001_x.sql", "-- casevars: something else\nSELECT 1;").in_transaction


async def test_no_transaction_file_builds_indexes_concurrently_once(server_dsn, tmp_path):
    """CREATE INDEX CONCURRENTLY, refused in a transaction, runs; applied once."""
    dsn = await _empty_database(server_dsn, "migrate_concurrently")
    folder = _folder_with(
        tmp_path,
        {
            "9998_table.sql": "CREATE TABLE t (a int, b int);"
            " INSERT INTO t SELECT i, i FROM generate_series(1, 1000) i;",
            "9999_indexes.sql": NO_TRANSACTION
            + "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_a_idx ON t (a);\n"
            + "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_b_idx ON t (b);\n",
        },
    )
    applied = await migrate(dsn, folder=folder)
    assert applied[-2:] == ["9998_table.sql", "9999_indexes.sql"]
    assert await _indexes(dsn, "t") == {"t_a_idx": True, "t_b_idx": True}
    assert await migrate(dsn, folder=folder) == []


async def test_invalid_index_left_by_a_failed_build_is_rebuilt(server_dsn, tmp_path):
    """A build that fails half-way (here: a unique index over duplicates) leaves an
    INVALID index and the file unapplied; the next run drops the index and builds it."""
    dsn = await _empty_database(server_dsn, "migrate_invalid_index")
    folder = _folder_with(
        tmp_path,
        {
            "9998_table.sql": "CREATE TABLE t (a int); INSERT INTO t VALUES (1), (1), (2);",
            "9999_index.sql": NO_TRANSACTION
            + "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_a_idx ON t (a);\n",
        },
    )
    with pytest.raises(MigrationError, match=r"9999_index\.sql"):
        await migrate(dsn, folder=folder)
    assert await _indexes(dsn, "t") == {"t_a_idx": False}
    _, versions = await _tables(dsn)
    assert 9999 not in versions
    assert 9998 in versions
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("DELETE FROM t WHERE ctid = (SELECT min(ctid) FROM t WHERE a = 1)")
    finally:
        await connection.close()
    assert await migrate(dsn, folder=folder) == ["9999_index.sql"]
    assert await _indexes(dsn, "t") == {"t_a_idx": True}


async def test_two_migrators_build_once_and_writes_go_on_meanwhile(server_dsn, tmp_path):
    """Two replicas migrating at once: one builds, the other waits and applies nothing;
    the file is never marked applied while its index is not valid; a writer on the
    table (a replica on the old code) is not held up by the build."""
    dsn = await _empty_database(server_dsn, "migrate_two_builders")
    folder = _folder_with(
        tmp_path,
        {
            "9998_table.sql": "CREATE TABLE t (a int, b text);"
            " INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 400000) i;",
        },
    )
    await migrate(dsn, folder=folder)
    (folder / "9999_index.sql").write_text(
        NO_TRANSACTION + "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_b_idx ON t (b, a);\n"
    )
    writer = await asyncpg.connect(dsn)
    try:
        builds = [asyncio.create_task(migrate(dsn, folder=folder)) for _ in range(2)]
        seen, slowest_write = set(), 0.0
        while not all(build.done() for build in builds):
            started = asyncio.get_running_loop().time()
            await writer.execute("INSERT INTO t VALUES (0, 'live')")
            slowest_write = max(slowest_write, asyncio.get_running_loop().time() - started)
            state = await writer.fetchrow(
                """
                SELECT EXISTS (SELECT 1 FROM schema_migration WHERE version = 9999) AS applied,
                       (SELECT indisvalid FROM pg_index
                        WHERE indexrelid = to_regclass('t_b_idx')) AS valid
                """
            )
            assert state is not None
            seen.add((state["applied"], state["valid"]))
            await asyncio.sleep(0.01)
        results = [await build for build in builds]
    finally:
        await writer.close()
    assert sorted(results) == [[], ["9999_index.sql"]]
    assert (True, False) not in seen
    assert (True, None) not in seen
    assert (False, False) in seen or (False, None) in seen  # watched during the build
    assert slowest_write < 1.0
    assert await _indexes(dsn, "t") == {"t_b_idx": True}
