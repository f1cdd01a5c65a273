"""Camunda's variable-instance routes over case variables: /variable-instance (case
instances not closed) and /history/variable-instance (all, closed ones included), their
DTOs, filters, sorting, paging, binary content, the deletion of historic ones, and the
refusals of bad input in Camunda's format."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import uuid
from typing import Any

import pytest

from service.storage.db import create_pool
from service.storage.repository import Repository
from service.storage.variable_query import VariableAttribute, VariableQuery
from tests.conftest import casevars_env, new_id, run_casevars
from tests.forms import blob_states, create_case, upload_bytes

RUNTIME_KEYS = {
    "id",
    "name",
    "type",
    "value",
    "valueInfo",
    "processDefinitionId",
    "processInstanceId",
    "executionId",
    "caseInstanceId",
    "caseExecutionId",
    "taskId",
    "batchId",
    "activityInstanceId",
    "errorMessage",
    "tenantId",
}
HISTORY_KEYS = {
    "id",
    "name",
    "type",
    "value",
    "valueInfo",
    "processDefinitionKey",
    "processDefinitionId",
    "processInstanceId",
    "executionId",
    "activityInstanceId",
    "caseDefinitionKey",
    "caseDefinitionId",
    "caseInstanceId",
    "caseExecutionId",
    "taskId",
    "errorMessage",
    "tenantId",
    "state",
    "createTime",
    "removalTime",
    "rootProcessInstanceId",
}
DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000")


async def _case_with_variables(client: Any, case_id: str) -> None:
    await create_case(client, case_id)
    modifications = {
        "text": {"value": "Hello", "type": "String"},
        "count": {"value": 42, "type": "Integer"},
        "flag": {"value": True, "type": "Boolean"},
        "order": {
            "value": '{"id": 7}',
            "type": "Object",
            "valueInfo": {
                "objectTypeName": "com.example.Order",
                "serializationDataFormat": "application/json",
            },
        },
        "doc": {
            "value": base64.b64encode(b"%PDF-1.7 hello").decode(),
            "type": "File",
            "valueInfo": {"filename": "a.pdf", "mimeType": "application/pdf"},
        },
    }
    response = await client.post(
        f"/case-instance/{case_id}/variables", json={"modifications": modifications}
    )
    assert response.status == 204, await response.text()
    assert (await upload_bytes(client, case_id, "blob", b"\x00\x01binary")).status == 204


async def _listed(client: Any, path: str, **params: str) -> list[dict[str, Any]]:
    response = await client.get(path, params=params)
    assert response.status == 200, await response.text()
    found: list[dict[str, Any]] = await response.json()
    return found


async def _by_name(client: Any, case_id: str, path: str = "/variable-instance") -> dict[str, Any]:
    found = await _listed(client, path, caseInstanceIdIn=case_id)
    return {instance["name"]: instance for instance in found}


async def _close(db: Any, case_id: str) -> None:
    """The case instance as A's life cycle leaves it once closed."""
    await db.execute(
        "UPDATE case_instance SET state = 'closed', closed_at = now() WHERE id = $1", case_id
    )


async def test_runtime_dtos_have_camundas_keys_and_values(client):
    case_id = new_id()
    await _case_with_variables(client, case_id)
    await client.put(f"/case-instance/{case_id}", json={"tenantId": "t-1"})
    found = await _by_name(client, case_id)
    assert set(found) == {"text", "count", "flag", "order", "doc", "blob"}
    for instance in found.values():
        assert set(instance) == RUNTIME_KEYS
        uuid.UUID(instance["id"])
        assert instance["caseInstanceId"] == case_id
        assert instance["caseExecutionId"] == case_id
        assert instance["activityInstanceId"] == case_id
        assert instance["tenantId"] == "t-1"
        for key in ("processDefinitionId", "processInstanceId", "executionId", "taskId"):
            assert instance[key] is None
        assert instance["batchId"] is None
        assert instance["errorMessage"] is None
    assert found["text"]["type"] == "String"
    assert found["text"]["value"] == "Hello"
    assert found["count"]["value"] == 42
    assert found["flag"]["value"] is True
    # deserializeValues defaults to true: a JSON Object is the parsed JSON.
    assert found["order"]["value"] == {"id": 7}
    assert found["order"]["valueInfo"] == {
        "objectTypeName": "com.example.Order",
        "serializationDataFormat": "application/json",
    }
    # Camunda's queries do not fetch binary contents: the value is null.
    assert found["doc"]["value"] is None
    assert found["doc"]["valueInfo"] == {"filename": "a.pdf", "mimeType": "application/pdf"}
    blob = found["blob"]
    assert blob["value"] is None
    assert blob["valueInfo"] == {"size": 8, "dataUrl": f"/variable-instance/{blob['id']}/data"}

    serialized = await _listed(
        client, "/variable-instance", caseInstanceIdIn=case_id, deserializeValues="false"
    )
    order = next(i for i in serialized if i["name"] == "order")
    assert order["value"] == '{"id": 7}'


async def test_one_instance_by_id_and_its_404(client):
    case_id = new_id()
    await _case_with_variables(client, case_id)
    order = (await _by_name(client, case_id))["order"]
    response = await client.get(f"/variable-instance/{order['id']}")
    assert response.status == 200
    assert await response.json() == order
    serialized = await client.get(
        f"/variable-instance/{order['id']}", params={"deserializeValue": "false"}
    )
    assert (await serialized.json())["value"] == '{"id": 7}'
    for unknown in (str(uuid.uuid4()), "not-a-uuid", order["id"].upper()):
        missing = await client.get(f"/variable-instance/{unknown}")
        assert missing.status == 404
        assert await missing.json() == {
            "type": "InvalidRequestException",
            "message": f"Variable instance with Id '{unknown}' does not exist.",
            "code": None,
        }


async def test_the_id_stays_when_the_value_is_replaced(client):
    case_id = new_id()
    await create_case(client, case_id)
    url = f"/case-instance/{case_id}/variables/v"
    await client.put(url, json={"value": "one", "type": "String"})
    first = (await _by_name(client, case_id))["v"]
    await client.put(url, json={"value": 2, "type": "Integer"})
    second = (await _by_name(client, case_id))["v"]
    assert second["id"] == first["id"]
    assert second["value"] == 2


async def test_binary_content_with_etag_range_and_head(client):
    case_id = new_id()
    await _case_with_variables(client, case_id)
    found = await _by_name(client, case_id)
    blob_url = f"/variable-instance/{found['blob']['id']}/data"
    whole = await client.get(blob_url)
    assert whole.status == 200
    assert await whole.read() == b"\x00\x01binary"
    assert whole.headers["Content-Type"] == "application/octet-stream"
    etag = '"' + hashlib.sha256(b"\x00\x01binary").hexdigest() + '"'
    assert whole.headers["ETag"] == etag
    part = await client.get(blob_url, headers={"Range": "bytes=2-"})
    assert part.status == 206
    assert await part.read() == b"binary"
    assert part.headers["Content-Range"] == "bytes 2-7/8"
    unchanged = await client.get(blob_url, headers={"If-None-Match": etag})
    assert unchanged.status == 304
    head = await client.head(blob_url)
    assert head.status == 200
    assert head.headers["Content-Length"] == "8"
    beyond = await client.get(blob_url, headers={"Range": "bytes=100-"})
    assert beyond.status == 416

    doc = await client.get(f"/variable-instance/{found['doc']['id']}/data")
    assert await doc.read() == b"%PDF-1.7 hello"
    assert doc.headers["Content-Type"] == "application/pdf"
    assert doc.headers["Content-Disposition"].startswith('attachment; filename="a.pdf"')

    text_id = found["text"]["id"]
    refused = await client.get(f"/variable-instance/{text_id}/data")
    assert refused.status == 400
    assert await refused.json() == {
        "type": "InvalidRequestException",
        "message": f"Value of variable with id {text_id} is not a binary value.",
        "code": None,
    }
    unknown = str(uuid.uuid4())
    missing = await client.get(f"/variable-instance/{unknown}/data")
    assert missing.status == 404
    assert (await missing.json())[
        "message"
    ] == f"Variable instance with Id '{unknown}' does not exist."


async def test_filters_of_the_runtime_query(client):
    case_id, other_id = new_id(), new_id()
    await _case_with_variables(client, case_id)
    await _case_with_variables(client, other_id)
    both = f"{case_id},{other_id}"
    base = {"caseInstanceIdIn": both}

    async def names(**params: str) -> list[str]:
        return sorted(i["name"] for i in await _listed(client, "/variable-instance", **params))

    assert len(await names(**base)) == 12
    assert await names(**base, variableName="text") == ["text", "text"]
    assert await names(caseInstanceIdIn=case_id, variableNameLike="%o%") == [
        "blob",
        "count",
        "doc",
        "order",
    ]
    assert await names(caseExecutionIdIn=case_id, variableName="flag") == ["flag"]
    assert await names(activityInstanceIdIn=case_id, variableName="flag") == ["flag"]
    assert await names(variableScopeIdIn=case_id, variableName="flag") == ["flag"]
    # Variables of case instances have no process instance, execution, task or batch.
    for name in ("processInstanceIdIn", "executionIdIn", "taskIdIn", "batchIdIn"):
        assert await names(**base, **{name: case_id}) == []
    assert await names(**base, variableValues="text_eq_Hello") == ["text", "text"]
    assert await names(**base, variableValues="text_eq_hello") == []
    assert await names(**base, variableValues="text_eq_hello", variableValuesIgnoreCase="true") == [
        "text",
        "text",
    ]
    assert await names(**base, variableValues="TEXT_like_H%", variableNamesIgnoreCase="true") == [
        "text",
        "text",
    ]
    # Every condition is on the same variable: two names match none.
    assert await names(**base, variableValues="text_eq_Hello,flag_eq_true") == []
    assert await names(**base, tenantIdIn="nobody") == []

    count = await client.get("/variable-instance/count", params={**base, "variableName": "count"})
    assert await count.json() == {"count": 2}

    # Numbers and booleans compare as such in a JSON body.
    body = {
        "caseInstanceIdIn": [case_id, other_id],
        "variableValues": [{"name": "count", "operator": "gteq", "value": 40}],
        "sorting": [{"sortBy": "variableName", "sortOrder": "asc"}],
    }
    queried = await client.post("/variable-instance", json=body)
    assert [i["value"] for i in await queried.json()] == [42, 42]
    counted = await client.post("/variable-instance/count", json=body)
    assert await counted.json() == {"count": 2}
    body["variableValues"] = [{"name": "count", "operator": "lt", "value": 40}]
    assert await (await client.post("/variable-instance/count", json=body)).json() == {"count": 0}


async def test_sorting_and_paging(client):
    case_id = new_id()
    await _case_with_variables(client, case_id)
    params = {"caseInstanceIdIn": case_id, "sortBy": "variableName", "sortOrder": "desc"}
    ordered = [i["name"] for i in await _listed(client, "/variable-instance", **params)]
    assert ordered == ["text", "order", "flag", "doc", "count", "blob"]
    page = await _listed(client, "/variable-instance", **params, firstResult="1", maxResults="2")
    assert [i["name"] for i in page] == ["order", "flag"]
    by_type = await _listed(
        client,
        "/variable-instance",
        caseInstanceIdIn=case_id,
        sortBy="variableType",
        sortOrder="asc",
    )
    assert [i["type"] for i in by_type] == [
        "Boolean",
        "Bytes",
        "File",
        "Integer",
        "Object",
        "String",
    ]
    body = {
        "caseInstanceIdIn": [case_id],
        "sorting": [
            {"sortBy": "tenantId", "sortOrder": "asc"},
            {"sortBy": "activityInstanceId", "sortOrder": "asc"},
            {"sortBy": "variableName", "sortOrder": "asc"},
        ],
    }
    response = await client.post("/variable-instance", json=body, params={"maxResults": "3"})
    assert [i["name"] for i in await response.json()] == ["blob", "count", "doc"]


async def test_closed_case_instances_leave_runtime_and_stay_in_history(client, db):
    case_id = new_id()
    await _case_with_variables(client, case_id)
    await client.put(f"/case-instance/{case_id}", json={"caseDefinitionKey": "claims"})
    running = await _by_name(client, case_id)
    history = await _by_name(client, case_id, "/history/variable-instance")
    assert set(history) == set(running)
    for name, instance in history.items():
        assert set(instance) == HISTORY_KEYS
        assert instance["id"] == running[name]["id"]
        assert instance["state"] == "CREATED"
        assert DATE.fullmatch(instance["createTime"])
        assert instance["caseDefinitionKey"] == "claims"
        assert instance["caseExecutionId"] == case_id
        assert instance["removalTime"] is None
    assert history["blob"]["valueInfo"]["dataUrl"] == (
        f"/history/variable-instance/{history['blob']['id']}/data"
    )

    await _close(db, case_id)
    assert await _by_name(client, case_id) == {}
    count = await client.get("/variable-instance/count", params={"caseInstanceIdIn": case_id})
    assert await count.json() == {"count": 0}
    blob_id = history["blob"]["id"]
    assert (await client.get(f"/variable-instance/{blob_id}")).status == 404
    assert (await client.get(f"/variable-instance/{blob_id}/data")).status == 404

    assert await _by_name(client, case_id, "/history/variable-instance") == history
    one = await client.get(f"/history/variable-instance/{blob_id}")
    assert await one.json() == history["blob"]
    content = await client.get(f"/history/variable-instance/{blob_id}/data")
    assert await content.read() == b"\x00\x01binary"
    head = await client.head(f"/history/variable-instance/{blob_id}/data")
    assert head.headers["Content-Length"] == "8"


async def test_filters_of_the_history_query(client, db):
    case_id = new_id()
    await _case_with_variables(client, case_id)
    await _close(db, case_id)
    path = "/history/variable-instance"

    async def names(**params: str) -> list[str]:
        return sorted(i["name"] for i in await _listed(client, path, **params))

    assert len(await names(caseInstanceId=case_id)) == 6
    assert await names(caseInstanceId=case_id, variableName="TEXT") == []
    assert await names(
        caseInstanceId=case_id, variableName="TEXT", variableNamesIgnoreCase="true"
    ) == ["text"]
    assert await names(caseInstanceId=case_id, variableName="text", variableValue="Hello") == [
        "text"
    ]
    assert await names(caseExecutionIdIn=case_id, variableTypeIn="string,file") == ["doc", "text"]
    assert await names(caseInstanceId=case_id, variableNameIn="flag,count") == ["count", "flag"]
    assert await names(caseInstanceIdIn=case_id, variableNameLike="%lo%") == ["blob"]
    assert await names(caseInstanceId=case_id, includeDeleted="true") == await names(
        caseInstanceId=case_id
    )
    for name in ("processInstanceId", "processDefinitionKey", "processInstanceIdIn"):
        assert await names(caseInstanceId=case_id, **{name: "p"}) == []
    body = {"caseInstanceId": case_id, "variableName": "count", "variableValue": 42}
    response = await client.post(path, json=body)
    assert [i["value"] for i in await response.json()] == [42]
    counted = await client.post(path + "/count", json={"caseInstanceId": case_id})
    assert await counted.json() == {"count": 6}
    counted = await client.get(path + "/count", params={"caseInstanceId": case_id})
    assert await counted.json() == {"count": 6}
    ordered = await _listed(
        client, path, caseInstanceId=case_id, sortBy="variableName", sortOrder="desc"
    )
    assert [i["name"] for i in ordered][:2] == ["text", "order"]
    # instanceId (the process instance id) is null for every case variable.
    by_instance = await _listed(
        client, path, caseInstanceId=case_id, sortBy="instanceId", sortOrder="asc"
    )
    assert len(by_instance) == 6


async def test_deleting_historic_variables(client, db, endpoints):
    case_id = new_id()
    await _case_with_variables(client, case_id)
    history = await _by_name(client, case_id, "/history/variable-instance")
    blob_id = history["blob"]["id"]
    # A case instance not closed: its history is its runtime variable, which stays.
    refused = await client.delete(f"/history/variable-instance/{blob_id}")
    assert refused.status == 400
    refusal = await refused.json()
    assert refusal["type"] == "BadUserRequestException"
    assert "not closed" in refusal["message"]
    assert (await client.get(f"/variable-instance/{blob_id}")).status == 200

    await _close(db, case_id)
    key = await db.fetchval("SELECT blob_key FROM variable WHERE id = $1", uuid.UUID(blob_id))
    deleted = await client.delete(f"/history/variable-instance/{blob_id}")
    assert deleted.status == 204
    assert (await client.get(f"/history/variable-instance/{blob_id}")).status == 404
    assert (await blob_states(db, key)) == {key: "garbage"}
    # The collector takes it like any replaced value's blob, and nothing is left over.
    env = casevars_env(endpoints)
    collected = await run_casevars(env, "collect", "--grace", "0", "--pending-timeout", "3600")
    assert collected.returncode == 0, collected.stderr
    assert (await blob_states(db, key)) == {}
    checked = await run_casevars(env, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    remaining = await _by_name(client, case_id, "/history/variable-instance")
    assert set(remaining) == {"text", "count", "flag", "order", "doc"}

    again = await client.delete(f"/history/variable-instance/{blob_id}")
    assert again.status == 404
    assert await again.json() == {
        "type": "InvalidRequestException",
        "message": f"No historic variable instance found with id: {blob_id}: variable is null",
        "code": None,
    }
    unknown = await client.delete("/history/variable-instance/nope")
    assert unknown.status == 404


async def test_historic_404_messages(client):
    unknown = str(uuid.uuid4())
    for path in (
        f"/history/variable-instance/{unknown}",
        f"/history/variable-instance/{unknown}/data",
    ):
        response = await client.get(path)
        assert response.status == 404
        assert await response.json() == {
            "type": "InvalidRequestException",
            "message": f"Historic variable instance with Id '{unknown}' does not exist.",
            "code": None,
        }


BAD = "InvalidRequestException"


@pytest.mark.parametrize("base", ["/variable-instance", "/history/variable-instance"])
@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"sortBy": "nope", "sortOrder": "asc"},
            "Cannot set query parameter 'sortBy' to value 'nope'",
        ),
        (
            {"sortBy": "variableName"},
            "Only a single sorting parameter specified. sortBy and sortOrder required",
        ),
        (
            {"sortOrder": "asc"},
            "Only a single sorting parameter specified. sortBy and sortOrder required",
        ),
        (
            {"sortBy": "variableName", "sortOrder": "up"},
            "Cannot set query parameter 'sortOrder' to value 'up'",
        ),
        ({"firstResult": "x"}, "Cannot set query parameter 'firstResult' to value 'x'"),
        ({"maxResults": "-1"}, "Cannot set query parameter 'maxResults' to value '-1'"),
        (
            {"maxResults": "2147483648"},
            "Cannot set query parameter 'maxResults' to value '2147483648'",
        ),
        ({"tenantIdIn": "a\x00b"}, "Query values cannot contain the NUL character (\\u0000)"),
        (
            {"tenantIdIn": ",".join(["t"] * 1001)},
            "At most 1000 ids in a list filter (tenantIdIn) are allowed in one query, not 1001",
        ),
    ],
)
async def test_query_string_refusals(client, base, params, message):
    response = await client.get(base, params=params)
    assert response.status == 400
    assert await response.json() == {"type": BAD, "message": message, "code": None}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"variableValues": "a_foo_b"}, "Invalid variable comparator specified: foo"),
        (
            {"variableValues": "a_eq"},
            "variable query parameter has to have format KEY_OPERATOR_VALUE.",
        ),
        (
            {"variableValues": ",".join(["a_eq_b"] * 101)},
            "At most 100 variable conditions are allowed in one query, not 101",
        ),
        (
            {"sortBy": "instanceId", "sortOrder": "asc"},
            "Cannot set query parameter 'sortBy' to value 'instanceId'",
        ),
    ],
)
async def test_runtime_query_string_refusals(client, params, message):
    for path in ("/variable-instance", "/variable-instance/count"):
        response = await client.get(path, params=params)
        assert response.status == 400
        assert await response.json() == {"type": BAD, "message": message, "code": None}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"variableValue": "x"},
            (
                "Only a single variable value parameter specified: variable name and value are "
                "required to be able to query after a specific variable value."
            ),
        ),
        (
            {"sortBy": "variableType", "sortOrder": "asc"},
            "Cannot set query parameter 'sortBy' to value 'variableType'",
        ),
        ({"caseInstanceId": "a\x00"}, "Query values cannot contain the NUL character (\\u0000)"),
    ],
)
async def test_history_query_string_refusals(client, params, message):
    for path in ("/history/variable-instance", "/history/variable-instance/count"):
        response = await client.get(path, params=params)
        assert response.status == 400
        assert await response.json() == {"type": BAD, "message": message, "code": None}


@pytest.mark.parametrize("path", ["/variable-instance", "/history/variable-instance/count"])
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], ""),
        ({"variableName": 5}, ""),
        ({"caseExecutionIdIn": "x"}, ""),
        ({"caseExecutionIdIn": [1]}, ""),
        ({"tenantIdIn": {}}, ""),
        ({"sorting": {}}, ""),
        (
            {"sorting": [{"sortBy": "variableName", "sortOrder": "sideways"}]},
            "Cannot set query parameter 'sortOrder' to value 'sideways'",
        ),
        (
            {"sorting": [{"sortBy": "x", "sortOrder": "asc"}] * 11},
            "At most 10 sorting entries are allowed in one query, not 11",
        ),
    ],
)
async def test_body_refusals(client, path, body, message):
    response = await client.post(path, json=body)
    assert response.status == 400
    assert await response.json() == {"type": BAD, "message": message, "code": None}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"variableValues": [{"name": "a", "operator": "sameas", "value": 1}]},
            "Invalid variable comparator specified: sameas",
        ),
        (
            {"variableValues": [{"name": "a", "operator": "like", "value": 1}]},
            "Only string values can be used with 'like' condition",
        ),
        ({"variableValues": [{"name": "a", "operator": "eq", "value": [1]}]}, ""),
        ({"variableValues": "a_eq_b"}, ""),
    ],
)
async def test_runtime_body_refusals(client, body, message):
    response = await client.post("/variable-instance/count", json=body)
    assert response.status == 400
    assert await response.json() == {"type": BAD, "message": message, "code": None}


async def test_history_body_refusals(client):
    response = await client.post(
        "/history/variable-instance", json={"variableName": "a", "variableValue": {"x": 1}}
    )
    assert response.status == 400
    assert await response.json() == {
        "type": BAD,
        "message": "Object values cannot be used to query",
        "code": None,
    }
    no_json = await client.post(
        "/history/variable-instance", data=b"x", headers={"Content-Type": "text/plain"}
    )
    assert no_json.status == 415
    broken = await client.post(
        "/variable-instance", data=b"{", headers={"Content-Type": "application/json"}
    )
    assert broken.status == 400


async def test_path_ids_are_checked(client):
    long_id = "x" * 256
    for path in (
        f"/variable-instance/{long_id}",
        f"/variable-instance/{long_id}/data",
        f"/history/variable-instance/{long_id}",
    ):
        response = await client.get(path)
        assert response.status == 400
        assert (await response.json())["message"] == (
            "The variable instance id is longer than 255 characters"
        )
    deleted = await client.delete(f"/history/variable-instance/{long_id}")
    assert deleted.status == 400
    dotted = await client.get("/variable-instance/..%2Fx")
    assert dotted.status == 404


@pytest.mark.parametrize(
    "sorting",
    [
        (),
        ((VariableAttribute.TENANT_ID, False), (VariableAttribute.NAME, True)),
        ((VariableAttribute.TENANT_ID, True), (VariableAttribute.TYPE, False)),
        ((VariableAttribute.CASE_INSTANCE_ID, True), (VariableAttribute.NOTHING, False)),
    ],
)
async def test_pages_read_after_the_last_row_give_the_order_of_one_read(db, endpoints, sorting):
    """Keyset paging (each page after the last row of the one before) lists what a single
    read lists, in its order, for every sort key, nulls (tenant ids) included."""
    prefix = new_id("paged")
    for number in range(7):
        case_id = f"{prefix}-{number}"
        await db.execute(
            "INSERT INTO case_instance (id, tenant_id) VALUES ($1, $2)",
            case_id,
            None if number % 3 == 0 else f"t{number % 2}",
        )
        for name, kind in (("a", "String"), ("b", "Integer"), ("a2", "Boolean")):
            await db.execute(
                "INSERT INTO variable (case_instance_id, name, type) VALUES ($1, $2, $3)",
                case_id,
                name,
                kind,
            )
    pool = await create_pool(endpoints.dsn, max_size=2, timeout=5, gc_grace_seconds=0)
    try:
        repository = Repository(pool)
        query = VariableQuery(
            case_instance_ids=((tuple(f"{prefix}-{n}" for n in range(7))),), sorting=sorting
        )

        async def listed(**options: Any) -> list[str]:
            found = repository.query_variable_instances(query, **options)
            return [instance.variable.id async for page in found for instance in page]

        whole = await listed(first=0, limit=None, page_rows=1000)
        assert len(whole) == 21
        for page_rows in (1, 2, 5):
            assert await listed(first=0, limit=None, page_rows=page_rows) == whole
            assert await listed(first=3, limit=10, page_rows=page_rows) == whole[3:13]
    finally:
        await pool.close()


async def test_a_large_listing_is_streamed_whole(client):
    """Past the 4 MiB held back, the JSON array streams (chunked), page after page, and
    is the same JSON a small one would be."""
    case_id = new_id()
    await create_case(client, case_id)
    text = "x" * (256 * 1024)
    modifications = {f"v{n:03d}": {"value": text, "type": "String"} for n in range(24)}
    response = await client.post(
        f"/case-instance/{case_id}/variables",
        data=io.BytesIO(json.dumps({"modifications": modifications}).encode()),
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 204
    listed = await client.get(
        "/variable-instance",
        params={"caseInstanceIdIn": case_id, "sortBy": "variableName", "sortOrder": "asc"},
    )
    assert listed.status == 200
    assert "Content-Length" not in listed.headers  # streamed
    found = await listed.json()
    assert [i["name"] for i in found] == sorted(modifications)
    assert all(i["value"] == text for i in found)
    small = await client.get(
        "/variable-instance", params={"caseInstanceIdIn": case_id, "maxResults": "2"}
    )
    assert small.headers["Content-Length"] == str(len(await small.read()))
