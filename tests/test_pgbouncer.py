"""casevars behind PgBouncer in transaction mode (Debian's pgbouncer, installed here when
missing), as clusters run it once replicas multiply: two replicas migrate an empty
database through it at once, serve a concurrent mixed load over fewer server
connections than they hold client connections, keep the configured garbage grace,
and `casevars collect` and `casevars check` work through it too."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import pytest

from service.storage.migrate import load_migrations, migrations_dir
from tests.conftest import casevars_env, free_port, new_id, run_casevars
from tests.forms import FORM, body, part
from tests.serving import Serve

PGBOUNCER = Path("/usr/sbin/pgbouncer")
# Server connections PgBouncer opens to Postgres for the database: fewer than the
# replicas' client connections, so transactions of many clients share each.
SERVER_CONNECTIONS = 3
CLIENTS = 12
ROUNDS = 8
GRACE_SECONDS = 120


def _installed() -> Path:
    """Debian's pgbouncer, installed with apt-get when it is not there yet."""
    if not PGBOUNCER.exists():
        assert shutil.which("apt-get"), "pgbouncer is missing, and apt-get to install it"
        assert os.geteuid() == 0, "pgbouncer is missing; installing it takes root"
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (
            ["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "pgbouncer"],
        ):
            result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            assert result.returncode == 0, result.stdout + result.stderr
    return PGBOUNCER


@dataclasses.dataclass
class Bouncer:
    port: int
    user: str

    def dsn(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"


@pytest.fixture(scope="module")
def pgbouncer(server_dsn: str) -> Iterator[Bouncer]:
    """PgBouncer in transaction mode in front of the tests' Postgres, every database of it.
    As root it runs as nobody (it refuses root), from a folder of its own."""
    binary = _installed()
    server = urlsplit(server_dsn)
    folder = Path(tempfile.mkdtemp(prefix="casevars-pgbouncer-"))
    folder.chmod(0o755)
    run_as: list[str] = []
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(folder, nobody.pw_uid, nobody.pw_gid)
        run_as = ["-u", "nobody"]
    port = free_port()
    (folder / "users.txt").write_text(f'"{server.username}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={server.hostname} port={server.port} user={server.username} "
        f"password={server.password}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder}/users.txt\n"
        f"pool_mode = transaction\ndefault_pool_size = {SERVER_CONNECTIONS}\n"
        f"max_client_conn = 200\nlogfile = {folder}/pgbouncer.log\n"
    )
    process = subprocess.Popen([str(binary), *run_as, str(folder / "pgbouncer.ini")])
    try:
        asyncio.run(_until_listening(port))
        yield Bouncer(port, str(server.username))
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


async def _until_listening(port: int) -> None:
    for _ in range(100):
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.05)
    raise AssertionError("pgbouncer did not start")


@pytest.fixture
async def empty_database(server_dsn: str) -> AsyncIterator[str]:
    """A database with nothing in it: the replicas migrate it through PgBouncer."""
    name = f"casevars_pgbouncer_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(server_dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
        yield name
    finally:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.close()


async def _client_load(base: str, session: aiohttp.ClientSession, number: int) -> None:
    """One client's rounds of writes and reads; every answer checked."""
    case_id = new_id(f"bouncer-{number}")
    case = f"{base}/case-instance/{case_id}"
    async with session.put(case) as response:
        assert response.status == 201
    for round_number in range(ROUNDS):
        value = {"type": "String", "value": f"{number}-{round_number}"}
        async with session.put(f"{case}/variables/s", json=value) as response:
            assert response.status == 204
        modification = {"modifications": {"n": {"type": "Integer", "value": round_number}}}
        async with session.post(f"{case}/variables", json=modification) as response:
            assert response.status == 204
        content = os.urandom(2000 + round_number)
        form = body(part("data", content, "application/octet-stream", filename="f.bin"))
        url = f"{case}/variables/file/data"
        async with session.post(url, data=form, headers={"Content-Type": FORM}) as response:
            assert response.status == 204, await response.text()
        async with session.get(url) as response:
            assert await response.read() == content
        query = {"variables": [{"name": "n", "operator": "eq", "value": round_number}]}
        async with session.post(f"{base}/case-instance", json=query) as response:
            found = {instance["id"] for instance in await response.json()}
            assert case_id in found
        async with session.get(f"{case}/variables") as response:
            listed = await response.json()
            assert listed["s"]["value"] == f"{number}-{round_number}"
            assert listed["n"]["value"] == round_number


async def test_two_replicas_migrate_and_serve_through_pgbouncer(
    pgbouncer, empty_database, s3_endpoints, server_dsn, tmp_path
):
    endpoints = dataclasses.replace(s3_endpoints, dsn=pgbouncer.dsn(empty_database))
    settings = {
        "CASEVARS_DB_TRANSACTION_POOLING": "true",
        "CASEVARS_DB_POOL_MAX_SIZE": "8",
        "CASEVARS_GC_GRACE_SECONDS": str(GRACE_SECONDS),
        "CASEVARS_COLLECTOR_INTERVAL_SECONDS": "0.2",
    }
    replicas = [Serve(endpoints, tmp_path, **settings) for _ in range(2)]
    direct = await asyncpg.connect(server_dsn.rsplit("/", 1)[0] + "/" + empty_database)
    try:
        await asyncio.gather(*(replica.ready() for replica in replicas))
        versions = await direct.fetch("SELECT version FROM schema_migration ORDER BY version")
        assert [row["version"] for row in versions] == [
            migration.version for migration in load_migrations(migrations_dir())
        ]
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(
                *(
                    _client_load(f"http://127.0.0.1:{replicas[n % 2].port}", session, n)
                    for n in range(CLIENTS)
                )
            )
        # Both replicas' pools (8 client connections each) ran on PgBouncer's few.
        server_connections = await direct.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            empty_database,
        )
        assert 0 < server_connections <= SERVER_CONNECTIONS
        # Each replaced file became garbage with the configured grace, not the default.
        graces = await direct.fetch(
            "SELECT DISTINCT extract(epoch FROM delete_after - garbage_since)::int AS grace "
            "FROM blob WHERE state = 'garbage'"
        )
        assert [row["grace"] for row in graces] == [GRACE_SECONDS]
        env = casevars_env(endpoints)
        collected = await run_casevars(env, "collect", "--grace", "0")
        assert collected.returncode == 0, collected.stderr
        assert f"deleted {CLIENTS * (ROUNDS - 1)} garbage" in collected.stdout
        checked = await run_casevars(env, "check")
        assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        await direct.close()
        for replica in replicas:
            replica.stop()


async def test_without_transaction_pooling_serve_says_what_pgbouncer_refused(
    pgbouncer, empty_database, s3_endpoints, tmp_path
):
    endpoints = dataclasses.replace(s3_endpoints, dsn=pgbouncer.dsn(empty_database))
    serve = Serve(endpoints, tmp_path)
    try:
        assert serve.process.wait(60) != 0
    finally:
        serve.stop()
    assert "unsupported startup parameter" in serve.log.read_text()
