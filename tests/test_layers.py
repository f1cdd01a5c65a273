"""The layer rules of pyproject.toml's import-linter contracts hold, and breaking one
fails: commands > wiring > HTTP > storage > Camunda rules, HTTP without a database or
S3 client of its own, Camunda rules without I/O."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports on the `service` package found first in tree, with tree's contracts."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_contracts_are_kept():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        # A lower layer importing a higher one.
        ("camunda/values.py", "from service.http import routes", "Layers"),
        ("storage/repository.py", "from service.http import keys", "Layers"),
        ("http/ops.py", "import service.cli.main", "Layers"),
        ("errors.py", "import service.storage.db", "Layers"),
        # A layer reaching past storage, or pure rules doing I/O.
        ("http/cases.py", "import asyncpg", "only through service.storage"),
        ("http/variables.py", "import botocore.exceptions", "only through service.storage"),
        ("camunda/mime.py", "from aiohttp import web", "Camunda rules are pure"),
    ],
)
def test_an_import_against_the_layers_breaks_a_contract(tmp_path, module, line, contract):
    shutil.copytree(
        ROOT / "service", tmp_path / "service", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    path = tmp_path / "service" / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert contract in broken
    assert "1 broken" in result.stdout
