"""The OpenAPI document: served, valid, in step with the router, and true of the live
service: schemathesis runs against the real app on a loopback port (real Postgres and
S3, authentication on), and what it found stays here as plain regression tests."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import schemathesis
from aiohttp import web
from aiohttp.test_utils import TestServer

from service.app import create_app
from service.camunda import values
from service.cli.main import make_runner
from service.config import Endpoints, Settings
from service.http import openapi, paths
from tests.conftest import new_id, settings_for_tests

TOKEN = "openapi-token-0123456789"
# schemathesis's checks: no 5xx, every status documented, and headers, content types
# and bodies as documented.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
# Test cases per operation and phase: about 20 s for all four phases (examples,
# coverage, fuzzing, stateful) on two cores. Raise it, or change the seed, to look
# further; `st run` prints a curl line for every failure.
MAX_EXAMPLES = 50
SEED = 20240607
# About 60 operations since the case-execution, case-definition, history and
# variable-instance routes: about 4 minutes on two idle cores; the bound leaves room for
# a busy machine.
SCHEMATHESIS_TIMEOUT_SECONDS = 540
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "head", "patch", "options", "trace"})


def _routed() -> set[tuple[str, str]]:
    app = create_app(settings_for_tests(), Endpoints("", None, "unused", "", "us-east-1"))
    routed = set()
    for route in app.router.routes():
        assert route.resource is not None
        # A route under /engine-rest or /engine/{name} is the one the servers list
        # documents (tests/test_engines.py checks each is served under every root).
        routed.add((route.method.lower(), paths.rest_path(route.resource.canonical)))
    return routed


def _operations() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, item in openapi.document()["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


def test_every_route_is_documented_and_nothing_else():
    routed, documented = _routed(), set(_operations())
    assert routed - documented == set(), "routes missing from the OpenAPI document"
    assert documented - routed == set(), "documented operations that are not routed"


def test_the_document_is_valid_openapi_3_1():
    document = openapi.document()
    assert document["openapi"].startswith("3.1.")
    schemathesis.openapi.from_dict(document).validate()


def test_every_operation_documents_its_errors_in_the_error_format():
    document = openapi.document()
    for (method, path), operation in _operations().items():
        responses = operation["responses"]
        if path.startswith("/health/") or path == "/engine":
            assert operation["security"] == [], (method, path)
            continue
        assert "401" in responses, (method, path)
        if "{" in path or method in {"put", "post"}:
            assert "400" in responses, (method, path)
        if path.startswith("/case-"):
            assert "503" in responses, (method, path)
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                ref = response.get("$ref", "").rsplit("/", 1)[-1]
                resolved = document["components"]["responses"][ref] if ref else response
                schema = resolved["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)


def test_the_value_types_are_the_ones_values_py_knows():
    schemas = openapi.document()["components"]["schemas"]
    printed = schemas["VariableValue"]["properties"]["type"]["enum"]
    assert set(printed) == set(values._TYPE_NAMES.values())


def test_document_returns_a_copy():
    openapi.document()["paths"].clear()
    assert openapi.document()["paths"]


async def test_served_at_openapi_json(client):
    response = await client.get("/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    assert response.headers["X-Request-Id"]
    assert await response.json() == openapi.document()


def _example_path(path: str) -> str:
    return path.format(
        id=openapi.EXAMPLE_CASE_ID,
        name=openapi.EXAMPLE_VARIABLE,
        key=openapi.EXAMPLE_KEY,
        tenantId="acme",
        uploadId="0" * 32,
    )


async def test_without_credentials_the_documented_401(make_client, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{TOKEN}\n")
    client = await make_client(auth_tokens_file=tokens)
    for (method, path), operation in _operations().items():
        response = await client.request(method.upper(), _example_path(path))
        if operation.get("security") == []:
            assert response.status == 200, (method, path)
            continue
        assert response.status == 401, (method, path)
        assert response.headers["WWW-Authenticate"]
        assert response.headers["X-Request-Id"]
        if method != "head":
            error = await response.json()
            assert set(error) == {"type", "message", "code"}
            assert error["type"] == "NotAuthorizedException"


async def _seed(client):
    """The case instance, variable and definition key the document gives as examples,
    so that the examples phase, and the cases schemathesis builds on it, reach real ones."""
    case_path = f"/case-instance/{openapi.EXAMPLE_CASE_ID}"
    response = await client.put(case_path, json={"businessKey": "B-1", "tenantId": "tenant-1"})
    assert response.status == 201, await response.text()
    form = aiohttp.FormData()
    form.add_field(
        "data", b"%PDF-1.7 invoice", filename="invoice 1.pdf", content_type="application/pdf"
    )
    form.add_field("valueType", "File")
    variable = f"{case_path}/variables/{openapi.EXAMPLE_VARIABLE}"
    response = await client.post(f"{variable}/data", data=form)
    assert response.status == 204, await response.text()
    modifications = {
        "amount": {"value": 42, "type": "Integer"},
        "note": {"value": "urgent", "type": "String"},
        "due": {"value": "2024-06-07T12:00:00.000+0200", "type": "Date"},
        "scan": {"value": base64.b64encode(b"\x00\x01binary").decode(), "type": "Bytes"},
        "items": {
            "value": '["a", "b"]',
            "type": "Object",
            "valueInfo": {
                "objectTypeName": "java.util.ArrayList",
                "serializationDataFormat": "application/json",
            },
        },
    }
    response = await client.post(f"{case_path}/variables", json={"modifications": modifications})
    assert response.status == 204, await response.text()
    response = await client.post(
        f"/case-definition/key/{openapi.EXAMPLE_KEY}/create", json={"businessKey": "B-2"}
    )
    assert response.status == 200, await response.text()


class _ServedAsServeDoes(TestServer):
    """The app behind the runner `casevars serve` uses: its limits on request lines and
    headers, and its refusals in Camunda's format (aiohttp's test runner answers a
    request line over 8190 bytes, which long list filters make, in plain text)."""

    def __init__(self, app: web.Application, settings: Settings) -> None:
        super().__init__(app, host="127.0.0.1")
        self._settings = settings

    async def _make_runner(self, **kwargs: Any) -> web.BaseRunner:
        del kwargs  # make_runner sets what serve sets
        return make_runner(self.app, self._settings)


@pytest.mark.timeout(SCHEMATHESIS_TIMEOUT_SECONDS + 60)
async def test_schemathesis_finds_no_server_error_and_no_nonconformance(
    fresh_database_dsn, aiohttp_client, endpoints, tmp_path
):
    # A database of its own (asked for first, so it outlives the app): the queries see
    # only what _seed and schemathesis made.
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{TOKEN}\n")
    settings = settings_for_tests(auth_tokens_file=tokens)
    app = create_app(settings, dataclasses.replace(endpoints, dsn=fresh_database_dsn))
    client = await aiohttp_client(_ServedAsServeDoes(app, settings))
    client.session.headers["Authorization"] = f"Bearer {TOKEN}"
    await _seed(client)
    base_url = str(client.make_url("")).rstrip("/")
    started = time.monotonic()
    # The CLI in a child process: its blocking HTTP client never stalls the loop this
    # test's server runs on.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{base_url}/openapi.json",
        "--url",
        base_url,
        "--header",
        f"Authorization: Bearer {TOKEN}",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        # Health checks judge how fast data is generated, which depends on the machine.
        "--suppress-health-check",
        "all",
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--request-timeout",
        "20",
        # Failures show the exact request (the test servers hold no secrets).
        "--output-sanitize",
        "false",
        # The case-execution variable routes are the case-instance variable handlers
        # under other paths (tests/test_case_executions.py checks the routing): one
        # fuzzing of those handlers is enough.
        "--exclude-path-regex",
        r"^/case-execution/\{id\}/(variables|localVariables)",
        "--no-color",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
        # tus bodies (application/offset+octet-stream) serialized as binary ones.
        env={**os.environ, "SCHEMATHESIS_HOOKS": str(Path(__file__).parent / "openapi_hooks.py")},
    )
    output, _ = await asyncio.wait_for(process.communicate(), SCHEMATHESIS_TIMEOUT_SECONDS)
    print(f"schemathesis ran {time.monotonic() - started:.1f}s")
    assert process.returncode == 0, output.decode(errors="replace")


# --- what schemathesis found (each answered 500 before) ------------------------------

# A lone surrogate escape next to an integer of 19 digits or more: such text is parsed
# by the standard library (orjson would refuse the surrogate), which lets it through.
LONE_SURROGATE = '"\\ud800"'
LONG_INTEGER = "1234567890123456789"
UNCOMPRESSIBLE = "".join(chr(0x4E00 + i * 7919 % 20000) for i in range(3000))


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        # A sort key or order that is not text (unhashable in a set lookup).
        (
            "POST",
            "/case-instance",
            '{"sorting": [{"sortBy": "caseInstanceId", "sortOrder": {}}]}',
            "Cannot set query parameter 'sortOrder' to value '{}'",
        ),
        (
            "POST",
            "/case-instance/count",
            '{"sorting": [{"sortBy": [], "sortOrder": "asc"}]}',
            "Cannot set query parameter 'sortBy' to value '[]'",
        ),
        # NUL in text Postgres would store or compare.
        ("PUT", "/case-instance/{id}", '{"caseDefinitionKey": "a\\u0000"}', None),
        ("POST", "/case-instance/count", '{"tenantIdIn": ["\\u0000"]}', None),
        ("GET", "/case-instance?variables=a_eq_%00", None, None),
        ("GET", "/case-instance/count?businessKey=%00", None, None),
        # A business key longer than its index can hold (9 KB that do not compress).
        ("PUT", "/case-instance/{id}", '{"businessKey": "' + UNCOMPRESSIBLE + '"}', None),
        ("POST", "/case-definition/key/k/create", '{"businessKey": "' + "x" * 256 + '"}', None),
        # Paging beyond a Java Integer, or digits that are not ASCII.
        (
            "GET",
            "/case-instance?firstResult=99999999999999999999",
            None,
            "Cannot set query parameter 'firstResult' to value '99999999999999999999'",
        ),
        (
            "GET",
            "/case-instance?maxResults=%C2%B2",
            None,
            "Cannot set query parameter 'maxResults' to value '\u00b2'",
        ),
        # Lone surrogates in text bound for Postgres: the empty message of bad JSON.
        (
            "PUT",
            "/case-instance/{id}",
            f'{{"businessKey": {LONE_SURROGATE}, "n": {LONG_INTEGER}}}',
            "",
        ),
        (
            "POST",
            "/case-instance",
            f'{{"tenantIdIn": [{LONE_SURROGATE}], "n": {LONG_INTEGER}}}',
            "",
        ),
        (
            "POST",
            "/case-instance/{id}/variables",
            f'{{"deletions": [{LONE_SURROGATE}], "n": {LONG_INTEGER}}}',
            "",
        ),
        (
            "POST",
            "/case-definition/key/k/create",
            f'{{"businessKey": {LONE_SURROGATE}, "n": {LONG_INTEGER}}}',
            "",
        ),
    ],
)
async def test_refused_with_400(client, method, path, body, message):
    case_id = new_id()
    assert (await client.put(f"/case-instance/{case_id}")).status == 201
    headers = {} if body is None else {"Content-Type": "application/json"}
    response = await client.request(method, path.format(id=case_id), data=body, headers=headers)
    assert response.status == 400, await response.text()
    error = await response.json()
    assert error["type"] == "InvalidRequestException"
    if message is not None:
        assert error["message"] == message


async def test_an_object_with_a_lone_surrogate_reads_as_its_text(client):
    # Stored as text (Postgres holds the escape), but its parsed form cannot be sent:
    # every GET of it, and of the whole list, answered 500.
    case_id = new_id()
    assert (await client.put(f"/case-instance/{case_id}")).status == 201
    text = f"[{LONE_SURROGATE}, {LONG_INTEGER}]"
    info = {"objectTypeName": "x.Y", "serializationDataFormat": "application/json"}
    value = {"type": "Object", "value": text, "valueInfo": info}
    variable = f"/case-instance/{case_id}/variables/odd"
    assert (await client.put(variable, json=value)).status == 204
    response = await client.get(variable)
    assert response.status == 200
    assert (await response.json())["value"] == text
    response = await client.get(f"/case-instance/{case_id}/variables")
    assert response.status == 200
    assert (await response.json())["odd"]["value"] == text
    shown = values.render_value("Object", text, info, deserialize=True)
    assert shown["value"] == text
