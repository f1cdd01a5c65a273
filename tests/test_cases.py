import pytest
import yarl

from service.camunda.definitions import case_definition_id
from service.http.variables import MAX_MODIFICATIONS
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


def raw_url(client, path):
    """An absolute URL sent exactly as written (no '..' resolved, no %-escape decoded)."""
    return yarl.URL(str(client.make_url("/")).rstrip("/") + path, encoded=True)


@pytest.mark.parametrize(("segment", "value"), [("..", ".."), ("%2E", "."), ("a%2Fb", "a/b")])
@pytest.mark.parametrize(
    ("method", "path", "what"),
    [
        ("PUT", "/case-instance/{}", "case instance id"),
        ("GET", "/case-instance/{}", "case instance id"),
        ("DELETE", "/case-instance/{}", "case instance id"),
        ("GET", "/case-instance/{}/variables", "case instance id"),
        ("POST", "/case-instance/{}/variables", "case instance id"),
        ("PUT", "/case-instance/{}/variables/v", "case instance id"),
        ("POST", "/case-definition/key/{}/create", "case definition key"),
    ],
)
async def test_raw_ids_that_are_no_path_segment_are_404(
    client, db, segment, value, method, path, what
):
    # README: '/' cannot appear in a path segment and '..' is resolved before routing.
    async with client.session.request(
        method, raw_url(client, path.format(segment)), json={}
    ) as response:
        assert response.status == 404
        assert await response.json() == {
            "type": "NotFoundException",
            "message": (
                f"'{value}' cannot be a {what} in a URL path: '/' separates path "
                "segments, and '.' and '..' are resolved before routing"
            ),
            "code": None,
        }
    assert await db.fetchval("SELECT count(*) FROM case_instance WHERE id = $1", value) == 0


async def test_creation_from_a_definition_is_bounded_like_modifications(client, db):
    key = new_id("key")
    over = {f"v{i}": {"value": i} for i in range(MAX_MODIFICATIONS + 1)}
    response = await client.post(f"/case-definition/key/{key}/create", json={"variables": over})
    assert response.status == 400
    assert await response.json() == {
        "type": "InvalidRequestException",
        "message": (
            f"Cannot instantiate case definition {case_definition_id(key, None)}: At most "
            f"{MAX_MODIFICATIONS} "
            f"variables can be written in one request, not {MAX_MODIFICATIONS + 1}"
        ),
        "code": None,
    }
    bad_name = {"variables": {"a/b": {"value": 1}}}
    response = await client.post(f"/case-definition/key/{key}/create", json=bad_name)
    assert response.status == 400
    assert (
        await db.fetchval("SELECT count(*) FROM case_instance WHERE case_definition_key = $1", key)
        == 0
    )
