"""Issue 5, "nothing lost, nothing orphaned": faults injected at real boundaries while
values move. The service is killed, S3 is stopped, frozen or cut, Postgres is cut,
clients go away, uploads race each other and two replicas' collectors; every test then
runs the collector with no grace and no pending timeout, and `casevars check` must find
Postgres and the bucket consistent, with no pending or garbage blob and no open upload
left, and each variable holding exactly the value it should, through GET .../data and
by the SHA-256 stored in Postgres.

Every server is real: `casevars serve` as a process or the app on a loopback port,
Postgres, moto's S3 server and SeaweedFS; cuts go through the loopback TCP proxy of
tests/faultproxy.py. Each test has a fresh database and its own S3 prefix, so the
collector and the check see only what the test made."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import io
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest

from service.config import Endpoints, Settings
from service.storage import blobstore, check, collector
from tests.conftest import (
    TEST_TIMEOUT_SECONDS,
    MotoServer,
    free_port,
    new_id,
    proxied_postgres,
    proxied_s3,
    raw_s3_client,
    run_casevars,
)
from tests.conftest import casevars_env as shared_casevars_env
from tests.forms import (
    BOUNDARY,
    FORM,
    blob_states,
    body,
    data_url,
    open_uploads,
    part,
    pattern,
    s3_keys,
    variable_row,
)

pytestmark = pytest.mark.timeout(180)

MIB = 1024 * 1024
GIB = 1024 * MIB
PREVIOUS = pattern(300_000, seed=99)
# What a `data` part looks like around its content, for bodies written piece by piece.
DATA_START = body(part("data", b"", "application/octet-stream"), close=False)[:-2]
FORM_END = f"\r\n--{BOUNDARY}--\r\n".encode()


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# --- where things run ------------------------------------------------------------------


@pytest.fixture
def endpoints(fresh_database_dsn: str, s3_endpoints: Endpoints) -> Endpoints:
    """Overrides conftest's: a fresh database of this test's own (the collector works on
    every blob row of its database) and a fresh S3 prefix; `db`, `s3` and `make_client`
    follow it."""
    return dataclasses.replace(s3_endpoints, dsn=fresh_database_dsn)


def casevars_env(endpoints: Endpoints, **settings: str) -> dict[str, str]:
    """The environment of a `casevars` process on the test's Postgres, bucket and prefix."""
    defaults = {
        "CASEVARS_S3_PART_SIZE": "5MiB",
        "CASEVARS_S3_TIMEOUT_SECONDS": str(TEST_TIMEOUT_SECONDS),
        "CASEVARS_DB_TIMEOUT_SECONDS": str(TEST_TIMEOUT_SECONDS),
        "CASEVARS_MAX_UPLOAD_BYTES": "2GiB",
        "CASEVARS_COLLECTOR_INTERVAL_SECONDS": "0",
    }
    return shared_casevars_env(endpoints, **{**defaults, **settings})


casevars = run_casevars


class ServeProcess:
    """`casevars serve` as a child process on the test's Postgres and bucket."""

    def __init__(self, endpoints: Endpoints, log: Path, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = casevars_env(endpoints, CASEVARS_PORT=str(self.port), **settings)
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "service", "serve"], env=env, stdout=out, stderr=out
            )

    async def ready(self) -> None:
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    pytest.fail(f"serve exited: {self.log.read_text()[-3000:]}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{self.url}/health/ready") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.1)
        pytest.fail(f"serve not ready: {self.log.read_text()[-3000:]}")

    async def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            assert time.monotonic() < deadline, "serve did not exit"
            await asyncio.sleep(0.05)
        return self.process.returncode

    def log_events(self, event: str) -> list[dict[str, Any]]:
        found = []
        for line in self.log.read_bytes().splitlines():
            with contextlib.suppress(orjson.JSONDecodeError):
                record = orjson.loads(line)
                if isinstance(record, dict) and record.get("event") == event:
                    found.append(record)
        return found


@pytest.fixture
async def serve(endpoints, tmp_path) -> AsyncIterator[Callable[..., Awaitable[ServeProcess]]]:
    """serve(**settings): a ready `casevars serve`; whatever still runs is killed after."""
    started: list[ServeProcess] = []

    async def start(**settings: str) -> ServeProcess:
        process = ServeProcess(endpoints, tmp_path / f"serve-{len(started)}.log", **settings)
        started.append(process)
        await process.ready()
        return process

    yield start
    for process in started:
        if process.process.poll() is None:
            process.process.kill()
        process.process.wait(10)


@pytest.fixture
async def own_moto(endpoints) -> AsyncIterator[tuple[MotoServer, Endpoints]]:
    """A moto server of this test's own, to stop and start (the shared one serves
    other tests), with the test bucket made."""
    server = MotoServer()
    server.start()
    own = dataclasses.replace(endpoints, s3_endpoint_url=server.url)
    await make_bucket(own)
    yield server, own
    server.stop()


async def make_bucket(endpoints: Endpoints) -> None:
    async with raw_s3_client(endpoints) as client:
        await client.create_bucket(Bucket=endpoints.s3_bucket)


# --- HTTP over a socket the test controls ----------------------------------------------


class RawUpload:
    """POST .../data with a `data` part of `size` bytes, written piece by piece over a
    socket of its own, so the test decides when the body stops."""

    def __init__(self, port: int, case_id: str, name: str, size: int) -> None:
        self._port = port
        self._head = (
            f"POST {data_url(case_id, name)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: {FORM}\r\n"
            f"Content-Length: {len(DATA_START) + size + len(FORM_END)}\r\n\r\n"
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self._port)
        await self.send(self._head + DATA_START)

    async def send(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)
        await self.writer.drain()

    async def finish(self, rest: bytes = b"") -> tuple[int, bytes]:
        """Send the rest of the content and the end of the form; the response."""
        assert self.reader is not None
        await self.send(rest + FORM_END)
        try:
            return await read_response(self.reader)
        finally:
            self.close()

    def cut(self) -> None:
        """Drop the connection mid-body, with a reset, as a client that dies does."""
        assert self.writer is not None
        self.writer.transport.abort()
        self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return int(head.split()[1]), await reader.readexactly(length)


async def upload_form(http: Any, case_id: str, name: str, content: bytes) -> tuple[int, str]:
    """POST .../data with the whole form at once; (status, response text)."""
    response = await http.post(
        data_url(case_id, name),
        data=io.BytesIO(body(part("data", content, "application/octet-stream"))),
        headers={"Content-Type": FORM},
    )
    return int(response.status), await response.text()


async def create_case_with(http: Any, case_id: str, **values: bytes) -> None:
    response = await http.put(f"/case-instance/{case_id}")
    assert response.status == 201, await response.text()
    for name, content in values.items():
        status, answer = await upload_form(http, case_id, name, content)
        assert status == 204, answer


async def error_of(response: Any) -> dict[str, Any]:
    """The JSON error body; every error has Camunda's shape."""
    assert response.headers["Content-Type"].startswith("application/json")
    error: dict[str, Any] = await response.json()
    assert set(error) == {"type", "message", "code"}, error
    return error


# --- what must hold at the end ------------------------------------------------------------


async def assert_holds(http: Any, db: Any, case_id: str, name: str, expected: bytes) -> None:
    """The variable holds exactly `expected`, byte for byte through GET .../data, and by
    its size and SHA-256 in Postgres, on a live blob."""
    response = await http.get(data_url(case_id, name))
    content = await response.read()
    assert response.status == 200, content[:500]
    assert len(content) == len(expected)
    assert sha256(content) == sha256(expected), "the bytes served are not the value"
    row = await variable_row(db, case_id, name)
    assert row["type"] == "Bytes"
    assert row["state"] == "live"
    assert row["size"] == len(expected)
    assert bytes(row["sha256"]) == sha256(expected)


def assert_clean(report: dict[str, Any]) -> dict[str, Any]:
    """A check report after a collection with no grace and no pending timeout: no
    inconsistency, and nothing but live blobs, each with its object."""
    assert report["consistent"], report
    assert report["pending"] == 0, report
    assert report["garbage"] == 0, report
    assert report["uploads"] == 0, report
    assert report["objects"] == report["live"], report
    return report


async def collect_and_check(endpoints: Endpoints) -> dict[str, Any]:
    """What `casevars collect --grace 0 --pending-timeout 0` and `casevars check` do,
    called in this process (a process of their own adds nothing here)."""
    settings = Settings(s3_timeout_seconds=TEST_TIMEOUT_SECONDS)
    async with blobstore.open_blob_store(settings, endpoints) as store:
        await collector.collect_once(
            endpoints.dsn,
            store,
            prefix=endpoints.s3_prefix,
            pending_timeout_seconds=0,
            grace_seconds=0,
        )
        report = await check.check(
            endpoints.dsn, store, prefix=endpoints.s3_prefix, pending_timeout_seconds=0
        )
    return assert_clean(report.as_dict())


async def collect_and_check_commands(endpoints: Endpoints) -> tuple[str, dict[str, Any]]:
    """`casevars collect --grace 0 --pending-timeout 0`, then `casevars check --json`,
    as processes; (collect's report line, the check's report)."""
    env = casevars_env(endpoints)
    collected = await casevars(env, "collect", "--grace", "0", "--pending-timeout", "0")
    assert collected.returncode == 0, collected.stderr
    checked = await casevars(env, "check", "--json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return collected.stdout, assert_clean(orjson.loads(checked.stdout))


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def settled(db: Any, s3: Any, endpoints: Endpoints) -> bool:
    """No upload still running or left half done: no pending row, no open upload."""
    states = await blob_states(db, endpoints.s3_prefix)
    if "pending" in states.values():
        return False
    return not await open_uploads(s3, endpoints.s3_bucket, endpoints.s3_prefix)


async def uploaded_parts(s3: Any, endpoints: Endpoints) -> int:
    """Parts S3 holds for the open multipart uploads under the prefix."""
    response = await s3.list_multipart_uploads(
        Bucket=endpoints.s3_bucket, Prefix=endpoints.s3_prefix
    )
    parts = 0
    for upload in response.get("Uploads", []):
        listed = await s3.list_parts(
            Bucket=endpoints.s3_bucket, Key=upload["Key"], UploadId=upload["UploadId"]
        )
        parts += len(listed.get("Parts", []))
    return parts


# --- 1. the service killed mid-upload ------------------------------------------------------

KILL_AFTER_MIB = 512


# SeaweedFS: moto keeps whole objects (and parts) in memory.
@pytest.mark.parametrize("s3_backend", ["seaweedfs"])
async def test_service_killed_mid_upload_of_1_gib_keeps_the_previous_value(
    s3_backend, serve, endpoints, db, s3
):
    first = await serve(CASEVARS_S3_PART_SIZE="8MiB")
    case_id = new_id()
    async with aiohttp.ClientSession(first.url) as http:
        await create_case_with(http, case_id, v=PREVIOUS)

    upload = RawUpload(first.port, case_id, "v", GIB)
    await upload.open()
    block = os.urandom(MIB)  # 1 GiB made cheaply: one random MiB, repeated
    for _ in range(KILL_AFTER_MIB):
        await upload.send(block)
    await wait_for(lambda: _has_parts(s3, endpoints, 20))
    assert "pending" in (await blob_states(db, endpoints.s3_prefix)).values()

    first.process.kill()  # SIGKILL: no handler runs, nothing is cleaned up
    assert await first.stop() == -signal.SIGKILL
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await _send_to_the_end(upload, block)
    upload.close()

    # What the crash left: the previous value, a pending blob and an open upload.
    states = await blob_states(db, endpoints.s3_prefix)
    assert sorted(states.values()) == ["live", "pending"]
    assert len(await open_uploads(s3, endpoints.s3_bucket, endpoints.s3_prefix)) == 1

    second = await serve(CASEVARS_S3_PART_SIZE="8MiB")
    async with aiohttp.ClientSession(second.url) as http:
        await assert_holds(http, db, case_id, "v", PREVIOUS)
        collected, report = await collect_and_check_commands(endpoints)
        assert "deleted 0 garbage and 1 stale pending blobs, aborted 1" in collected
        assert report["live"] == 1
        await assert_holds(http, db, case_id, "v", PREVIOUS)


async def _send_to_the_end(upload: RawUpload, block: bytes) -> None:
    """Go on sending, then read the response: the connection must have dropped."""
    for _ in range(64):
        await upload.send(block)
    assert upload.reader is not None
    await read_response(upload.reader)


async def _has_parts(s3: Any, endpoints: Endpoints, parts: int) -> bool:
    return await uploaded_parts(s3, endpoints) >= parts


# --- 2. S3 stopped or cut mid-upload ---------------------------------------------------------


async def _body_stopping_s3(stop: Callable[[], Awaitable[None]]) -> AsyncIterator[bytes]:
    """A 40 MiB `data` part; S3 goes away after 12 MiB (two parts uploaded, more coming)."""
    yield DATA_START
    block = pattern(MIB, seed=5)
    for index in range(40):
        if index == 12:
            await stop()
        yield block
    yield FORM_END


async def _assert_s3_error_in_time(response: Any, started: float) -> None:
    elapsed = time.monotonic() - started
    assert response.status == 503, await response.text()
    error = await error_of(response)
    assert error["type"] == "RestException"
    assert "S3" in error["message"]
    assert error["code"] is None
    # CASEVARS_S3_TIMEOUT_SECONDS (2 s) per attempt, three attempts with backoff, for
    # the part that failed and for the abort that follows (about 20 s when S3 hangs).
    assert elapsed < 45


async def test_s3_server_stopped_mid_upload_is_503_and_keeps_the_previous_value(
    make_client, endpoints, db, own_moto
):
    server, own = own_moto
    client = await make_client(own, s3_timeout_seconds=2)
    case_id = new_id()
    await create_case_with(client, case_id, v=PREVIOUS)

    async def stop_s3() -> None:
        await asyncio.to_thread(server.stop)

    started = time.monotonic()
    response = await client.post(
        data_url(case_id, "v"), data=_body_stopping_s3(stop_s3), headers={"Content-Type": FORM}
    )
    await _assert_s3_error_in_time(response, started)
    # While S3 is down: Postgres still points at the previous value, the failed upload
    # is garbage, and a download is a clean 503 too.
    row = await _previous_and_garbage(db, own, case_id)
    download = await client.get(data_url(case_id, "v"))
    assert download.status == 503
    assert (await error_of(download))["type"] == "RestException"

    await asyncio.to_thread(server.start)
    # moto keeps everything in memory, so its restart lost the bucket and the previous
    # value's object; a real S3 keeps both. Put back what it would have kept.
    await make_bucket(own)
    async with raw_s3_client(own) as s3:
        await s3.put_object(Bucket=own.s3_bucket, Key=row["blob_key"], Body=PREVIOUS)
        await wait_for(lambda: settled(db, s3, own))
    await assert_holds(client, db, case_id, "v", PREVIOUS)
    await collect_and_check(own)
    await assert_holds(client, db, case_id, "v", PREVIOUS)


async def test_s3_server_frozen_mid_upload_is_503_in_bounded_time(
    make_client, endpoints, db, own_moto
):
    """S3 that keeps its connections open and never answers (SIGSTOP): no request may
    wait for it longer than CASEVARS_S3_TIMEOUT_SECONDS at a time."""
    server, own = own_moto
    client = await make_client(own, s3_timeout_seconds=2)
    case_id = new_id()
    await create_case_with(client, case_id, v=PREVIOUS)
    assert server.process is not None
    pid = server.process.pid

    async def freeze_s3() -> None:
        os.kill(pid, signal.SIGSTOP)

    started = time.monotonic()
    try:
        try:
            async with asyncio.timeout(90):
                response = await client.post(
                    data_url(case_id, "v"),
                    data=_body_stopping_s3(freeze_s3),
                    headers={"Content-Type": FORM},
                )
        except TimeoutError:
            pytest.fail("no answer in 90 s: the upload hangs on an S3 that does not answer")
        await _assert_s3_error_in_time(response, started)
        await _previous_and_garbage(db, own, case_id)
    finally:
        os.kill(pid, signal.SIGCONT)
    async with raw_s3_client(own) as s3:
        await wait_for(lambda: settled(db, s3, own), timeout=30)
    await assert_holds(client, db, case_id, "v", PREVIOUS)
    await collect_and_check(own)
    await assert_holds(client, db, case_id, "v", PREVIOUS)


async def _previous_and_garbage(db: Any, endpoints: Endpoints, case_id: str) -> Any:
    """After a failed upload: the variable still on its previous blob, the new one
    garbage; the variable's row."""
    row = await variable_row(db, case_id, "v")
    assert bytes(row["sha256"]) == sha256(PREVIOUS)
    states = await blob_states(db, endpoints.s3_prefix)
    assert states.pop(row["blob_key"]) == "live"
    assert list(states.values()) == ["garbage"]
    return row


async def test_s3_cut_mid_upload_is_503_and_keeps_the_previous_value(
    s3_backend, make_client, endpoints, db, s3
):
    async with proxied_s3(endpoints) as (proxy, proxied):
        client = await make_client(proxied, s3_timeout_seconds=2)
        case_id = new_id()
        await create_case_with(client, case_id, v=PREVIOUS)

        started = time.monotonic()
        response = await client.post(
            data_url(case_id, "v"),
            data=_body_stopping_s3(proxy.cut),
            headers={"Content-Type": FORM},
        )
        await _assert_s3_error_in_time(response, started)
        proxy.restore()
        # The abort that failed while S3 was cut is retried in the background.
        await wait_for(lambda: settled(db, s3, endpoints), timeout=30)
        await assert_holds(client, db, case_id, "v", PREVIOUS)
        await collect_and_check(endpoints)
        await assert_holds(client, db, case_id, "v", PREVIOUS)


# --- 3. Postgres unreachable when the upload finishes ------------------------------------------


@pytest.mark.parametrize("size", [MIB, 12 * MIB], ids=["one-part", "multipart"])
async def test_postgres_cut_when_the_upload_finishes_is_503_and_the_object_collected(
    make_client, endpoints, db, s3, size
):
    async with proxied_postgres(endpoints) as (proxy, proxied):
        client = await make_client(proxied, db_timeout_seconds=2)
        case_id = new_id()
        await create_case_with(client, case_id, v=PREVIOUS)
        content = pattern(size, seed=3)
        upload = RawUpload(client.port, case_id, "v", size)
        await upload.open()
        await upload.send(content[:-1000])
        if size > 5 * MIB:  # the parts before the last are in S3
            await wait_for(lambda: _has_parts(s3, endpoints, 2))
        else:
            await wait_for(lambda: _has_state(db, endpoints, "pending"))

        await proxy.cut()
        started = time.monotonic()
        status, answer = await upload.finish(content[-1000:])
        assert status == 503, answer
        error = orjson.loads(answer)
        assert error["type"] == "RestException"
        assert "Postgres" in error["message"]
        assert time.monotonic() - started < 20

        # S3 has the whole new object; Postgres still names it (pending) and still
        # points the variable at the previous value.
        states = await blob_states(db, endpoints.s3_prefix)
        (new_key,) = (key for key, state in states.items() if state == "pending")
        head = await s3.head_object(Bucket=endpoints.s3_bucket, Key=new_key)
        assert head["ContentLength"] == size
        proxy.restore()
        await assert_holds(client, db, case_id, "v", PREVIOUS)

        await collect_and_check(endpoints)
        assert new_key not in await s3_keys(s3, endpoints.s3_bucket, endpoints.s3_prefix)
        await assert_holds(client, db, case_id, "v", PREVIOUS)


async def _has_state(db: Any, endpoints: Endpoints, state: str) -> bool:
    return state in (await blob_states(db, endpoints.s3_prefix)).values()


# --- 4. the client gone mid-upload -------------------------------------------------------------


@pytest.mark.parametrize("sent_mib", [1, 12], ids=["before-any-part", "after-two-parts"])
async def test_client_gone_mid_upload_keeps_the_previous_value(
    s3_backend, make_client, endpoints, db, s3, sent_mib
):
    client = await make_client()
    case_id = new_id()
    await create_case_with(client, case_id, v=PREVIOUS)
    upload = RawUpload(client.port, case_id, "v", 100 * MIB)
    await upload.open()
    for _ in range(sent_mib):
        await upload.send(pattern(MIB, seed=4))
    await wait_for(lambda: _has_state(db, endpoints, "pending"))
    if sent_mib > 10:
        await wait_for(lambda: _has_parts(s3, endpoints, 2))
    upload.cut()

    await wait_for(lambda: settled(db, s3, endpoints))
    assert sorted((await blob_states(db, endpoints.s3_prefix)).values()) == ["garbage", "live"]
    await assert_holds(client, db, case_id, "v", PREVIOUS)
    await collect_and_check(endpoints)
    await assert_holds(client, db, case_id, "v", PREVIOUS)


# --- 5. many uploads at once, some cancelled -----------------------------------------------------

CLIENTS = 10
UPLOADS_PER_CLIENT = 5


@dataclasses.dataclass(frozen=True)
class Written:
    variable: tuple[str, str]
    sha256: bytes
    status: int | None  # None: cancelled half way


async def test_concurrent_uploads_some_cancelled_leave_whole_values_only(
    s3_backend, serve, endpoints, db, s3
):
    service = await serve()
    cases = [new_id(), new_id()]
    variables = [
        (cases[0], "a"),
        (cases[0], "b"),
        (cases[0], "c"),
        (cases[1], "a"),
        (cases[1], "b"),
    ]
    async with aiohttp.ClientSession(service.url) as http:
        for case_id in cases:
            await create_case_with(http, case_id)

    async def one_upload(number: int) -> Written:
        case_id, name = variables[number % len(variables)]
        # From 200 kB (one PutObject) to 11 MiB (a multipart upload of three parts).
        content = pattern(200_000 + number * 1_234_567 % (11 * MIB), seed=number)
        upload = RawUpload(service.port, case_id, name, len(content))
        await upload.open()
        if number % 4 == 3:
            await upload.send(content[: len(content) // 2])
            upload.cut()
            return Written((case_id, name), sha256(content), None)
        await upload.send(content)
        status, answer = await upload.finish()
        assert status == 204, answer
        return Written((case_id, name), sha256(content), status)

    async def one_client(index: int) -> list[Written]:
        numbers = range(index * UPLOADS_PER_CLIENT, (index + 1) * UPLOADS_PER_CLIENT)
        return [await one_upload(number) for number in numbers]

    written = [w for made in await asyncio.gather(*map(one_client, range(CLIENTS))) for w in made]
    assert len(written) == CLIENTS * UPLOADS_PER_CLIENT
    await wait_for(lambda: settled(db, s3, endpoints))

    async with aiohttp.ClientSession(service.url) as http:
        for variable in variables:
            stored = {w.sha256 for w in written if w.variable == variable and w.status == 204}
            response = await http.get(data_url(*variable))
            content = await response.read()
            assert response.status == 200
            assert sha256(content) in stored, f"{variable} holds no value written to it"
            row = await variable_row(db, *variable)
            assert (row["size"], bytes(row["sha256"])) == (len(content), sha256(content))
    report = await collect_and_check(endpoints)
    assert report["live"] == len(variables)


# --- 6. two replicas, their collectors racing uploads and deletes -------------------------------

ROUNDS = 5
LEDGER = """
CREATE TABLE test_blob_ledger (key text NOT NULL, event text NOT NULL, state text NOT NULL);
CREATE FUNCTION test_blob_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO test_blob_ledger VALUES (NEW.key, 'created', NEW.state);
    ELSE
        INSERT INTO test_blob_ledger VALUES (OLD.key, 'deleted', OLD.state);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER test_blob_ledger AFTER INSERT OR DELETE ON blob
    FOR EACH ROW EXECUTE FUNCTION test_blob_ledger();
"""


class Replicas:
    """Two `serve` replicas on one Postgres and one bucket, and what each variable may
    hold: every value ever written to it."""

    def __init__(self, sessions: list[aiohttp.ClientSession], pool: asyncpg.Pool) -> None:
        self.sessions = sessions
        self.pool = pool
        self.written: dict[tuple[str, str], set[bytes]] = {}
        self.rng = random.Random(5)
        self.downloads = 0

    def any(self) -> aiohttp.ClientSession:
        return self.rng.choice(self.sessions)

    async def upload(self, variable: tuple[str, str], size: int, seed: int) -> None:
        content = pattern(size, seed=seed)
        self.written.setdefault(variable, set()).add(sha256(content))
        status, answer = await upload_form(self.any(), *variable, content)
        assert status == 204, answer

    async def put_base64(self, variable: tuple[str, str], seed: int) -> None:
        content = pattern(50_000, seed=seed)
        self.written.setdefault(variable, set()).add(sha256(content))
        case_id, name = variable
        response = await self.any().put(
            f"/case-instance/{case_id}/variables/{name}",
            json={"type": "Bytes", "value": base64.b64encode(content).decode()},
        )
        assert response.status == 204, await response.text()

    async def delete(self, variable: tuple[str, str]) -> None:
        case_id, name = variable
        response = await self.any().delete(f"/case-instance/{case_id}/variables/{name}")
        assert response.status == 204, await response.text()

    async def verify(self, variable: tuple[str, str], session: aiohttp.ClientSession) -> None:
        """The variable is absent, or whole: its object there, its bytes one of the
        values written, matching Postgres's SHA-256."""
        async with self.pool.acquire() as connection:
            row = await variable_row(connection, *variable)
        response = await session.get(data_url(*variable))
        content = await response.read()
        self.downloads += 1
        if row is None:
            assert response.status == 404, content[:500]
            return
        assert response.status == 200, content[:500]
        assert sha256(content) in self.written[variable]


# SeaweedFS: moto dates every multipart upload 2010-11-10, so the replicas' collectors
# would take each upload in flight for a stale one and abort it.
@pytest.mark.parametrize("s3_backend", ["seaweedfs"])
async def test_two_replicas_collect_while_uploads_and_deletes_race(
    s3_backend, serve, endpoints, db, s3
):
    await db.execute(LEDGER)
    collecting = {
        "CASEVARS_COLLECTOR_INTERVAL_SECONDS": "0.2",
        "CASEVARS_GC_GRACE_SECONDS": "0",
        "CASEVARS_PENDING_TIMEOUT_SECONDS": "600",
    }
    replicas = [await serve(**collecting), await serve(**collecting)]
    cases = [new_id(), new_id()]
    racing = [(case_id, name) for case_id in cases for name in ("x", "y", "z")]
    steady = [(cases[0], "steady-small"), (cases[1], "steady-big")]
    async with (
        aiohttp.ClientSession(replicas[0].url) as first,
        aiohttp.ClientSession(replicas[1].url) as second,
        asyncpg.create_pool(endpoints.dsn, min_size=1, max_size=2) as pool,
    ):
        world = Replicas([first, second], pool)
        for case_id in cases:
            response = await first.put(f"/case-instance/{case_id}")
            assert response.status == 201
        await world.upload(steady[0], 70_000, seed=1)
        await world.upload(steady[1], 7 * MIB, seed=2)

        stop = asyncio.Event()

        async def download_steady_values() -> None:
            # All along, values nobody writes are downloaded through both replicas
            # while the collectors delete everything around them.
            while not stop.is_set():
                for variable in steady:
                    for session in world.sessions:
                        await world.verify(variable, session)

        downloading = asyncio.create_task(download_steady_values())
        try:
            await _race_rounds(world, racing, steady)
        finally:
            stop.set()
            await downloading
        # One more round of downloads once the collectors have caught up.
        await asyncio.sleep(0.5)
        for variable in racing + steady:
            await world.verify(variable, first)

    for replica in replicas:
        assert await replica.stop() == 0
    # Every upload has ended, so from here on only garbage may be collected.
    assert "pending" not in (await blob_states(db, endpoints.s3_prefix)).values()
    reported = sum(
        event["garbage_deleted"] + event["pending_deleted"]
        for replica in replicas
        for event in replica.log_events("collector.done")
    )
    collected, report = await collect_and_check_commands(endpoints)
    match = re.search(r"deleted (\d+) garbage and (\d+) stale pending", collected)
    assert match is not None, collected
    reported += int(match[1]) + int(match[2])

    ledger = await db.fetch("SELECT key, event, state FROM test_blob_ledger")
    created = [row["key"] for row in ledger if row["event"] == "created"]
    deleted = [row for row in ledger if row["event"] == "deleted"]
    remaining = set(await blob_states(db, endpoints.s3_prefix))
    # Each blob was made once and is either still there or was deleted exactly once,
    # never while live, and the collectors together report exactly those deletions.
    assert len(created) == len(set(created))
    assert len(deleted) == len({row["key"] for row in deleted})
    assert {row["key"] for row in deleted} | remaining == set(created)
    assert not {row["key"] for row in deleted} & remaining
    assert {row["state"] for row in deleted} <= {"garbage"}, "a live or pending blob collected"
    assert reported == len(deleted)
    assert reported > 0
    assert world.downloads > 0
    # The collectors ran inside the replicas, not only in the command at the end.
    assert any(replica.log_events("collector.done") for replica in replicas)
    assert report["live"] == len(remaining)


async def _race_rounds(
    world: Replicas, racing: list[tuple[str, str]], steady: list[tuple[str, str]]
) -> None:
    """Each round sends two uploads, a base64 PUT and a DELETE of every racing variable
    at once, in a random order, to random replicas; then every variable is downloaded
    through both replicas."""
    seed = 100
    for _ in range(ROUNDS):
        operations: list[Awaitable[None]] = []
        for variable in racing:
            seed += 3
            sizes = world.rng.choice([(60_000, 6 * MIB), (2 * MIB, 30_000), (5 * MIB + 1, 1)])
            operations += [
                world.upload(variable, sizes[0], seed),
                world.upload(variable, sizes[1], seed + 1),
                world.put_base64(variable, seed + 2),
                world.delete(variable),
            ]
        world.rng.shuffle(operations)
        await asyncio.gather(*operations)
        for variable in racing + steady:
            for session in world.sessions:
                await world.verify(variable, session)


# --- 7. a case instance with 100 binary variables deleted --------------------------------------


async def test_deleting_a_case_instance_with_100_binary_variables_leaves_none_of_their_objects(
    s3_backend, make_client, endpoints, db, s3
):
    client = await make_client()
    case_id, bystander = new_id(), new_id()
    await create_case_with(client, bystander, kept=PREVIOUS)
    await create_case_with(client, case_id)
    slots = asyncio.Semaphore(10)

    async def put(index: int) -> None:
        # Half uploaded as multipart forms, half as base64 in a JSON PUT: both ways
        # store the content in S3.
        async with slots:
            content = pattern(1000 + index * 997, seed=index)
            if index % 2:
                status, answer = await upload_form(client, case_id, f"v{index}", content)
            else:
                response = await client.put(
                    f"/case-instance/{case_id}/variables/v{index}",
                    json={"type": "Bytes", "value": base64.b64encode(content).decode()},
                )
                status, answer = response.status, await response.text()
            assert status == 204, answer

    await asyncio.gather(*map(put, range(100)))
    theirs = {
        row["blob_key"]
        for row in await db.fetch(
            "SELECT blob_key FROM variable WHERE case_instance_id = $1", case_id
        )
    }
    assert len(theirs) == 100

    response = await client.delete(f"/case-instance/{case_id}")
    assert response.status == 204
    states = await blob_states(db, endpoints.s3_prefix)
    assert {states[key] for key in theirs} == {"garbage"}
    # Kept for the grace period, for downloads already running.
    assert theirs <= await s3_keys(s3, endpoints.s3_bucket, endpoints.s3_prefix)

    report = await collect_and_check(endpoints)
    left = await s3_keys(s3, endpoints.s3_bucket, endpoints.s3_prefix)
    assert not left & theirs
    assert report["live"] == 1
    await assert_holds(client, db, bystander, "kept", PREVIOUS)


# --- 8. a download running while its variable is replaced ---------------------------------------


async def test_download_in_progress_finishes_with_the_old_bytes_when_the_value_is_replaced(
    s3_backend, make_client, endpoints, db, s3
):
    client = await make_client()
    case_id = new_id()
    old, new = pattern(24 * MIB, seed=8), pattern(7 * MIB, seed=9)
    await create_case_with(client, case_id, v=old)

    download = await client.get(data_url(case_id, "v"))
    assert download.status == 200
    assert int(download.headers["Content-Length"]) == len(old)
    head = await download.content.readexactly(2 * MIB)

    assert (await upload_form(client, case_id, "v", new))[0] == 204
    # A collector pass honouring the grace period leaves the old object alone.
    settings = Settings(s3_timeout_seconds=TEST_TIMEOUT_SECONDS)
    async with blobstore.open_blob_store(settings, endpoints) as store:
        result = await collector.collect_once(
            endpoints.dsn, store, prefix=endpoints.s3_prefix, pending_timeout_seconds=3600
        )
    assert result.garbage_deleted == 0

    rest = await download.read()
    assert len(head + rest) == len(old)
    assert sha256(head + rest) == sha256(old), "the download did not finish with the old bytes"
    await assert_holds(client, db, case_id, "v", new)
    await collect_and_check(endpoints)
    await assert_holds(client, db, case_id, "v", new)
