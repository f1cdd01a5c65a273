"""Where clients point: every REST route at `/`, at /engine-rest, and under
/engine/{name} and /engine-rest/engine/{name} for the one engine, `default`; other
engine names get Camunda's refusal; the operations routes stay at `/`."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from service.app import create_app
from service.config import Endpoints
from service.http import paths
from tests.conftest import new_id, settings_for_tests
from tests.forms import FORM, body, part
from tests.test_metrics import scrape, total

ROOTS = ("", "/engine-rest", "/engine/default", "/engine-rest/engine/default")
TOKEN = "engines-token-0123456789"
OPERATIONAL = {"/health/live", "/health/ready", "/metrics", "/openapi.json", "/engine"}


def _routes() -> dict[str, set[str]]:
    app = create_app(settings_for_tests(), Endpoints("", None, "unused", "", "us-east-1"))
    methods: dict[str, set[str]] = {}
    for route in app.router.routes():
        assert route.resource is not None
        methods.setdefault(route.resource.canonical, set()).add(route.method)
    return methods


def test_every_rest_route_is_served_under_every_root_with_the_same_methods():
    routes = _routes()
    rest = {path: found for path, found in routes.items() if paths.rest_path(path) == path}
    assert set(rest) - OPERATIONAL, "no REST routes found"
    for path, found in rest.items():
        if path in OPERATIONAL:
            for root in paths.REST_ROOTS:
                assert root + path not in routes or path == "/engine", (root, path)
            continue
        for root in paths.REST_ROOTS:
            assert routes.get(root + path) == found, (root, path)
    # Nothing else: every prefixed route is one of those.
    assert {paths.rest_path(path) for path in routes} == set(rest)
    assert routes["/engine-rest/engine"] == {"GET"}


@pytest.mark.parametrize("root", ROOTS)
async def test_a_case_and_its_variables_through_each_root(client, root):
    case_id = new_id()
    assert (await client.put(f"{root}/case-instance/{case_id}")).status == 201
    put = await client.put(
        f"{root}/case-instance/{case_id}/variables/amount", json={"value": 42, "type": "Integer"}
    )
    assert put.status == 204, await put.text()
    form = body(part("data", b"\x00\x01 through a root", "application/octet-stream"))
    upload = await client.post(
        f"{root}/case-instance/{case_id}/variables/blob/data",
        data=form,
        headers={"Content-Type": FORM},
    )
    assert upload.status == 204, await upload.text()
    # Written through one root, read through another: the same data.
    other = ROOTS[(ROOTS.index(root) + 1) % len(ROOTS)]
    listed = await client.get(f"{other}/case-instance/{case_id}/variables")
    assert listed.status == 200
    assert (await listed.json())["amount"] == {"type": "Integer", "value": 42, "valueInfo": {}}
    data = await client.get(f"{other}/case-instance/{case_id}/variables/blob/data")
    assert await data.read() == b"\x00\x01 through a root"
    count = await client.get(f"{root}/case-instance/count", params={"caseInstanceId": case_id})
    assert await count.json() == {"count": 1}


@pytest.mark.parametrize("root", ["/engine", "/engine-rest/engine"])
async def test_the_list_of_engines(client, root):
    response = await client.get(root)
    assert response.status == 200
    assert await response.json() == [{"name": "default"}]


@pytest.mark.parametrize("root", ["/engine/foo", "/engine-rest/engine/foo"])
async def test_an_unknown_engine_is_camundas_400_and_writes_nothing(client, root):
    case_id = new_id()
    requests: list[tuple[str, str, object]] = [
        ("PUT", f"/case-instance/{case_id}", None),
        ("PUT", f"/case-instance/{case_id}/variables/v", {"value": "x"}),
        ("GET", "/case-instance", None),
        ("POST", "/case-definition/key/k/create", {}),
        ("POST", "/case-instance", "not json at all"),
        ("GET", f"/case-execution/{case_id}", None),
        ("POST", "/case-execution/count", {}),
        ("POST", f"/case-execution/{case_id}/variables", {"modifications": {}}),
        ("POST", "/case-definition/key/k/tenant-id/t/create", {}),
        ("POST", "/case-definition/k:1:x/create", {}),
    ]
    for method, path, payload in requests:
        response = await client.request(method, root + path, json=payload)
        assert response.status == 400, (method, path)
        assert await response.json() == {
            "type": "InvalidRequestException",
            "message": "No process engine available",
            "code": None,
        }
    assert (await client.get(f"/case-instance/{case_id}")).status == 404


async def test_with_authentication_an_unknown_engine_is_404_before_credentials(
    make_client, tmp_path
):
    tokens = tmp_path / "tokens"
    tokens.write_text(TOKEN + "\n")
    secured = await make_client(auth_tokens_file=tokens)
    for headers in ({}, {"Authorization": f"Bearer {TOKEN}"}):
        response = await secured.get("/engine/foo/case-instance/count", headers=headers)
        assert response.status == 404
        assert await response.json() == {
            "type": "InvalidRequestException",
            "message": "Process engine foo not available",
            "code": None,
        }
    # The list of engines is open, as Camunda's filter lets /engine through.
    assert (await secured.get("/engine-rest/engine")).status == 200
    assert (await secured.get("/engine/default/case-instance/count")).status == 401
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert (await secured.get("/engine/default/case-instance/count", headers=good)).status == 200


async def test_operations_routes_are_at_the_root_only(client):
    for path in ("/health/live", "/metrics", "/openapi.json"):
        assert (await client.get(path)).status == 200
        for root in ROOTS[1:]:
            response = await client.get(root + path)
            assert response.status == 404, root + path
            assert (await response.json())["type"] == "NotFoundException"


async def test_metrics_label_a_route_the_same_under_every_root(client):
    case_id = new_id()
    for root in ROOTS:
        await client.get(f"{root}/case-instance/{case_id}")
    samples = await scrape(client)
    route = "/case-instance/{id}"
    assert total(samples, "casevars_http_requests_total", route=route, status="404") == 4
    labels = {dict(labels).get("route") for (_, labels) in samples}
    assert not any(label and label.startswith("/engine") and label != "/engine" for label in labels)


@pytest.mark.parametrize("root", ROOTS)
async def test_a_large_bytes_values_data_url_is_under_the_root_it_was_read_at(make_client, root):
    client = await make_client(inline_bytes_limit=1024)
    case_id = new_id()
    assert (await client.put(f"/case-instance/{case_id}")).status == 201
    form = body(part("data", b"x" * 4096, "application/octet-stream"))
    upload = await client.post(
        f"/case-instance/{case_id}/variables/big/data", data=form, headers={"Content-Type": FORM}
    )
    assert upload.status == 204
    for path in (f"/case-instance/{case_id}/variables", f"/case-execution/{case_id}/variables"):
        listed = await (await client.get(root + path)).json()
        url = listed["big"]["valueInfo"]["dataUrl"]
        assert url == f"{root}/case-instance/{case_id}/variables/big/data"
        assert await (await client.get(url)).read() == b"x" * 4096


async def _expecting(client, path: str, headers: bytes = b"") -> tuple[bytes, bytes, bytes]:
    """Sends the head of a large upload with `Expect: 100-continue` and reads the first
    answer: (status line, headers, body); a 100 Continue would come first."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: x\r\n".encode()
            + b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1073741824\r\n"
            + headers
            + b"Expect: 100-continue\r\n\r\n"
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        length = int(
            next(
                line.split(b":", 1)[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
        )
        body = await asyncio.wait_for(reader.readexactly(length), 5)
    finally:
        writer.close()
    return status_line, head, body


@pytest.mark.parametrize("root", ["/engine/foo", "/engine-rest/engine/foo"])
async def test_an_unknown_engine_is_refused_before_100_continue(make_client, tmp_path, root):
    """`Expect: 100-continue` is answered before any middleware runs: the engine is
    checked there first as well, so that the answer is the same with or without the
    header, and credentials (good, bad or none) come after the engine."""
    path = f"{root}/case-instance/{new_id()}/variables/v/data"
    open_client = await make_client()
    status_line, _, body = await _expecting(open_client, path)
    assert status_line.startswith(b"HTTP/1.1 400"), status_line
    assert orjson.loads(body)["message"] == "No process engine available"

    tokens = tmp_path / "tokens"
    tokens.write_text(TOKEN + "\n")
    secured = await make_client(auth_tokens_file=tokens)
    for credentials in (
        b"",
        f"Authorization: Bearer {TOKEN}\r\n".encode(),
        b"Authorization: Bearer wrong\r\n",
    ):
        status_line, head, body = await _expecting(secured, path, credentials)
        assert status_line.startswith(b"HTTP/1.1 404"), (credentials, status_line)
        assert b"www-authenticate" not in head.lower()
        assert b"x-request-id" in head.lower()
        assert orjson.loads(body) == {
            "type": "InvalidRequestException",
            "message": "Process engine foo not available",
            "code": None,
        }
    # The default engine: the credentials decide, before the body is sent.
    status_line, _, _ = await _expecting(
        secured, f"/engine/default/case-instance/{new_id()}/variables/v/data"
    )
    assert status_line.startswith(b"HTTP/1.1 401"), status_line
