"""camunda-bpm-sdk-js, Camunda's JavaScript SDK, against a running `casevars serve`:
node runs each scenario of tests/clients/ through the SDK's resources (case
definitions, case instances, case executions, variables, history) over a socket, at
the REST roots the SDK builds (apiUri + /engine/default by default, or apiUri alone
with `engine: false`). Every case operation the SDK has and casevars serves is called;
what each scenario called is checked here.

The SDK's newest release (7.7.4-SNAPSHOT, the only one on npm) lists grunt, browserify
and a GitHub tarball among its dependencies, which only its build needs; the session
fixture installs the package itself and its two runtime dependencies (superagent 1.4.0,
as it pins, and q 1.x) with --ignore-scripts into build/, where later runs find them."""

from __future__ import annotations

import json
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.npm import CLIENTS, installed_modules, last_json, need, npm_install, run_node, run_npm
from tests.serving import Serve, serving

pytestmark = pytest.mark.timeout(300)

SDK = "camunda-bpm-sdk-js"
SDK_VERSION = "7.7.4-SNAPSHOT"
RUNTIME_DEPENDENCIES = ("superagent@1.4.0", "q@1.5.1")
SCENARIO_TIMEOUT_SECONDS = 120

# What each scenario calls: every case, case-execution, variable-instance and case
# history operation of the SDK (the resources case-definition, case-instance,
# case-execution and variable, and history's case and variable calls).
SCENARIOS = {
    "case_lifecycle.js": {
        "case-definition.create",
        "case-definition.get",
        "case-definition.getByKey",
        "case-definition.list",
        "case-definition.count",
        "case-instance.list",
        "case-instance.count",
        "case-instance.close",
        "case-instance.terminate",
        "case-execution.list",
        "case-execution.count",
        "case-execution.manualStart",
        "case-execution.disable",
        "case-execution.reenable",
        "case-execution.complete",
        "history.caseInstance",
        "history.caseInstanceCount",
    },
    "case_definitions.js": {
        "case-definition.create",
        "case-definition.xml",
        "case-definition.updateHistoryTimeToLive",
        "history.caseActivityInstance",
        "history.caseActivityInstanceCount",
        "history.caseActivityStatistics",
    },
    "case_variables.js": {
        "case-definition.create",
        "case-execution.modifyVariables",
        "case-execution.deleteVariable",
        "variable.instances",
        "variable.count",
        "variable.list",
        "history.variableInstance",
        "history.variableInstanceCount",
    },
}
# (apiUri path, engine): the SDK's default engine under Camunda's mount point, the
# default engine at the service root, and no engine (apiUri is the REST root).
CONFIGURATIONS = [("/engine-rest", "default"), ("", "default"), ("", "")]


def _install(partial: Path) -> None:
    npm_install(partial, SDK, *RUNTIME_DEPENDENCIES)
    run_npm([need("npm", SDK), "pack", f"{SDK}@{SDK_VERSION}", "--pack-destination", "."], partial)
    (packed,) = partial.glob(f"{SDK}-*.tgz")
    package = partial / "node_modules" / SDK
    with tarfile.open(packed) as archive:
        for member in archive.getmembers():
            # npm tarballs hold everything under package/.
            member.name = member.name.removeprefix("package/")
        archive.extractall(package, filter="data")
    version = json.loads((package / "package.json").read_text())["version"]
    assert version == SDK_VERSION, version


@pytest.fixture(scope="session")
def sdk_modules() -> Path:
    """node_modules holding the SDK and its runtime dependencies (installed once)."""
    return installed_modules(f"{SDK}-{SDK_VERSION}", SDK, _install, f"{SDK}/package.json")


@pytest.fixture
async def serve(endpoints, tmp_path) -> AsyncIterator[Serve]:
    async with serving(endpoints, tmp_path) as started:
        yield started


async def _scenario(
    script: str, serve: Serve, modules: Path, root: str, engine: str
) -> dict[str, object]:
    env = {
        "CASEVARS_API_URI": f"http://127.0.0.1:{serve.port}{root}",
        "CASEVARS_ENGINE": engine,
    }
    status, lines, err = await run_node(
        CLIENTS / script, modules, SDK, env, SCENARIO_TIMEOUT_SECONDS
    )
    result = last_json(lines, f"{script}: {err}")
    assert status == 0, f"{result.get('failed')}\n{err}"
    return result


@pytest.mark.parametrize(("root", "engine"), CONFIGURATIONS)
@pytest.mark.parametrize("script", sorted(SCENARIOS))
async def test_the_sdks_case_operations_pass(serve, sdk_modules, script, root, engine):
    result = await _scenario(script, serve, sdk_modules, root, engine)
    assert "failed" not in result
    passed = result["passed"]
    assert isinstance(passed, list)
    assert set(passed) == SCENARIOS[script]


async def test_an_unknown_engine_is_refused_to_the_sdk(serve, sdk_modules, tmp_path):
    script = tmp_path / "unknown_engine.js"
    script.write_text(
        "const { refused, run } = require(" + json.dumps(str(CLIENTS / "sdk.js")) + ");\n"
        "run(async (sdk) => {\n"
        "  await refused(sdk, 'case-instance', 'count', 400, 'No process engine available', {});\n"
        "});\n"
    )
    result = await _scenario(str(script), serve, sdk_modules, "/engine-rest", "foo")
    assert result["passed"] == ["case-instance.count"]
