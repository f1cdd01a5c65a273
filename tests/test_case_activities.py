"""Historic case activity instances and statistics: casevars has no plan items, so the
queries answer Camunda's empty shapes, and refuse what Camunda refuses of their
parameters."""

from __future__ import annotations

import pytest

from tests.conftest import new_id

ACTIVITIES = "/history/case-activity-instance"


async def test_there_are_no_case_activity_instances(client):
    case = await (await client.post(f"/case-definition/key/{new_id('act')}/create")).json()
    params = {
        "caseInstanceId": case["id"],
        "caseDefinitionId": case["caseDefinitionId"],
        "caseActivityIdIn": "a,b",
        "tenantIdIn": "t",
        "createdAfter": "2020-01-01T00:00:00.000+0000",
        "finished": "true",
        "sortBy": "createTime",
        "sortOrder": "desc",
        "firstResult": "0",
        "maxResults": "10",
    }
    for root in ("", "/engine-rest", "/engine/default"):
        response = await client.get(root + ACTIVITIES, params=params)
        assert response.status == 200
        assert await response.json() == []
        count = {k: v for k, v in params.items() if k not in {"sortBy", "sortOrder"}}
        response = await client.get(root + ACTIVITIES + "/count", params=count)
        assert response.status == 200
        assert await response.json() == {"count": 0}
    response = await client.get(f"/history/case-definition/{case['caseDefinitionId']}/statistics")
    assert response.status == 200
    assert await response.json() == []
    # As in Camunda, statistics of an id no definition has are empty too.
    response = await client.get("/history/case-definition/nothing:1:x/statistics")
    assert response.status == 200
    assert await response.json() == []


async def test_a_case_activity_instance_is_never_found(client):
    response = await client.get(f"{ACTIVITIES}/{new_id()}")
    assert response.status == 404
    body = await response.json()
    assert body["type"] == "InvalidRequestException"
    assert body["message"].startswith("Historic case activity instance with id '")
    assert body["message"].endswith("' does not exist")


@pytest.mark.parametrize("path", [ACTIVITIES, ACTIVITIES + "/count"])
@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"sortBy": "nope", "sortOrder": "asc"},
            "Cannot set query parameter 'sortBy' to value 'nope'",
        ),
        (
            {"sortBy": "caseInstanceId", "sortOrder": "up"},
            "Cannot set query parameter 'sortOrder' to value 'up'",
        ),
        (
            {"sortBy": "caseInstanceId"},
            "Only a single sorting parameter specified. sortBy and sortOrder required",
        ),
        (
            {"sortOrder": "asc"},
            "Only a single sorting parameter specified. sortBy and sortOrder required",
        ),
        (
            {"createdBefore": "yesterday"},
            (
                "Cannot set query parameter 'createdBefore' to value 'yesterday': Cannot "
                'convert value "yesterday" to java type java.util.Date'
            ),
        ),
        (
            {"tenantIdIn": ",".join(["t"] * 1001)},
            "At most 1000 ids (tenantIdIn) are allowed in one query, not 1001",
        ),
    ],
)
async def test_bad_parameters_are_camundas_400s(client, path, params, message):
    response = await client.get(path, params=params)
    assert response.status == 400
    assert await response.json() == {
        "type": "InvalidRequestException",
        "message": message,
        "code": None,
    }


async def test_bad_paging_is_a_400(client):
    response = await client.get(ACTIVITIES, params={"maxResults": "-1"})
    assert response.status == 400
    assert (await response.json())["message"] == (
        "Cannot set query parameter 'maxResults' to value '-1'"
    )
