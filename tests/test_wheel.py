"""The built package works on its own: `python -m build` makes the sdist and, from it,
the wheel; the wheel, installed with the `embedded` extra into a fresh venv outside the
source tree, migrates and serves with the repository's migrations inside it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import tomllib
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.timeout(300)

STEP_TIMEOUT_SECONDS = 180
READY_TIMEOUT_SECONDS = 90

# Run by the venv's Python: where `service` comes from and which migrations it finds.
SHOW_MIGRATIONS = """
import json, service
from service.storage.migrate import load_migrations, migrations_dir
migrations = {m.name: m.sql for m in load_migrations(migrations_dir())}
print(json.dumps({"service": service.__file__, "migrations": migrations}))
"""


def _run(*args: str | Path, **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(arg) for arg in args],
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_SECONDS,
        check=False,
        **kwargs,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _repository_migrations() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((ROOT / "migrations").glob("*.sql"))}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist and the wheel built from it, as `python -m build` makes them (building
    the wheel from the sdist leaves no build/ folder in the source tree)."""
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--outdir", out, ROOT)
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return {"sdist": sdist, "wheel": wheel}


def test_every_package_of_the_source_tree_is_listed():
    """pyproject.toml lists the packages; one left out would be missing from the wheel."""
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "service").rglob("__init__.py")
    }
    assert sorted(found - listed) == [], "add them to [tool.setuptools] packages"


def test_wheel_and_sdist_carry_the_migrations(dist):
    names = sorted(_repository_migrations())
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        assert {f"service/migrations/{name}" for name in names} <= set(wheel.namelist())
    top = dist["sdist"].name.removesuffix(".tar.gz")
    with tarfile.open(dist["sdist"]) as sdist:
        assert {f"{top}/migrations/{name}" for name in names} <= set(sdist.getnames())


def test_installed_wheel_migrates_and_serves(dist, tmp_path):
    port = free_port()
    # Nothing of this environment leads to the source tree or another casevars.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CASEVARS_", "DATABASE_URL", "S3_", "AWS_", "PYTHON"))
    }
    env |= {
        "CASEVARS_DATA_DIR": str(tmp_path / "data"),
        "CASEVARS_PORT": str(port),
        "CASEVARS_LOG_FORMAT": "json",
    }
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv, env=env, cwd=tmp_path)
    _run(venv / "bin" / "pip", "install", "-q", f"{dist['wheel']}[embedded]", env=env, cwd=tmp_path)

    shown = _run(venv / "bin" / "python", "-c", SHOW_MIGRATIONS, env=env, cwd=tmp_path)
    installed = json.loads(shown.stdout)
    assert Path(installed["service"]).is_relative_to(venv), installed["service"]
    assert installed["migrations"] == _repository_migrations()

    casevars = venv / "bin" / "casevars"
    _run(casevars, "migrate", env=env, cwd=tmp_path)

    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        serve = subprocess.Popen(
            [casevars, "serve"], env=env, cwd=tmp_path, stdout=output, stderr=output
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        status = None
        while status != 200:
            assert serve.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "not ready: " + log.read_text()
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/health/ready", timeout=5
                ) as r:
                    status = r.status
            except OSError:  # refused, or 503 (HTTPError) while starting
                time.sleep(0.2)
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(60) == 0, log.read_text()
    finally:
        if serve.poll() is None:
            serve.terminate()
            serve.wait(60)
