"""`casevars check` on many blobs: fills Postgres and S3 with N small live blobs (default
1,000,000), then runs `casevars check --json` as a user would and prints its elapsed
time and peak RSS.

    .venv/bin/python benchmarks/check_million.py --count 100000
    .venv/bin/python benchmarks/check_million.py --data-dir /tmp/bench   # keep the data

With DATABASE_URL and S3_ENDPOINT_URL set (and S3_BUCKET, S3_PREFIX, AWS_* as for the
service) it uses those; otherwise it starts the embedded Postgres and SeaweedFS in
--data-dir (a temporary folder unless given). A second run on the same data adds only
the blobs that are missing, so filling is paid once.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from service.cli.main import resolved_endpoints
from service.config import Endpoints, Settings
from service.storage import blobstore, db
from service.storage.migrate import migrate

ROOT = Path(__file__).resolve().parent.parent
CASE_ID = "benchmark"
# Rows inserted per statement, and objects put per batch.
ROW_BATCH = 100_000
OBJECT_BATCH = 10_000
PUTS_IN_FLIGHT = 64


def key_of(prefix: str, number: int) -> str:
    """Keys spread like the service's random ones; Postgres computes the same md5."""
    return prefix + hashlib.md5(str(number).encode()).hexdigest()


async def fill_rows(pool: Any, prefix: str, first: int, last: int) -> None:
    async with pool.acquire() as connection:
        await connection.execute(
            "INSERT INTO case_instance (id) VALUES ($1) ON CONFLICT DO NOTHING", CASE_ID
        )
        for start in range(first, last + 1, ROW_BATCH):
            end = min(start + ROW_BATCH - 1, last)
            async with connection.transaction():
                await connection.execute(
                    """
                    INSERT INTO blob (key, state, size, sha256)
                    SELECT $1 || md5(i::text), 'live', 1, decode(repeat('00', 32), 'hex')
                    FROM generate_series($2::int, $3::int) AS i
                    """,
                    prefix,
                    start,
                    end,
                )
                await connection.execute(
                    """
                    INSERT INTO variable (case_instance_id, name, type, blob_key)
                    SELECT $4, 'v' || i, 'Bytes', $1 || md5(i::text)
                    FROM generate_series($2::int, $3::int) AS i
                    """,
                    prefix,
                    start,
                    end,
                    CASE_ID,
                )
            print(f"  rows {end - first + 1}/{last - first + 1}", file=sys.stderr)


async def fill_objects(store: blobstore.BlobStore, prefix: str, first: int, last: int) -> None:
    slots = asyncio.Semaphore(PUTS_IN_FLIGHT)

    async def put(number: int) -> None:
        async with slots:
            await store.put_bytes(key_of(prefix, number), b"v")

    started = time.monotonic()
    for start in range(first, last + 1, OBJECT_BATCH):
        end = min(start + OBJECT_BATCH - 1, last)
        await asyncio.gather(*(put(number) for number in range(start, end + 1)))
        done = end - first + 1
        rate = done / (time.monotonic() - started)
        print(f"  objects {done}/{last - first + 1} ({rate:.0f}/s)", file=sys.stderr)


async def fill(settings: Settings, endpoints: Endpoints, count: int) -> None:
    await migrate(endpoints.dsn)
    pool = await db.create_pool(
        endpoints.dsn, max_size=2, timeout=60, gc_grace_seconds=settings.gc_grace_seconds
    )
    try:
        async with pool.acquire() as connection:
            have = await connection.fetchval(
                "SELECT count(*) FROM variable WHERE case_instance_id = $1", CASE_ID
            )
        if have >= count:
            print(f"already {have} blobs", file=sys.stderr)
            return
        started = time.monotonic()
        print(f"filling blobs {have + 1}..{count}", file=sys.stderr)
        await fill_rows(pool, endpoints.s3_prefix, have + 1, count)
        async with blobstore.open_blob_store(settings, endpoints) as store:
            await store.ensure_bucket()
            await fill_objects(store, endpoints.s3_prefix, have + 1, count)
        print(f"filled in {time.monotonic() - started:.1f} s", file=sys.stderr)
    finally:
        await pool.close()


def environment_for(endpoints: Endpoints) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CASEVARS_", "DATABASE_URL", "S3_"))
    }
    env.update(
        {
            "DATABASE_URL": endpoints.dsn,
            "S3_ENDPOINT_URL": endpoints.s3_endpoint_url or "",
            "S3_BUCKET": endpoints.s3_bucket,
            "S3_PREFIX": endpoints.s3_prefix,
            "S3_REGION": endpoints.s3_region,
            "CASEVARS_LOG_LEVEL": "WARNING",
        }
    )
    if endpoints.s3_access_key_id and endpoints.s3_secret_access_key:
        env["AWS_ACCESS_KEY_ID"] = endpoints.s3_access_key_id
        env["AWS_SECRET_ACCESS_KEY"] = endpoints.s3_secret_access_key
    if not env["S3_ENDPOINT_URL"]:
        del env["S3_ENDPOINT_URL"]
    return env


async def run_check(endpoints: Endpoints) -> dict[str, Any]:
    """`casevars check --json` in a child process; its elapsed time and peak RSS."""
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "check",
        "--json",
        env=environment_for(endpoints),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await process.communicate()
    elapsed = time.monotonic() - started
    # ru_maxrss of waited-for children is in KiB on Linux: the largest child so far,
    # and this script starts no other.
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    report: dict[str, Any] = orjson.loads(stdout)
    return {
        "exit_status": process.returncode,
        "elapsed_seconds": round(elapsed, 1),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "objects": report["objects"],
        "live": report["live"],
        "consistent": report["consistent"],
    }


async def main(arguments: argparse.Namespace) -> None:
    # Enough S3 connections for the puts in flight while filling.
    settings = dataclasses.replace(
        Settings.from_env(os.environ),
        data_dir=Path(arguments.data_dir),
        s3_parts_in_flight=PUTS_IN_FLIGHT // 4,
    )
    async with resolved_endpoints(settings, reuse_running=True) as endpoints:
        await fill(settings, endpoints, arguments.count)
        result = await run_check(endpoints)
    print(orjson.dumps({"count": arguments.count, **result}).decode())


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="blobs (default 1,000,000)")
    parser.add_argument(
        "--data-dir", help="folder of the embedded servers (default: a temporary folder)"
    )
    return parser.parse_args()


if __name__ == "__main__":
    parsed = parse_arguments()
    if parsed.data_dir:
        asyncio.run(main(parsed))
    else:
        with tempfile.TemporaryDirectory(prefix="casevars-bench-") as folder:
            parsed.data_dir = folder
            asyncio.run(main(parsed))
