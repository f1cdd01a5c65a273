"""Creating case instances from a case definition: by key, by key and tenant, and by the
definition id of Camunda's shape that the instances report."""

from __future__ import annotations

import re
from xml.etree import ElementTree as ET

import pytest

from service.camunda.cmmn import CAMUNDA_NAMESPACE as CAMUNDA
from service.camunda.cmmn import CMMN_NAMESPACE as CMMN
from service.camunda.cmmn import case_definition_xml
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


async def test_the_cmmn_document_of_a_definition_by_id_and_by_key(client):
    key = new_id("xml")
    plain = (await _create(client, f"/case-definition/key/{key}/create"))["caseDefinitionId"]
    acme = (await _create(client, f"/case-definition/key/{key}/tenant-id/acme/create"))[
        "caseDefinitionId"
    ]
    for path, definition_id in [
        (f"/case-definition/{plain}/xml", plain),
        (f"/case-definition/key/{key}/xml", plain),
        (f"/case-definition/{acme}/xml", acme),
        (f"/case-definition/key/{key}/tenant-id/acme/xml", acme),
    ]:
        response = await client.get(path)
        assert response.status == 200, path
        found = await response.json()
        assert set(found) == {"id", "cmmnXml"}
        assert found["id"] == definition_id
        root = ET.fromstring(found["cmmnXml"].encode())
        assert root.tag == f"{{{CMMN}}}definitions"
        (case,) = root.findall(f"{{{CMMN}}}case")
        assert case.get("id") == key  # Camunda's definition key is the case's id
        (plan,) = case.findall(f"{{{CMMN}}}casePlanModel")
        assert list(plan) == []  # no plan items
        assert case.get(f"{{{CAMUNDA}}}historyTimeToLive") is None
    # A time to live shows in the document and the DTO.
    response = await client.put(
        f"/case-definition/{plain}/history-time-to-live", json={"historyTimeToLive": 7}
    )
    assert response.status == 204
    xml = (await (await client.get(f"/case-definition/{plain}/xml")).json())["cmmnXml"]
    with_ttl = ET.fromstring(xml.encode()).find(f"{{{CMMN}}}case")
    assert with_ttl is not None
    assert with_ttl.get(f"{{{CAMUNDA}}}historyTimeToLive") == "7"
    assert (await (await client.get(f"/case-definition/{plain}")).json())["historyTimeToLive"] == 7
    listed = await (await client.get("/case-definition", params={"key": key})).json()
    assert {item["id"]: item["historyTimeToLive"] for item in listed} == {plain: 7, acme: None}


async def test_a_key_that_is_no_xml_id_is_the_cases_name():
    document = case_definition_xml("d", "9 <&> \x01", None)
    case = ET.fromstring(document.encode()).find(f"{{{CMMN}}}case")
    assert case is not None
    assert case.get("id", "").startswith("case_")
    assert case.get("name") is None  # \x01 cannot be in XML 1.0
    case = ET.fromstring(case_definition_xml("d", "9 <&>", 3).encode()).find(f"{{{CMMN}}}case")
    assert case is not None
    assert case.get("name") == "9 <&>"


async def test_the_history_time_to_live_by_key_and_tenant_and_back_to_none(client):
    key = new_id("ttl")
    acme = (await _create(client, f"/case-definition/key/{key}/tenant-id/acme/create"))[
        "caseDefinitionId"
    ]
    path = f"/case-definition/key/{key}/tenant-id/acme/history-time-to-live"
    assert (await client.put(path, json={"historyTimeToLive": 0, "id": "ignored"})).status == 204
    assert (await (await client.get(f"/case-definition/{acme}")).json())["historyTimeToLive"] == 0
    assert (await client.put(path, json={"historyTimeToLive": None})).status == 204
    assert (await (await client.get(f"/case-definition/{acme}")).json())[
        "historyTimeToLive"
    ] is None
    assert (await client.put(path, json={"historyTimeToLive": 3.0})).status == 204
    assert (await client.put(path)).status == 204  # no body: null
    assert (await (await client.get(f"/case-definition/{acme}")).json())[
        "historyTimeToLive"
    ] is None


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (
            {"historyTimeToLive": -1},
            400,
            {
                "type": "BadUserRequestException",
                "message": "historyTimeToLive is not greater than or equal to 0",
                "code": 0,
            },
        ),
        ({"historyTimeToLive": "5"}, 400, None),
        ({"historyTimeToLive": 1.5}, 400, None),
        ({"historyTimeToLive": True}, 400, None),
        ({"historyTimeToLive": 2**31}, 400, None),
        ([], 400, None),
    ],
)
async def test_bad_history_times_to_live_are_refused(client, body, status, error):
    key = new_id("ttl-bad")
    definition_id = (await _create(client, f"/case-definition/key/{key}/create"))[
        "caseDefinitionId"
    ]
    response = await client.put(f"/case-definition/{definition_id}/history-time-to-live", json=body)
    assert response.status == status
    expected = error or {"type": "InvalidRequestException", "message": "", "code": None}
    assert await response.json() == expected
    assert (await (await client.get(f"/case-definition/{definition_id}")).json())[
        "historyTimeToLive"
    ] is None


async def test_xml_and_time_to_live_of_unknown_definitions_are_404s(client):
    key = new_id("none")
    unknown = f"{key}:1:00000000-0000-0000-0000-000000000000"
    by_id = {
        "type": "InvalidRequestException",
        "message": f"no deployed case definition found with id '{unknown}': caseDefinition is null",
        "code": 0,
    }
    for method, path, expected in [
        ("GET", f"/case-definition/{unknown}/xml", by_id),
        ("PUT", f"/case-definition/{unknown}/history-time-to-live", by_id),
        ("GET", f"/case-definition/key/{key}/xml", _by_key_404(key, "no tenant-id")),
        (
            "PUT",
            f"/case-definition/key/{key}/history-time-to-live",
            _by_key_404(key, "no tenant-id"),
        ),
        ("GET", f"/case-definition/key/{key}/tenant-id/t/xml", _by_key_404(key, "tenant-id: t")),
        (
            "PUT",
            f"/case-definition/key/{key}/tenant-id/t/history-time-to-live",
            _by_key_404(key, "tenant-id: t"),
        ),
    ]:
        response = await client.request(method, path, json={"historyTimeToLive": 1})
        assert response.status == 404, path
        assert await response.json() == expected, path
    # The body is read first, as in Camunda: a bad one is a 400 even for an unknown id.
    response = await client.put(
        f"/case-definition/{unknown}/history-time-to-live", json={"historyTimeToLive": -1}
    )
    assert response.status == 400


def _by_key_404(key: str, tenant: str) -> dict[str, object]:
    return {
        "type": "RestException",
        "message": f"No matching case definition with key: {key} and {tenant}",
        "code": None,
    }


async def test_a_definition_has_no_diagram(client):
    key = new_id("diagram")
    plain = (await _create(client, f"/case-definition/key/{key}/create"))["caseDefinitionId"]
    await _create(client, f"/case-definition/key/{key}/tenant-id/acme/create")
    for path in (
        f"/case-definition/{plain}/diagram",
        f"/case-definition/key/{key}/diagram",
        f"/case-definition/key/{key}/tenant-id/acme/diagram",
    ):
        response = await client.get(path)
        assert response.status == 204, path
        assert await response.read() == b""
    unknown = f"{key}:1:00000000-0000-0000-0000-000000000000"
    response = await client.get(f"/case-definition/{unknown}/diagram")
    assert response.status == 404
    assert await response.json() == {
        "type": "NotFoundException",
        "message": f"no deployed case definition found with id '{unknown}': caseDefinition is null",
        "code": 0,
    }
    response = await client.get(f"/case-definition/key/{new_id('none')}/diagram")
    assert response.status == 404
    assert (await response.json())["type"] == "RestException"
