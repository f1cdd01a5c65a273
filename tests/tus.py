"""What the tus client tests share: tus-js-client installed once and run in node,
tuspy's uploader with SHA-256 checksums, replicas of `casevars serve` behind a
FaultProxy acting as their load balancer, values on disk, and reading a value back."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import json
import random
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
from tusclient.uploader.uploader import Uploader

from service.config import Endpoints
from tests.conftest import new_id
from tests.faultproxy import FaultProxy
from tests.npm import CLIENTS, installed_modules, last_json, npm_install, run_node
from tests.serving import Serve

MIB = 1024 * 1024
TUS_JS = "tus-js-client"
TUS_JS_VERSION = "4.3.1"
TUS_HEADERS = {"Tus-Resumable": "1.0.0"}
NODE_TIMEOUT_SECONDS = 120


def tus_js_modules() -> Path:
    """node_modules holding tus-js-client and its dependencies (installed once)."""
    return installed_modules(
        f"{TUS_JS}-{TUS_JS_VERSION}",
        TUS_JS,
        lambda folder: npm_install(folder, TUS_JS, f"{TUS_JS}@{TUS_JS_VERSION}"),
        f"{TUS_JS}/package.json",
    )


@dataclasses.dataclass
class JsUpload:
    """What one run of tests/clients/tus_upload.js did."""

    status: int  # 0 done, 1 failed, -9 killed by the test
    result: dict[str, Any]  # its last line; {} when killed
    stderr: str

    @property
    def exchanges(self) -> list[dict[str, Any]]:
        found = self.result.get("exchanges", [])
        assert isinstance(found, list)
        return found

    def offsets_of(self, method: str) -> list[int | None]:
        return [e["offset"] for e in self.exchanges if e["method"] == method]


async def tus_js_upload(
    modules: Path, kill: asyncio.Event | None = None, **scenario: Any
) -> JsUpload:
    """Run the tus-js-client scenario (the keys of tests/clients/tus_upload.js),
    killed (SIGKILL) once `kill` is set."""
    status, lines, err = await run_node(
        CLIENTS / "tus_upload.js",
        modules,
        TUS_JS,
        {"CASEVARS_TUS": json.dumps(scenario)},
        NODE_TIMEOUT_SECONDS,
        kill,
    )
    if status == -signal.SIGKILL:
        return JsUpload(status, {}, err)
    return JsUpload(status, last_json(lines, err), err)


class Sha256Uploader(Uploader):
    """tuspy's uploader with Upload-Checksum in sha256 (its default is sha1), and a
    record of every offset it asked the server for (HEAD), in order."""

    CHECKSUM_ALGORITHM_PAIR = ("sha256", hashlib.sha256)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.asked: list[int] = []
        super().__init__(*args, **kwargs)

    def get_offset(self) -> int:
        offset: int = super().get_offset()
        self.asked.append(offset)
        return offset


def uploads_url(base: str, case_id: str, name: str) -> str:
    """The creation URL of uploads to one variable."""
    return f"{base}/case-instance/{case_id}/variables/{name}/uploads"


def value_file(folder: Path, size: int, seed: int = 1, name: str = "value.bin") -> Path:
    """A file of `size` reproducible random bytes."""
    path = folder / name
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


@contextlib.asynccontextmanager
async def replicas(
    endpoints: Endpoints, tmp_path: Path, count: int, **settings: str
) -> AsyncIterator[list[Serve]]:
    """`count` casevars serve processes on one Postgres and one bucket, ready."""
    started = [Serve(endpoints, tmp_path, **settings) for _ in range(count)]
    try:
        for replica in started:
            await replica.ready()
        yield started
    finally:
        for replica in started:
            replica.stop()


@contextlib.asynccontextmanager
async def balancer(replica: Serve) -> AsyncIterator[FaultProxy]:
    """A FaultProxy in front of replica, the one address clients are given."""
    proxy = FaultProxy("127.0.0.1", replica.port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


async def switch(proxy: FaultProxy, to: Serve) -> None:
    """Cut every connection through the balancer and send the next ones to another
    replica: a pod gone behind a load balancer."""
    await proxy.cut()
    proxy.retarget("127.0.0.1", to.port)
    proxy.thaw()
    proxy.restore()


def base_of(port: int) -> str:
    return f"http://127.0.0.1:{port}"


async def put_case(session: aiohttp.ClientSession, base: str, case_id: str) -> None:
    async with session.put(f"{base}/case-instance/{case_id}") as response:
        assert response.status in {200, 201, 204}, await response.text()


async def new_case(session: aiohttp.ClientSession, base: str) -> str:
    """A new open case instance's id."""
    case_id = new_id("tus")
    await put_case(session, base, case_id)
    return case_id


async def upload_state(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, str]]:
    """HEAD of an upload: its status and headers."""
    async with session.head(url, headers=TUS_HEADERS) as response:
        return response.status, dict(response.headers)


async def assert_value(
    session: aiohttp.ClientSession,
    base: str,
    case_id: str,
    name: str,
    expected: bytes,
    value_info: dict[str, str] | None = None,
) -> None:
    """The variable holds expected, byte for byte, with ETag and Repr-Digest = its
    SHA-256, and valueInfo has value_info's entries."""
    variable = f"{base}/case-instance/{case_id}/variables/{name}"
    async with session.get(variable + "/data") as response:
        body = await response.read()
        assert response.status == 200, body[:300]
        headers = response.headers
    assert len(body) == len(expected)
    assert body == expected
    digest = hashlib.sha256(expected)
    assert headers["ETag"] == f'"{digest.hexdigest()}"'
    assert headers["Repr-Digest"] == f"sha-256=:{base64.b64encode(digest.digest()).decode()}:"
    if value_info is not None:
        async with session.get(variable) as response:
            described = await response.json()
            assert response.status == 200, described
        assert described["valueInfo"].items() >= value_info.items(), described


def access_log(replica: Serve) -> list[dict[str, Any]]:
    """The replica's access-log lines (its JSON log), in order."""
    lines = []
    for line in replica.log.read_text().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == "request":
                lines.append(record)
    return lines


def answered(replica: Serve, method: str) -> list[int]:
    """The statuses the replica answered requests of this method with, in order."""
    return [line["status"] for line in access_log(replica) if line.get("method") == method]


async def wait_until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.1)
