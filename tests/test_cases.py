import pytest

from tests.conftest import new_id
from tests.forms import blob_states, create_case, upload_bytes, variable_row


async def test_put_creates_then_updates(client):
    case_id = new_id()
    created = await client.put(f"/case-instance/{case_id}", json={"businessKey": "order-1"})
    assert created.status == 201
    assert await created.json() == {
        "links": [],
        "id": case_id,
        "caseDefinitionId": None,
        "businessKey": "order-1",
        "tenantId": None,
        "active": True,
        "completed": False,
        "terminated": False,
    }
    again = await client.put(f"/case-instance/{case_id}", json={"tenantId": "t1"})
    assert again.status == 200
    body = await again.json()
    assert body["businessKey"] == "order-1"
    assert body["tenantId"] == "t1"
    fetched = await client.get(f"/case-instance/{case_id}")
    assert fetched.status == 200
    assert await fetched.json() == body


async def test_put_without_body_is_idempotent(client):
    case_id = new_id()
    assert (await client.put(f"/case-instance/{case_id}")).status == 201
    assert (await client.put(f"/case-instance/{case_id}")).status == 200


@pytest.mark.parametrize(
    "payload",
    [b"[]", b'"x"', b'{"businessKey": 5}', b'{"tenantId": {}}', b"{broken"],
)
async def test_put_refuses_bad_bodies(client, payload):
    case_id = new_id()
    response = await client.put(
        f"/case-instance/{case_id}", data=payload, headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert await response.json() == {"type": "InvalidRequestException", "message": "", "code": None}
    assert (await client.get(f"/case-instance/{case_id}")).status == 404


async def test_put_refuses_non_json(client):
    response = await client.put(
        f"/case-instance/{new_id()}", data=b"businessKey=x", headers={"Content-Type": "text/plain"}
    )
    assert response.status == 415
    assert (await response.json())["type"] == "NotSupportedException"


async def test_put_refuses_bodies_over_the_limit(make_client):
    client = await make_client(max_json_bytes=100)
    response = await client.put(f"/case-instance/{new_id()}", json={"businessKey": "x" * 200})
    assert response.status == 413


async def test_get_unknown_case_instance(client):
    response = await client.get("/case-instance/nope-123")
    assert response.status == 404
    assert await response.json() == {
        "type": "InvalidRequestException",
        "message": "Case instance with id nope-123 does not exist.",
        "code": None,
    }


async def test_delete_removes_variables_and_hands_blobs_to_the_collector(client, db, endpoints):
    case_id = new_id()
    await create_case(client, case_id)
    for name in ("a", "b"):
        assert (
            await upload_bytes(client, case_id, name, b"content " + name.encode())
        ).status == 204
    live = await blob_states(db, endpoints.s3_prefix)
    assert sorted(live.values()) == ["live", "live"]

    assert (await client.delete(f"/case-instance/{case_id}")).status == 204
    assert await variable_row(db, case_id, "a") is None
    states = await blob_states(db, endpoints.s3_prefix)
    assert set(states) == set(live)
    assert set(states.values()) == {"garbage"}
    assert (await client.get(f"/case-instance/{case_id}")).status == 404
    again = await client.delete(f"/case-instance/{case_id}")
    assert again.status == 404
    assert (await again.json())["message"] == f"Case instance with id {case_id} does not exist."


async def test_ids_that_are_too_long_or_hold_nul_are_refused(client):
    long_id = "x" * 256
    response = await client.put(f"/case-instance/{long_id}")
    assert response.status == 400
    assert (await response.json())["type"] == "InvalidRequestException"
    response = await client.put("/case-instance/a%00b")
    assert response.status == 400


@pytest.mark.parametrize("case_id", ["with space", "quote'\"", "ünïcødé", "dots..", "line%0Abreak"])
async def test_odd_ids_work_as_plain_ids(client, case_id):
    created = await client.put(f"/case-instance/{case_id}")
    assert created.status in {200, 201}
    fetched = await client.get(f"/case-instance/{case_id}")
    assert fetched.status == 200
    assert (await fetched.json())["id"] == (await created.json())["id"]


async def test_slash_in_id_is_a_clear_404(client):
    response = await client.get("/case-instance/a%2Fb")
    assert response.status == 404
    assert "type" in await response.json()
