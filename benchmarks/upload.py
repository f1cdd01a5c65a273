"""Upload and download throughput, CPU and memory of casevars against the same S3 directly.

Starts `casevars serve` on its embedded default (a fresh data folder), streams generated
values of each size through POST .../data (each service upload followed by one straight
to the same SeaweedFS with aiobotocore, then by the same value as a resumable upload
(tus) in each PATCH size asked for, --runs times, medians printed), then back through
GET .../data (checking the SHA-256) and straight from S3 (the best of three runs of each
path, the paths alternating). Prints MB/s, the service/direct and resumable/POST
ratios, the service process's CPU-s per GiB (from /proc: the robust figure on a loaded
machine, where ratios are noisy) and its RSS growth during each upload, the time from
an upload's last byte sent to its answer (where the end-of-upload work shows: the last
part, CompleteMultipartUpload, the SHA-256's digest, the commit), what the resumable
SHA-256 (service/storage/sha256state.py) costs in this process, and the load average.

    .venv/bin/python benchmarks/upload.py              # 1 GiB and 4 GiB
    .venv/bin/python benchmarks/upload.py --sizes 256  # sizes in MiB
    .venv/bin/python benchmarks/upload.py --patch-sizes 0 64  # tus PATCHes (MiB; 0:
        # one PATCH for the whole value, tuspy's and tus-js-client's default; the default)
    .venv/bin/python benchmarks/upload.py --patch-sizes  # no resumable uploads
    .venv/bin/python benchmarks/upload.py --no-splice  # downloads through Python
    .venv/bin/python benchmarks/upload.py --sizes 1024 --no-downloads --profile /tmp/prof
        # and one more upload per size recorded by py-spy (native frames, 200 Hz)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import dataclasses
import functools
import hashlib
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
from typing import Any, Self

import aiobotocore.session
import aiohttp
import orjson
from aiobotocore.config import AioConfig

from service.storage.blobstore import _PartBody
from service.storage.sha256state import ResumableSha256

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
# Innermost frames of a profile printed.
PROFILE_FRAMES = 8
TUS = {"Tus-Resumable": "1.0.0"}
# PATCH sizes (MiB) of the resumable runs: 0 is one PATCH for the whole value, what
# tuspy and tus-js-client send unless told otherwise; 64 MiB a chunked client.
DEFAULT_PATCH_MIB = [0, 64]
# Bytes the resumable SHA-256 is timed on in this process, and checkpoints timed.
HASH_SAMPLE = 256 * MIB
HASH_CHECKPOINTS = 10_000
HASH_PART = 8 * MIB


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


async def value_chunks(size: int, start: int = 0) -> AsyncIterator[bytes]:
    """The bytes of the generated value of `size` bytes from `start` on (byte p is
    BLOCK[p % MIB]), in chunks of at most CHUNK."""
    view = memoryview(BLOCK)
    position = start
    while position < size:
        within = position % MIB
        take = min(CHUNK - within % CHUNK, size - position)
        yield bytes(view[within : within + take])
        position += take


class LastByte:
    """Wraps a request body; `at` is when its last chunk had been handed on."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self.at = 0.0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._chunks:
            yield chunk
        self.at = time.perf_counter()


FORM_HEAD = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="data"\r\n'
    "Content-Type: application/octet-stream\r\n\r\n"
).encode()
FORM_TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()


def form_length(size: int) -> int:
    """The form's length: sent as Content-Length, as clients uploading a file do."""
    return len(FORM_HEAD) + size + len(FORM_TAIL)


async def form_body(size: int) -> AsyncIterator[bytes]:
    yield FORM_HEAD
    async for chunk in value_chunks(size):
        yield chunk
    yield FORM_TAIL


async def download_sha256(response_chunks: AsyncIterator[bytes]) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    async for chunk in response_chunks:
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def value_url(base: str, size: int) -> str:
    return f"{base}/case-instance/bench-{size}/variables/value/data"


@dataclasses.dataclass(frozen=True)
class Timed:
    """One upload through the service."""

    seconds: float
    peak: int  # the service's peak RSS during the upload
    finish_seconds: float  # from the last body byte handed to the socket to the answer


async def service_upload(
    session: aiohttp.ClientSession, base: str, size: int, sampler: RssSampler
) -> Timed:
    """POST the value through casevars: seconds, the service's peak RSS meanwhile."""
    async with session.put(f"{base}/case-instance/bench-{size}") as response:
        assert response.status in {200, 201}
    with sampler:
        started = time.perf_counter()
        body = LastByte(form_body(size))
        async with session.post(
            value_url(base, size),
            data=body.__aiter__(),
            headers={
                "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                "Content-Length": str(form_length(size)),
            },
        ) as response:
            assert response.status == 204, await response.text()
            answered = time.perf_counter()
        return Timed(answered - started, sampler.peak, answered - body.at)


async def resumable_upload(
    session: aiohttp.ClientSession, base: str, size: int, patch: int, sampler: RssSampler
) -> Timed:
    """The value as a tus upload (creation, then PATCHes of `patch` bytes, 0 for one
    PATCH of everything), timed from the creation to the last PATCH's answer."""
    async with session.put(f"{base}/case-instance/bench-{size}") as response:
        assert response.status in {200, 201}
    filename = base64.b64encode(b"bench.bin").decode()
    with sampler:
        started = time.perf_counter()
        async with session.post(
            value_url(base, size).removesuffix("/data") + "/uploads",
            headers={**TUS, "Upload-Length": str(size), "Upload-Metadata": f"filename {filename}"},
        ) as response:
            assert response.status == 201, await response.text()
            location = response.headers["Location"]
        url = location if location.startswith("http") else base + location
        offset, step = 0, patch or size
        answered = finish = 0.0
        while offset < size:
            end = min(offset + step, size)
            body = LastByte(value_chunks(end, offset))
            async with session.patch(
                url,
                data=body.__aiter__(),
                headers={
                    **TUS,
                    "Content-Length": str(end - offset),
                    "Upload-Offset": str(offset),
                    "Content-Type": "application/offset+octet-stream",
                },
            ) as response:
                assert response.status == 204, await response.text()
                answered = time.perf_counter()
                offset = int(response.headers["Upload-Offset"])
            finish = answered - body.at
        return Timed(answered - started, sampler.peak, finish)


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


def median(values: list[float]) -> float:
    return statistics.median(values)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclasses.dataclass(frozen=True)
class Measured:
    """One upload through the service, with what it cost the service's process."""

    timed: Timed
    cpu_seconds: float
    peak_growth: int  # the peak RSS above the RSS just before the upload


async def measured(pid: int, upload: Callable[[RssSampler], Awaitable[Timed]]) -> Measured:
    before_rss = rss_bytes(pid)
    before_cpu = cpu_seconds(pid)
    timed = await upload(RssSampler(pid))
    return Measured(timed, cpu_seconds(pid) - before_cpu, timed.peak - before_rss)


@dataclasses.dataclass
class UploadRun:
    post: Measured
    direct_seconds: float
    resumable: dict[int, Measured]  # by PATCH size in bytes (0: one PATCH)


@dataclasses.dataclass(frozen=True)
class Paths:
    """The two ways to S3: through the service, and straight with aiobotocore."""

    session: aiohttp.ClientSession
    service: Service
    client: Any
    s3: dict[str, Any]


async def upload_runs(
    paths: Paths, size: int, runs: int, patch_sizes: list[int]
) -> list[UploadRun]:
    """`runs` uploads through the service, each followed by one straight to S3 and by
    one resumable upload per PATCH size, so that all paths see the same state of the
    (shared, loaded) machine."""
    session, service, client, s3 = paths.session, paths.service, paths.client, paths.s3
    pid, base = service.process.pid, service.base
    results = []
    for _ in range(runs):
        post = await measured(pid, lambda sampler: service_upload(session, base, size, sampler))
        key = f"direct/{size}"
        direct = await direct_upload(client, s3["bucket"], key, size)
        await client.delete_object(Bucket=s3["bucket"], Key=key)
        resumable = {}
        for patch in patch_sizes:
            upload = functools.partial(resumable_upload, session, base, size, patch)
            resumable[patch] = await measured(pid, upload)
        results.append(UploadRun(post, direct, resumable))
    return results


async def download_runs(
    paths: Paths, size: int, expected: str
) -> tuple[list[float], list[float], float]:
    """Service and direct download times (alternating) and the service's CPU-s per GiB."""
    session, service, client, s3 = paths.session, paths.service, paths.client, paths.s3
    pid = service.process.pid
    key = f"direct/{size}"
    await direct_upload(client, s3["bucket"], key, size)
    downs, direct_downs = [], []
    cpu = 0.0
    for _ in range(DOWNLOAD_RUNS):
        before = cpu_seconds(pid)
        downs.append(await service_download(session, service.base, size, expected))
        cpu += cpu_seconds(pid) - before
        direct_downs.append(await direct_download(client, s3["bucket"], key, size, expected))
    await client.delete_object(Bucket=s3["bucket"], Key=key)
    return downs, direct_downs, cpu / (DOWNLOAD_RUNS * size / GIB)


# Stacks of threads that wait rather than run (py-spy samples a thread blocked in a C
# call as active): the child watcher, idle executor workers, the loop's epoll_wait.
WAITING_FRAMES = ("wait4 (", "_queue_SimpleQueue_get", "epoll_wait (")


def _frame_name(stack: list[str]) -> str:
    """The innermost frame, and for an unresolved address (inside libc) the named
    frame that called it."""
    innermost = stack[-1]
    if not innermost.startswith("0x"):
        return innermost
    callers = [frame for frame in stack if not frame.startswith("0x")]
    return f"{innermost.split(' ', 1)[-1]} under {callers[-1] if callers else '?'}"


def top_frames(raw: str, count: int) -> tuple[int, list[tuple[float, str]]]:
    """The frames that were running (innermost) in most busy samples of a py-spy raw
    (collapsed stacks) profile: the number of busy samples, and (share, frame)."""
    samples: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit() or any(w in stack for w in WAITING_FRAMES):
            continue
        samples[_frame_name(stack.split(";"))] += int(number)
        total += int(number)
    return total, [(n / max(total, 1), frame) for frame, n in samples.most_common(count)]


async def profiled_upload(
    session: aiohttp.ClientSession, service: Service, size: int, output: Path
) -> None:
    """One more upload with py-spy recording the service (native frames, 200 Hz); not
    counted in the figures: the sampling slows the process down."""
    command = [
        str(Path(sys.executable).with_name("py-spy")),
        *("record", "--native", "--function", "--rate", "200", "--format", "raw"),
        *("--output", str(output), "--pid", str(service.process.pid)),
    ]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    await asyncio.sleep(1)  # attached
    await service_upload(session, service.base, size, RssSampler(service.process.pid))
    spy.send_signal(signal.SIGINT)
    _, errors = spy.communicate(timeout=60)
    if not output.exists():
        raise SystemExit(f"py-spy wrote no profile: {errors.decode(errors='replace')}")
    busy, frames = top_frames(output.read_text(), PROFILE_FRAMES)
    print(
        f"{'':>8} profile of one {size // MIB} MiB upload: {output}; {busy} busy samples, "
        "innermost frames:"
    )
    for share, frame in frames:
        print(f"{'':>10} {share:6.1%}  {frame}")


def hash_costs() -> str:
    """What the resumable SHA-256 costs here: CPU-s per GiB hashed (done while the
    bytes arrive, one part at a time), a checkpoint (save, restore), the digest at the
    end of an upload."""
    # Writable, as the service's part buffers are (a read-only buffer is copied first),
    # and hashed one part (the default 8 MiB) at a time, as the service does.
    block = bytearray(BLOCK * (HASH_SAMPLE // MIB))
    view = memoryview(block)
    state = ResumableSha256()
    started = time.process_time()
    for start in range(0, HASH_SAMPLE, HASH_PART):
        state.update(view[start : start + HASH_PART])
    per_gib = (time.process_time() - started) * GIB / HASH_SAMPLE
    started = time.process_time()
    plain = hashlib.sha256(block)
    hashlib_per_gib = (time.process_time() - started) * GIB / HASH_SAMPLE
    assert state.digest() == plain.digest()
    started = time.perf_counter()
    for _ in range(HASH_CHECKPOINTS):
        state = ResumableSha256.restore(state.save(), length=HASH_SAMPLE)
    checkpoint = (time.perf_counter() - started) / HASH_CHECKPOINTS
    started = time.perf_counter()
    for _ in range(HASH_CHECKPOINTS):
        state.digest()
    digest = (time.perf_counter() - started) / HASH_CHECKPOINTS
    return (
        f"resumable SHA-256 in this process: {per_gib:.2f} CPU-s per GiB hashed (as parts "
        f"arrive; hashlib's {hashlib_per_gib:.2f}), save+restore {checkpoint * 1e6:.1f} us "
        "per checkpoint, digest at the end "
        f"{digest * 1e6:.1f} us (state {len(state.save())} bytes)"
    )


def upload_lines(size_mib: int, runs: list[UploadRun], patch_sizes: list[int]) -> list[str]:
    """The printed figures of one size's upload runs."""
    size = size_mib * MIB
    gib = size / GIB
    posts = [run.post for run in runs]
    up = mb_per_s(size, median([m.timed.seconds for m in posts]))
    direct = mb_per_s(size, median([run.direct_seconds for run in runs]))
    lines = [
        (
            f"{size_mib:>6}Mi upload, median of {len(runs)} alternating runs: service "
            f"{up:.1f} MB/s, direct {direct:.1f} MB/s, ratio {up / direct:.2f} (runs: "
            f"{' '.join(f'{r.direct_seconds / r.post.timed.seconds:.2f}' for r in runs)}); "
            f"load average {loadavg()}"
        ),
        f"{'':>8} service CPU per GiB uploaded: {cost_line(posts, gib)}",
    ]
    finishes = [f"POST {median([m.timed.finish_seconds for m in posts]) * 1000:.0f}"]
    for patch in patch_sizes:
        tus = [run.resumable[patch] for run in runs]
        speed = mb_per_s(size, median([m.timed.seconds for m in tus]))
        ratios = " ".join(
            f"{r.post.timed.seconds / r.resumable[patch].timed.seconds:.2f}" for r in runs
        )
        label = patch_label(patch)
        lines += [
            (
                f"{'':>8} resumable (tus), {label}: {speed:.1f} MB/s, ratio to the POST "
                f"{speed / up:.2f} (runs: {ratios})"
            ),
            f"{'':>10} service CPU per GiB uploaded: {cost_line(tus, gib)}",
        ]
        finishes.append(f"tus {label} {median([m.timed.finish_seconds for m in tus]) * 1000:.0f}")
    lines.append(
        f"{'':>8} end of upload, last byte sent to answer (median ms): " + ", ".join(finishes)
    )
    return lines


def patch_label(patch: int) -> str:
    return "one PATCH" if patch == 0 else f"{patch // MIB} MiB PATCHes"


def cost_line(runs: list[Measured], gib: float) -> str:
    return (
        f"{median([m.cpu_seconds for m in runs]) / gib:.2f} s (runs: "
        + " ".join(f"{m.cpu_seconds / gib:.2f}" for m in runs)
        + "); peak RSS growth during the upload: "
        + " ".join(f"{m.peak_growth / MIB:.1f}" for m in runs)
        + " MiB"
    )


@dataclasses.dataclass(frozen=True)
class Options:
    """What the command line asks for besides the sizes."""

    splice: bool
    runs: int
    downloads: bool
    profile: Path | None
    patch_sizes: list[int]  # bytes per tus PATCH, 0 for one PATCH


async def main(sizes_mib: list[int], options: Options) -> None:
    splice, runs, downloads = options.splice, options.runs, options.downloads
    profile, patch_sizes = options.profile, options.patch_sizes
    async with embedded_service(CASEVARS_SPLICE_DOWNLOADS=str(splice).lower()) as started:
        pid, data_dir = started.process.pid, started.data_dir
        await asyncio.sleep(2)
        idle = rss_bytes(pid)
        s3 = orjson.loads((data_dir / "embedded.json").read_bytes())["s3"]
        print(
            f"cold start to ready: {started.cold_start_seconds:.1f} s; service idle RSS "
            f"{idle / MIB:.1f} MiB; load average {loadavg()}"
        )
        if patch_sizes:
            print(hash_costs())
        timeout = aiohttp.ClientTimeout(total=None, sock_read=600)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            direct_client(s3) as client,
        ):
            paths = Paths(session, started, client, s3)
            for size_mib in sizes_mib:
                size = size_mib * MIB
                ups = await upload_runs(paths, size, runs, patch_sizes)
                for line in upload_lines(size_mib, ups, patch_sizes):
                    print(line)
                peaks = [run.post.timed.peak for run in ups] + [
                    m.timed.peak for run in ups for m in run.resumable.values()
                ]
                print(
                    f"{'':>8} peak RSS above idle, all uploads: {(max(peaks) - idle) / MIB:.1f} MiB"
                )
                if downloads:
                    _, expected = generated(size)
                    downs, direct_downs, cpu_per_gib = await download_runs(paths, size, expected)
                    down, direct_down = (
                        mb_per_s(size, min(downs)),
                        mb_per_s(size, min(direct_downs)),
                    )
                    print(
                        f"{'':>8} download, best of {DOWNLOAD_RUNS} alternating: service "
                        f"{down:.1f} MB/s, direct {direct_down:.1f} MB/s, ratio "
                        f"{down / direct_down:.2f}; service CPU per GiB downloaded: "
                        f"{cpu_per_gib:.2f} s"
                    )
                if profile is not None:
                    profile.mkdir(parents=True, exist_ok=True)
                    await profiled_upload(
                        session, started, size, profile / f"upload-{size_mib}MiB.txt"
                    )
        print(f"service RSS after: {rss_bytes(pid) / MIB:.1f} MiB (idle {idle / MIB:.1f})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096], help="MiB")
    parser.add_argument("--runs", type=int, default=3, help="upload runs per path and size")
    parser.add_argument(
        "--no-splice",
        action="store_true",
        help="downloads through Python (CASEVARS_SPLICE_DOWNLOADS=false), to compare",
    )
    parser.add_argument("--no-downloads", action="store_true", help="uploads only")
    parser.add_argument(
        "--patch-sizes",
        type=int,
        nargs="*",
        default=DEFAULT_PATCH_MIB,
        help="MiB per tus PATCH of the resumable runs, 0 for one PATCH of the whole value "
        "(the tus clients' default); none: no resumable runs",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="after the timed runs, one more upload per size recorded by py-spy into DIR "
        "(needs py-spy in the venv: .venv/bin/pip install py-spy; root or ptrace rights)",
    )
    arguments = parser.parse_args()
    options = Options(
        splice=not arguments.no_splice,
        runs=arguments.runs,
        downloads=not arguments.no_downloads,
        profile=arguments.profile,
        patch_sizes=[mib * MIB for mib in arguments.patch_sizes],
    )
    asyncio.run(main(arguments.sizes, options))
