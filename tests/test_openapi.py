"""The OpenAPI document: served, valid, in step with the router, and true of the live
service (schemathesis against the real app on a loopback port, real Postgres and S3)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import sys
import time

import aiohttp
import schemathesis

from service import openapi, values
from service.app import create_app
from service.config import Endpoints
from tests.conftest import settings_for_tests

# schemathesis's checks: no 5xx, every status documented, and headers, content types
# and bodies as documented.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
# Bounded so that the test takes well under a minute and a half on two cores.
MAX_EXAMPLES = 100
SEED = 3
SCHEMATHESIS_TIMEOUT_SECONDS = 240


def _routed() -> set[tuple[str, str]]:
    app = create_app(settings_for_tests(), Endpoints("", None, "unused", "", "us-east-1"))
    return {(route.method.lower(), route.resource.canonical) for route in app.router.routes()}


def _documented() -> set[tuple[str, str]]:
    methods = {"get", "put", "post", "delete", "head", "patch", "options", "trace"}
    return {
        (method, path)
        for path, item in openapi.document()["paths"].items()
        for method in item
        if method in methods
    }


def test_every_route_is_documented_and_nothing_else():
    routed, documented = _routed(), _documented()
    assert routed - documented == set(), "routes missing from the OpenAPI document"
    assert documented - routed == set(), "documented operations that are not routed"


def test_the_document_is_valid_openapi_3_1():
    document = openapi.document()
    assert document["openapi"].startswith("3.1.")
    schemathesis.openapi.from_dict(document).validate()


def test_the_value_types_are_the_ones_values_py_knows():
    assert set(openapi.VALUE_TYPES) == set(values._TYPE_NAMES.values())


def test_document_returns_a_copy():
    openapi.document()["paths"].clear()
    assert openapi.document()["paths"]


async def test_served_at_openapi_json(client):
    response = await client.get("/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    assert "X-Request-Id" in response.headers
    assert await response.json() == openapi.document()


async def _seed(client):
    """The case instance, variable and definition key the document uses as examples,
    so that the examples phase and the cases built on it reach real ones."""
    case_path = f"/case-instance/{openapi.EXAMPLE_CASE_ID}"
    response = await client.put(case_path, json={"businessKey": "B-1", "tenantId": "tenant-1"})
    assert response.status == 201, await response.text()
    form = aiohttp.FormData()
    form.add_field(
        "data", b"%PDF-1.7 invoice", filename="invoice 1.pdf", content_type="application/pdf"
    )
    form.add_field("valueType", "File")
    response = await client.post(f"{case_path}/variables/{openapi.EXAMPLE_VARIABLE}/data", data=form)
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


async def test_schemathesis_finds_no_server_error_and_no_nonconformance(
    fresh_database_dsn, make_client, endpoints, tmp_path
):
    # A database of its own: the queries schemathesis sends see only what it and _seed made.
    client = await make_client(dataclasses.replace(endpoints, dsn=fresh_database_dsn))
    await _seed(client)
    base_url = str(client.make_url("")).rstrip("/")
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{base_url}/openapi.json",
        "--url",
        base_url,
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--no-color",
        "--workers",
        "1",
        "--request-timeout",
        "20",
        # Failures show the exact request (the test servers hold no secrets).
        "--output-sanitize",
        "false",
        "--report", "har", "--report-har-path", "/tmp/st.har",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
    )
    output, _ = await asyncio.wait_for(process.communicate(), SCHEMATHESIS_TIMEOUT_SECONDS)
    text = output.decode(errors="replace")
    print(text)
    print(f"schemathesis ran {time.monotonic() - started:.1f}s")
    assert process.returncode == 0, text
