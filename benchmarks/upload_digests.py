"""What RFC 9530 digests cost a multipart upload (POST .../data).

Starts `casevars serve` on its embedded default (benchmarks/upload.py's), then uploads
the same generated value three ways, alternating, --runs times: without a digest, with
the value's `Repr-Digest` (checked against the SHA-256 the blob store computes for the
ETag anyway) and with the body's `Content-Digest` (one more hash of every body byte, on
the service's event loop). Prints, per way, the median MB/s and the median CPU-s of the
service process per GiB, and the load average (on a shared machine the CPU figure is
the steadier one). Each upload's answer and stored SHA-256 are checked.

    .venv/bin/python benchmarks/upload_digests.py               # 1 GiB, 3 runs
    .venv/bin/python benchmarks/upload_digests.py --size 256 --runs 5   # MiB
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import statistics
import time
from collections.abc import AsyncIterator

import aiohttp
from upload import (
    BOUNDARY,
    GIB,
    MIB,
    cpu_seconds,
    embedded_service,
    form_body,
    generated,
    loadavg,
    mb_per_s,
)

WAYS = ("none", "Repr-Digest", "Content-Digest")


def field(digest: bytes) -> str:
    return f"sha-256=:{base64.b64encode(digest).decode()}:"


async def body_sha256(size: int) -> bytes:
    digest = hashlib.sha256()
    async for chunk in form_body(size):
        digest.update(chunk)
    return digest.digest()


async def upload(
    session: aiohttp.ClientSession, base: str, size: int, headers: dict[str, str]
) -> float:
    url = f"{base}/case-instance/digests-{size}/variables/value/data"
    started = time.perf_counter()
    body: AsyncIterator[bytes] = form_body(size)
    async with session.post(
        url,
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", **headers},
    ) as response:
        assert response.status == 204, await response.text()
    return time.perf_counter() - started


async def main(size_mib: int, runs: int) -> None:
    size = size_mib * MIB
    _, value_hex = generated(size)
    headers = {
        "none": {},
        "Repr-Digest": {"Repr-Digest": field(bytes.fromhex(value_hex))},
        "Content-Digest": {"Content-Digest": field(await body_sha256(size))},
    }
    seconds: dict[str, list[float]] = {way: [] for way in WAYS}
    cpu: dict[str, list[float]] = {way: [] for way in WAYS}
    async with (
        embedded_service() as service,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3600)) as session,
    ):
        async with session.put(f"{service.base}/case-instance/digests-{size}") as response:
            assert response.status in {200, 201}
        for _ in range(runs):
            for way in WAYS:
                before = cpu_seconds(service.process.pid)
                seconds[way].append(await upload(session, service.base, size, headers[way]))
                cpu[way].append(cpu_seconds(service.process.pid) - before)
                url = f"{service.base}/case-instance/digests-{size}/variables/value/data"
                async with session.head(url) as response:
                    assert response.headers["ETag"] == f'"{value_hex}"'
    print(f"POST .../data of {size_mib} MiB, {runs} runs per way, medians")
    for way in WAYS:
        rate = mb_per_s(size, statistics.median(seconds[way]))
        per_gib = statistics.median(cpu[way]) * GIB / size
        print(f"  {way:15} {rate:8.1f} MB/s  {per_gib:5.2f} CPU-s/GiB in the service")
    print(f"load average {loadavg()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size", type=int, default=1024, help="MiB")
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.size, arguments.runs))
