import dataclasses

import pytest

from service.config import Endpoints
from tests.conftest import MOTO_KEYS, TEST_BUCKET, MotoServer, proxied_postgres, proxied_s3


async def test_live(client):
    response = await client.get("/health/live")
    assert response.status == 200
    assert await response.json() == {"status": "up"}


async def test_ready_when_both_answer(client):
    response = await client.get("/health/ready")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/json")


@pytest.fixture
async def proxies(endpoints):
    async with (
        proxied_s3(endpoints) as (s3_proxy, via_s3_proxy),
        proxied_postgres(via_s3_proxy) as (db_proxy, proxied),
    ):
        yield proxied, s3_proxy, db_proxy


@pytest.mark.parametrize("cut", ["s3", "postgres"])
async def test_ready_turns_503_naming_what_failed_and_back(make_client, proxies, cut):
    proxied, s3_proxy, db_proxy = proxies
    client = await make_client(proxied, s3_timeout_seconds=1, db_timeout_seconds=1)
    assert (await client.get("/health/ready")).status == 200

    proxy = s3_proxy if cut == "s3" else db_proxy
    await proxy.cut()
    response = await client.get("/health/ready")
    assert response.status == 503
    assert await response.json() == {"status": "down", "failed": [cut]}
    # Liveness does not depend on either.
    assert (await client.get("/health/live")).status == 200

    proxy.restore()
    for _ in range(20):
        response = await client.get("/health/ready")
        if response.status == 200:
            break
    assert response.status == 200


async def test_ready_follows_a_real_s3_server_stopping_and_starting(make_client, endpoints):
    server = MotoServer()
    server.start()
    try:
        own = Endpoints("", server.url, TEST_BUCKET, "p/", "us-east-1", **MOTO_KEYS)
        from tests.conftest import _make_bucket

        await _make_bucket(own)
        client = await make_client(
            dataclasses.replace(own, dsn=endpoints.dsn), s3_timeout_seconds=1
        )
        assert (await client.get("/health/ready")).status == 200
        server.stop()
        response = await client.get("/health/ready")
        assert response.status == 503
        assert (await response.json())["failed"] == ["s3"]
        server.start()
        await _make_bucket(own)  # moto keeps nothing across a restart
        assert (await client.get("/health/ready")).status == 200
    finally:
        server.stop()


async def test_unknown_route_answers_in_camunda_error_format(client):
    response = await client.get("/no/such/route")
    assert response.status == 404
    assert response.headers["Content-Type"].startswith("application/json")
    assert await response.json() == {
        "type": "NotFoundException",
        "message": "HTTP 404 Not Found",
        "code": None,
    }


async def test_wrong_method_answers_405_with_allow(client):
    response = await client.delete("/health/live")
    assert response.status == 405
    assert "GET" in response.headers["Allow"]
    body = await response.json()
    assert body["type"] == "NotAllowedException"
    assert body["code"] is None


async def test_request_id_is_returned_and_generated(client):
    response = await client.get("/health/live", headers={"X-Request-Id": "abc-123"})
    assert response.headers["X-Request-Id"] == "abc-123"
    generated = (await client.get("/health/live")).headers["X-Request-Id"]
    assert len(generated) == 32
    odd = await client.get("/health/live", headers={"X-Request-Id": "x" * 500})
    assert odd.headers["X-Request-Id"] != "x" * 500


async def test_ready_is_503_once_shutdown_begins(client):
    from service.http import keys

    client.server.app[keys.IN_FLIGHT].stopping.set()
    response = await client.get("/health/ready")
    assert response.status == 503
    assert await response.json() == {"status": "down", "failed": ["shutting down"]}
    assert response.headers.get("Connection") == "close"
