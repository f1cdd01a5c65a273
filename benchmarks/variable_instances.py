"""Variable-instance queries on many case variables: starts `casevars serve` on its
embedded default (a fresh data folder), fills its Postgres with --cases case instances
of --variables Integer variables each (a tenth of the instances closed, so history has
more than runtime), then times each query --runs times, one request at a time, and
prints the median and the slowest in milliseconds with the size of the answer.

    .venv/bin/python benchmarks/variable_instances.py                  # 20,000 x 10
    .venv/bin/python benchmarks/variable_instances.py --cases 100000 --runs 10
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import aiohttp
import asyncpg
import orjson
from upload import embedded_service

# (label, method, path, JSON body or None)
Query = tuple[str, str, str, Any]


async def fill(dsn: str, cases: int, variables: int) -> None:
    """Case instances bench-0 ... and their variables v0 ..., value i % 1000, in two
    statements; every tenth instance closed."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            """
            INSERT INTO case_instance (id, tenant_id, state, closed_at)
            SELECT 'bench-' || i, 'tenant-' || (i % 10),
                   CASE WHEN i % 10 = 0 THEN 'closed' ELSE 'active' END,
                   CASE WHEN i % 10 = 0 THEN now() END
            FROM generate_series(0, $1 - 1) AS i
            """,
            cases,
        )
        await connection.execute(
            """
            INSERT INTO variable (case_instance_id, name, type, value)
            SELECT 'bench-' || i, 'v' || n, 'Integer', to_jsonb((i + n) % 1000)
            FROM generate_series(0, $1 - 1) AS i, generate_series(0, $2 - 1) AS n
            """,
            cases,
            variables,
        )
        await connection.execute("ANALYZE case_instance; ANALYZE variable")
    finally:
        await connection.close()


async def any_variable_id(dsn: str) -> str:
    connection = await asyncpg.connect(dsn)
    try:
        found = await connection.fetchval(
            "SELECT id::text FROM variable WHERE case_instance_id = 'bench-1' LIMIT 1"
        )
    finally:
        await connection.close()
    return str(found)


def queries(variable_id: str, cases: int) -> list[Query]:
    some_cases = ",".join(f"bench-{i}" for i in range(1, cases, max(1, cases // 10)))
    return [
        ("one by id", "GET", f"/variable-instance/{variable_id}", None),
        ("name, first 100", "GET", "/variable-instance?variableName=v3&maxResults=100", None),
        ("name, count", "GET", "/variable-instance/count?variableName=v3", None),
        # A tenth of all instances' v3, read in pages and streamed.
        ("name, all", "GET", "/variable-instance?variableName=v3", None),
        ("10 case instances", "GET", f"/variable-instance?caseInstanceIdIn={some_cases}", None),
        (
            "value = 42 (body)",
            "POST",
            "/variable-instance?maxResults=100",
            {"variableValues": [{"name": "v3", "operator": "eq", "value": 42}]},
        ),
        (
            "name like, sorted, 100",
            "GET",
            (
                "/variable-instance?variableNameLike=v%25&sortBy=variableName&sortOrder=asc"
                "&maxResults=100"
            ),
            None,
        ),
        ("tenant, count", "GET", "/variable-instance/count?tenantIdIn=tenant-3", None),
        ("history: name, count", "GET", "/history/variable-instance/count?variableName=v3", None),
        (
            "history: 1 instance",
            "GET",
            "/history/variable-instance?caseInstanceId=bench-10",
            None,
        ),
    ]


async def timed(
    session: aiohttp.ClientSession, base: str, query: Query, runs: int
) -> tuple[float, float, int]:
    _, method, path, body = query
    seconds = []
    size = 0
    for _ in range(runs):
        started = time.perf_counter()
        data = None if body is None else orjson.dumps(body)
        headers = {} if body is None else {"Content-Type": "application/json"}
        async with session.request(method, base + path, data=data, headers=headers) as response:
            content = await response.read()
            if response.status != 200:
                raise RuntimeError(f"{path}: {response.status} {content[:200]!r}")
        seconds.append(time.perf_counter() - started)
        size = len(content)
    return statistics.median(seconds) * 1000, max(seconds) * 1000, size


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--variables", type=int, default=10)
    parser.add_argument("--runs", type=int, default=20)
    options = parser.parse_args()
    async with embedded_service() as service:
        embedded = orjson.loads((service.data_dir / "embedded.json").read_bytes())
        dsn = embedded["postgres"]["dsn"]
        started = time.perf_counter()
        await fill(dsn, options.cases, options.variables)
        total = options.cases * options.variables
        print(f"filled {total:,} variables in {time.perf_counter() - started:.1f}s")
        variable_id = await any_variable_id(dsn)
        print(f"{'query':<24} {'median ms':>10} {'max ms':>8} {'bytes':>8}")
        async with aiohttp.ClientSession() as session:
            for query in queries(variable_id, options.cases):
                median, slowest, size = await timed(session, service.base, query, options.runs)
                print(f"{query[0]:<24} {median:>10.1f} {slowest:>8.1f} {size:>8}")


if __name__ == "__main__":
    asyncio.run(main())
