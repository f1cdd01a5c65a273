"""Historic case instances: GET and POST /history/case-instance (+ /count, /{id}) over
every case instance, closed ones included."""

from datetime import UTC, datetime, timedelta

import pytest

from service.camunda.values import format_date, parse_date
from tests.conftest import new_id

HISTORY = "/history/case-instance"


async def _closed(client, case_id, via="complete", **fields):
    await client.put(f"/case-instance/{case_id}", json=fields)
    assert (await client.post(f"/case-instance/{case_id}/{via}")).status == 204
    assert (await client.post(f"/case-instance/{case_id}/close")).status == 204


async def _ids(client, params=None, body=None, path=HISTORY):
    if body is None:
        response = await client.get(path, params=params)
    else:
        response = await client.post(path, json=body, params=params)
    assert response.status == 200, await response.text()
    return [case["id"] for case in await response.json()]


async def test_a_historic_case_instance_shows_camundas_dto(client, db):
    case_id = new_id()
    fields = {"businessKey": "order-7", "caseDefinitionKey": "claims", "tenantId": "t1"}
    await _closed(client, case_id, **fields)
    response = await client.get(f"{HISTORY}/{case_id}")
    assert response.status == 200
    shown = await response.json()
    row = await db.fetchrow(
        "SELECT created_at, closed_at FROM case_instance WHERE id = $1", case_id
    )
    created, closed = parse_date(shown["createTime"]), parse_date(shown["closeTime"])
    assert shown == {
        "id": case_id,
        "businessKey": "order-7",
        "caseDefinitionId": None,
        "caseDefinitionKey": "claims",
        "caseDefinitionName": None,
        "createTime": format_date(row["created_at"]),
        "closeTime": format_date(row["closed_at"]),
        "durationInMillis": (closed - created) // timedelta(milliseconds=1),
        "createUserId": None,
        "superCaseInstanceId": None,
        "superProcessInstanceId": None,
        "tenantId": "t1",
        "active": False,
        "completed": False,
        "terminated": False,
        "closed": True,
    }


async def test_history_lists_instances_in_every_state(client):
    key = new_id("key")
    ids = {state: new_id(state) for state in ("active", "completed", "terminated", "closed")}
    for case_id in ids.values():
        await client.put(f"/case-instance/{case_id}", json={"caseDefinitionKey": key})
    await client.post(f"/case-instance/{ids['completed']}/complete")
    await client.post(f"/case-instance/{ids['terminated']}/terminate")
    await client.post(f"/case-instance/{ids['closed']}/terminate")
    await client.post(f"/case-instance/{ids['closed']}/close")
    listed = await (await client.get(HISTORY, params={"caseDefinitionKey": key})).json()
    by_id = {case["id"]: case for case in listed}
    assert set(by_id) == set(ids.values())
    for state, case_id in ids.items():
        flags = {
            name: by_id[case_id][name] for name in ("active", "completed", "terminated", "closed")
        }
        assert flags == {name: name == state for name in flags}
        assert (by_id[case_id]["closeTime"] is None) == (state != "closed")
        assert (by_id[case_id]["durationInMillis"] is None) == (state != "closed")
    for state, case_id in ids.items():
        assert await _ids(client, {"caseDefinitionKey": key, state: "true"}) == [case_id]
        assert await _ids(client, body={"caseDefinitionKey": key, state: True}) == [case_id]
    not_closed = await _ids(client, {"caseDefinitionKey": key, "notClosed": "true"})
    assert sorted(not_closed) == sorted(ids[s] for s in ("active", "completed", "terminated"))
    count = await client.get(HISTORY + "/count", params={"caseDefinitionKey": key})
    assert await count.json() == {"count": 4}
    count = await client.post(HISTORY + "/count", json={"caseDefinitionKey": key, "closed": True})
    assert await count.json() == {"count": 1}


async def test_unknown_historic_case_instance(client):
    response = await client.get(f"{HISTORY}/nope-1")
    assert response.status == 404
    assert await response.json() == {
        "type": "InvalidRequestException",
        "message": "Historic case instance with id 'nope-1' does not exist",
        "code": None,
    }


async def test_filters_of_the_historic_query(client):
    key = new_id("key")
    first, second, third = new_id("a"), new_id("b"), new_id("c")
    await client.put(
        f"/case-instance/{first}", json={"caseDefinitionKey": key, "businessKey": "ab-1"}
    )
    await client.put(
        f"/case-instance/{second}",
        json={"caseDefinitionKey": key, "businessKey": "ab-2", "tenantId": "t"},
    )
    await client.put(
        f"/case-instance/{third}", json={"caseDefinitionKey": key + "-other", "businessKey": "xy"}
    )
    for case_id, amount, size in ((first, 10, "small"), (second, 20, "large")):
        await client.put(f"/case-instance/{case_id}/variables/amount", json={"value": amount})
        await client.put(f"/case-instance/{case_id}/variables/size", json={"value": size})
    both = {first, second}
    assert (
        set(
            await _ids(
                client, {"caseInstanceIds": f"{first},{second},{third}", "caseDefinitionKey": key}
            )
        )
        == both
    )
    assert set(await _ids(client, body={"caseInstanceIds": [first, third]})) == {first, third}
    assert await _ids(client, {"caseInstanceId": first}) == [first]
    assert await _ids(client, {"caseInstanceBusinessKey": "ab-2"}) == [second]
    assert (
        set(await _ids(client, {"caseInstanceBusinessKeyLike": "ab-%", "caseDefinitionKey": key}))
        == both
    )
    assert await _ids(client, {"caseDefinitionKey": key, "tenantIdIn": "t,u"}) == [second]
    assert await _ids(client, {"caseDefinitionKey": key, "withoutTenantId": "true"}) == [first]
    assert await _ids(
        client, body={"caseInstanceIds": [first, second, third], "caseDefinitionKeyNotIn": [key]}
    ) == [third]
    assert await _ids(client, {"caseDefinitionKey": key, "variables": "size_eq_large"}) == [second]
    conditions = [{"name": "amount", "operator": "lteq", "value": 10}]
    assert await _ids(client, body={"caseDefinitionKey": key, "variables": conditions}) == [first]
    # Sorting and paging.
    ordered = await _ids(
        client, {"caseDefinitionKey": key, "sortBy": "businessKey", "sortOrder": "desc"}
    )
    assert ordered == [second, first]
    sorting = [{"sortBy": "createTime", "sortOrder": "asc"}]
    paged = await _ids(
        client,
        {"firstResult": "1", "maxResults": "1"},
        {"caseDefinitionKey": key, "sorting": sorting},
    )
    assert paged == [second]


async def test_time_filters(client, db):
    key = new_id("key")
    early, late = new_id("early"), new_id("late")
    await _closed(client, early, caseDefinitionKey=key)
    await client.put(f"/case-instance/{late}", json={"caseDefinitionKey": key})
    hour = timedelta(hours=1)
    await db.execute(
        "UPDATE case_instance SET created_at = created_at - $2::interval,"
        " closed_at = closed_at - $2::interval WHERE id = $1",
        early,
        3 * hour,
    )
    now = datetime.now(UTC)
    middle = format_date(now - 2 * hour)
    assert await _ids(client, {"caseDefinitionKey": key, "createdBefore": middle}) == [early]
    assert await _ids(client, {"caseDefinitionKey": key, "createdAfter": middle}) == [late]
    assert await _ids(client, body={"caseDefinitionKey": key, "closedBefore": middle}) == [early]
    millis = int((now - 4 * hour).timestamp() * 1000)
    assert await _ids(client, body={"caseDefinitionKey": key, "closedAfter": millis}) == [early]
    assert await _ids(client, {"caseDefinitionKey": key, "closedAfter": middle}) == []
    # A close time asks for closed instances, as Camunda's query does.
    assert await _ids(
        client, {"caseDefinitionKey": key, "closedBefore": format_date(now + hour)}
    ) == [early]
    by_duration = await _ids(
        client, {"caseDefinitionKey": key, "sortBy": "duration", "sortOrder": "asc"}
    )
    assert by_duration == [early, late]  # no duration last


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"createdBefore": "yesterday"},
            (
                "Cannot set query parameter 'createdBefore' to value 'yesterday': Cannot convert "
                'value "yesterday" to java type java.util.Date'
            ),
        ),
        (
            {"closedAfter": '"2026-01-01T00:00:00.000+0000"'},
            (
                "Cannot set query parameter 'closedAfter' to value "
                "'\"2026-01-01T00:00:00.000+0000\"': Cannot convert value "
                '"2026-01-01T00:00:00.000+0000" to java type java.util.Date '
                "because of double quotes"
            ),
        ),
        (
            {"sortBy": "caseInstanceId", "sortOrder": "asc"},
            "Cannot set query parameter 'sortBy' to value 'caseInstanceId'",
        ),
        (
            {"sortBy": "createTime"},
            "Only a single sorting parameter specified. sortBy and sortOrder required",
        ),
        ({"variables": "a_bad_1"}, "Invalid variable comparator specified: bad"),
    ],
)
async def test_bad_query_strings(client, params, message):
    for path in (HISTORY, HISTORY + "/count"):
        response = await client.get(path, params=params)
        assert response.status == 400
        assert await response.json() == {
            "type": "InvalidRequestException",
            "message": message,
            "code": None,
        }


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"active": "true", "completed": "true"},
            "Already querying for case instance state '4': state is not null",
        ),
        (
            {"terminated": "true", "closed": "true"},
            "Already querying for case instance state '6': state is not null",
        ),
        (
            {"closedBefore": "2026-01-01T00:00:00.000+0000", "closed": "true"},
            "Already querying for case instance state '9': state is not null",
        ),
    ],
)
async def test_two_states_are_refused_as_camunda_refuses_them(client, params, message):
    response = await client.get(HISTORY, params=params)
    assert response.status == 400
    assert await response.json() == {"type": "NotValidException", "message": message, "code": 0}


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b"{broken",
        b'{"caseInstanceIds": "a"}',
        b'{"caseInstanceIds": [1]}',
        b'{"createdBefore": "soon"}',
        b'{"createdBefore": true}',
        b'{"variables": {"name": "a"}}',
        b'{"sorting": [1]}',
        b'{"caseInstanceBusinessKeyLike": 5}',
    ],
)
async def test_bad_bodies(client, body):
    response = await client.post(HISTORY, data=body, headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert await response.json() == {"type": "InvalidRequestException", "message": "", "code": None}


async def test_bad_paging(client):
    response = await client.get(HISTORY, params={"firstResult": "-1"})
    assert response.status == 400
    assert await response.json() == {
        "type": "InvalidRequestException",
        "message": "Cannot set query parameter 'firstResult' to value '-1'",
        "code": None,
    }


async def test_empty_ids_and_unsupported_filters(client):
    response = await client.post(HISTORY, json={"caseInstanceIds": []})
    assert response.status == 400
    assert await response.json() == {
        "type": "ProcessEngineException",
        "message": "Set of case instance ids is empty",
        "code": 0,
    }
    for name in ("caseDefinitionName", "createdBy", "superProcessInstanceId"):
        response = await client.get(HISTORY, params={name: "x"})
        assert response.status == 400
        assert (await response.json())["message"].startswith(
            f"The filter '{name}' is not supported"
        )
    response = await client.get(HISTORY, params={"caseInstanceId": "a\x00b"})
    assert response.status == 400
