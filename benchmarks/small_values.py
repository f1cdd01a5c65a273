"""Small-value throughput of casevars against a minimal aiohttp + asyncpg ceiling.

Starts `casevars serve` on its embedded default (a fresh data folder) and, on the same
Postgres, a minimal aiohttp server whose handlers do one asyncpg upsert (PUT) or one
select (GET) each: the most any aiohttp + asyncpg service can do here. 64 concurrent
clients then run for --seconds each: PUT of a small String, GET of it, a 1 KiB
multipart upload, and PUT/GET against the ceiling. Prints requests/s, p50 and p99.

    .venv/bin/python benchmarks/small_values.py               # 20 s per test
    .venv/bin/python benchmarks/small_values.py --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import asyncpg
import orjson
from aiohttp import web

CLIENTS = 64
BOUNDARY = "benchmarkboundary"
KIB_FORM = (
    (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="data"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    + b"x" * 1024
    + f"\r\n--{BOUNDARY}--\r\n".encode()
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the ceiling: one asyncpg statement per request ------------------------------


def ceiling_app(dsn: str) -> web.Application:
    pool_key = web.AppKey("pool", asyncpg.Pool)

    async def pool(app: web.Application) -> AsyncIterator[None]:
        app[pool_key] = await asyncpg.create_pool(dsn, min_size=1, max_size=10)
        async with app[pool_key].acquire() as connection:
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS ceiling_kv (k text PRIMARY KEY, v jsonb NOT NULL)"
            )
        yield
        await app[pool_key].close()

    async def put(request: web.Request) -> web.Response:
        value = orjson.loads(await request.read())
        await request.app[pool_key].execute(
            "INSERT INTO ceiling_kv (k, v) VALUES ($1, $2::jsonb) "
            "ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
            request.match_info["key"],
            orjson.dumps(value).decode(),
        )
        return web.Response(status=204)

    async def get(request: web.Request) -> web.Response:
        value = await request.app[pool_key].fetchval(
            "SELECT v FROM ceiling_kv WHERE k = $1", request.match_info["key"]
        )
        if value is None:
            return web.Response(status=404)
        return web.Response(body=value.encode(), content_type="application/json")

    app = web.Application()
    app.cleanup_ctx.append(pool)
    app.router.add_put("/kv/{key}", put)
    app.router.add_get("/kv/{key}", get)
    return app


# --- load ----------------------------------------------------------------------------

Request = Callable[[aiohttp.ClientSession, int], Awaitable[int]]


async def run_load(name: str, seconds: float, request: Request) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=CLIENTS)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(index: int) -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                status = await request(session, index)
                latencies.append(time.perf_counter() - started)
                if status >= 300:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(index) for index in range(CLIENTS)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    result = {
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "errors": errors,
    }
    print(
        f"{name:<24} {result['rps']:>9.0f} req/s   p50 {result['p50_ms']:>6.1f} ms   "
        f"p99 {result['p99_ms']:>6.1f} ms   errors {errors}"
    )
    return result


async def wait_ready(url: str, process: subprocess.Popen[bytes], expected: int) -> None:
    deadline = time.monotonic() + 120
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"{url}: the server exited during start-up")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as response:
                    if response.status == expected:
                        return
            await asyncio.sleep(0.1)
    raise SystemExit(f"{url} did not get ready")


async def main(seconds: float) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="casevars-small-"))
    port, ceiling_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CASEVARS_", "S3_"))}
    env.pop("DATABASE_URL", None)
    env.update({"CASEVARS_DATA_DIR": str(data_dir), "CASEVARS_PORT": str(port)})
    log = (data_dir.parent / f"{data_dir.name}.log").open("wb")
    service = subprocess.Popen(
        [sys.executable, "-m", "service", "serve"], env=env, stdout=log, stderr=log
    )
    ceiling: subprocess.Popen[bytes] | None = None
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(f"{base}/health/ready", service, 200)
        dsn = orjson.loads((data_dir / "embedded.json").read_bytes())["postgres"]["dsn"]
        ceiling = subprocess.Popen(
            [sys.executable, __file__, "--ceiling", dsn, str(ceiling_port)],
            stdout=log,
            stderr=log,
        )
        ceiling_base = f"http://127.0.0.1:{ceiling_port}"
        await wait_ready(f"{ceiling_base}/kv/none", ceiling, 404)
        async with (
            aiohttp.ClientSession() as session,
            session.put(f"{base}/case-instance/bench") as response,
        ):
            assert response.status in {200, 201}

        body = orjson.dumps({"value": "a small string value", "type": "String"})
        json_headers = {"Content-Type": "application/json"}
        form_headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}

        async def status_of(call: Awaitable[aiohttp.ClientResponse]) -> int:
            async with await call as response:
                await response.read()
                return response.status

        def casevars_put(session: aiohttp.ClientSession, index: int) -> Awaitable[int]:
            url = f"{base}/case-instance/bench/variables/v{index}"
            return status_of(session.put(url, data=body, headers=json_headers))

        def casevars_get(session: aiohttp.ClientSession, index: int) -> Awaitable[int]:
            return status_of(session.get(f"{base}/case-instance/bench/variables/v{index}"))

        def casevars_upload(session: aiohttp.ClientSession, index: int) -> Awaitable[int]:
            url = f"{base}/case-instance/bench/variables/f{index}/data"
            return status_of(session.post(url, data=KIB_FORM, headers=form_headers))

        def ceiling_put(session: aiohttp.ClientSession, index: int) -> Awaitable[int]:
            return status_of(session.put(f"{ceiling_base}/kv/v{index}", data=body))

        def ceiling_get(session: aiohttp.ClientSession, index: int) -> Awaitable[int]:
            return status_of(session.get(f"{ceiling_base}/kv/v{index}"))

        print(f"{CLIENTS} concurrent clients, {seconds:.0f} s per test")
        results = {}
        for name, request in (
            ("ceiling PUT (1 upsert)", ceiling_put),
            ("casevars PUT String", casevars_put),
            ("ceiling GET (1 select)", ceiling_get),
            ("casevars GET String", casevars_get),
            ("casevars POST 1 KiB data", casevars_upload),
        ):
            results[name] = await run_load(name, seconds, request)
        put_ratio = results["casevars PUT String"]["rps"] / results["ceiling PUT (1 upsert)"]["rps"]
        get_ratio = results["casevars GET String"]["rps"] / results["ceiling GET (1 select)"]["rps"]
        print(f"casevars / ceiling: PUT {put_ratio:.2f}, GET {get_ratio:.2f} (target >= 0.6)")
    finally:
        for process in (service, ceiling):
            if process is not None:
                process.send_signal(signal.SIGTERM)
                process.wait(60)
        log.close()
        subprocess.run(["rm", "-rf", str(data_dir)], check=False)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--ceiling":
        web.run_app(ceiling_app(sys.argv[2]), host="127.0.0.1", port=int(sys.argv[3]), print=None)
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--seconds", type=float, default=20.0)
        asyncio.run(main(parser.parse_args().seconds))
