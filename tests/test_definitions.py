"""Creating case instances from a case definition: by key, by key and tenant, and by the
definition id of Camunda's shape that the instances report."""

from __future__ import annotations

import re

import pytest

from service.camunda.definitions import case_definition_id
from tests.conftest import new_id
from tests.test_cases import raw_url

UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


async def _create(client, path, body=None):
    response = await client.post(path, json={} if body is None else body)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_a_key_is_one_definition_with_an_id_of_camundas_shape(client):
    key = new_id("invoice")
    first = await _create(client, f"/case-definition/key/{key}/create")
    second = await _create(client, f"/case-definition/key/{key}/create", {"businessKey": "b"})
    assert first["id"] != second["id"]
    assert re.fullmatch(f"{re.escape(key)}:1:{UUID}", first["caseDefinitionId"])
    assert first["caseDefinitionId"] == second["caseDefinitionId"]
    assert first["caseDefinitionId"] == case_definition_id(key, None)
    assert first["tenantId"] is None
    listed = await client.get(
        "/case-instance", params={"caseDefinitionId": first["caseDefinitionId"]}
    )
    assert {case["id"] for case in await listed.json()} == {first["id"], second["id"]}


async def test_a_tenant_has_its_own_definition_of_a_key(client):
    key = new_id("claim")
    plain = await _create(client, f"/case-definition/key/{key}/create")
    tenant = await _create(client, f"/case-definition/key/{key}/tenant-id/acme/create")
    other = await _create(client, f"/case-definition/key/{key}/tenant-id/umbrella/create")
    assert tenant["tenantId"] == "acme"
    assert other["tenantId"] == "umbrella"
    ids = {plain["caseDefinitionId"], tenant["caseDefinitionId"], other["caseDefinitionId"]}
    assert len(ids) == 3
    assert all(re.fullmatch(f"{re.escape(key)}:1:{UUID}", found) for found in ids)
    counted = await client.post(
        "/case-instance/count", json={"caseDefinitionKey": key, "tenantIdIn": ["acme"]}
    )
    assert await counted.json() == {"count": 1}


@pytest.mark.parametrize("tenant", [None, "acme"])
async def test_creation_by_the_reported_id_keeps_key_and_tenant(client, tenant):
    key = new_id("order")
    path = f"/case-definition/key/{key}" + ("" if tenant is None else f"/tenant-id/{tenant}")
    first = await _create(client, path + "/create")
    definition_id = first["caseDefinitionId"]
    # camunda-bpm-sdk-js sends its own arguments along in the body: ignored.
    body = {
        "id": definition_id,
        "businessKey": "by-id",
        "variables": {"amount": {"value": 7, "type": "Integer"}},
    }
    created = await _create(client, f"/case-definition/{definition_id}/create", body)
    assert created["caseDefinitionId"] == definition_id
    assert created["tenantId"] == tenant
    assert created["businessKey"] == "by-id"
    amount = await client.get(f"/case-instance/{created['id']}/variables/amount")
    assert (await amount.json())["value"] == 7
    query = await client.post("/case-instance", json={"caseDefinitionKey": key})
    assert {case["id"] for case in await query.json()} == {first["id"], created["id"]}


async def test_a_long_key_gets_the_generated_id_alone(client):
    key = "k" * 40
    created = await _create(client, f"/case-definition/key/{key}/create")
    assert re.fullmatch(UUID, created["caseDefinitionId"])
    again = await _create(client, f"/case-definition/{created['caseDefinitionId']}/create")
    assert again["caseDefinitionId"] == created["caseDefinitionId"]


async def test_an_unknown_definition_id_is_camundas_404_and_creates_nothing(client, db):
    unknown = f"{new_id('nokey')}:1:00000000-0000-0000-0000-000000000000"
    before = await db.fetchval("SELECT count(*) FROM case_instance")
    response = await client.post(f"/case-definition/{unknown}/create", json={})
    assert response.status == 404
    assert await response.json() == {
        "type": "InvalidRequestException",
        "message": f"Cannot instantiate case definition {unknown}: no deployed case definition "
        f"found with id '{unknown}': caseDefinition is null",
        "code": 0,
    }
    # As in Camunda, the values are converted before the definition is looked for.
    response = await client.post(
        f"/case-definition/{unknown}/create",
        json={"variables": {"bad": {"value": "1abc", "type": "Integer"}}},
    )
    assert response.status == 400
    assert (await response.json())["message"] == (
        f"Cannot instantiate case definition {unknown}: Cannot convert value '1abc' of type "
        "'Integer' to java type java.lang.Integer"
    )
    assert await db.fetchval("SELECT count(*) FROM case_instance") == before


@pytest.mark.parametrize(
    "path",
    [
        "/case-definition/key/{key}/create",
        "/case-definition/key/{key}/tenant-id/acme/create",
        "/case-definition/{id}/create",
    ],
)
@pytest.mark.parametrize(
    "payload",
    [b"[1]", b"{not json", b'{"businessKey": 5}', b'{"variables": []}'],
)
async def test_wrong_bodies_are_400_and_create_nothing(client, db, path, payload):
    key = new_id("body")
    definition_id = (await _create(client, f"/case-definition/key/{key}/create"))[
        "caseDefinitionId"
    ]
    response = await client.post(
        path.format(key=key, id=definition_id),
        data=payload,
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 400
    assert (await response.json())["type"] == "InvalidRequestException"
    count = "SELECT count(*) FROM case_instance WHERE case_definition_key = $1"
    assert await db.fetchval(count, key) == 1


@pytest.mark.parametrize("tenant", ["..", "%2F"])
async def test_a_tenant_id_that_is_no_path_segment_is_404(client, tenant):
    path = f"/case-definition/key/k/tenant-id/{tenant}/create"
    async with client.session.post(raw_url(client, path), json={}) as response:
        assert response.status == 404
        assert (await response.json())["type"] == "NotFoundException"


async def test_a_too_long_tenant_id_is_400(client):
    response = await client.post(f"/case-definition/key/k/tenant-id/{'t' * 256}/create", json={})
    assert response.status == 400
    assert (await response.json())["message"] == "The tenant id is longer than 255 characters"


# --- reading the definitions ------------------------------------------------------------


def _dto(definition_id, key, tenant_id=None):
    return {
        "id": definition_id,
        "key": key,
        "category": None,
        "name": None,
        "version": 1,
        "resource": None,
        "deploymentId": None,
        "tenantId": tenant_id,
        "historyTimeToLive": None,
    }


async def test_a_recorded_definition_reads_by_id_and_by_key(client):
    key = new_id("read")
    plain = (await _create(client, f"/case-definition/key/{key}/create"))["caseDefinitionId"]
    acme = (await _create(client, f"/case-definition/key/{key}/tenant-id/acme/create"))[
        "caseDefinitionId"
    ]
    for path, expected in [
        (f"/case-definition/{plain}", _dto(plain, key)),
        (f"/case-definition/{acme}", _dto(acme, key, "acme")),
        (f"/case-definition/key/{key}", _dto(plain, key)),
        (f"/case-definition/key/{key}/tenant-id/acme", _dto(acme, key, "acme")),
    ]:
        response = await client.get(path)
        assert response.status == 200, path
        assert await response.json() == expected


async def test_unknown_definitions_are_camundas_404s(client):
    key = new_id("none")
    unknown = f"{key}:1:00000000-0000-0000-0000-000000000000"
    response = await client.get(f"/case-definition/{unknown}")
    assert response.status == 404
    assert await response.json() == {
        "type": "InvalidRequestException",
        "message": f"no deployed case definition found with id '{unknown}': caseDefinition is null",
        "code": 0,
    }
    for path, tenant in [
        (f"/case-definition/key/{key}", "no tenant-id"),
        (f"/case-definition/key/{key}/tenant-id/t", "tenant-id: t"),
    ]:
        response = await client.get(path)
        assert response.status == 404
        assert await response.json() == {
            "type": "RestException",
            "message": f"No matching case definition with key: {key} and {tenant}",
            "code": None,
        }


async def test_definition_queries(client):
    key = new_id("query")
    plain = (await _create(client, f"/case-definition/key/{key}/create"))["caseDefinitionId"]
    acme = (await _create(client, f"/case-definition/key/{key}/tenant-id/acme/create"))[
        "caseDefinitionId"
    ]
    other = (await _create(client, f"/case-definition/key/{key}/tenant-id/other/create"))[
        "caseDefinitionId"
    ]

    async def ids(**params):
        response = await client.get("/case-definition", params=params)
        assert response.status == 200, await response.text()
        counted = await client.get("/case-definition/count", params=params)
        found = [item["id"] for item in await response.json()]
        if "maxResults" not in params and "firstResult" not in params:
            assert await counted.json() == {"count": len(found)}
        return found

    assert set(await ids(key=key)) == {plain, acme, other}
    assert set(await ids(keyLike=key[:-2] + "%")) >= {plain, acme, other}
    assert await ids(key=key, withoutTenantId="true") == [plain]
    assert set(await ids(key=key, tenantIdIn="acme,x")) == {acme}
    both = await ids(key=key, tenantIdIn="acme", includeCaseDefinitionsWithoutTenantId="true")
    assert set(both) == {plain, acme}
    assert await ids(caseDefinitionId=acme) == [acme]
    assert set(await ids(caseDefinitionIdIn=f"{acme},{other}")) == {acme, other}
    assert await ids(caseDefinitionId=acme, caseDefinitionIdIn=other) == []
    assert set(await ids(key=key, version="1", latestVersion="true")) == {plain, acme, other}
    assert await ids(key=key, version="2") == []
    assert await ids(key=key, name="n") == []
    ordered = await ids(key=key, sortBy="tenantId", sortOrder="desc")
    # Without a tenant sorts as Postgres sorts NULL: last ascending, first descending.
    assert ordered == [plain, other, acme]
    assert await ids(
        key=key, sortBy="tenantId", sortOrder="asc", firstResult="1", maxResults="1"
    ) == [other]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"version": "x"}, "Cannot set query parameter 'version' to value 'x'"),
        ({"version": "9" * 20}, f"Cannot set query parameter 'version' to value '{'9' * 20}'"),
        (
            {"sortBy": "nope", "sortOrder": "asc"},
            "Cannot set query parameter 'sortBy' to value 'nope'",
        ),
        (
            {"sortBy": "key"},
            "Only a single sorting parameter specified. sortBy and sortOrder required",
        ),
        ({"firstResult": "x"}, "Cannot set query parameter 'firstResult' to value 'x'"),
    ],
)
async def test_bad_definition_queries_are_400(client, params, message):
    response = await client.get("/case-definition", params=params)
    assert response.status == 400
    assert await response.json() == {
        "type": "InvalidRequestException",
        "message": message,
        "code": None,
    }
