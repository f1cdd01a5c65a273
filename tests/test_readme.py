"""The README stays true: every setting documented, CI running its test command."""

import re

from service.config import ENVIRONMENT_VARIABLES
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_every_environment_variable_is_documented():
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", README))
    missing = sorted(ENVIRONMENT_VARIABLES - documented)
    assert missing == [], f"README does not document {missing}"


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"```sh\n(python3 -m venv .*)\n```", README)
    test_command = next(command for command in commands if "pytest" in command)
    assert test_command in (ROOT / ".ci" / "run").read_text()
    assert any("casevars serve" in command for command in commands)
