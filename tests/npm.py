"""npm packages for the node client tests, installed once into build/npm (with
--ignore-scripts: no package's install script runs here) and found there by later runs,
and node scenario scripts run against a casevars process."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

CLIENTS = Path(__file__).parent / "clients"
CACHE = Path(__file__).parents[1] / "build" / "npm"
NPM_TIMEOUT_SECONDS = 240
INSTALL_FLAGS = ("--no-save", "--no-package-lock", "--ignore-scripts", "--no-audit", "--no-fund")


def need(program: str, client: str) -> str:
    """The path of node or npm, or a failure saying how to get it."""
    found = shutil.which(program)
    if found is None:
        pytest.fail(
            f"The {client} client tests need node and npm on PATH (Debian: apt-get install "
            f"nodejs npm), and {program} is not there; they install {client} from the npm "
            "registry into build/npm and run it with node."
        )
    return found


def run_npm(command: list[str], cwd: Path) -> None:
    done = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=NPM_TIMEOUT_SECONDS, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


def npm_install(folder: Path, client: str, *packages: str) -> None:
    """`npm install --ignore-scripts` of packages (name@version) into folder/node_modules."""
    run_npm([need("npm", client), "install", *INSTALL_FLAGS, *packages], folder)


def installed_modules(name: str, client: str, install: Callable[[Path], None], marker: str) -> Path:
    """build/npm/<name>/node_modules, made by install(folder) unless a run before made it
    (marker: a path under node_modules that only a finished install has). Two test runs
    at once install once; a failed install leaves nothing that looks finished."""
    need("node", client)
    target = CACHE / name
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "node_modules" / marker).exists():
            partial = target.with_name(target.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            install(partial)
            shutil.rmtree(target, ignore_errors=True)
            partial.rename(target)
    return target / "node_modules"


async def run_node(
    script: Path,
    modules: Path,
    client: str,
    env: Mapping[str, str],
    timeout: float,
    stop: asyncio.Event | None = None,
) -> tuple[int, list[str], str]:
    """Run a node script with NODE_PATH=modules: (exit status, its stdout lines, stderr).
    Once stop is set, the script is killed (SIGKILL: a client that dies mid-request)."""
    process = await asyncio.create_subprocess_exec(
        need("node", client),
        str(script),
        env={**os.environ, "NODE_PATH": str(modules), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )

    async def kill_when_stopped(stop: asyncio.Event) -> None:
        await stop.wait()
        with contextlib.suppress(ProcessLookupError):
            process.kill()

    killer = None if stop is None else asyncio.create_task(kill_when_stopped(stop))
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    finally:
        if killer is not None:
            killer.cancel()
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    assert process.returncode is not None
    return process.returncode, out.decode().splitlines(), err.decode()


def last_json(lines: list[str], stderr: str) -> dict[str, object]:
    """A scenario's result: the JSON object on its last stdout line."""
    assert lines, f"no result: {stderr}"
    result = json.loads(lines[-1])
    assert isinstance(result, dict), lines[-1]
    return result
