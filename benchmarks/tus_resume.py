"""A large File uploaded by the real tus clients, tuspy and tus-js-client, through a
loopback proxy that cuts the connection twice, each client resuming by itself, against
`casevars serve` on its embedded default (a fresh data folder).

One file of --size bytes is written to a temporary folder once. Each client uploads it
through tests/faultproxy.py's FaultProxy, which forwards the client's bytes up to a
seeded random point, holds them there (a second for the service to read what
arrived), then resets every connection and lets new ones through: tuspy goes on by its
retries (HEAD, then PATCH from the offset it was given), tus-js-client by its
retryDelays (tests/clients/tus_upload.js, the scenario tests/test_tus_clients.py
runs). The value is then read back through GET .../data and its SHA-256 compared with
the file's, with ETag and Repr-Digest. Prints per client the two cut points (counted
in client bytes through the proxy: the creation request and the request heads come
first), the offsets the service gave at the client's HEADs, the seconds from the
creation to the end (the retry waits included), MB/s, OK or FAIL, and the load average.

    .venv/bin/python benchmarks/tus_resume.py                   # 4 GiB, both clients
    .venv/bin/python benchmarks/tus_resume.py --size 256 --seed 7  # MiB; the cut points' seed
    .venv/bin/python benchmarks/tus_resume.py --clients tuspy   # one client
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).parents[1]))  # the tests package, for its helpers

from put_resume import write_file
from tusclient.client import TusClient
from upload import embedded_service, loadavg

from tests.faultproxy import FaultProxy
from tests.npm import CLIENTS, last_json, run_node
from tests.tus import TUS_JS, JsUpload, Sha256Uploader, put_case, tus_js_modules, uploads_url

MIB = 1024 * 1024
METADATA = {"filename": "large.bin", "filetype": "application/octet-stream"}
# The service reads what the proxy forwarded before the cut resets the connection
# (a reset discards what it had not read yet).
SETTLE_SECONDS = 1.0
# Each client waits this long before its first retry: the service has stored what
# it received by then.
TUSPY_RETRIES = 8
TUSPY_RETRY_DELAY_SECONDS = 2
JS_RETRY_DELAYS = [2000, 3000, 5000, 5000, 10000]
# tuspy reads each PATCH's bytes into memory (and a failed PATCH's stay referenced
# from the exception while it retries): PATCHes of this many MiB, not its default of
# the whole file.
TUSPY_CHUNK_MIB = 256
# The slowest rate at which an upload is still waited for.
SLOWEST_BYTES_PER_SECOND = 5 * MIB


@dataclasses.dataclass
class Outcome:
    cuts: list[int]  # client bytes through the proxy at each cut
    resumed_at: list[int | None]  # the Upload-Offset of each HEAD the client sent
    seconds: float
    verdict: str  # OK, or FAIL and why


def cut_points(rng: random.Random, size: int) -> list[int]:
    """Two points: the first in the first half, the second at least a tenth later."""
    first = rng.randint(size // 10, size // 2)
    return [first, rng.randint(first + size // 10, size * 9 // 10)]


async def cut_twice(proxy: FaultProxy, cuts: list[int], timeout: float) -> None:
    """Hold the client's bytes at each cut point, then reset its connections; the
    second point counts on from the first."""
    counted = 0
    for cut in cuts:
        proxy.freeze_after(cut - counted)
        counted = cut
        await asyncio.wait_for(proxy.frozen.wait(), timeout)
        await asyncio.sleep(SETTLE_SECONDS)
        await proxy.cut()
        proxy.thaw()
        proxy.restore()


def tuspy_upload(path: Path, url: str) -> list[int]:
    """tuspy uploads the file to its end, retrying after each cut (in a thread: tuspy
    blocks); the offsets it asked for."""
    uploader = Sha256Uploader(
        file_path=str(path),
        client=TusClient(url),
        metadata=METADATA,
        chunk_size=TUSPY_CHUNK_MIB * MIB,
        retries=TUSPY_RETRIES,
        retry_delay=TUSPY_RETRY_DELAY_SECONDS,
    )
    uploader.upload()
    return uploader.asked


async def by_tuspy(path: Path, url: str, timeout: float) -> list[int | None]:
    return list(await asyncio.wait_for(asyncio.to_thread(tuspy_upload, path, url), timeout))


async def by_tus_js(path: Path, url: str, timeout: float) -> list[int | None]:
    scenario = {
        "endpoint": url,
        "file": str(path),
        "metadata": METADATA,
        "retryDelays": JS_RETRY_DELAYS,
    }
    status, lines, err = await run_node(
        CLIENTS / "tus_upload.js",
        tus_js_modules(),
        TUS_JS,
        {"CASEVARS_TUS": json.dumps(scenario)},
        timeout,
    )
    done = JsUpload(status, last_json(lines, err), err)
    if status != 0:
        raise RuntimeError(f"tus-js-client failed ({status}): {done.result}")
    return done.offsets_of("HEAD")


async def read_back(
    session: aiohttp.ClientSession, base: str, case_id: str, name: str, expected: bytes
) -> str:
    """GET the value streamed through SHA-256: OK, or FAIL and what differs."""
    digest, size = hashlib.sha256(), 0
    async with session.get(f"{base}/case-instance/{case_id}/variables/{name}/data") as response:
        if response.status != 200:
            return f"FAIL: GET .../data answered {response.status}"
        async for chunk in response.content.iter_chunked(MIB):
            digest.update(chunk)
            size += len(chunk)
        etag, repr_digest = response.headers.get("ETag"), response.headers.get("Repr-Digest")
    wrong = []
    if digest.digest() != expected:
        wrong.append(f"the value read back ({size} bytes) differs from the file")
    if etag != f'"{expected.hex()}"':
        wrong.append(f"ETag {etag}")
    if repr_digest != f"sha-256=:{base64.b64encode(expected).decode()}:":
        wrong.append(f"Repr-Digest {repr_digest}")
    return "FAIL: " + "; ".join(wrong) if wrong else "OK (byte-identical, ETag, Repr-Digest)"


Client = Callable[[Path, str, float], Coroutine[None, None, list[int | None]]]
CLIENT_RUNS: dict[str, Client] = {"tuspy": by_tuspy, "tus-js-client": by_tus_js}


@dataclasses.dataclass(frozen=True)
class Rig:
    """The service, the proxy the clients are given, and the file they upload."""

    session: aiohttp.ClientSession
    service_base: str
    proxy: FaultProxy
    source: Path
    expected: bytes  # the file's SHA-256


async def one_client(rig: Rig, name: str, cuts: list[int]) -> Outcome:
    session, service_base, proxy, source = rig.session, rig.service_base, rig.proxy, rig.source
    size = source.stat().st_size
    case_id = f"bench-tus-{name}-{size // MIB}"
    await put_case(session, service_base, case_id)
    url = uploads_url(f"http://127.0.0.1:{proxy.port}", case_id, "large")
    timeout = 60 + size / SLOWEST_BYTES_PER_SECOND
    started = time.perf_counter()
    uploading = asyncio.create_task(CLIENT_RUNS[name](source, url, timeout))
    cutting = asyncio.create_task(cut_twice(proxy, cuts, timeout))
    try:
        asked = await uploading
        seconds = time.perf_counter() - started
    except Exception as error:  # noqa: BLE001  the run reports it as FAIL
        cutting.cancel()
        return Outcome(cuts, [], time.perf_counter() - started, f"FAIL: {error!r}")
    if not cutting.done():
        cutting.cancel()
        return Outcome(cuts, asked, seconds, "FAIL: the upload ended before both cuts")
    cutting.result()
    verdict = await read_back(session, service_base, case_id, "large", rig.expected)
    return Outcome(cuts, asked, seconds, verdict)


def report(name: str, size: int, outcome: Outcome) -> str:
    cuts = ", ".join(f"{cut:,} ({cut / MIB:.1f} MiB)" for cut in outcome.cuts)
    resumed = ", ".join("-" if at is None else f"{at:,}" for at in outcome.resumed_at)
    return (
        f"{name}: {size // MIB} MiB cut at client bytes {cuts}; HEADs answered {resumed}; "
        f"{outcome.seconds:.1f} s, {size / outcome.seconds / 1e6:.1f} MB/s: {outcome.verdict}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=4096, metavar="MiB")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument(
        "--clients", nargs="+", choices=list(CLIENT_RUNS), default=list(CLIENT_RUNS)
    )
    arguments = parser.parse_args()
    size = arguments.size * MIB
    rng = random.Random(arguments.seed)
    print(f"seed {arguments.seed}, load average {loadavg()}", flush=True)
    failed = False
    with tempfile.TemporaryDirectory(prefix="casevars-tus-") as folder:
        source = Path(folder) / "large.bin"
        written = time.perf_counter()
        expected = await asyncio.to_thread(write_file, source, size)
        print(f"wrote {size // MIB} MiB in {time.perf_counter() - written:.1f} s", flush=True)
        async with embedded_service() as service, aiohttp.ClientSession() as session:
            proxy = FaultProxy("127.0.0.1", int(service.base.rsplit(":", 1)[1]))
            await proxy.start()
            rig = Rig(session, service.base, proxy, source, expected)
            try:
                for name in arguments.clients:
                    outcome = await one_client(rig, name, cut_points(rng, size))
                    failed |= not outcome.verdict.startswith("OK")
                    print(report(name, size, outcome), f"(load average {loadavg()})", flush=True)
            finally:
                with contextlib.suppress(Exception):
                    await proxy.close()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    asyncio.run(main())
