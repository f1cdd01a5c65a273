"""Case-instance queries: GET/POST /case-instance and /count with filters, paging,
sorting and their errors, and creation from a definition key, over a
few hundred instances in a database of the test module's own."""

from __future__ import annotations

import base64
import dataclasses

import asyncpg
import pytest

from service.app import create_app
from service.camunda.definitions import case_definition_id
from service.http.query_params import MAX_QUERY_CONDITIONS, MAX_SORTING_ENTRIES, MAX_TENANT_IDS
from service.storage.case_query import CaseQuery
from service.storage.conditions import VariableCondition
from service.storage.db import create_pool, is_outage
from service.storage.repository import Repository
from tests.conftest import new_id, settings_for_tests

INSTANCES = 300


@pytest.fixture
async def world(fresh_database_dsn, s3_endpoints, aiohttp_client):
    """300 instances: business keys b000..b299, definition keys by i % 3, tenants by
    i % 4 (t0, t1, t2 or none), and variables amount = i, even = (i % 2 == 0),
    label = 'item-<i>', when = a date i days after 2024-01-01."""
    endpoints = dataclasses.replace(s3_endpoints, dsn=fresh_database_dsn)
    client = await aiohttp_client(create_app(settings_for_tests(), endpoints))
    for index in range(INSTANCES):
        case_id = f"case-{index:03d}"
        body = {
            "businessKey": f"b{index:03d}",
            "caseDefinitionKey": f"def{index % 3}",
            "caseDefinitionId": f"def{index % 3}:1:x",
            "tenantId": None if index % 4 == 3 else f"t{index % 4}",
        }
        assert (await client.put(f"/case-instance/{case_id}", json=body)).status == 201
        day = 1 + index % 28
        month = 1 + index // 28
        modifications = {
            "amount": {"value": index, "type": "Integer"},
            "even": {"value": index % 2 == 0},
            "label": {"value": f"Item-{index}"},
            "when": {"value": f"2024-{month:02d}-{day:02d}T12:00:00.000+0000", "type": "Date"},
        }
        response = await client.post(
            f"/case-instance/{case_id}/variables", json={"modifications": modifications}
        )
        assert response.status == 204
    return client


async def ids(response):
    assert response.status == 200, await response.text()
    return [item["id"] for item in await response.json()]


async def count(client, params=None, body=None):
    if body is None:
        response = await client.get("/case-instance/count", params=params or {})
    else:
        response = await client.post("/case-instance/count", json=body)
    assert response.status == 200, await response.text()
    return (await response.json())["count"]


async def test_filters_paging_sorting(world):
    client = world
    everything = await ids(await client.get("/case-instance"))
    assert len(everything) == INSTANCES
    assert everything == sorted(everything)
    assert await count(client) == INSTANCES

    page = await ids(
        await client.get("/case-instance", params={"firstResult": 10, "maxResults": 5})
    )
    assert page == everything[10:15]
    assert await ids(await client.get("/case-instance", params={"maxResults": 0})) == []
    assert len(await ids(await client.get("/case-instance", params={"firstResult": 295}))) == 5

    by_key = await ids(await client.get("/case-instance", params={"businessKey": "b042"}))
    assert by_key == ["case-042"]
    assert await count(client, {"caseInstanceId": "case-007"}) == 1
    assert await count(client, {"caseDefinitionKey": "def1"}) == 100
    assert await count(client, {"caseDefinitionId": "def2:1:x"}) == 100
    assert await count(client, {"tenantIdIn": "t0,t1"}) == 150
    assert await count(client, {"withoutTenantId": "true"}) == 75
    assert await count(client, {"withoutTenantId": "false"}) == INSTANCES
    assert await count(client, {"active": "true"}) == INSTANCES
    assert await count(client, {"completed": "true"}) == 0
    assert await count(client, {"terminated": "TRUE"}) == 0

    descending = await ids(
        await client.get("/case-instance", params={"sortBy": "caseInstanceId", "sortOrder": "desc"})
    )
    assert descending == everything[::-1]
    by_tenant = await client.get(
        "/case-instance", params={"sortBy": "tenantId", "sortOrder": "asc", "maxResults": 80}
    )
    by_tenant_items = await by_tenant.json()
    tenants = [item["tenantId"] for item in by_tenant_items]
    assert tenants == ["t0"] * 75 + ["t1"] * 5
    # A page past the first row is found through a subquery of ids: the same rows, in
    # the same order, sorted by any field.
    tenant_page = await client.get(
        "/case-instance",
        params={"sortBy": "tenantId", "sortOrder": "asc", "firstResult": 70, "maxResults": 10},
    )
    assert await tenant_page.json() == by_tenant_items[70:]
    descending_page = await client.get(
        "/case-instance",
        params={
            "sortBy": "caseInstanceId",
            "sortOrder": "desc",
            "firstResult": 290,
            "maxResults": 20,
        },
    )
    assert await ids(descending_page) == everything[::-1][290:]


async def test_variable_filters_in_the_query_string(world):
    client = world
    # The query string carries text (and dates): label is a String variable.
    assert await count(client, {"variables": "label_eq_Item-5"}) == 1
    assert await count(client, {"variables": "label_like_Item-1%"}) == 111
    assert await count(client, {"variables": "label_eq_item-5"}) == 0
    assert (
        await count(client, {"variables": "label_eq_item-5", "variableValuesIgnoreCase": "true"})
        == 1
    )
    assert (
        await count(client, {"variables": "LABEL_eq_Item-5", "variableNamesIgnoreCase": "true"})
        == 1
    )
    assert await count(client, {"variables": "label_neq_Item-5"}) == INSTANCES - 1
    # Dates in the REST format compare as dates.
    assert await count(client, {"variables": "when_lt_2024-01-03T00:00:00.000+0000"}) == 2
    assert (
        await count(
            client, {"variables": "when_gteq_2024-01-02T12:00:00.000+0000,label_like_Item-%"}
        )
        == INSTANCES - 1
    )
    # As in Camunda, a number in the query string is text and matches no Integer.
    assert await count(client, {"variables": "amount_eq_5"}) == 0


async def test_post_query_with_typed_values(world):
    client = world
    body = {
        "variables": [
            {"name": "amount", "operator": "gteq", "value": 100},
            {"name": "amount", "operator": "lt", "value": 110},
            {"name": "even", "operator": "eq", "value": True},
        ],
        "sorting": [{"sortBy": "caseInstanceId", "sortOrder": "desc"}],
    }
    response = await client.post("/case-instance", json=body)
    assert await ids(response) == [f"case-{i:03d}" for i in (108, 106, 104, 102, 100)]
    assert await count(client, body=body) == 5
    paged = await client.post("/case-instance?firstResult=1&maxResults=2", json=body)
    assert await ids(paged) == ["case-106", "case-104"]
    assert await count(client, body={"tenantIdIn": ["t2"], "caseDefinitionKey": "def0"}) == 25
    assert (
        await count(
            client, body={"variables": [{"name": "amount", "operator": "gt", "value": 2.5}]}
        )
        == 297
    )
    assert await count(client, body={}) == INSTANCES


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"sortBy": "caseInstanceId"},
            "Only a single sorting parameter specified. sortBy and sortOrder required",
        ),
        (
            {"sortOrder": "asc"},
            "Only a single sorting parameter specified. sortBy and sortOrder required",
        ),
        (
            {"sortBy": "nope", "sortOrder": "asc"},
            "Cannot set query parameter 'sortBy' to value 'nope'",
        ),
        (
            {"sortBy": "tenantId", "sortOrder": "up"},
            "Cannot set query parameter 'sortOrder' to value 'up'",
        ),
        ({"firstResult": "x"}, "Cannot set query parameter 'firstResult' to value 'x'"),
        ({"maxResults": "-1"}, "Cannot set query parameter 'maxResults' to value '-1'"),
        ({"variables": "a_eq"}, "variable query parameter has to have format KEY_OPERATOR_VALUE."),
        ({"variables": "a_is_b"}, "Invalid variable comparator specified: is"),
    ],
)
async def test_query_string_errors(client, params, message):
    paging = "firstResult" in params or "maxResults" in params
    # The count takes no paging parameters.
    for path in ("/case-instance",) if paging else ("/case-instance", "/case-instance/count"):
        response = await client.get(path, params=params)
        assert response.status == 400, await response.text()
        assert await response.json() == {
            "type": "InvalidRequestException",
            "message": message,
            "code": None,
        }


@pytest.mark.parametrize(
    "name",
    [
        "deploymentId",
        "superProcessInstance",
        "subProcessInstance",
        "superCaseInstance",
        "subCaseInstance",
    ],
)
async def test_filters_casevars_cannot_honour_are_refused(client, name):
    response = await client.get("/case-instance", params={name: "x"})
    assert response.status == 400
    body = await response.json()
    assert body["type"] == "InvalidRequestException"
    assert name in body["message"]
    posted = await client.post("/case-instance", json={name: "x"})
    assert posted.status == 400


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"variables": "x"},
        {"variables": [1]},
        {"variables": [{"name": "a", "operator": "eq", "value": {"x": 1}}]},
        {"sorting": {"sortBy": "tenantId"}},
        {"businessKey": 5},
        {"tenantIdIn": "t1"},
    ],
)
async def test_post_query_shape_errors(client, body):
    response = await client.post("/case-instance", json=body)
    assert response.status == 400, await response.text()
    assert (await response.json())["type"] == "InvalidRequestException"


async def test_post_query_bad_sorting_and_operator(client):
    response = await client.post(
        "/case-instance", json={"sorting": [{"sortBy": "x", "sortOrder": "asc"}]}
    )
    assert (await response.json())["message"] == "Cannot set query parameter 'sortBy' to value 'x'"
    response = await client.post(
        "/case-instance", json={"variables": [{"name": "a", "operator": "like", "value": 5}]}
    )
    assert response.status == 400


async def test_post_query_refuses_non_json(client):
    response = await client.post(
        "/case-instance", data=b"x", headers={"Content-Type": "text/plain"}
    )
    assert response.status == 415


# --- POST /case-definition/key/{key}/create ---------------------------------------------


async def test_create_from_definition_with_variables(client):
    content = base64.b64encode(b"attached").decode()
    response = await client.post(
        "/case-definition/key/invoice/create",
        json={
            "businessKey": "order-9",
            "variables": {
                "amount": {"value": 10, "type": "Integer"},
                "scan": {"value": content, "type": "Bytes"},
            },
        },
    )
    assert response.status == 200, await response.text()
    created = await response.json()
    assert created["businessKey"] == "order-9"
    assert created["links"] == []
    assert created["active"] is True
    case_id = created["id"]
    variables = await (await client.get(f"/case-instance/{case_id}/variables")).json()
    assert variables["amount"]["value"] == 10
    assert variables["scan"]["value"] == content
    listed = await client.get(
        "/case-instance", params={"caseDefinitionKey": "invoice", "businessKey": "order-9"}
    )
    assert [item["id"] for item in await listed.json()] == [case_id]


async def test_create_with_a_bad_variable_creates_nothing(client, db, endpoints):
    key = new_id("def")
    response = await client.post(
        f"/case-definition/key/{key}/create",
        json={
            "variables": {
                "ok": {"value": base64.b64encode(b"x").decode(), "type": "Bytes"},
                "bad": {"value": "1abc", "type": "Integer"},
            }
        },
    )
    assert response.status == 400
    body = await response.json()
    assert body["type"] == "InvalidRequestException"
    assert body["message"] == (
        f"Cannot instantiate case definition {case_definition_id(key, None)}: Cannot convert "
        "value '1abc' of type "
        "'Integer' to java type java.lang.Integer"
    )
    assert (
        await db.fetchval("SELECT count(*) FROM case_instance WHERE case_definition_key = $1", key)
        == 0
    )
    assert (
        await db.fetchval(
            "SELECT count(*) FROM blob WHERE state <> 'garbage' AND key LIKE $1 || '%'",
            endpoints.s3_prefix,
        )
        == 0
    )


@pytest.mark.parametrize("body", [b"[]", b'{"businessKey": 1}', b'{"variables": []}', b"{oops"])
async def test_create_shape_errors(client, body):
    response = await client.post(
        "/case-definition/key/k/create", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert await response.json() == {"type": "InvalidRequestException", "message": "", "code": None}


async def test_create_without_body(client):
    response = await client.post("/case-definition/key/k/create")
    assert response.status == 200
    assert (await response.json())["businessKey"] is None


# --- bounds: paging digits, conditions, tenant ids, sorting; Postgres's argument limit --


def refused(message):
    return {"type": "InvalidRequestException", "message": message, "code": None}


@pytest.mark.parametrize("name", ["firstResult", "maxResults"])
@pytest.mark.parametrize("raw", ["1" * 5000, "9" * 11, "2147483648", "0" * 5000 + "2147483648"])
async def test_paging_beyond_an_integer_is_400_at_any_length(client, name, raw):
    response = await client.get("/case-instance", params={name: raw})
    assert response.status == 400
    assert await response.json() == refused(f"Cannot set query parameter '{name}' to value '{raw}'")


@pytest.mark.parametrize("raw", ["0" * 5000, "0" * 5000 + "2147483647", "007"])
async def test_paging_with_leading_zeros_is_its_number(client, raw):
    for name in ("firstResult", "maxResults"):
        response = await client.get("/case-instance", params={name: raw})
        assert response.status == 200, await response.text()


def conditions(count):
    return [{"name": f"v{i}", "operator": "eq", "value": i} for i in range(count)]


async def test_variable_conditions_are_bounded(client):
    over = MAX_QUERY_CONDITIONS + 1
    message = f"At most {MAX_QUERY_CONDITIONS} variable conditions are allowed in one query, not"
    for path in ("/case-instance", "/case-instance/count"):
        response = await client.post(path, json={"variables": conditions(over)})
        assert response.status == 400
        assert await response.json() == refused(f"{message} {over}")
        text = ",".join(f"v{i}_eq_{i}" for i in range(over))
        response = await client.get(path, params={"variables": text})
        assert response.status == 400
        assert await response.json() == refused(f"{message} {over}")
        # The brief's 16,400 conditions: 400, not Postgres's argument limit.
        response = await client.post(path, json={"variables": conditions(16400)})
        assert await response.json() == refused(f"{message} 16400")
    at_bound = await client.post(
        "/case-instance", json={"variables": conditions(MAX_QUERY_CONDITIONS)}
    )
    assert at_bound.status == 200
    assert await at_bound.json() == []


async def test_tenant_ids_and_sorting_are_bounded(client):
    over = MAX_TENANT_IDS + 1
    message = refused(
        f"At most {MAX_TENANT_IDS} tenant ids (tenantIdIn) are allowed in one query, not {over}"
    )
    response = await client.post(
        "/case-instance", json={"tenantIdIn": [f"t{i}" for i in range(over)]}
    )
    assert response.status == 400
    assert await response.json() == message
    response = await client.get("/case-instance/count", params={"tenantIdIn": ",".join("t" * over)})
    assert response.status == 400
    assert await response.json() == message
    at_bound = await client.post(
        "/case-instance/count", json={"tenantIdIn": ["t"] * MAX_TENANT_IDS}
    )
    assert at_bound.status == 200
    sorting = [{"sortBy": "tenantId", "sortOrder": "asc"}] * (MAX_SORTING_ENTRIES + 1)
    response = await client.post("/case-instance", json={"sorting": sorting})
    assert response.status == 400
    assert await response.json() == refused(
        f"At most {MAX_SORTING_ENTRIES} sorting entries are allowed in one query, "
        f"not {MAX_SORTING_ENTRIES + 1}"
    )
    response = await client.post("/case-instance", json={"sorting": sorting[:-1]})
    assert response.status == 200


async def test_a_statement_postgres_cannot_take_is_no_outage(endpoints):
    # Past the HTTP bounds, asyncpg's own limit (32,767 arguments) is a bug, not
    # Postgres being away: raised as it is (a 500), never a 503.
    pool = await create_pool(endpoints.dsn, max_size=1, timeout=5, gc_grace_seconds=0)
    try:
        repository = Repository(pool)
        query = CaseQuery(
            variables=tuple(VariableCondition(f"v{i}", "eq", "x") for i in range(16400))
        )
        with pytest.raises(asyncpg.InterfaceError) as caught:
            await repository.count_case_instances(query)
        assert "32767" in str(caught.value)
        assert not is_outage(caught.value)
    finally:
        await pool.close()
    # A connection or pool that is closed is one.
    connection = await asyncpg.connect(endpoints.dsn)
    await connection.close()
    with pytest.raises(asyncpg.InterfaceError) as closed:
        await connection.fetchval("SELECT 1")
    assert is_outage(closed.value)
    with pytest.raises(asyncpg.InterfaceError) as closed_pool:
        await pool.fetchval("SELECT 1")
    assert is_outage(closed_pool.value)


async def test_conditions_at_the_bound_match_as_each_one_does(world):
    # One grouped pass over the variables answers them all (one EXISTS each made
    # Postgres plan 100 conditions for seconds).
    exact = [
        {"name": "amount", "operator": "eq", "value": 42},
        {"name": "label", "operator": "eq", "value": "Item-42"},
        {"name": "even", "operator": "eq", "value": True},
    ]
    filler = [{"name": "amount", "operator": "gteq", "value": 0}]
    filler *= MAX_QUERY_CONDITIONS - len(exact)
    body = {"variables": exact + filler}
    assert await ids(await world.post("/case-instance", json=body)) == ["case-042"]
    wrong = {"name": "amount", "operator": "eq", "value": 43}
    assert await count(world, body={"variables": [wrong, *exact[1:], *filler]}) == 0
    ignoring_case = {
        "variables": [{"name": "LABEL", "operator": "like", "value": "item-4_"}] * 50
        + [{"name": "Amount", "operator": "lt", "value": 45}] * 50,
        "variableNamesIgnoreCase": True,
        "variableValuesIgnoreCase": True,
    }
    assert await ids(await world.post("/case-instance", json=ignoring_case)) == [
        f"case-{i:03d}" for i in range(40, 45)
    ]
