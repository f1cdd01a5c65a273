"""Resumable uploads (tus 1.0.0) by hand-made requests, on real Postgres and S3: the
protocol's happy paths across part boundaries, every bad input, and the outcomes at
commit time, each leaving `casevars check` clean after `casevars collect`."""

from __future__ import annotations

import base64
import hashlib
import io
from typing import Any

import pytest

from tests.conftest import TEST_PART_SIZE, new_id
from tests.forms import create_case, data_url, pattern

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = {**TUS, "Content-Type": "application/offset+octet-stream"}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def metadata(**pairs: str) -> str:
    return ",".join(f"{key} {b64(value)}" for key, value in pairs.items())


def uploads_path(case_id: str, name: str) -> str:
    return f"/case-instance/{case_id}/variables/{name}/uploads"


async def create(client: Any, case_id: str, name: str, length: int | None, **headers: str) -> str:
    sent = {**TUS, **headers}
    if length is None:
        sent["Upload-Defer-Length"] = "1"
    else:
        sent["Upload-Length"] = str(length)
    response = await client.post(uploads_path(case_id, name), headers=sent)
    assert response.status == 201, await response.text()
    location: str = response.headers["Location"]
    return location


async def patch(client: Any, url: str, offset: int, data: bytes, **headers: str) -> Any:
    return await client.patch(
        url, data=io.BytesIO(data), headers={**OCTETS, "Upload-Offset": str(offset), **headers}
    )


async def offset_of(client: Any, url: str) -> int:
    response = await client.head(url, headers=TUS)
    assert response.status == 200, response.status
    return int(response.headers["Upload-Offset"])


@pytest.fixture
async def case_id(client):
    made = new_id()
    await create_case(client, made)
    return made


async def test_a_value_in_several_patches_reads_back_with_its_sha256(client, case_id):
    content = pattern(2 * TEST_PART_SIZE + 12345)
    url = await create(client, case_id, "doc", len(content), **{"Upload-Metadata": metadata(filename="a.bin")})
    cuts = [0, 1000, TEST_PART_SIZE + 5, TEST_PART_SIZE + 7, 2 * TEST_PART_SIZE + 100, len(content)]
    for start, end in zip(cuts, cuts[1:], strict=False):
        assert await offset_of(client, url) == start
        response = await patch(client, url, start, content[start:end])
        assert response.status == 204, await response.text()
        assert response.headers["Upload-Offset"] == str(end)
        assert response.headers["Tus-Resumable"] == "1.0.0"
    got = await client.get(data_url(case_id, "doc"))
    assert got.status == 200
    assert await got.read() == content
    assert got.headers["ETag"] == f'"{hashlib.sha256(content).hexdigest()}"'
