"""`casevars put` of large files, cut and resumed, against `casevars serve` on its
embedded default (a fresh data folder).

For each size, one file is put four ways: as one multipart POST (--resumable-above
above its size), as an uncut resumable upload (tus), and cut at two random points: the
first a connection cut by a loopback proxy (put goes on by itself), the second the
command SIGKILLed there and run again with --resume. The cut value is read back and
checked byte for byte against the file, with its ETag and Repr-Digest. Prints seconds
and MB/s of each, the up-front SHA-256's time, the command's peak RSS (VmHWM), where
the service's offset stood at each cut, and the load average.

    .venv/bin/python benchmarks/put_resume.py             # 1 GiB and 4 GiB
    .venv/bin/python benchmarks/put_resume.py --sizes 256 # sizes in MiB
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
from upload import embedded_service, loadavg

MIB = 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}
PROXY_READ_BYTES = 256 * 1024


class CuttingProxy:
    """Forwards loopback connections to the service; hold_after(n) stops forwarding
    after n more bytes from the client (and sets `held`), cut() resets every connection."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._ends: set[asyncio.StreamWriter] = set()
        self._left: int | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self.held = asyncio.Event()
        self.port = 0

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[CuttingProxy]:
        server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            self.cut()
            server.close()

    def hold_after(self, count: int) -> None:
        self._left = count
        self.held.clear()

    def cut(self) -> None:
        for end in list(self._ends):
            end.transport.abort()
        self._ends.clear()
        self._left = None
        self._flowing.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream = await asyncio.open_connection("127.0.0.1", self._target_port)
        self._ends.update((writer, upstream))
        await asyncio.gather(
            self._pump(reader, upstream, from_client=True),
            self._pump(upstream_reader, writer, from_client=False),
            return_exceptions=True,
        )
        for end in (writer, upstream):
            self._ends.discard(end)
            end.transport.abort()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, from_client: bool
    ) -> None:
        while data := await reader.read(PROXY_READ_BYTES):
            await self._flowing.wait()
            if from_client and self._left is not None:
                if len(data) >= self._left:
                    data, self._left = data[: self._left], None
                    self._flowing.clear()
                    self.held.set()
                else:
                    self._left -= len(data)
            writer.write(data)
            await writer.drain()


@dataclasses.dataclass
class Run:
    status: int
    stderr: str
    seconds: float
    peak_rss: int


async def peak_rss(pid: int) -> int:
    """The process's VmHWM (peak RSS), read until it exits."""
    peak = 0
    with contextlib.suppress(OSError):
        while True:
            text = await asyncio.to_thread(Path(f"/proc/{pid}/status").read_text)
            match = re.search(r"^VmHWM:\s+(\d+) kB", text, flags=re.MULTILINE)
            peak = max(peak, int(match.group(1)) * 1024 if match else 0)
            await asyncio.sleep(0.05)
    return peak


async def start_put(url: str, state: Path, *args: str) -> asyncio.subprocess.Process:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(state),
        "XDG_STATE_HOME": str(state),
        "CASEVARS_URL": url,
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "put",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )


async def finish(process: asyncio.subprocess.Process, started: float) -> Run:
    rss = asyncio.create_task(peak_rss(process.pid))
    _, err = await process.communicate()
    assert process.returncode is not None
    return Run(process.returncode, err.decode(), time.perf_counter() - started, await rss)


async def put(url: str, state: Path, *args: str) -> Run:
    started = time.perf_counter()
    run = await finish(await start_put(url, state, *args), started)
    if run.status != 0:
        raise SystemExit(f"casevars put {' '.join(args)} failed:\n{run.stderr}")
    return run


def recorded(state: Path) -> tuple[str, int]:
    """The one recorded upload's URL and the offset put last wrote down."""
    [file] = (state / "casevars" / "uploads").glob("*.json")
    document = orjson.loads(file.read_bytes())
    return document["upload_url"], document["offset"]


async def settled_offset(session: aiohttp.ClientSession, upload_url: str) -> int:
    """The service's offset of the upload, once it stopped moving."""
    seen: list[int] = []
    while len(seen) < 3 or len(set(seen[-3:])) > 1:
        await asyncio.sleep(0.3)
        async with session.head(upload_url, headers=TUS) as response:
            seen.append(int(response.headers["Upload-Offset"]))
    return seen[-1]


async def cut_twice(
    session: aiohttp.ClientSession, base: str, case_id: str, source: Path, state: Path
) -> tuple[float, list[int]]:
    """Put source cut at two random points; the seconds in all and the offsets put
    resumed at."""
    size = source.stat().st_size
    rng = random.Random(size)
    first = rng.randint(size // 10, size // 2)
    second = rng.randint(first + size // 10, size * 9 // 10)
    port = int(base.rsplit(":", 1)[1])
    async with CuttingProxy(port).running() as proxy:
        url = f"http://127.0.0.1:{proxy.port}"
        args = ("--resumable-above", "0", "--retry-delay", "0.2")
        started = time.perf_counter()
        proxy.hold_after(first)
        running = await start_put(url, state, case_id, "cut", str(source), *args)
        await proxy.held.wait()
        proxy.cut()  # put asks the offset and goes on by itself
        proxy.hold_after(second - first)
        await proxy.held.wait()
        upload_url, resumed_at = recorded(state)  # from the HEAD after the cut
        running.kill()
        await running.wait()
        proxy.cut()
        killed_at = await settled_offset(session, upload_url)
        await put(url, state, case_id, "cut", str(source), *args, "--resume")
    return time.perf_counter() - started, [resumed_at, killed_at]


async def read_back(
    session: aiohttp.ClientSession, base: str, case_id: str, name: str, expected: bytes
) -> str:
    """GET the value; its SHA-256, checked against the file's, the ETag and Repr-Digest."""
    digest = hashlib.sha256()
    async with session.get(f"{base}/case-instance/{case_id}/variables/{name}/data") as response:
        assert response.status == 200, response.status
        async for chunk in response.content.iter_chunked(MIB):
            digest.update(chunk)
        etag, repr_digest = response.headers.get("ETag"), response.headers.get("Repr-Digest")
    assert digest.digest() == expected, "the value read back differs from the file"
    assert etag == f'"{expected.hex()}"', etag
    if repr_digest is not None:
        assert repr_digest == f"sha-256=:{base64.b64encode(expected).decode()}:", repr_digest
    return f"identical, ETag ok, Repr-Digest {'ok' if repr_digest else 'not sent'}"


def write_file(path: Path, size: int) -> bytes:
    """A file of size bytes (a random MiB, each copy with its own first bytes); its SHA-256."""
    block, digest = bytearray(os.urandom(MIB)), hashlib.sha256()
    with path.open("wb") as stream:
        for index in range(0, size, MIB):
            block[:8] = index.to_bytes(8, "big")
            piece = bytes(block[: min(MIB, size - index)])
            digest.update(piece)
            stream.write(piece)
    return digest.digest()


def rate(size: int, seconds: float) -> str:
    return f"{seconds:6.1f} s {size / seconds / 1e6:7.1f} MB/s"


async def one_size(session: aiohttp.ClientSession, base: str, size: int, folder: Path) -> None:
    source = folder / f"value-{size // MIB}MiB.bin"
    expected = await asyncio.to_thread(write_file, source, size)
    case_id = f"bench-put-{size // MIB}"
    async with session.put(f"{base}/case-instance/{case_id}") as response:
        assert response.status in {200, 201, 204}, response.status
    state = folder / f"state-{size // MIB}"
    post = await put(base, state, case_id, "post", str(source), "--resumable-above", str(size))
    tus = await put(base, state, case_id, "tus", str(source), "--resumable-above", "0")
    hashed = re.search(r"hashed \d+ bytes in ([\d.]+) s", tus.stderr)
    assert hashed is not None, tus.stderr
    cut_seconds, offsets = await cut_twice(session, base, case_id, source, state)
    verdict = await read_back(session, base, case_id, "cut", expected)
    label = f"{size // MIB} MiB"
    print(f"{label}: multipart POST       {rate(size, post.seconds)}  {rss(post)}")
    print(
        f"{label}: resumable, uncut     {rate(size, tus.seconds)}  {rss(tus)}"
        f"  (SHA-256 first: {float(hashed.group(1)):.1f} s)"
    )
    print(
        f"{label}: resumable, cut twice {rate(size, cut_seconds)}  (connection cut: resumed at "
        f"{offsets[0] / MIB:.1f} MiB; SIGKILL: --resume at {offsets[1] / MIB:.1f} MiB): {verdict}"
    )


def rss(run: Run) -> str:
    return f"put's peak RSS {run.peak_rss / MIB:.0f} MiB"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096], metavar="MiB")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="casevars-put-") as folder:
        async with embedded_service() as service, aiohttp.ClientSession() as session:
            for size in arguments.sizes:
                await one_size(session, service.base, size * MIB, Path(folder))
    print(f"load average {loadavg()}")


if __name__ == "__main__":
    asyncio.run(main())
