"""Upload and download throughput and memory of casevars against the same S3 directly.

Starts `casevars serve` on its embedded default (a fresh data folder), streams generated
values of each size through POST .../data and back through GET .../data (checking the
SHA-256), does the same straight to the same SeaweedFS with aiobotocore, and prints MB/s
(downloads: the best of three runs of each path, the paths alternating), the
service/direct ratios and the service process's RSS sampled from /proc.

    .venv/bin/python benchmarks/upload.py              # 1 GiB and 4 GiB
    .venv/bin/python benchmarks/upload.py --sizes 256  # sizes in MiB
    .venv/bin/python benchmarks/upload.py --no-splice  # downloads through Python
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Self

import aiobotocore.session
import aiohttp
import orjson
from aiobotocore.config import AioConfig

from service.storage.blobstore import _PartBody

MIB = 1024 * 1024
GIB = 1024 * MIB
BOUNDARY = "casevarsbenchmarkboundary"
BLOCK = os.urandom(MIB)
CHUNK = 256 * 1024
DIRECT_PART = 16 * MIB
DIRECT_IN_FLIGHT = 2
# Each path's download is timed this many times, alternating between the paths, and
# the best is kept (warm caches for both, so the first read after a write, or a burst
# of background work in SeaweedFS, does not decide the ratio).
DOWNLOAD_RUNS = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class RssSampler:
    """Samples a process's RSS every few milliseconds while active."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.peak = max(self.peak, rss_bytes(self.pid))
            await asyncio.sleep(0.02)

    def __enter__(self) -> Self:
        self.peak = rss_bytes(self.pid)
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()


def generated(size: int) -> tuple[list[int], str]:
    """A value of `size` bytes made of a random 1 MiB block; returns its SHA-256."""
    digest = hashlib.sha256()
    full, rest = divmod(size, MIB)
    for _ in range(full):
        digest.update(BLOCK)
    digest.update(BLOCK[:rest])
    return [full, rest], digest.hexdigest()


async def value_chunks(size: int) -> AsyncIterator[bytes]:
    view = memoryview(BLOCK)
    sent = 0
    while sent < size:
        for start in range(0, MIB, CHUNK):
            take = min(CHUNK, size - sent)
            if take <= 0:
                return
            yield bytes(view[start : start + take])
            sent += take


async def form_body(size: int) -> AsyncIterator[bytes]:
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="data"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    async for chunk in value_chunks(size):
        yield chunk
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


async def download_sha256(response_chunks: AsyncIterator[bytes]) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    async for chunk in response_chunks:
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def value_url(base: str, size: int) -> str:
    return f"{base}/case-instance/bench-{size}/variables/value/data"


async def service_upload(
    session: aiohttp.ClientSession, base: str, size: int, sampler: RssSampler
) -> tuple[float, int]:
    """Seconds to POST the value through casevars, and the service's peak RSS meanwhile."""
    async with session.put(f"{base}/case-instance/bench-{size}") as response:
        assert response.status in {200, 201}
    with sampler:
        started = time.perf_counter()
        async with session.post(
            value_url(base, size),
            data=form_body(size),
            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        ) as response:
            assert response.status == 204, await response.text()
        return time.perf_counter() - started, sampler.peak


async def service_download(
    session: aiohttp.ClientSession, base: str, size: int, expected: str
) -> float:
    started = time.perf_counter()
    async with session.get(value_url(base, size)) as response:
        assert response.status == 200
        got = await download_sha256(response.content.iter_chunked(MIB))
    seconds = time.perf_counter() - started
    assert got == (size, expected), "downloaded value differs"
    return seconds


def direct_client(s3: dict[str, Any]) -> Any:
    """An aiobotocore client to the same SeaweedFS with its best settings: checksums
    and payload signing off."""
    config = AioConfig(
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        s3={"addressing_style": "path", "payload_signing_enabled": False},
        read_timeout=600,
        max_pool_connections=8,
    )
    return aiobotocore.session.get_session().create_client(
        "s3",
        endpoint_url=s3["endpoint_url"],
        region_name=s3["region"],
        aws_access_key_id=s3["access_key_id"],
        aws_secret_access_key=s3["secret_access_key"],
        config=config,
    )


async def direct_upload(client: Any, bucket: str, key: str, size: int) -> float:
    """The same value straight into SeaweedFS, as well as aiobotocore can: 16 MiB
    parts, 2 in flight, part buffers reused and passed without copying (the body type
    casevars registers with aiohttp)."""
    started = time.perf_counter()
    created = await client.create_multipart_upload(Bucket=bucket, Key=key)
    upload_id = created["UploadId"]
    slots = asyncio.Semaphore(DIRECT_IN_FLIGHT)
    free = [bytearray(DIRECT_PART) for _ in range(DIRECT_IN_FLIGHT + 1)]
    tasks = []
    number = 0
    buffer, filled = free.pop(), 0

    async def send(part_number: int, part: bytearray, length: int) -> dict[str, Any]:
        try:
            response = await client.upload_part(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=part_number,
                Body=_PartBody(memoryview(part)[:length]),
            )
            return {"PartNumber": part_number, "ETag": response["ETag"]}
        finally:
            free.append(part)
            slots.release()

    async for chunk in value_chunks(size):
        buffer[filled : filled + len(chunk)] = chunk
        filled += len(chunk)
        if filled == DIRECT_PART:
            await slots.acquire()
            number += 1
            tasks.append(asyncio.create_task(send(number, buffer, filled)))
            buffer, filled = free.pop(), 0
    if filled or not tasks:
        await slots.acquire()
        number += 1
        tasks.append(asyncio.create_task(send(number, buffer, filled)))
    parts = await asyncio.gather(*tasks)
    await client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    return time.perf_counter() - started


async def direct_download(client: Any, bucket: str, key: str, size: int, expected: str) -> float:
    started = time.perf_counter()
    response = await client.get_object(Bucket=bucket, Key=key)
    body = response["Body"]

    async def chunks() -> AsyncIterator[bytes]:
        while chunk := await body.read(MIB):
            yield chunk

    got = await download_sha256(chunks())
    seconds = time.perf_counter() - started
    assert got == (size, expected), "direct download differs"
    return seconds


async def wait_ready(base: str, process: subprocess.Popen[bytes]) -> float:
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        while time.perf_counter() - started < 120:
            if process.poll() is not None:
                raise SystemExit("casevars serve exited during start-up")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{base}/health/ready") as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            await asyncio.sleep(0.1)
    raise SystemExit("casevars serve did not get ready")


def mb_per_s(size: int, seconds: float) -> float:
    return size / seconds / 1e6


@dataclasses.dataclass(frozen=True)
class Service:
    process: subprocess.Popen[bytes]
    base: str
    data_dir: Path
    cold_start_seconds: float


@contextlib.asynccontextmanager
async def embedded_service(**settings: str) -> AsyncIterator[Service]:
    """`casevars serve` on its embedded default in a fresh data folder, ready, with the
    given CASEVARS_* settings; stopped and its folder removed on exit."""
    data_dir = Path(tempfile.mkdtemp(prefix="casevars-bench-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CASEVARS_", "S3_"))}
    env.pop("DATABASE_URL", None)
    env.update(
        {
            "CASEVARS_DATA_DIR": str(data_dir),
            "CASEVARS_PORT": str(port),
            "CASEVARS_LOG_LEVEL": "WARNING",
            **settings,
        }
    )
    log = (data_dir.parent / f"{data_dir.name}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "serve"], env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        cold = await wait_ready(base, process)
        yield Service(process, base, data_dir, cold)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        log.close()
        subprocess.run(["rm", "-rf", str(data_dir)], check=False)


async def main(sizes_mib: list[int], *, splice: bool) -> None:
    async with embedded_service(CASEVARS_SPLICE_DOWNLOADS=str(splice).lower()) as started:
        process, base, data_dir = started.process, started.base, started.data_dir
        cold = started.cold_start_seconds
        await asyncio.sleep(2)
        idle = rss_bytes(process.pid)
        s3 = orjson.loads((data_dir / "embedded.json").read_bytes())["s3"]
        print(f"cold start to ready: {cold:.1f} s; service idle RSS {idle / MIB:.1f} MiB")
        print(f"{'size':>8} {'path':>8} {'up MB/s':>9} {'down MB/s':>10} {'peak RSS MiB':>13}")
        peaks: dict[int, int] = {}
        timeout = aiohttp.ClientTimeout(total=None, sock_read=600)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            direct_client(s3) as client,
        ):
            for size_mib in sizes_mib:
                size = size_mib * MIB
                _, expected = generated(size)
                key = f"direct/{size}"
                before_upload = cpu_seconds(process.pid)
                up, peaks[size_mib] = await service_upload(
                    session, base, size, RssSampler(process.pid)
                )
                upload_cpu = cpu_seconds(process.pid) - before_upload
                direct_up = await direct_upload(client, s3["bucket"], key, size)
                # Alternated so that both paths see the same state of the machine.
                downs, direct_downs = [], []
                download_cpu = 0.0
                for _ in range(DOWNLOAD_RUNS):
                    before = cpu_seconds(process.pid)
                    downs.append(await service_download(session, base, size, expected))
                    download_cpu += cpu_seconds(process.pid) - before
                    direct_downs.append(
                        await direct_download(client, s3["bucket"], key, size, expected)
                    )
                await client.delete_object(Bucket=s3["bucket"], Key=key)
                service = (mb_per_s(size, up), mb_per_s(size, min(downs)))
                straight = (mb_per_s(size, direct_up), mb_per_s(size, min(direct_downs)))
                print(
                    f"{size_mib:>6}Mi {'service':>8} {service[0]:>9.1f} {service[1]:>10.1f} "
                    f"{peaks[size_mib] / MIB:>13.1f}   downloads "
                    + " ".join(f"{mb_per_s(size, t):.0f}" for t in downs)
                )
                print(
                    f"{size_mib:>6}Mi {'direct':>8} {straight[0]:>9.1f} {straight[1]:>10.1f} "
                    f"{'':>13}   downloads "
                    + " ".join(f"{mb_per_s(size, t):.0f}" for t in direct_downs)
                )
                print(
                    f"{size_mib:>6}Mi {'ratio':>8} {service[0] / straight[0]:>9.2f} "
                    f"{service[1] / straight[1]:>10.2f}"
                )
                cpu_per_gib = download_cpu / (DOWNLOAD_RUNS * size / GIB)
                print(
                    f"{'':>8} service CPU per GiB uploaded: {upload_cpu / (size / GIB):.2f} s, "
                    f"downloaded: {cpu_per_gib:.2f} s"
                )
        print(
            "peak RSS above idle: "
            + ", ".join(
                f"{size} MiB value: {(peak - idle) / MIB:.1f} MiB" for size, peak in peaks.items()
            )
        )
        if len(peaks) > 1:
            values = list(peaks.values())
            print(f"peak difference between sizes: {(max(values) - min(values)) / MIB:.1f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096], help="MiB")
    parser.add_argument(
        "--no-splice",
        action="store_true",
        help="downloads through Python (CASEVARS_SPLICE_DOWNLOADS=false), to compare",
    )
    arguments = parser.parse_args()
    asyncio.run(main(arguments.sizes, splice=not arguments.no_splice))
