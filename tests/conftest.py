"""Real servers, started once per test session: Postgres (embedded, or TEST_DATABASE_URL),
moto's S3 server and SeaweedFS, all on loopback. Each test gets its own S3 key prefix
and case-instance ids; tests that need an empty world ask for a fresh database."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.cli.embedded import EmbeddedServices
from service.config import MIB, Endpoints, Settings
from service.storage import blobstore
from service.storage.db import init_connection
from service.storage.migrate import migrate
from tests.faultproxy import FaultProxy

TEST_BUCKET = "casevars-test"
MOTO_KEYS = {"s3_access_key_id": "testing", "s3_secret_access_key": "testing"}
# Small parts so multipart behaviour shows with small values.
TEST_PART_SIZE = 5 * MIB
TEST_TIMEOUT_SECONDS = 5.0

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _SessionLoop:
    """Starts and stops the shared servers on a loop of their own, outside the tests' loops."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._stack = contextlib.AsyncExitStack()

    def enter(self, context: Any) -> Any:
        return self.loop.run_until_complete(self._stack.enter_async_context(context))

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        self.loop.run_until_complete(self._stack.aclose())
        self.loop.close()


@pytest.fixture(scope="session")
def session_loop() -> Iterator[_SessionLoop]:
    loop = _SessionLoop()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def server_dsn(session_loop: _SessionLoop, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A DSN for the maintenance database of a Postgres server the tests may use freely."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        return given
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("postgres"), s3_endpoint_url="http://unused.invalid"
    )
    endpoints: Endpoints = session_loop.enter(
        EmbeddedServices(settings, reuse_running=False).running()
    )
    return endpoints.dsn.rsplit("/", 1)[0] + "/postgres"


def _with_database(dsn: str, name: str) -> str:
    return dsn.rsplit("/", 1)[0] + "/" + name


async def _create_database(server_dsn: str, name: str, template: str | None = None) -> None:
    connection = await asyncpg.connect(server_dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        suffix = f' TEMPLATE "{template}"' if template else ""
        await connection.execute(f'CREATE DATABASE "{name}"{suffix}')
    finally:
        await connection.close()


async def _drop_database(server_dsn: str, name: str) -> None:
    connection = await asyncpg.connect(server_dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def template_dsn(session_loop: _SessionLoop, server_dsn: str) -> str:
    """A migrated database used as the template of fresh ones."""
    name = f"casevars_template_{os.getpid()}"
    session_loop.run(_create_database(server_dsn, name))
    dsn = _with_database(server_dsn, name)
    session_loop.run(migrate(dsn))
    return dsn


@pytest.fixture(scope="session")
def database_dsn(session_loop: _SessionLoop, server_dsn: str, template_dsn: str) -> str:
    """The migrated database most tests share (they use unique case-instance ids)."""
    name = f"casevars_shared_{os.getpid()}"
    session_loop.run(_create_database(server_dsn, name, template_dsn.rsplit("/", 1)[1]))
    return _with_database(server_dsn, name)


@pytest.fixture(scope="module")
def module_database_dsn(
    session_loop: _SessionLoop, server_dsn: str, template_dsn: str
) -> Iterator[str]:
    """A migrated database of one test module's own, dropped after it: for tests that
    share what is slow to fill and only read it."""
    name = f"casevars_module_{uuid.uuid4().hex[:12]}"
    session_loop.run(_create_database(server_dsn, name, template_dsn.rsplit("/", 1)[1]))
    yield _with_database(server_dsn, name)
    session_loop.run(_drop_database(server_dsn, name))


@pytest.fixture
async def fresh_database_dsn(server_dsn: str, template_dsn: str) -> AsyncIterator[str]:
    """A migrated database of this test's own, dropped afterwards."""
    name = f"casevars_{uuid.uuid4().hex[:12]}"
    await _create_database(server_dsn, name, template_dsn.rsplit("/", 1)[1])
    yield _with_database(server_dsn, name)
    await _drop_database(server_dsn, name)


class MotoServer:
    """moto's S3 server as a child process; stop() and start() keep its port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.05)
        raise RuntimeError("moto server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


async def _make_bucket(endpoints: Endpoints) -> None:
    settings = Settings(s3_timeout_seconds=TEST_TIMEOUT_SECONDS)
    async with blobstore.open_blob_store(settings, endpoints) as store:
        await store.ensure_bucket()


@pytest.fixture(scope="session")
def moto_server(session_loop: _SessionLoop) -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    endpoints = Endpoints("", server.url, TEST_BUCKET, "", "us-east-1", **MOTO_KEYS)
    session_loop.run(_make_bucket(endpoints))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def seaweedfs_endpoints(
    session_loop: _SessionLoop, tmp_path_factory: pytest.TempPathFactory
) -> Endpoints:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("seaweedfs"),
        database_url="postgresql://unused.invalid/none",
        s3_bucket=TEST_BUCKET,
    )
    endpoints: Endpoints = session_loop.enter(
        EmbeddedServices(settings, reuse_running=False).running()
    )
    return endpoints


@pytest.fixture(params=["moto", "seaweedfs"])
def s3_backend(request: pytest.FixtureRequest) -> str:
    """Run the test against each real S3 API."""
    return str(request.param)


@pytest.fixture
def s3_endpoints(request: pytest.FixtureRequest) -> Endpoints:
    """S3 of the backend the test asks for (moto unless parametrized), under a fresh prefix."""
    backend = (
        request.getfixturevalue("s3_backend") if "s3_backend" in request.fixturenames else "moto"
    )
    prefix = f"test-{uuid.uuid4().hex[:12]}/"
    if backend == "seaweedfs":
        base: Endpoints = request.getfixturevalue("seaweedfs_endpoints")
        return dataclasses.replace(base, s3_prefix=prefix, dsn="")
    server: MotoServer = request.getfixturevalue("moto_server")
    return Endpoints("", server.url, TEST_BUCKET, prefix, "us-east-1", **MOTO_KEYS)


def settings_for_tests(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "s3_part_size": TEST_PART_SIZE,
        "max_upload_bytes": 64 * MIB,
        "s3_timeout_seconds": TEST_TIMEOUT_SECONDS,
        "db_timeout_seconds": TEST_TIMEOUT_SECONDS,
        "collector_interval_seconds": 0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def endpoints(database_dsn: str, s3_endpoints: Endpoints) -> Endpoints:
    return dataclasses.replace(s3_endpoints, dsn=database_dsn)


MakeClient = Callable[..., Any]


@pytest.fixture
def make_client(aiohttp_client: Any, endpoints: Endpoints) -> MakeClient:
    """Start the real app on a loopback port: make_client(**settings, endpoints=...)."""

    async def make(
        endpoints_override: Endpoints | None = None, **overrides: Any
    ) -> TestClient[web.Request, web.Application]:
        app = create_app(settings_for_tests(**overrides), endpoints_override or endpoints)
        client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
        return client

    return make


@pytest.fixture
async def client(make_client: MakeClient) -> TestClient[web.Request, web.Application]:
    made: TestClient[web.Request, web.Application] = await make_client()
    return made


@pytest.fixture
async def db(endpoints: Endpoints) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to the test database, to check what the service stored."""
    connection = await asyncpg.connect(endpoints.dsn)
    await init_connection(connection)
    yield connection
    await connection.close()


@contextlib.asynccontextmanager
async def raw_s3_client(endpoints: Endpoints, config: Any = None) -> AsyncIterator[Any]:
    """A plain aiobotocore client on the endpoints' S3 (not the service's blob store),
    with botocore's defaults unless config (an AioConfig) says otherwise."""
    async with blobstore.botocore_session().create_client(
        "s3",
        endpoint_url=endpoints.s3_endpoint_url,
        region_name=endpoints.s3_region,
        aws_access_key_id=endpoints.s3_access_key_id,
        aws_secret_access_key=endpoints.s3_secret_access_key,
        config=config,
    ) as raw:
        yield raw


@pytest.fixture
async def s3(endpoints: Endpoints) -> AsyncIterator[Any]:
    """A raw S3 client on the test's bucket, to check what the service stored."""
    async with raw_s3_client(endpoints) as raw:
        yield raw


@contextlib.asynccontextmanager
async def proxied_s3(endpoints: Endpoints) -> AsyncIterator[tuple[FaultProxy, Endpoints]]:
    """The endpoints with S3 reached through a FaultProxy the test can cut."""
    target = urlsplit(str(endpoints.s3_endpoint_url))
    assert target.hostname is not None
    assert target.port is not None
    proxy = FaultProxy(target.hostname, target.port)
    await proxy.start()
    try:
        yield (
            proxy,
            dataclasses.replace(endpoints, s3_endpoint_url=f"http://127.0.0.1:{proxy.port}"),
        )
    finally:
        await proxy.close()


@contextlib.asynccontextmanager
async def proxied_postgres(endpoints: Endpoints) -> AsyncIterator[tuple[FaultProxy, Endpoints]]:
    """The endpoints with Postgres reached through a FaultProxy the test can cut."""
    target = urlsplit(endpoints.dsn)
    assert target.hostname is not None
    assert target.port is not None
    proxy = FaultProxy(target.hostname, target.port)
    await proxy.start()
    try:
        userinfo, at, _ = target.netloc.rpartition("@")
        dsn = urlunsplit(target._replace(netloc=f"{userinfo}{at}127.0.0.1:{proxy.port}"))
        yield proxy, dataclasses.replace(endpoints, dsn=dsn)
    finally:
        await proxy.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client for tests that talk to a served replica over a real socket."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as opened:
        yield opened


def new_id(label: str = "case") -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


def casevars_env(endpoints: Endpoints, **settings: str) -> dict[str, str]:
    """The environment of a `casevars` process on the given Postgres, bucket and prefix."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CASEVARS_", "DATABASE_URL", "S3_", "AWS_"))
    }
    env.update(
        {
            "DATABASE_URL": endpoints.dsn,
            "S3_ENDPOINT_URL": str(endpoints.s3_endpoint_url),
            "S3_BUCKET": endpoints.s3_bucket,
            "S3_PREFIX": endpoints.s3_prefix,
            "S3_REGION": endpoints.s3_region,
            "AWS_ACCESS_KEY_ID": str(endpoints.s3_access_key_id),
            "AWS_SECRET_ACCESS_KEY": str(endpoints.s3_secret_access_key),
            "CASEVARS_LOG_FORMAT": "json",
            **settings,
        }
    )
    return env


async def run_casevars(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run a one-shot `casevars` command to its end."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        *args,
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return subprocess.CompletedProcess(
        list(args), process.returncode, stdout.decode(), stderr.decode()
    )
