"""The CMMN life cycle of case instances: complete, terminate and close with their
variables and deletions, Camunda's refusals, and closed instances leaving the runtime
routes."""

import asyncio
import base64

import pytest

from service.http.variables import MAX_DELETIONS, MAX_MODIFICATIONS
from tests.conftest import new_id
from tests.forms import blob_states, create_case, upload_bytes

ERROR_CASES = "/case-instance/{}/{}"


async def _state(db, case_id):
    return await db.fetchval("SELECT state FROM case_instance WHERE id = $1", case_id)


async def _transition(client, case_id, transition, body=None):
    return await client.post(ERROR_CASES.format(case_id, transition), json=body)


def _refusal(transition, case_id, reason):
    return {
        "type": "InvalidRequestException",
        "message": f"Cannot {transition} case instance {case_id}: {reason}",
        "code": 0,
    }


def _already(transition, case_id, code, reason):
    return _refusal(
        transition,
        case_id,
        f"ENGINE-{code} Could not perform transition '{transition} on case execution with id "
        f"'{case_id}'.Reason: {reason}",
    )


@pytest.mark.parametrize(
    ("transition", "state"), [("complete", "completed"), ("terminate", "terminated")]
)
async def test_active_instance_completes_or_terminates_then_closes(client, db, transition, state):
    case_id = new_id()
    await create_case(client, case_id)
    response = await _transition(client, case_id, transition)
    assert response.status == 204
    assert await response.read() == b""
    shown = await (await client.get(f"/case-instance/{case_id}")).json()
    assert (shown["active"], shown["completed"], shown["terminated"]) == (
        False,
        state == "completed",
        state == "terminated",
    )
    assert await _state(db, case_id) == state
    assert (await _transition(client, case_id, "close")).status == 204
    row = await db.fetchrow("SELECT state, closed_at FROM case_instance WHERE id = $1", case_id)
    assert row["state"] == "closed"
    assert row["closed_at"] is not None


async def test_a_transition_without_a_body_or_with_an_empty_one(client, db):
    first, second = new_id(), new_id()
    await create_case(client, first)
    await create_case(client, second)
    assert (await client.post(f"/case-instance/{first}/complete")).status == 204
    assert (await _transition(client, second, "terminate", {})).status == 204
    empty = {"variables": None, "deletions": None}
    assert (await _transition(client, second, "close", empty)).status == 204


@pytest.mark.parametrize(
    ("transition", "state", "code", "reason"),
    [
        ("complete", "completed", "05010", "The case execution is already in state 'completed'."),
        (
            "complete",
            "terminated",
            "05011",
            (
                "The case execution must be in state 'active' to complete, but it was in state "
                "'terminated'"
            ),
        ),
        (
            "terminate",
            "terminated",
            "05010",
            "The case execution is already in state 'terminated'.",
        ),
        (
            "terminate",
            "completed",
            "05011",
            (
                "The case execution must be in state 'active' to terminate, but it was in state "
                "'completed'"
            ),
        ),
        (
            "close",
            "active",
            "05008",
            (
                "The case instance must be in state '[completed|terminated|suspended]' to close "
                "it, but the state is 'active'."
            ),
        ),
    ],
)
async def test_refused_transitions_answer_403_and_change_nothing(
    client, db, transition, state, code, reason
):
    case_id = new_id()
    await create_case(client, case_id)
    await client.put(f"/case-instance/{case_id}/variables/kept", json={"value": "before"})
    if state != "active":
        to_state = {"completed": "complete", "terminated": "terminate"}[state]
        assert (await _transition(client, case_id, to_state)).status == 204
    body = {"variables": {"kept": {"value": "after"}, "new": {"value": 1}}}
    response = await _transition(client, case_id, transition, body)
    assert response.status == 403
    assert await response.json() == _already(transition, case_id, code, reason)
    assert await _state(db, case_id) == state
    names = await db.fetch("SELECT name, value FROM variable WHERE case_instance_id = $1", case_id)
    assert {row["name"]: row["value"] for row in names} == {"kept": "before"}


@pytest.mark.parametrize("transition", ["complete", "close", "terminate"])
async def test_unknown_and_closed_instances_are_not_found(client, transition):
    unknown = new_id("unknown")
    response = await _transition(client, unknown, transition)
    assert response.status == 404
    assert await response.json() == _refusal(
        transition,
        unknown,
        f"There does not exist any case execution with id: '{unknown}': caseExecution is null",
    )
    closed = new_id()
    await create_case(client, closed)
    assert (await _transition(client, closed, "terminate")).status == 204
    assert (await _transition(client, closed, "close")).status == 204
    response = await _transition(client, closed, transition, {"variables": {"x": {"value": 1}}})
    assert response.status == 404
    assert (await response.json())["message"].endswith(f"'{closed}': caseExecution is null")


async def test_variables_and_deletions_go_with_the_transition(client, db):
    case_id = new_id()
    await create_case(client, case_id)
    for name, value in (("gone", "x"), ("replaced", "old"), ("untouched", "same")):
        await client.put(f"/case-instance/{case_id}/variables/{name}", json={"value": value})
    body = {
        "variables": {
            "replaced": {"value": "new", "type": "String", "local": True},
            "amount": {"value": "12", "type": "Integer", "local": False},
            "when": {"value": "2026-01-02T03:04:05.678+0100", "type": "Date"},
        },
        # Items may carry more than a name, as Camunda's VariableNameDto has `local`.
        "deletions": [{"name": "gone", "local": False, "extra": [1]}, {"name": "never-set"}],
    }
    assert (await _transition(client, case_id, "complete", body)).status == 204
    rows = await db.fetch(
        "SELECT name, type, value FROM variable WHERE case_instance_id = $1 ORDER BY name", case_id
    )
    assert [(row["name"], row["type"], row["value"]) for row in rows] == [
        ("amount", "Integer", 12),
        ("replaced", "String", "new"),
        ("untouched", "String", "same"),
        ("when", "Date", "2026-01-02T02:04:05.678+0000"),
    ]
    assert await _state(db, case_id) == "completed"
    listed = await (await client.get(f"/case-instance/{case_id}/variables")).json()
    assert listed["amount"] == {"type": "Integer", "value": 12, "valueInfo": {}}


async def test_bytes_in_a_transition_go_through_the_blob_life_cycle(client, db, endpoints):
    case_id = new_id()
    await create_case(client, case_id)
    assert (await upload_bytes(client, case_id, "old", b"old content")).status == 204
    content = b"new content"
    body = {
        "variables": {"doc": {"type": "Bytes", "value": base64.b64encode(content).decode()}},
        "deletions": [{"name": "old"}],
    }
    assert (await _transition(client, case_id, "terminate", body)).status == 204
    states = await blob_states(db, endpoints.s3_prefix)
    doc_key = await db.fetchval(
        "SELECT blob_key FROM variable WHERE case_instance_id = $1 AND name = 'doc'", case_id
    )
    assert states[doc_key] == "live"
    assert sorted(states.values()).count("garbage") >= 1
    data = await client.get(f"/case-instance/{case_id}/variables/doc/data")
    assert await data.read() == content


async def test_a_refused_transition_leaves_its_blobs_garbage(client, db, endpoints):
    case_id = new_id()
    await create_case(client, case_id)
    assert (await upload_bytes(client, case_id, "kept", b"kept")).status == 204
    before = await blob_states(db, endpoints.s3_prefix)
    body = {"variables": {"doc": {"type": "Bytes", "value": base64.b64encode(b"x").decode()}}}
    assert (await _transition(client, case_id, "close", body)).status == 403
    after = await blob_states(db, endpoints.s3_prefix)
    new = {key: state for key, state in after.items() if key not in before}
    assert list(new.values()) == ["garbage"]
    assert all(after[key] == state for key, state in before.items())


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'"x"',
        b"{broken",
        b'{"variables": []}',
        b'{"variables": {"a": 1}}',
        b'{"variables": {"a": {"value": 1, "local": "perhaps"}}}',
        b'{"deletions": "a"}',
        b'{"deletions": {"name": "a"}}',
        b'{"deletions": ["a"]}',
        b'{"deletions": [{"name": 5}]}',
        b'{"deletions": [{"name": "a", "local": {}}]}',
    ],
)
async def test_malformed_bodies_are_refused_and_change_nothing(client, db, body):
    case_id = new_id()
    await create_case(client, case_id)
    response = await client.post(
        f"/case-instance/{case_id}/complete",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 400
    assert await response.json() == {"type": "InvalidRequestException", "message": "", "code": None}
    assert await _state(db, case_id) == "active"


@pytest.mark.parametrize(
    ("variables", "status", "expected"),
    [
        (
            {"n": {"value": "abc", "type": "Integer"}},
            400,
            {
                "type": "RestException",
                "message": "Cannot complete case instance {id} due to invalid variable n: "
                "Cannot convert value 'abc' of type 'Integer' to java type java.lang.Integer",
                "code": None,
            },
        ),
        (
            {"ok": {"value": 1}, "n": {"value": 1, "type": "Unknown"}},
            400,
            {
                "type": "RestException",
                "message": "Cannot complete case instance {id} due to invalid variable n: "
                "Unsupported value type 'Unknown'",
                "code": None,
            },
        ),
        (
            {"f": {"value": "", "type": "File", "valueInfo": {}}},
            400,
            {"type": "IllegalArgumentException", "code": None},
        ),
    ],
)
async def test_bad_variables_change_nothing_not_even_the_state(
    client, db, variables, status, expected
):
    case_id = new_id()
    await create_case(client, case_id)
    await client.put(f"/case-instance/{case_id}/variables/kept", json={"value": "before"})
    body = {"variables": variables, "deletions": [{"name": "kept"}]}
    response = await _transition(client, case_id, "complete", body)
    assert response.status == status
    answer = await response.json()
    if "message" in expected:
        expected = {**expected, "message": expected["message"].format(id=case_id)}
    else:
        answer.pop("message")
    assert answer == expected
    assert await _state(db, case_id) == "active"
    assert (
        await db.fetchval(
            "SELECT value FROM variable WHERE case_instance_id = $1 AND name = 'kept'", case_id
        )
        == "before"
    )


async def test_deletions_refused_as_camundas_command_builder_refuses_them(client, db):
    case_id = new_id()
    await create_case(client, case_id)
    both = {"variables": {"a": {"value": 1}}, "deletions": [{"name": "a"}]}
    response = await _transition(client, case_id, "terminate", both)
    assert response.status == 400
    assert await response.json() == {
        "type": "InvalidRequestException",
        "message": f"Cannot terminate case instance {case_id}: Cannot set and remove a variable "
        "with the same variable name: 'a' within a command.",
        "code": 0,
    }
    for item, what in (({}, "variableName"), ({"local": True}, "localVariableName")):
        response = await _transition(client, case_id, "terminate", {"deletions": [item]})
        assert response.status == 400
        assert (await response.json())["message"] == (
            f"Cannot terminate case instance {case_id}: {what} is null"
        )
    assert await _state(db, case_id) == "active"


async def test_closed_instances_leave_every_runtime_route(client, db):
    case_id = new_id()
    await create_case(client, case_id)
    await client.put(f"/case-instance/{case_id}/variables/v", json={"value": "kept"})
    assert (await _transition(client, case_id, "complete")).status == 204
    assert (await _transition(client, case_id, "close")).status == 204
    base = f"/case-instance/{case_id}"
    assert (await client.get(base)).status == 404
    assert (await client.get(base + "/variables")).status == 404
    assert (await client.get(base + "/variables/v")).status == 404
    assert (await client.get(base + "/variables/v/data")).status == 404
    put = await client.put(base + "/variables/v", json={"value": "changed"})
    assert put.status == 404
    assert (await put.json())["message"].endswith(f"'{case_id}': caseExecution is null")
    modify = await client.post(base + "/variables", json={"modifications": {"w": {"value": 1}}})
    assert modify.status == 404
    assert (await client.delete(base + "/variables/v")).status == 404
    assert (await upload_bytes(client, case_id, "u", b"content")).status == 404
    assert (await client.delete(base)).status == 404
    listed = await (await client.get("/case-instance", params={"caseInstanceId": case_id})).json()
    assert listed == []
    count = await client.post("/case-instance/count", json={"caseInstanceId": case_id})
    assert await count.json() == {"count": 0}
    # History keeps them, untouched by the refused writes.
    assert (
        await db.fetchval(
            "SELECT value FROM variable WHERE case_instance_id = $1 AND name = 'v'", case_id
        )
        == "kept"
    )
    assert (
        await db.fetchval("SELECT count(*) FROM variable WHERE case_instance_id = $1", case_id) == 1
    )


async def test_a_closed_id_cannot_be_created_again(client):
    case_id = new_id()
    await create_case(client, case_id)
    assert (await _transition(client, case_id, "terminate")).status == 204
    assert (await _transition(client, case_id, "close")).status == 204
    response = await client.put(f"/case-instance/{case_id}", json={"businessKey": "again"})
    assert response.status == 409
    body = await response.json()
    assert body["type"] == "InvalidRequestException"
    assert body["message"].startswith(f"Case instance with id {case_id} is closed")


async def test_auto_create_does_not_revive_a_closed_instance(make_client, db):
    client = await make_client(auto_create_case_instances=True)
    case_id = new_id()
    await create_case(client, case_id)
    assert (await _transition(client, case_id, "complete")).status == 204
    assert (await _transition(client, case_id, "close")).status == 204
    put = await client.put(f"/case-instance/{case_id}/variables/v", json={"value": 1})
    assert put.status == 404
    assert await _state(db, case_id) == "closed"


async def test_queries_filter_by_state(client):
    key = new_id("key")
    ids = {state: new_id(state) for state in ("active", "completed", "terminated", "closed")}
    for case_id in ids.values():
        await client.put(f"/case-instance/{case_id}", json={"caseDefinitionKey": key})
    await _transition(client, ids["completed"], "complete")
    await _transition(client, ids["terminated"], "terminate")
    await _transition(client, ids["closed"], "complete")
    await _transition(client, ids["closed"], "close")
    for state in ("active", "completed", "terminated"):
        params = {"caseDefinitionKey": key, state: "true"}
        listed = await (await client.get("/case-instance", params=params)).json()
        assert [case["id"] for case in listed] == [ids[state]]
        assert listed[0][state] is True
        body = {"caseDefinitionKey": key, state: True}
        count = await (await client.post("/case-instance/count", json=body)).json()
        assert count == {"count": 1}
    everything = await (
        await client.get("/case-instance", params={"caseDefinitionKey": key})
    ).json()
    assert sorted(case["id"] for case in everything) == sorted(
        ids[state] for state in ("active", "completed", "terminated")
    )
    # Several flags: the last of active, completed, terminated wins, as in Camunda.
    both = {"caseDefinitionKey": key, "active": "true", "terminated": "true"}
    listed = await (await client.get("/case-instance", params=both)).json()
    assert [case["id"] for case in listed] == [ids["terminated"]]


async def test_a_write_racing_a_close_waits_and_then_finds_it_closed(client, db):
    """A transition holds the case row (FOR NO KEY UPDATE) until it commits; a variable
    write holds it FOR SHARE, so it waits, and then sees the closed state: nothing is
    written into history after the close."""
    case_id = new_id()
    await create_case(client, case_id)
    assert (await _transition(client, case_id, "complete")).status == 204
    transaction = db.transaction()
    await transaction.start()
    await db.execute("SELECT 1 FROM case_instance WHERE id = $1 FOR NO KEY UPDATE", case_id)
    await db.execute(
        "UPDATE case_instance SET state = 'closed', closed_at = now() WHERE id = $1", case_id
    )
    put = asyncio.ensure_future(
        client.put(f"/case-instance/{case_id}/variables/late", json={"value": 1})
    )
    await asyncio.sleep(0.3)
    assert not put.done()  # waiting for the close to commit
    await transaction.commit()
    response = await put
    assert response.status == 404
    assert (
        await db.fetchval("SELECT count(*) FROM variable WHERE case_instance_id = $1", case_id) == 0
    )


async def test_a_trigger_is_bounded_like_a_modification(client, db):
    case_id = new_id()
    await create_case(client, case_id)
    many = {"deletions": [{"name": f"d{i}"} for i in range(MAX_DELETIONS + 1)]}
    response = await _transition(client, case_id, "complete", many)
    assert response.status == 400
    assert (await response.json())["message"] == (
        f"Cannot complete case instance {case_id}: At most {MAX_DELETIONS} variables can be "
        f"deleted in one request, not {MAX_DELETIONS + 1}"
    )
    values = {f"v{i}": {"value": i} for i in range(MAX_MODIFICATIONS + 1)}
    response = await _transition(client, case_id, "complete", {"variables": values})
    assert response.status == 400
    assert (await response.json())["message"].startswith(
        f"Cannot complete case instance {case_id}: At most {MAX_MODIFICATIONS} variables"
    )
    assert await _state(db, case_id) == "active"


async def test_concurrent_transitions_of_one_instance_take_turns(client, db):
    """Each transition holds the case row until it commits: of two completes at once
    one succeeds and the other finds the instance completed; their variables are
    those of the one that succeeded."""
    case_id = new_id()
    await create_case(client, case_id)
    bodies = [{"variables": {"winner": {"value": index}}} for index in range(2)]
    answers = await asyncio.gather(
        *(_transition(client, case_id, "complete", body) for body in bodies)
    )
    statuses = sorted(answer.status for answer in answers)
    assert statuses == [204, 403]
    winner = next(index for index, answer in enumerate(answers) if answer.status == 204)
    assert (
        await db.fetchval(
            "SELECT value FROM variable WHERE case_instance_id = $1 AND name = 'winner'", case_id
        )
        == winner
    )
    assert await _state(db, case_id) == "completed"
