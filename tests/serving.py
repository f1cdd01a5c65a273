"""`casevars serve` as a real process for tests, and raw HTTP/1.1 over sockets (asyncio
and blocking), so that tests control every byte a client sends and see every byte of
the answer."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from service.config import Endpoints
from tests.conftest import casevars_env, free_port


class Serve:
    """A `casevars serve` process on the given Postgres and S3; its output in self.log."""

    def __init__(self, endpoints: Endpoints, tmp_path: Path, **settings: str) -> None:
        self.port = free_port()
        defaults = {
            "CASEVARS_PORT": str(self.port),
            "CASEVARS_COLLECTOR_INTERVAL_SECONDS": "0",
            "CASEVARS_S3_PART_SIZE": "5MiB",
            "CASEVARS_MAX_UPLOAD_BYTES": "1GiB",
        }
        env = casevars_env(endpoints, **(defaults | settings))
        self.log = tmp_path / f"serve-{self.port}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "service", "serve"], env=env, stdout=log, stderr=log
            )

    async def ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(self.log.read_text())
            with contextlib.suppress(OSError):
                status, _ = await self.request(b"GET /health/ready HTTP/1.1\r\nHost: x\r\n\r\n")
                if status == 200:
                    return
            await asyncio.sleep(0.1)
        pytest.fail("not ready: " + self.log.read_text())

    def wait_ready(self) -> None:
        """ready(), for tests without a loop of their own."""
        asyncio.run(self.ready())

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(raw)
            await writer.drain()
            return await read_response(reader)
        finally:
            writer.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@contextlib.asynccontextmanager
async def serving(endpoints: Endpoints, tmp_path: Path, **settings: str) -> AsyncIterator[Serve]:
    """A `casevars serve` that answers /health/ready, killed on the way out."""
    started = Serve(endpoints, tmp_path, **settings)
    try:
        await started.ready()
        yield started
    finally:
        started.stop()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split()[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return status, await reader.readexactly(length)


@dataclasses.dataclass
class Answer:
    status: int
    headers: dict[str, str]  # names lower-case; the last of a repeated name
    body: bytes


class CutResponse(AssertionError):
    """The connection ended before the body its headers announced."""


def exchange(port: int, raw: bytes, *, head: bool = False, timeout: float = 10.0) -> Answer:
    """Send raw (a whole request) and read its one answer: to its Content-Length, or to
    the end of the connection without one. (A connection whose request was refused
    before its body ended stays open a while after the answer: aiohttp reads on and
    discards what still comes, so that the client sees the answer rather than a reset.)
    CutResponse when the body is shorter than its Content-Length; TimeoutError
    (socket.timeout) when nothing comes for timeout seconds."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(raw)
        received = bytearray()
        while not _complete(bytes(received), head=head):
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    return parse_answer(bytes(received), head=head)


def _complete(received: bytes, *, head: bool) -> bool:
    if b"\r\n\r\n" not in received:
        return False
    answer, missing = _parse(received, head=head)
    return missing == 0 and (
        head or answer.status in {204, 304} or "content-length" in answer.headers
    )


def parse_answer(received: bytes, *, head: bool = False) -> Answer:
    if b"\r\n\r\n" not in received:
        raise CutResponse(f"no complete head in {received[:200]!r}")
    answer, missing = _parse(received, head=head)
    if missing:
        raise CutResponse(f"{missing} bytes missing from a {answer.status} body")
    return answer


def _parse(received: bytes, *, head: bool) -> tuple[Answer, int]:
    """The answer in received, and how many bytes its Content-Length still wants."""
    head_bytes, _, rest = received.partition(b"\r\n\r\n")
    status_line, *lines = head_bytes.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    status = int(status_line.split()[1])
    if head or status in {204, 304} or 100 <= status < 200:
        return Answer(status, headers, b""), 0
    if "content-length" in headers:
        length = int(headers["content-length"])
        return Answer(status, headers, rest[:length]), max(0, length - len(rest))
    return Answer(status, headers, rest), 0
