"""Where the service's CPU goes during an upload, by kind of work, as perf samples it.

Starts `casevars serve` on its embedded default (a fresh data folder), uploads one
generated value of each size through POST .../data as benchmarks/upload.py does, with
`perf record` sampling every thread of the service process, kernel included, and prints
the service's CPU-s per GiB uploaded (from /proc) split by what perf saw running: the
SHA-256 (libcrypto), the search for the multipart delimiter (CPython's string search),
the kernel's copies between sockets and the part buffers, the rest of the kernel (TCP
over loopback, syscalls, scheduling), the Python interpreter, libc. The first three and
the kernel's rest are what any implementation in this design pays; the interpreter's
share is what is left to cut.

    .venv/bin/python benchmarks/cpu_breakdown.py                # 1 GiB
    .venv/bin/python benchmarks/cpu_breakdown.py --sizes 1024 4096

Needs perf (Debian: apt-get install linux-perf) and the right to record another process
(root, or kernel.perf_event_paranoid at most 1). Sampling costs the service a little, so
the CPU figure is a notch above benchmarks/upload.py's.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import aiohttp
from upload import GIB, MIB, embedded_service, measured, service_upload

# Samples per second per thread.
FREQUENCY = 999

# What each line of perf's report (shared object, symbol) is counted as, first match
# wins: (kind, shared objects it is in, symbol names it contains; empty: any).
KINDS: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    ("SHA-256 (libcrypto)", ("libcrypto",), ()),
    (
        "delimiter search (CPython's string search)",
        ("libpython",),
        ("two_way", "fastsearch", "default_find", "mmap_gfind"),
    ),
    (
        "kernel: copies to and from sockets",
        ("[kernel",),
        ("copy_from_iter", "copy_to_iter", "copy_user", "memcpy"),
    ),
    ("kernel: the rest (TCP over loopback, syscalls, scheduling)", ("[kernel",), ()),
    ("Python interpreter and extension modules", ("libpython", ".cpython-", "python3"), ()),
    ("libc (memmove, malloc)", ("libc.so", "libm.so"), ()),
]
OTHER = "other"


def kind_of(shared_object: str, symbol: str) -> str:
    for kind, objects, symbols in KINDS:
        if any(name in shared_object for name in objects) and (
            not symbols or any(name in symbol for name in symbols)
        ):
            return kind
    return OTHER


def shares(report: str) -> dict[str, float]:
    """The share of the samples of each kind, from `perf report -t '|'` lines
    ("  9.29%  |libpython3.11.so.1.0  |[.] stringlib__two_way")."""
    totals: dict[str, float] = collections.defaultdict(float)
    for line in report.splitlines():
        fields = [field.strip() for field in line.split("|")]
        if len(fields) != 3 or not fields[0].endswith("%"):
            continue
        totals[kind_of(fields[1], fields[2])] += float(fields[0].rstrip("%")) / 100
    whole = sum(totals.values()) or 1.0
    return {kind: share / whole for kind, share in totals.items()}


def perf_report(data: Path) -> str:
    return subprocess.run(
        [
            *("perf", "report", "-i", str(data), "--no-children", "--sort", "dso,sym"),
            *("--stdio", "-q", "-g", "none", "-t", "|"),
        ],
        capture_output=True,
        check=True,
        text=True,
    ).stdout


async def main(sizes_mib: list[int]) -> None:
    if shutil.which("perf") is None:
        raise SystemExit("perf is not installed (Debian: apt-get install linux-perf)")
    folder = Path(tempfile.mkdtemp(prefix="casevars-perf-"))
    async with embedded_service() as started:
        pid = started.process.pid
        timeout = aiohttp.ClientTimeout(total=None, sock_read=600)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for size_mib in sizes_mib:
                size, data = size_mib * MIB, folder / f"upload-{size_mib}MiB.perf.data"
                recorder = subprocess.Popen(
                    ["perf", "record", "-F", str(FREQUENCY), "-p", str(pid), "-o", str(data)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                await asyncio.sleep(1)  # attached
                upload = functools.partial(service_upload, session, started.base, size)
                run = await measured(pid, upload)
                recorder.send_signal(signal.SIGINT)
                recorder.wait(60)
                per_gib = run.cpu_seconds / (size / GIB)
                print(
                    f"{size_mib}Mi upload under perf: {size / MIB / run.timed.seconds:.1f} MiB/s, "
                    f"service CPU per GiB uploaded: {per_gib:.2f} s ({data}):"
                )
                for kind, share in sorted(shares(perf_report(data)).items(), key=lambda k: -k[1]):
                    print(f"{'':>4} {share * per_gib:5.2f} s  {share:6.1%}  {kind}")
    print(f"perf data kept in {folder}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024], help="MiB")
    asyncio.run(main(parser.parse_args().sizes))
