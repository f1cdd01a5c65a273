"""`casevars put` of a file above --resumable-above: the tus upload, run as a user runs
the command, against a real `casevars serve` on the test Postgres and S3, through a
FaultProxy that cuts its connections at a known byte of the PATCH body."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import os
import random
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from multidict import CIMultiDict

from service.cli.progress import PROGRESS_INTERVAL_SECONDS, Progress, format_size
from service.cli.resumable import EXIT_GAVE_UP
from tests.conftest import ROOT
from tests.faultproxy import FaultProxy
from tests.serving import Serve, serving
from tests.tus import base_of, new_case

pytestmark = pytest.mark.timeout(180)

MIB = 1024 * 1024
# Six parts of 5 MiB (tests/serving.py's part size) and a tail; the threshold far below.
SIZE = 30 * MIB + 4_321
THRESHOLD = "1MiB"
# The PATCH body is held here, past two full parts, when a test cuts the connection.
CUT = 12 * MIB + 777
FAST_RETRIES = ("--retry-delay", "0.1")
CLI_TIMEOUT_SECONDS = 120


@pytest.fixture
async def serve(endpoints, tmp_path) -> AsyncIterator[Serve]:
    async with serving(endpoints, tmp_path) as started:
        yield started


@pytest.fixture
async def proxy(serve: Serve) -> AsyncIterator[FaultProxy]:
    """The one address the command is given."""
    started = FaultProxy("127.0.0.1", serve.port)
    await started.start()
    try:
        yield started
    finally:
        await started.close()


def value_file(folder: Path, size: int = SIZE, name: str = "value.bin") -> Path:
    path = folder / name
    path.write_bytes(random.Random(size).randbytes(size))
    return path


def state_files(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "state" / "casevars" / "uploads"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def cli_env(tmp_path: Path, url: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "CASEVARS_URL": url,
    }


async def start_put(tmp_path: Path, url: str, *args: str) -> asyncio.subprocess.Process:
    """`casevars put` running (the test's loop keeps the proxy going meanwhile)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "put",
        "--resumable-above",
        THRESHOLD,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(tmp_path, url),
        cwd=ROOT,
    )


async def finished(process: asyncio.subprocess.Process) -> tuple[int, str, str]:
    out, err = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT_SECONDS)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def put(tmp_path: Path, url: str, *args: str) -> tuple[int, str, str]:
    return await finished(await start_put(tmp_path, url, *args))


def one_line_error(status: int, stderr: str) -> str:
    """A failure ends with one `casevars: ...` line on stderr, without a traceback."""
    assert status != 0, stderr
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    errors = [line for line in lines if line.startswith("casevars: ")]
    assert errors == lines[-1:], stderr
    return errors[0]


async def upload_offset(session: aiohttp.ClientSession, url: str) -> int:
    async with session.head(url, headers={"Tus-Resumable": "1.0.0"}) as response:
        assert response.status == 200, response.status
        return int(response.headers["Upload-Offset"])


async def settled_offset(session: aiohttp.ClientSession, url: str) -> int:
    """The offset once the service has stored what a cut PATCH brought (three answers
    in a row agree)."""
    offsets = [await upload_offset(session, url)]
    for _ in range(100):
        await asyncio.sleep(0.2)
        offsets.append(await upload_offset(session, url))
        if offsets[-1] > 0 and len(set(offsets[-3:])) == 1 and len(offsets) >= 3:
            return offsets[-1]
    pytest.fail(f"the offset did not settle: {offsets[-5:]}")


def patches(serve: Serve) -> list[dict[str, object]]:
    """The access log's PATCH requests, in order."""
    entries = []
    for line in serve.log.read_text().splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if entry.get("event") == "request" and entry.get("method") == "PATCH":
                entries.append(entry)
    return entries


async def assert_stored(
    session: aiohttp.ClientSession, serve: Serve, case_id: str, name: str, content: bytes
) -> CIMultiDict[str]:
    """The variable holds content, byte for byte, with its SHA-256 as ETag."""
    url = f"{base_of(serve.port)}/case-instance/{case_id}/variables/{name}/data"
    async with session.get(url) as response:
        body = await response.read()
        assert response.status == 200, body[:300]
        headers = response.headers.copy()
    assert len(body) == len(content)
    assert body == content
    assert headers["ETag"] == f'"{hashlib.sha256(content).hexdigest()}"'
    return headers


async def cut_at(proxy: FaultProxy, count: int) -> None:
    """Hold the connection after `count` more bytes from the command, then cut it."""
    proxy.freeze_after(count)
    await asyncio.wait_for(proxy.frozen.wait(), CLI_TIMEOUT_SECONDS)
    await proxy.cut()


async def reopen(proxy: FaultProxy) -> None:
    proxy.thaw()
    proxy.restore()


# --- the whole path ---------------------------------------------------------------


async def test_a_large_file_goes_resumable_and_comes_back_identical(
    serve, session, tmp_path
) -> None:
    case_id = await new_case(session, base_of(serve.port))
    source = value_file(tmp_path, name="scan.pdf")
    content = source.read_bytes()
    status, out, err = await put(
        tmp_path, base_of(serve.port), case_id, "scan", str(source), "--as-file"
    )
    assert status == 0, err
    sha256 = hashlib.sha256(content).hexdigest()
    assert out == f"stored {case_id}/scan: {SIZE} bytes, sha256 {sha256} (verified)\n"
    assert f"hashed {SIZE} bytes in " in err
    assert f"uploaded {SIZE} bytes in " in err
    assert "resumed" not in err
    headers = await assert_stored(session, serve, case_id, "scan", content)
    assert headers["Content-Type"] == "application/pdf"
    assert 'filename="scan.pdf"' in headers["Content-Disposition"]
    # One PATCH with the whole file; no multipart POST.
    [patch] = patches(serve)
    assert (patch["status"], patch["bytes_in"]) == (204, SIZE)
    assert state_files(tmp_path) == []

    # Below the threshold: the multipart POST, as before.
    small = value_file(tmp_path, 1000, name="small.bin")
    status, out, err = await put(tmp_path, base_of(serve.port), case_id, "small", str(small))
    assert status == 0, err
    assert "hashed" not in err
    assert len(patches(serve)) == 1
    await assert_stored(session, serve, case_id, "small", small.read_bytes())


async def test_a_cut_connection_is_resumed_at_the_services_offset(
    serve, proxy, session, tmp_path
) -> None:
    case_id = await new_case(session, base_of(serve.port))
    source = value_file(tmp_path)
    running = await start_put(
        tmp_path, base_of(proxy.port), case_id, "big", str(source), *FAST_RETRIES
    )
    # The creation request is small: the cut falls in the PATCH body, past two parts.
    await cut_at(proxy, CUT)
    await reopen(proxy)
    status, _, err = await finished(running)
    assert status == 0, err
    assert "the connection failed" in err
    assert "trying again in 0.1 s (retry 1 of 10)" in err
    # What the service holds counts once; what the cut lost is said apart.
    assert re.search(f"^uploaded {SIZE} bytes in .*, resumed at ", err, flags=re.MULTILINE)
    await assert_stored(session, serve, case_id, "big", source.read_bytes())
    # The service saw a PATCH start past 0: the last one brought only the rest.
    done = [entry for entry in patches(serve) if entry["status"] == 204]
    assert done, patches(serve)
    assert 0 < int(str(done[-1]["bytes_in"])) <= SIZE - 10 * MIB
    assert state_files(tmp_path) == []


async def test_put_resume_after_the_command_was_killed(serve, proxy, session, tmp_path) -> None:
    case_id = await new_case(session, base_of(serve.port))
    source = value_file(tmp_path)
    running = await start_put(tmp_path, base_of(proxy.port), case_id, "big", str(source))
    proxy.freeze_after(CUT)
    await asyncio.wait_for(proxy.frozen.wait(), CLI_TIMEOUT_SECONDS)
    running.send_signal(signal.SIGKILL)
    await running.wait()
    await proxy.cut()
    await reopen(proxy)

    [file] = state_files(tmp_path)
    state = json.loads(file.read_text())
    assert state["path"] == str(source)
    assert (state["size"], state["mtime_ns"]) == (SIZE, source.stat().st_mtime_ns)
    assert state["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    offset = await settled_offset(session, state["upload_url"])
    assert 10 * MIB <= offset <= CUT

    status, out, err = await put(
        tmp_path, base_of(proxy.port), case_id, "big", str(source), "--resume"
    )
    assert status == 0, err
    assert f"resumed at {format_size(offset)}" in err
    assert f"uploaded {SIZE - offset} bytes in " in err
    assert "(verified)" in out
    assert patches(serve)[-1]["bytes_in"] == SIZE - offset
    await assert_stored(session, serve, case_id, "big", source.read_bytes())
    assert state_files(tmp_path) == []

    # Nothing left to resume.
    status, _, err = await put(
        tmp_path, base_of(proxy.port), case_id, "big", str(source), "--resume"
    )
    assert "no unfinished upload of " in one_line_error(status, err)


async def test_the_retry_limit_stops_with_its_exit_status_and_keeps_the_upload(
    serve, proxy, session, tmp_path
) -> None:
    case_id = await new_case(session, base_of(serve.port))
    source = value_file(tmp_path)
    args = (case_id, "big", str(source), "--retries", "2", *FAST_RETRIES)
    running = await start_put(tmp_path, base_of(proxy.port), *args)
    await cut_at(proxy, CUT)  # and the proxy refuses every connection from now on
    status, _, err = await finished(running)
    assert status == EXIT_GAVE_UP
    line = one_line_error(status, err)
    assert line.startswith("casevars: gave up after 3 failed attempts in a row (")
    assert line.endswith("run the same command again to continue it with --resume")
    assert "trying again in 0.1 s (retry 1 of 2)" in err
    assert "trying again in 0.2 s (retry 2 of 2)" in err
    [file] = state_files(tmp_path)
    await reopen(proxy)

    # The file changed since: --resume refuses, and says what to do.
    kept = source.stat()
    os.utime(source, ns=(kept.st_atime_ns, kept.st_mtime_ns + 1_000_000_000))
    status, _, err = await put(tmp_path, base_of(proxy.port), *args, "--resume")
    assert "changed since its upload began" in (line := one_line_error(status, err))
    assert "run without --resume" in line
    with source.open("ab") as grown:
        grown.write(b"more")
    status, _, err = await put(tmp_path, base_of(proxy.port), *args, "--resume")
    assert f"({SIZE} bytes then, {SIZE + 4} now" in one_line_error(status, err)
    assert file.exists()

    # Back as it was: the upload goes on from the service's offset.
    with source.open("r+b") as shrunk:
        shrunk.truncate(SIZE)
    os.utime(source, ns=(kept.st_atime_ns, kept.st_mtime_ns))
    status, _, err = await put(tmp_path, base_of(proxy.port), *args, "--resume")
    assert status == 0, err
    assert "resumed at " in err
    await assert_stored(session, serve, case_id, "big", source.read_bytes())
    assert state_files(tmp_path) == []


async def test_a_put_without_resume_starts_over_and_drops_the_earlier_upload(
    serve, proxy, session, tmp_path
) -> None:
    case_id = await new_case(session, base_of(serve.port))
    source = value_file(tmp_path)
    args = (case_id, "big", str(source))
    running = await start_put(tmp_path, base_of(proxy.port), *args)
    proxy.freeze_after(CUT)
    await asyncio.wait_for(proxy.frozen.wait(), CLI_TIMEOUT_SECONDS)
    running.send_signal(signal.SIGINT)  # Ctrl-C
    status, _, err = await finished(running)
    assert status == 130
    assert one_line_error(status, err) == "casevars: interrupted"
    assert "the upload is kept: the same command with --resume continues it\n" in err
    [file] = state_files(tmp_path)
    earlier = json.loads(file.read_text())["upload_url"]
    await proxy.cut()
    await reopen(proxy)

    status, out, err = await put(tmp_path, base_of(proxy.port), *args)
    assert status == 0, err
    assert f"an earlier upload of {source} stopped at 0 B: starting over" in err
    assert "(verified)" in out
    await assert_stored(session, serve, case_id, "big", source.read_bytes())
    async with session.head(earlier, headers={"Tus-Resumable": "1.0.0"}) as response:
        assert response.status in {404, 410}
    assert state_files(tmp_path) == []


async def test_refusals(serve, session, tmp_path) -> None:
    case_id = await new_case(session, base_of(serve.port))
    source = value_file(tmp_path, 2 * MIB)
    url = base_of(serve.port)
    status, _, err = await put(tmp_path, url, case_id, "v", str(source), "--resume")
    line = one_line_error(status, err)
    assert line == (
        f"casevars: no unfinished upload of {source} to this variable is recorded "
        f"(in {tmp_path / 'state' / 'casevars' / 'uploads'}): run without --resume to upload it"
    )
    status, _, err = await put(tmp_path, url, case_id, "v", "-", "--resume")
    assert one_line_error(status, err) == "casevars: --resume needs FILE to be a file, not stdin"
    # The service's refusal of the creation, in its words; nothing kept.
    status, _, err = await put(tmp_path, url, "no-such-case", "v", str(source))
    assert "HTTP 404" in one_line_error(status, err)
    assert state_files(tmp_path) == []
    # Larger than the service takes (tests/serving.py: 1 GiB): refused before it is hashed.
    huge = tmp_path / "huge.bin"
    with huge.open("wb") as sparse:
        sparse.truncate(1024 * MIB + 1)
    status, _, err = await put(tmp_path, url, case_id, "v", str(huge))
    assert one_line_error(status, err) == (
        f"casevars: {huge} is {1024 * MIB + 1} bytes, larger than the {1024 * MIB} bytes the "
        "service takes (its Tus-Max-Size)"
    )
    assert "hashed" not in err
    for flag, value in [("--retries", "-1"), ("--retry-delay", "soon"), ("--resumable-above", "x")]:
        status, _, err = await put(tmp_path, url, case_id, "v", str(source), flag, value)
        assert status == 2
        assert f"argument {flag}: " in err


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_line_shows_where_it_resumed() -> None:
    terminal = FakeTerminal()
    progress = Progress("uploaded", 2 * 1024 * MIB, terminal)
    progress.resume_at(1229 * MIB)
    time.sleep(PROGRESS_INTERVAL_SECONDS * 1.5)
    progress.advance(MIB)
    line = terminal.getvalue()
    assert line.startswith("\ruploaded  [############--------]  1.2 GiB / 2.0 GiB   60%  ")
    assert "  resumed at 1.2 GiB  " in line
    # Only the bytes this run moved make the rate.
    assert progress.moved == MIB
    progress.note("the connection failed: trying again")
    assert terminal.getvalue().endswith("\x1b[K\nthe connection failed: trying again\n")
    plain = io.StringIO()
    resumed = Progress("uploaded", 10, plain, done=4)
    resumed.advance(6)
    resumed.finish()
    assert plain.getvalue().startswith("uploaded 6 bytes in ")
    assert plain.getvalue().endswith("/s), resumed at 4 B\n")
    # A cut lost 3 bytes that had been sent: they are sent again.
    cut = io.StringIO()
    again = Progress("uploaded", 10, cut)
    again.advance(8)
    again.resume_at(5)
    again.advance(5)
    again.finish()
    assert cut.getvalue().startswith("uploaded 10 bytes in ")
    assert cut.getvalue().endswith("/s), 3 sent again after cuts, resumed at 5 B\n")
