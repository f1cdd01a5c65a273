"""Memory of casevars under concurrent load, against its memory budget.

Starts `casevars serve` on its embedded default (a fresh data folder), then:

1. --uploads concurrent uploads (sizes spread from --min-mib to --max-mib, each value
   made of its own random block), then downloads every value back and checks its
   SHA-256;
2. a case holding --values Bytes values of 1 MiB (the inline limit: each is base64 in
   the listing), listed by --listings concurrent GET .../variables, each response's
   values decoded and checked against their SHA-256;
3. --json-bodies concurrent JSON bodies of --json-mib MiB of empty objects (the shape
   whose parse takes the most memory per byte), which must be parsed to be answered.

It samples the service's RSS from /proc throughout and prints, per phase, the peak
against idle + CASEVARS_MEMORY_BUDGET_BYTES, and the RSS a few seconds after the load.

    .venv/bin/python benchmarks/memory.py
    .venv/bin/python benchmarks/memory.py --budget 128MiB --uploads 32
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import io
import os
import time
from collections.abc import AsyncIterator

import aiohttp
import orjson
from upload import BOUNDARY, CHUNK, MIB, RssSampler, embedded_service, rss_bytes

from service.config import Settings, parse_size

# Seconds the load is over before the RSS "after" is read (freed memory going back).
SETTLE_SECONDS = 3.0
# Downloads checked at once after the uploads.
DOWNLOADS_AT_ONCE = 8


def sizes(count: int, smallest_mib: int, largest_mib: int) -> list[int]:
    """count sizes spread evenly from smallest to largest MiB, each off by a few bytes."""
    step = (largest_mib - smallest_mib) / max(1, count - 1)
    return [int((smallest_mib + step * n) * MIB) + n for n in range(count)]


async def value_chunks(block: bytes, size: int) -> AsyncIterator[bytes]:
    sent = 0
    while sent < size:
        start = sent % len(block)
        take = min(CHUNK, size - sent, len(block) - start)
        yield block[start : start + take]
        sent += take


def value_sha256(block: bytes, size: int) -> str:
    digest = hashlib.sha256()
    full, rest = divmod(size, len(block))
    for _ in range(full):
        digest.update(block)
    digest.update(block[:rest])
    return digest.hexdigest()


async def form_body(block: bytes, size: int) -> AsyncIterator[bytes]:
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="data"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    async for chunk in value_chunks(block, size):
        yield chunk
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


async def upload(
    session: aiohttp.ClientSession, base: str, case_id: str, block: bytes, size: int
) -> None:
    async with session.put(f"{base}/case-instance/{case_id}") as response:
        assert response.status in {200, 201}, await response.text()
    async with session.post(
        f"{base}/case-instance/{case_id}/variables/value/data",
        data=form_body(block, size),
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    ) as response:
        assert response.status == 204, await response.text()


async def downloaded_sha256(session: aiohttp.ClientSession, url: str) -> str:
    digest = hashlib.sha256()
    async with session.get(url) as response:
        assert response.status == 200, await response.text()
        async for chunk in response.content.iter_chunked(MIB):
            digest.update(chunk)
    return digest.hexdigest()


def new_session() -> aiohttp.ClientSession:
    """A session of its own for each load, closed before the RSS after it is read (its
    kept-alive connections would hold the service's buffers for them)."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=None, sock_read=600),
        connector=aiohttp.TCPConnector(limit=0),
    )


async def settled_rss(pid: int) -> int:
    await asyncio.sleep(SETTLE_SECONDS)
    return rss_bytes(pid)


def report(name: str, idle: int, peak: int, after: int, budget: int) -> None:
    print(
        f"{name}: peak RSS {peak / MIB:.0f} MiB = idle {idle / MIB:.0f} + "
        f"{(peak - idle) / MIB:.0f} MiB (budget {budget / MIB:.0f} MiB, "
        f"{(peak - idle - budget) / MIB:+.0f} MiB beyond it); "
        f"{SETTLE_SECONDS:.0f} s after: {after / MIB:.0f} MiB"
    )


async def uploads_phase(base: str, pid: int, arguments: argparse.Namespace) -> tuple[int, int]:
    """(peak RSS, RSS after) of count concurrent uploads; checks every value."""
    count, smallest_mib, largest_mib = arguments.uploads, arguments.min_mib, arguments.max_mib
    values = [(os.urandom(MIB), size) for size in sizes(count, smallest_mib, largest_mib)]
    total = sum(size for _, size in values)
    async with new_session() as session:
        with RssSampler(pid) as sampler:
            started = time.perf_counter()
            await asyncio.gather(
                *(upload(session, base, f"mem-up-{n}", *value) for n, value in enumerate(values))
            )
            seconds = time.perf_counter() - started
            peak = sampler.peak
    after = await settled_rss(pid)
    print(
        f"{count} uploads of {smallest_mib}-{largest_mib} MiB ({total / MIB:.0f} MiB) "
        f"in {seconds:.1f} s ({total / seconds / 1e6:.0f} MB/s)"
    )
    at_once = asyncio.Semaphore(DOWNLOADS_AT_ONCE)

    async def check(number: int, block: bytes, size: int) -> None:
        async with at_once:
            url = f"{base}/case-instance/mem-up-{number}/variables/value/data"
            got = await downloaded_sha256(session, url)
        assert got == value_sha256(block, size), f"value {number} differs"

    async with new_session() as session:
        await asyncio.gather(*(check(n, *value) for n, value in enumerate(values)))
    print(f"all {count} values downloaded intact (SHA-256)")
    return peak, after


async def listings_phase(base: str, pid: int, count: int, listings: int) -> tuple[int, int]:
    """(peak RSS, RSS after) of concurrent listings of a case of count 1 MiB values."""
    case_id = "mem-list"
    blocks = [os.urandom(MIB) for _ in range(count)]
    at_once = asyncio.Semaphore(DOWNLOADS_AT_ONCE)

    async def put(session: aiohttp.ClientSession, number: int, block: bytes) -> None:
        form = aiohttp.FormData()
        form.add_field("data", block, content_type="application/octet-stream")
        async with (
            at_once,
            session.post(
                f"{base}/case-instance/{case_id}/variables/v{number:03d}/data", data=form
            ) as response,
        ):
            assert response.status == 204, await response.text()

    async with new_session() as session:
        async with session.put(f"{base}/case-instance/{case_id}") as response:
            assert response.status in {200, 201}
        await asyncio.gather(*(put(session, n, block) for n, block in enumerate(blocks)))
    expected = {f"v{n:03d}": hashlib.sha256(block).hexdigest() for n, block in enumerate(blocks)}
    del blocks

    async def listing(session: aiohttp.ClientSession) -> None:
        async with session.get(f"{base}/case-instance/{case_id}/variables") as response:
            assert response.status == 200, await response.text()
            body = orjson.loads(await response.read())
        got = {
            name: hashlib.sha256(base64.b64decode(shown["value"])).hexdigest()
            for name, shown in body.items()
        }
        assert got == expected, "a listing differs"

    async with new_session() as session:
        with RssSampler(pid) as sampler:
            started = time.perf_counter()
            await asyncio.gather(*(listing(session) for _ in range(listings)))
            seconds = time.perf_counter() - started
            peak = sampler.peak
    after = await settled_rss(pid)
    print(
        f"{listings} concurrent listings of {count} x 1 MiB Bytes in {seconds:.1f} s; "
        "every value intact (SHA-256)"
    )
    return peak, after


def structured_body(mib: int) -> bytes:
    """About mib MiB of JSON that is all structure: a modification body padded with an
    array of empty objects, the shape whose parse takes the most memory per byte."""
    padding = b",".join([b"{}"] * (mib * MIB // 3))
    return b'{"modifications": {}, "padding": [' + padding + b"]}"


async def json_phase(base: str, pid: int, bodies: int, mib: int) -> tuple[int, int]:
    """(peak RSS, RSS after) of concurrent JSON bodies that must be parsed before they
    can be answered; every answer must be 2xx or 4xx."""
    sent = structured_body(mib)
    headers = {"Content-Type": "application/json"}
    statuses: list[int] = []

    async def post(session: aiohttp.ClientSession) -> None:
        url = f"{base}/case-instance/mem-json/variables"
        async with session.post(url, data=io.BytesIO(sent), headers=headers) as response:
            await response.read()
            statuses.append(response.status)

    async with new_session() as session:
        async with session.put(f"{base}/case-instance/mem-json") as response:
            assert response.status in {200, 201}
        with RssSampler(pid) as sampler:
            started = time.perf_counter()
            await asyncio.gather(*(post(session) for _ in range(bodies)))
            seconds = time.perf_counter() - started
            peak = sampler.peak
    after = await settled_rss(pid)
    assert all(status < 500 for status in statuses), statuses
    print(
        f"{bodies} concurrent JSON bodies of {mib} MiB of empty objects in {seconds:.1f} s; "
        f"answers {sorted(set(statuses))}"
    )
    return peak, after


async def main(arguments: argparse.Namespace) -> None:
    settings = {"CASEVARS_MEMORY_BUDGET_BYTES": arguments.budget} if arguments.budget else {}
    budget = parse_size(arguments.budget) if arguments.budget else Settings().memory_budget_bytes
    async with embedded_service(**settings) as service:
        process, base = service.process, service.base
        await asyncio.sleep(2)
        idle = rss_bytes(process.pid)
        print(f"service idle RSS {idle / MIB:.0f} MiB; memory budget {budget / MIB:.0f} MiB")
        if arguments.uploads:
            peak, after = await uploads_phase(base, process.pid, arguments)
            report("uploads", idle, peak, after, budget)
        if arguments.listings:
            idle = rss_bytes(process.pid)
            peak, after = await listings_phase(
                base, process.pid, arguments.values, arguments.listings
            )
            report("listings", idle, peak, after, budget)
        if arguments.json_bodies:
            idle = rss_bytes(process.pid)
            peak, after = await json_phase(
                base, process.pid, arguments.json_bodies, arguments.json_mib
            )
            report("JSON bodies", idle, peak, after, budget)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", help="CASEVARS_MEMORY_BUDGET_BYTES (default: the service's)")
    parser.add_argument("--uploads", type=int, default=64, help="concurrent uploads (0: none)")
    parser.add_argument("--min-mib", type=int, default=20)
    parser.add_argument("--max-mib", type=int, default=64)
    parser.add_argument("--values", type=int, default=100, help="1 MiB values in the case")
    parser.add_argument("--listings", type=int, default=8, help="concurrent listings (0: none)")
    parser.add_argument(
        "--json-bodies", type=int, default=16, help="concurrent JSON bodies (0: none)"
    )
    parser.add_argument("--json-mib", type=int, default=4, help="size of each JSON body")
    asyncio.run(main(parser.parse_args()))
