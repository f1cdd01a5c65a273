"""Concurrent large uploads through casevars against the same uploads straight to S3,
with the latency of small reads meanwhile.

Starts `casevars serve` on its embedded default (a fresh data folder) and runs --rounds
rounds of three phases, the two upload phases in alternating order from one round to
the next, so that both see the same state of the (shared, loaded) machine:

- quiet: small GETs only (GET /case-instance/{id}/variables/{name} of a short String)
  at --rate a second for --quiet-seconds;
- service: --clients uploads of --mib MiB each at once through POST .../data, each
  client its own case instance, the small GETs going on at the same rate;
- direct: the same number and size of uploads at once straight to the same SeaweedFS
  with aiobotocore (benchmarks/upload.py's direct path: 16 MiB parts, 2 in flight),
  the small GETs going on too (what the machine's load alone does to them).

The GETs are sent on schedule (open loop: a slow answer does not delay the next one)
on a connection pool of their own. Prints per round and as medians: the aggregate
MB/s of each path (all bytes over the time from the first upload's start to the last
one's end) and their ratio, the service's CPU-s per GiB uploaded, its peak RSS growth
during the service phase against the part buffers its uploads may hold, and p50/p99 of
the small GETs in each phase.

The part buffers: an upload holds at most (CASEVARS_S3_PARTS_IN_FLIGHT + 1) buffers of
one part (CASEVARS_S3_PART_SIZE, 8 MiB until part 1,000), all taken from the memory
budget, so N concurrent uploads hold at most

    min(N x (parts in flight + 1) x part size, CASEVARS_MEMORY_BUDGET_BYTES)

(8 x 3 x 8 MiB = 192 MiB with the defaults, under the 512 MiB budget); each upload's
request adds a little beside its buffers (benchmarks/memory.py measures about 1.3 MiB).

    .venv/bin/python benchmarks/concurrent_uploads.py               # 8 x 256 MiB, 3 rounds
    .venv/bin/python benchmarks/concurrent_uploads.py --mib 32 --rounds 2   # a quick try
    .venv/bin/python benchmarks/concurrent_uploads.py --parts-in-flight 4 --budget 128MiB
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson
from upload import (
    BOUNDARY,
    GIB,
    MIB,
    RssSampler,
    cpu_seconds,
    direct_client,
    direct_upload,
    embedded_service,
    form_body,
    form_length,
    loadavg,
    rss_bytes,
)

from service.config import Settings, parse_size

# Seconds the service is left alone before a phase, so that the RSS before it is read
# after the last phase's buffers went back (unmapped) and its connections closed.
SETTLE_SECONDS = 3.0
SMALL_CASE = "small-reads"
SMALL_NAME = "greeting"


@dataclasses.dataclass(frozen=True)
class Latencies:
    """Milliseconds of each small GET of a phase, and how many failed."""

    millis: list[float]
    failed: int

    def quantile(self, share: float) -> float:
        if len(self.millis) < 2:
            return self.millis[0] if self.millis else float("nan")
        return statistics.quantiles(self.millis, n=1000, method="inclusive")[
            round(share * 1000) - 1
        ]

    def __str__(self) -> str:
        return (
            f"p50 {self.quantile(0.5):.1f} ms, p99 {self.quantile(0.99):.1f} ms "
            f"({len(self.millis)} GETs{f', {self.failed} failed' if self.failed else ''})"
        )


async def small_gets(
    session: aiohttp.ClientSession, base: str, rate: float, until: asyncio.Event
) -> Latencies:
    """GET the small String at rate a second, on schedule, until `until` is set."""
    url = f"{base}/case-instance/{SMALL_CASE}/variables/{SMALL_NAME}"
    millis: list[float] = []
    failed = 0

    async def one() -> None:
        nonlocal failed
        started = time.perf_counter()
        try:
            async with session.get(url) as response:
                await response.read()
                ok = response.status == 200
        except aiohttp.ClientError:
            ok = False
        if ok:
            millis.append((time.perf_counter() - started) * 1000)
        else:
            failed += 1

    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter()
    sent = 0
    while not until.is_set():
        tasks.append(asyncio.create_task(one()))
        sent += 1
        delay = start + sent / rate - time.perf_counter()
        if delay > 0:
            # Wakes at the next tick, or as soon as the phase ends.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), delay)
    await asyncio.gather(*tasks)
    return Latencies(millis, failed)


async def with_small_gets(base: str, rate: float, work: Awaitable[Any]) -> tuple[Any, Latencies]:
    """work's result, and the small GETs sent while it ran."""
    done = asyncio.Event()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        gets = asyncio.create_task(small_gets(session, base, rate, done))
        try:
            result = await work
        finally:
            done.set()
        return result, await gets


async def quiet(seconds: float) -> None:
    await asyncio.sleep(seconds)


def new_upload_session() -> aiohttp.ClientSession:
    """A session of its own per phase, closed before the next RSS is read (kept-alive
    connections hold the service's buffers for them)."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=None, sock_read=600),
        connector=aiohttp.TCPConnector(limit=0),
    )


async def service_uploads(base: str, clients: int, size: int) -> float:
    """Seconds for `clients` uploads of size bytes at once through POST .../data."""
    async with new_upload_session() as session:

        async def one(number: int) -> None:
            async with session.post(
                f"{base}/case-instance/concurrent-{number}/variables/value/data",
                data=form_body(size),
                headers={
                    "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                    "Content-Length": str(form_length(size)),
                },
            ) as response:
                assert response.status == 204, await response.text()

        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(clients)))
        return time.perf_counter() - started


async def direct_uploads(s3: dict[str, Any], clients: int, size: int) -> float:
    """Seconds for `clients` uploads of size bytes at once straight to S3, each by an
    aiobotocore client of its own (as `clients` programs would), made before the clock
    starts."""
    async with contextlib.AsyncExitStack() as stack:
        s3_clients = [await stack.enter_async_context(direct_client(s3)) for _ in range(clients)]
        keys = [f"direct/concurrent-{n}" for n in range(clients)]
        started = time.perf_counter()
        await asyncio.gather(
            *(
                direct_upload(client, s3["bucket"], key, size)
                for client, key in zip(s3_clients, keys, strict=True)
            )
        )
        seconds = time.perf_counter() - started
        for key in keys:
            await s3_clients[0].delete_object(Bucket=s3["bucket"], Key=key)
    return seconds


@dataclasses.dataclass
class Round:
    service_seconds: float = 0.0
    direct_seconds: float = 0.0
    cpu_per_gib: float = 0.0
    rss_before: int = 0
    rss_peak: int = 0
    quiet: Latencies = Latencies([], 0)
    during_service: Latencies = Latencies([], 0)
    during_direct: Latencies = Latencies([], 0)

    @property
    def rss_growth(self) -> int:
        return self.rss_peak - self.rss_before


@dataclasses.dataclass(frozen=True)
class Setup:
    base: str
    pid: int
    s3: dict[str, Any]
    clients: int
    size: int
    rate: float
    quiet_seconds: float


async def run_round(setup: Setup, service_first: bool) -> Round:
    result = Round()
    await asyncio.sleep(SETTLE_SECONDS)
    _, result.quiet = await with_small_gets(setup.base, setup.rate, quiet(setup.quiet_seconds))

    async def through_service() -> None:
        await asyncio.sleep(SETTLE_SECONDS)
        result.rss_before = rss_bytes(setup.pid)
        cpu_before = cpu_seconds(setup.pid)
        with RssSampler(setup.pid) as sampler:
            result.service_seconds, result.during_service = await with_small_gets(
                setup.base, setup.rate, service_uploads(setup.base, setup.clients, setup.size)
            )
            result.rss_peak = sampler.peak
        gib = setup.clients * setup.size / GIB
        result.cpu_per_gib = (cpu_seconds(setup.pid) - cpu_before) / gib

    async def straight() -> None:
        result.direct_seconds, result.during_direct = await with_small_gets(
            setup.base, setup.rate, direct_uploads(setup.s3, setup.clients, setup.size)
        )

    phases: list[Callable[[], Awaitable[None]]] = [through_service, straight]
    for phase in phases if service_first else reversed(phases):
        await phase()
    return result


async def prepare(base: str, clients: int) -> None:
    """The case instances the uploads go to, and the small String the GETs read."""
    async with aiohttp.ClientSession() as session:
        for case_id in [SMALL_CASE, *(f"concurrent-{n}" for n in range(clients))]:
            async with session.put(f"{base}/case-instance/{case_id}") as response:
                assert response.status in {200, 201}, await response.text()
        async with session.put(
            f"{base}/case-instance/{SMALL_CASE}/variables/{SMALL_NAME}",
            data=orjson.dumps({"value": "hello", "type": "String"}),
            headers={"Content-Type": "application/json"},
        ) as response:
            assert response.status == 204, await response.text()


def buffer_bound(clients: int, settings: Settings) -> int:
    """What the part buffers of `clients` concurrent uploads may hold at most."""
    per_upload = (settings.s3_parts_in_flight + 1) * settings.s3_part_size
    return min(clients * per_upload, settings.memory_budget_bytes)


def report_round(number: int, run: Round, total: int, bound: int) -> None:
    service, direct = total / run.service_seconds / 1e6, total / run.direct_seconds / 1e6
    print(
        f"round {number}: service {service:.0f} MB/s, direct {direct:.0f} MB/s, ratio "
        f"{service / direct:.2f}; service CPU {run.cpu_per_gib:.2f} s per GiB; RSS growth "
        f"{run.rss_growth / MIB:.0f} MiB (buffers at most {bound / MIB:.0f} MiB); "
        f"load average {loadavg()}",
        flush=True,
    )
    print(f"  small GETs quiet:           {run.quiet}")
    print(f"  small GETs during service:  {run.during_service}")
    print(f"  small GETs during direct:   {run.during_direct}", flush=True)


def report_medians(rounds: list[Round], total: int, bound: int, clients: int) -> None:
    def mid(values: list[float]) -> float:
        return statistics.median(values)

    service = mid([total / r.service_seconds / 1e6 for r in rounds])
    direct = mid([total / r.direct_seconds / 1e6 for r in rounds])
    ratios = [r.direct_seconds / r.service_seconds for r in rounds]
    growth = mid([r.rss_growth for r in rounds])
    print(
        f"medians of {len(rounds)} rounds: service {service:.0f} MB/s, direct {direct:.0f} "
        f"MB/s, ratio {mid(ratios):.2f} (rounds: {' '.join(f'{x:.2f}' for x in ratios)}); "
        f"service CPU {mid([r.cpu_per_gib for r in rounds]):.2f} s per GiB"
    )
    print(
        f"  service RSS growth {growth / MIB:.0f} MiB (rounds: "
        + " ".join(f"{r.rss_growth / MIB:.0f}" for r in rounds)
        + f"), part buffers at most {bound / MIB:.0f} MiB: "
        f"{(growth - bound) / MIB / clients:+.1f} MiB per upload beside them"
    )
    for label, phases in (
        ("quiet", [r.quiet for r in rounds]),
        ("during service uploads", [r.during_service for r in rounds]),
        ("during direct uploads", [r.during_direct for r in rounds]),
    ):
        p50 = mid([latencies.quantile(0.5) for latencies in phases])
        p99 = mid([latencies.quantile(0.99) for latencies in phases])
        print(f"  small GETs {label}: p50 {p50:.1f} ms, p99 {p99:.1f} ms")


def service_settings(arguments: argparse.Namespace) -> tuple[dict[str, str], Settings]:
    """The CASEVARS_* variables to start the service with, and the settings they mean."""
    env: dict[str, str] = {}
    fields: dict[str, Any] = {}
    if arguments.part_size:
        env["CASEVARS_S3_PART_SIZE"] = arguments.part_size
        fields["s3_part_size"] = parse_size(arguments.part_size)
    if arguments.parts_in_flight:
        env["CASEVARS_S3_PARTS_IN_FLIGHT"] = str(arguments.parts_in_flight)
        fields["s3_parts_in_flight"] = arguments.parts_in_flight
    if arguments.budget:
        env["CASEVARS_MEMORY_BUDGET_BYTES"] = arguments.budget
        fields["memory_budget_bytes"] = parse_size(arguments.budget)
    return env, dataclasses.replace(Settings(), **fields)


async def main(arguments: argparse.Namespace) -> None:
    env, settings = service_settings(arguments)
    clients, size = arguments.clients, arguments.mib * MIB
    total = clients * size
    bound = buffer_bound(clients, settings)
    async with embedded_service(**env) as service:
        pid = service.process.pid
        s3 = orjson.loads((service.data_dir / "embedded.json").read_bytes())["s3"]
        await prepare(service.base, clients)
        await asyncio.sleep(2)
        print(
            f"{clients} clients x {arguments.mib} MiB; part size "
            f"{settings.s3_part_size / MIB:.0f} MiB, {settings.s3_parts_in_flight} in flight, "
            f"budget {settings.memory_budget_bytes / MIB:.0f} MiB; service idle RSS "
            f"{rss_bytes(pid) / MIB:.0f} MiB; small GETs at {arguments.rate:g}/s; "
            f"load average {loadavg()}",
            flush=True,
        )
        setup = Setup(service.base, pid, s3, clients, size, arguments.rate, arguments.quiet_seconds)
        rounds = []
        for number in range(arguments.rounds):
            rounds.append(await run_round(setup, service_first=number % 2 == 0))
            report_round(number + 1, rounds[-1], total, bound)
        report_medians(rounds, total, bound, clients)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="uploads at once")
    parser.add_argument("--mib", type=int, default=256, help="size of each upload")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (at least 2)")
    parser.add_argument("--rate", type=float, default=20.0, help="small GETs a second")
    parser.add_argument("--quiet-seconds", type=float, default=10.0)
    parser.add_argument("--part-size", help="CASEVARS_S3_PART_SIZE (default: the service's)")
    parser.add_argument("--parts-in-flight", type=int, help="CASEVARS_S3_PARTS_IN_FLIGHT")
    parser.add_argument("--budget", help="CASEVARS_MEMORY_BUDGET_BYTES")
    options = parser.parse_args()
    if options.rounds < 2:
        parser.error("--rounds: at least 2, so that each path goes first once")
    asyncio.run(main(options))
