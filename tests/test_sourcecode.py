"""Lint, format and type checks run as tests, so the README's test command covers them."""

import importlib.metadata
import subprocess
import sys
import tomllib

import pytest
from packaging.requirements import Requirement

from tests.conftest import ROOT


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_ruff_check():
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format():
    result = _run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict():
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "name", ["ruff", "mypy", "asyncpg-stubs", "types-aiobotocore", "botocore-stubs"]
)
def test_the_checkers_are_the_pinned_versions(name):
    """What the checks above find depends on the versions of the tools and stubs: the
    ones installed are the ones pyproject.toml pins, exactly."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(line) for line in project["optional-dependencies"]["test"]]
    [requirement] = [r for r in requirements if r.name == name]
    [pin] = list(requirement.specifier)
    assert pin.operator == "==", f"{name}: pin an exact version, not {requirement.specifier}"
    installed = importlib.metadata.version(name)
    assert installed == pin.version, f"{name} {installed} is installed, pyproject pins {pin}"
