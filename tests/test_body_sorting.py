"""The top-level `sortBy` and `sortOrder` of POST query bodies (camunda-bpm-sdk-js's
variable.instances sends them): both or neither, applied before the `sorting` list, as
Camunda's query DTOs apply them, in every POST query of case instances, historic case
instances, case executions, variable instances and historic variable instances."""

from __future__ import annotations

import pytest

from tests.conftest import new_id

INVALID = "InvalidRequestException"
ONLY_ONE = "Only a single sorting parameter specified. sortBy and sortOrder required"
# Each POST query route and a sortBy value it takes.
QUERIES = [
    ("/case-instance", "tenantId"),
    ("/history/case-instance", "tenantId"),
    ("/case-execution", "tenantId"),
    ("/variable-instance", "tenantId"),
    ("/history/variable-instance", "tenantId"),
]


async def _three_tenants(client) -> tuple[str, list[str]]:
    """Three case instances of one key, tenants a, b, c, each with a variable v."""
    key = new_id("sorted")
    ids = []
    for tenant in ("b", "c", "a"):
        created = await client.post(
            f"/case-definition/key/{key}/tenant-id/{tenant}/create",
            json={"variables": {"v": {"value": tenant}}},
        )
        ids.append((await created.json())["id"])
    return key, ids


def _filter(path: str, key: str, ids: list[str]) -> dict[str, object]:
    if path.endswith("variable-instance"):
        return {"caseInstanceIdIn": ids}
    return {"caseDefinitionKey": key}


def _tenants(found: list[dict[str, object]]) -> list[object]:
    return [item["tenantId"] for item in found]


@pytest.mark.parametrize(("path", "sort_by"), QUERIES)
async def test_top_level_sorting_applies_before_the_list(client, path, sort_by):
    key, ids = await _three_tenants(client)
    base = _filter(path, key, ids)
    for order, expected in (("asc", ["a", "b", "c"]), ("desc", ["c", "b", "a"])):
        response = await client.post(path, json={**base, "sortBy": sort_by, "sortOrder": order})
        assert response.status == 200, await response.text()
        assert _tenants(await response.json()) == expected
    # The top-level pair comes first, the list's entries after it.
    both = {
        **base,
        "sortBy": sort_by,
        "sortOrder": "desc",
        "sorting": [{"sortBy": sort_by, "sortOrder": "asc"}],
    }
    response = await client.post(path, json=both)
    assert _tenants(await response.json()) == ["c", "b", "a"]
    # null is no sorting, as an absent key.
    response = await client.post(path, json={**base, "sortBy": None, "sortOrder": None})
    assert response.status == 200
    # The count takes (and checks) them too.
    response = await client.post(
        path + "/count", json={**base, "sortBy": sort_by, "sortOrder": "asc"}
    )
    assert await response.json() == {"count": 3}


@pytest.mark.parametrize("suffix", ["", "/count"])
@pytest.mark.parametrize(("path", "sort_by"), QUERIES)
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"sortBy": "nope", "sortOrder": "asc"}, "sortBy parameter has invalid value: nope"),
        ({"sortBy": None, "sortOrder": "up"}, "sortOrder parameter has invalid value: up"),
        ({"sortOrder": "asc"}, ONLY_ONE),
        ({"sortBy": "SORT", "sortOrder": None}, ONLY_ONE),
        ({"sortBy": ["tenantId"], "sortOrder": "asc"}, ""),
        ({"sortBy": "SORT", "sortOrder": 1}, ""),
    ],
)
async def test_bad_top_level_sorting_is_camundas_400(client, suffix, path, sort_by, body, message):
    sent = {name: sort_by if value == "SORT" else value for name, value in body.items()}
    response = await client.post(path + suffix, json=sent)
    assert response.status == 400, await response.text()
    assert await response.json() == {"type": INVALID, "message": message, "code": None}


async def test_sorting_entries_are_bounded_with_the_top_level_pair(client):
    entries = [{"sortBy": "tenantId", "sortOrder": "asc"}] * 10
    response = await client.post("/case-instance", json={"sorting": entries})
    assert response.status == 200
    response = await client.post(
        "/case-instance", json={"sortBy": "tenantId", "sortOrder": "asc", "sorting": entries}
    )
    assert response.status == 400
    assert "At most 9 sorting entries besides sortBy" in (await response.json())["message"]
