"""Case executions: a case instance's root case execution (its id the instance's id),
read, queried, its variables and local variables through the case instance's
handlers, and its transitions."""

from __future__ import annotations

import pytest

from service.camunda.messages import missing_case_on_read, missing_case_on_write
from tests.conftest import new_id
from tests.forms import FORM, body, part

EXECUTION_KINDS = ("variables", "localVariables")


async def _case(client, **fields):
    case_id = new_id()
    response = await client.put(f"/case-instance/{case_id}", json=fields or None)
    assert response.status == 201, await response.text()
    return case_id


def _execution(case_id, *, definition_id=None, tenant_id=None, active=True):
    return {
        "id": case_id,
        "caseInstanceId": case_id,
        "caseDefinitionId": definition_id,
        "activityId": None,
        "activityName": None,
        "activityType": "casePlanModel",
        "activityDescription": None,
        "parentId": None,
        "tenantId": tenant_id,
        "required": False,
        "enabled": False,
        "active": active,
        "disabled": False,
    }


async def test_the_root_execution_of_a_case_instance(client):
    created = await client.post(
        "/case-definition/key/claims/tenant-id/acme/create", json={"businessKey": "b"}
    )
    case = await created.json()
    response = await client.get(f"/case-execution/{case['id']}")
    assert response.status == 200
    assert await response.json() == _execution(
        case["id"], definition_id=case["caseDefinitionId"], tenant_id="acme"
    )


async def test_unknown_and_closed_executions_are_404(client):
    unknown = new_id()
    response = await client.get(f"/case-execution/{unknown}")
    assert response.status == 404
    assert await response.json() == {
        "type": "InvalidRequestException",
        "message": f"Case execution with id {unknown} does not exist.",
        "code": None,
    }
    case_id = await _case(client)
    assert (await client.post(f"/case-execution/{case_id}/complete", json={})).status == 204
    completed = await client.get(f"/case-execution/{case_id}")
    assert (await completed.json())["active"] is False
    assert (await client.post(f"/case-instance/{case_id}/close", json={})).status == 204
    assert (await client.get(f"/case-execution/{case_id}")).status == 404
    assert (await client.get(f"/case-execution/{case_id}/variables")).status == 404
    listed = await client.get("/case-execution", params={"caseInstanceId": case_id})
    assert await listed.json() == []


# --- queries ---------------------------------------------------------------------------


async def _ids(client, method, params=None, body=None, path="/case-execution"):
    if method == "GET":
        response = await client.get(path, params=params)
    else:
        response = await client.post(path, json=body or {}, params=params)
    assert response.status == 200, await response.text()
    found = await response.json()
    if path.endswith("/count"):
        return found["count"]
    return [execution["id"] for execution in found]


async def test_queries_filter_like_camundas(client):
    key = new_id("exec-key")
    a = await _case(client, businessKey="a", caseDefinitionKey=key, tenantId="t1")
    b = await _case(client, businessKey="b", caseDefinitionKey=key, tenantId="t2")
    await client.put(f"/case-instance/{a}/variables/amount", json={"value": 5, "type": "Integer"})
    await client.put(f"/case-instance/{b}/variables/amount", json={"value": 9, "type": "Integer"})
    assert (await client.post(f"/case-instance/{b}/terminate", json={})).status == 204

    assert await _ids(client, "GET", {"caseDefinitionKey": key}) == sorted([a, b])
    assert await _ids(client, "GET", {"caseExecutionId": a}) == [a]
    assert await _ids(client, "GET", {"caseInstanceId": b, "caseExecutionId": b}) == [b]
    assert await _ids(client, "GET", {"caseInstanceId": a, "caseExecutionId": b}) == []
    assert await _ids(client, "GET", {"caseDefinitionKey": key, "businessKey": "b"}) == [b]
    assert await _ids(client, "GET", {"caseDefinitionKey": key, "active": "true"}) == [a]
    assert await _ids(client, "GET", {"caseDefinitionKey": key, "tenantIdIn": "t2,t9"}) == [b]
    for never in ("required", "enabled", "disabled"):
        assert await _ids(client, "GET", {"caseDefinitionKey": key, never: "true"}) == []
        assert await _ids(client, "GET", {"caseDefinitionKey": key, never: "false"}) == sorted(
            [a, b]
        )
    assert await _ids(client, "GET", {"caseDefinitionKey": key, "activityId": "x"}) == []
    assert await _ids(client, "GET", {"caseDefinitionKey": key, "variables": "amount_gt_6"}) == []
    by_variable = {"caseDefinitionKey": key, "caseInstanceVariables": "amount_eq_5"}
    # A text value in the query string compares with text only, as in Camunda.
    assert await _ids(client, "GET", by_variable) == []
    body = {
        "caseDefinitionKey": key,
        "variables": [{"name": "amount", "operator": "gt", "value": 6}],
        "caseInstanceVariables": [{"name": "AMOUNT", "operator": "lt", "value": 10}],
        "variableNamesIgnoreCase": True,
    }
    assert await _ids(client, "POST", body=body) == [b]
    assert await _ids(client, "POST", body=body, path="/case-execution/count") == 1
    assert await _ids(client, "GET", {"caseDefinitionKey": key}, path="/case-execution/count") == 2
    sort = {"caseDefinitionKey": key, "sortBy": "tenantId", "sortOrder": "desc"}
    assert await _ids(client, "GET", sort) == [b, a]
    paged = {**sort, "firstResult": "1", "maxResults": "5"}
    assert await _ids(client, "GET", paged) == [a]
    sorting = [{"sortBy": "caseExecutionId", "sortOrder": "desc"}]
    assert await _ids(
        client, "POST", {"maxResults": "1"}, {"caseDefinitionKey": key, "sorting": sorting}
    ) == [max(a, b)]


@pytest.mark.parametrize(
    ("method", "query", "payload", "message"),
    [
        ("GET", {"sortBy": "activityId", "sortOrder": "asc"}, None, None),
        ("GET", {"sortBy": "tenantId"}, None, None),
        ("GET", {"variables": "amount_is_5"}, None, "Invalid variable comparator specified: is"),
        (
            "GET",
            {"firstResult": "-1"},
            None,
            "Cannot set query parameter 'firstResult' to value '-1'",
        ),
        ("POST", None, [1], ""),
        ("POST", None, {"sorting": [{"sortBy": "nope", "sortOrder": "asc"}]}, None),
        ("POST", None, {"variables": [{"name": "a", "operator": "like", "value": 1}]}, None),
        ("POST", None, {"caseInstanceId": 5}, ""),
    ],
)
@pytest.mark.parametrize("count", [False, True])
async def test_bad_queries_are_400_in_camundas_format(
    client, method, query, payload, message, count
):
    if count and query and "firstResult" in query:
        return  # a count has no paging
    path = "/case-execution" + ("/count" if count else "")
    response = await client.request(method, path, params=query, json=payload)
    assert response.status == 400, await response.text()
    found = await response.json()
    assert found["type"] == "InvalidRequestException"
    if message is not None:
        assert found["message"] == message


# --- variables and local variables -----------------------------------------------------


@pytest.mark.parametrize("kind", EXECUTION_KINDS)
async def test_variables_of_the_execution_are_the_case_instances(client, kind):
    case_id = await _case(client)
    base = f"/case-execution/{case_id}/{kind}"
    put = await client.put(f"{base}/amount", json={"value": 3, "type": "Integer"})
    assert put.status == 204
    one = await client.get(f"{base}/amount")
    assert await one.json() == {"type": "Integer", "value": 3, "valueInfo": {}}
    # camunda-bpm-sdk-js's modifyVariables sends the execution id along in the body.
    modified = await client.post(
        base,
        json={"id": case_id, "modifications": {"note": {"value": "hi"}}, "deletions": ["amount"]},
    )
    assert modified.status == 204, await modified.text()
    listed = await (await client.get(base)).json()
    assert listed == {"note": {"type": "String", "value": "hi", "valueInfo": {}}}
    as_case = await (await client.get(f"/case-instance/{case_id}/variables")).json()
    assert as_case == listed
    form = body(part("data", b"execution bytes", "application/octet-stream"))
    upload = await client.post(f"{base}/scan/data", data=form, headers={"Content-Type": FORM})
    assert upload.status == 204, await upload.text()
    data = await client.get(f"{base}/scan/data")
    assert await data.read() == b"execution bytes"
    head = await client.head(f"{base}/scan/data")
    assert head.status == 200
    assert head.headers["Content-Length"] == str(len(b"execution bytes"))
    same = await client.get(f"/case-instance/{case_id}/variables/scan/data")
    assert same.headers["ETag"] == data.headers["ETag"]
    # camunda-bpm-sdk-js's deleteVariable sends `{}` as the body of its DELETE.
    deleted = await client.delete(f"{base}/scan", json={})
    assert deleted.status == 204
    assert (await client.get(f"{base}/scan")).status == 404


@pytest.mark.parametrize("kind", EXECUTION_KINDS)
async def test_variable_routes_of_an_unknown_execution_answer_as_the_case_instances(client, kind):
    unknown = new_id()
    base = f"/case-execution/{unknown}/{kind}"
    listed = await client.get(base)
    assert listed.status == 404
    assert await listed.json() == {
        "type": "NotFoundException",
        "message": missing_case_on_read(unknown),
        "code": 0,
    }
    put = await client.put(f"{base}/v", json={"value": 1})
    assert put.status == 404
    assert (await put.json())["message"] == (
        f"Cannot put case execution variable v: {missing_case_on_write(unknown)}"
    )
    form = body(part("data", b"x", "application/octet-stream"))
    upload = await client.post(f"{base}/v/data", data=form, headers={"Content-Type": FORM})
    assert upload.status == 404
    assert (await client.delete(f"{base}/v", json={})).status == 404
    assert (await client.get(f"{base}/v/data")).status == 404
    bad = await client.put(f"/case-execution/{await _case(client)}/{kind}/v", json=[1])
    assert bad.status == 400


# --- transitions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("transition", "state"), [("complete", "completed"), ("terminate", "terminated")]
)
async def test_complete_and_terminate_are_the_case_instances(client, transition, state):
    case_id = await _case(client)
    body = {"variables": {"result": {"value": "ok"}}, "deletions": []}
    response = await client.post(f"/case-execution/{case_id}/{transition}", json=body)
    assert response.status == 204, await response.text()
    case = await (await client.get(f"/case-instance/{case_id}")).json()
    assert case[state] is True
    result = await client.get(f"/case-execution/{case_id}/variables/result")
    assert (await result.json())["value"] == "ok"
    again = await client.post(f"/case-execution/{case_id}/{transition}", json={})
    assert again.status == 403
    refusal = await again.json()
    assert refusal["type"] == "InvalidRequestException"
    assert refusal["message"].startswith(f"Cannot {transition} case execution {case_id}: ENGINE-")


async def test_a_transition_with_a_bad_variable_names_the_execution(client):
    case_id = await _case(client)
    response = await client.post(
        f"/case-execution/{case_id}/complete",
        json={"variables": {"n": {"value": "x1", "type": "Integer"}}},
    )
    assert response.status == 400
    assert await response.json() == {
        "type": "RestException",
        "message": f"Cannot complete case execution {case_id} due to invalid variable n: "
        "Cannot convert value 'x1' of type 'Integer' to java type java.lang.Integer",
        "code": None,
    }
    assert (await (await client.get(f"/case-instance/{case_id}")).json())["active"] is True


@pytest.mark.parametrize(
    ("route", "transition"),
    [("manual-start", "manualStart"), ("disable", "disable"), ("reenable", "re-enable")],
)
async def test_plan_item_transitions_are_refused_for_the_root_execution(client, route, transition):
    case_id = await _case(client)
    word = {"manual-start": "manualStart"}.get(route, route)
    body = {"variables": {"v": {"value": 1}}}
    response = await client.post(f"/case-execution/{case_id}/{route}", json=body)
    assert response.status == 403
    assert await response.json() == {
        "type": "InvalidRequestException",
        "message": f"Cannot {word} case execution {case_id}: ENGINE-05012 Could not perform "
        f"transition '{transition} on case execution with id '{case_id}'.Reason: The "
        "transition is not possible for this case instance.",
        "code": 0,
    }
    # Nothing was written.
    assert await (await client.get(f"/case-instance/{case_id}/variables")).json() == {}
    unknown = new_id()
    missing = await client.post(f"/case-execution/{unknown}/{route}", json={"id": unknown})
    assert missing.status == 404
    assert await missing.json() == {
        "type": "InvalidRequestException",
        "message": f"Cannot {word} case execution {unknown}: {missing_case_on_write(unknown)}",
        "code": 0,
    }
    malformed = await client.post(f"/case-execution/{case_id}/{route}", json=[])
    assert malformed.status == 400
    assert (await malformed.json())["type"] == "InvalidRequestException"
