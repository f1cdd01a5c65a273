"""Queries at scale: starts `casevars serve` on its embedded default (a fresh data
folder) and, for each of --sizes, fills its Postgres straight with that many case
instances of five variables each, then times each request --runs times, one at a time,
and prints the median at each size and the growth from the first size to the last.

Case instance i (scale-i, business key bk-i) has
    s: String  'name-' + i, 7 digits    (eq matches one case, like 'name-00001%' ten)
    n: Integer i                        (gt on the top 0.1 % of i)
    b: Boolean i = 7                    (true for one case)
    d: Date    2020-01-01 + i seconds   (one case each)
    t: String  'Ref-' + hex, mixed case (a second kind of text, for ignore-case)
so each size is the same shape and only the number of rows grows.

    .venv/bin/python benchmarks/scale.py                       # 10,000 and 1,000,000
    .venv/bin/python benchmarks/scale.py --sizes 10000 100000 --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import aiohttp
import asyncpg
import orjson
from upload import embedded_service, loadavg
from variable_instances import Query, timed

from service.storage.migrate import load_migrations, migrate, migrations_dir

EPOCH_SQL = "timestamp '2020-01-01'"
DATE_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.MS"+0000"'


async def fill(dsn: str, first: int, last: int) -> None:
    """Case instances first .. last - 1 with their five variables; added to what is
    there, so one run grows the table from one size to the next."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            """
            INSERT INTO case_instance (id, business_key, case_definition_key, state)
            SELECT 'scale-' || i, 'bk-' || i, 'scale', 'active'
            FROM generate_series($1::int, $2::int - 1) AS i
            """,
            first,
            last,
        )
        values = {
            "s": ("String", "to_jsonb('name-' || lpad(i::text, 7, '0'))"),
            "n": ("Integer", "to_jsonb(i)"),
            "b": ("Boolean", "to_jsonb(i = 7)"),
            "d": (
                "Date",
                f"to_jsonb(to_char({EPOCH_SQL} + i * interval '1 second', '{DATE_FORMAT}'))",
            ),
            "t": ("String", "to_jsonb('Ref-' || substr(md5(i::text), 1, 6) || '-Xy' || i)"),
        }
        for name, (kind, value) in values.items():
            await connection.execute(
                f"""
                INSERT INTO variable (case_instance_id, name, type, value)
                SELECT 'scale-' || i, '{name}', '{kind}', {value}
                FROM generate_series($1::int, $2::int - 1) AS i
                """,
                first,
                last,
            )
        await connection.execute("VACUUM ANALYZE case_instance")
        await connection.execute("VACUUM ANALYZE variable")
    finally:
        await connection.close()


def date_of(i: int) -> str:
    hours, rest = divmod(i, 3600)
    days, hours = divmod(hours, 24)
    # Within 2020 for any size up to about 31 million cases: day counts as of Jan 1.
    month_days = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    month = 0
    while days >= month_days[month]:
        days -= month_days[month]
        month += 1
    return (
        f"2020-{month + 1:02d}-{days + 1:02d}T{hours:02d}:{rest // 60:02d}:{rest % 60:02d}.000+0000"
    )


def condition_body(name: str, operator: str, value: Any, *, ignore_case: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"variables": [{"name": name, "operator": operator, "value": value}]}
    if ignore_case:
        body |= {"variableValuesIgnoreCase": True, "variableNamesIgnoreCase": True}
    return body


def requests(size: int) -> list[Query]:
    middle = size // 2
    top = size - size // 1000  # n > top: 0.1 % of the cases
    found: list[Query] = [
        (
            "GET /case-instance/{id}/variables",
            "GET",
            f"/case-instance/scale-{middle}/variables",
            None,
        ),
        ("GET /case-instance?businessKey", "GET", f"/case-instance?businessKey=bk-{middle}", None),
    ]
    conditions = [
        ("eq String", "POST", "/case-instance", "s", "eq", f"name-{middle:07d}"),
        ("eq Integer", "POST", "/case-instance", "n", "eq", middle),
        ("eq Boolean", "POST", "/case-instance", "b", "eq", True),
        ("eq Date", "POST", "/case-instance", "d", "eq", date_of(middle)),
        ("like prefix", "POST", "/case-instance", "s", "like", f"name-{middle // 10:06d}%"),
        ("gt Integer, count", "POST", "/case-instance/count", "n", "gt", top),
    ]
    for ignore_case in (False, True):
        for label, method, path, name, operator, value in conditions:
            # Ignoring case, the name and text are asked for in capitals.
            asked = value.upper() if ignore_case and isinstance(value, str) else value
            body = condition_body(
                name.upper() if ignore_case else name, operator, asked, ignore_case=ignore_case
            )
            found.append((label + (" (ignore case)" if ignore_case else ""), method, path, body))
    found.append(
        (
            "GET /case-instance, last page",
            "GET",
            f"/case-instance?firstResult={size - 10}&maxResults=10",
            None,
        )
    )
    value_of = {"name": "s", "operator": "eq", "value": f"name-{middle:07d}"}
    found += [
        (
            "POST /variable-instance eq",
            "POST",
            "/variable-instance",
            {"variableValues": [value_of]},
        ),
        (
            "POST /variable-instance gt",
            "POST",
            "/variable-instance",
            {"variableValues": [{"name": "n", "operator": "gt", "value": top}]},
        ),
        (
            "GET /history/variable-instance eq",
            "GET",
            f"/history/variable-instance?variableName=s&variableValue=name-{middle:07d}",
            None,
        ),
        (
            "GET /history/variable-instance, 100",
            "GET",
            "/history/variable-instance?variableName=t&maxResults=100",
            None,
        ),
    ]
    return found


async def time_migration(dsn: str) -> None:
    """How long migrations/0011 (CREATE INDEX CONCURRENTLY) takes on the filled table,
    and how slow a write gets meanwhile."""
    migration = next(m for m in load_migrations(migrations_dir()) if m.version == 11)
    connection = await asyncpg.connect(dsn)
    try:
        for name in migration.index_names():
            await connection.execute(f"DROP INDEX IF EXISTS {name}")
        await connection.execute("DELETE FROM schema_migration WHERE version = 11")
        started = time.perf_counter()
        build = asyncio.create_task(migrate(dsn))
        slowest = 0.0
        while not build.done():
            before = time.perf_counter()
            await connection.execute(
                "UPDATE variable SET value = value"
                " WHERE case_instance_id = 'scale-1' AND name = 's'"
            )
            slowest = max(slowest, time.perf_counter() - before)
            await asyncio.sleep(0.05)
        applied = await build
    finally:
        await connection.close()
    print(
        f"{applied}: {time.perf_counter() - started:.0f}s; slowest write meanwhile"
        f" {slowest * 1000:.0f} ms (load {loadavg()})",
        flush=True,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--time-migration",
        action="store_true",
        help="at the largest size, drop the indexes of migrations/0011 and time applying it",
    )
    options = parser.parse_args()
    sizes = sorted(options.sizes)
    medians: dict[str, list[float]] = {}
    async with embedded_service() as service:
        embedded = orjson.loads((service.data_dir / "embedded.json").read_bytes())
        dsn = embedded["postgres"]["dsn"]
        filled = 0
        async with aiohttp.ClientSession() as session:
            for size in sizes:
                started = time.perf_counter()
                await fill(dsn, filled, size)
                filled = size
                print(
                    f"{size:,} cases: filled in {time.perf_counter() - started:.0f}s"
                    f" (load {loadavg()})",
                    flush=True,
                )
                for query in requests(size):
                    try:
                        median, _, _ = await timed(session, service.base, query, options.runs)
                    except RuntimeError as error:  # e.g. 503: the statement timeout passed
                        print(f"  {query[0]}: {error}", flush=True)
                        median = float("nan")
                    medians.setdefault(query[0], []).append(median)
                    print(f"  {query[0]}: {median:.1f} ms", flush=True)
                print(f"  timed (load {loadavg()})", flush=True)
            if options.time_migration:
                await time_migration(dsn)
    header = " | ".join(f"{size:,} cases" for size in sizes)
    print(f"| Request | {header} | growth |")
    print("| --- |" + " --- |" * (len(sizes) + 1))
    for label, values in medians.items():
        cells = " | ".join(f"{value:.1f} ms" for value in values)  # nan: failed
        print(f"| {label} | {cells} | x{values[-1] / values[0]:.1f} |")


if __name__ == "__main__":
    asyncio.run(main())
