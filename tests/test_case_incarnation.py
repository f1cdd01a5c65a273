"""An upload belongs to the case instance it started in: deleted and created again with
the same id while the upload streams, the instance is another one, and the upload
fails as an upload to a deleted instance does (404, its blob garbage)."""

from __future__ import annotations

import asyncio

import pytest

from service.config import MIB
from tests.conftest import new_id
from tests.forms import BOUNDARY, FORM, blob_states, body, create_case, data_url, part


async def _wait_for(predicate, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


class SlowUpload:
    """An upload whose body stops after its first MiB until release()."""

    def __init__(self, client, case_id: str, *, object_mode: bool = False) -> None:
        self._gate = asyncio.Event()
        self._object_mode = object_mode
        self.task = asyncio.create_task(
            client.post(data_url(case_id, "v"), data=self._chunks(), headers={"Content-Type": FORM})
        )

    async def _chunks(self):
        # Object mode with `type` after `data`: the data part streams to a blob first.
        yield body(part("data", b"", "application/json"), close=False)[:-2]
        yield b'"' + b"a" * MIB
        await self._gate.wait()
        yield b'"' if self._object_mode else b"end"
        tail = [part("type", b"java.lang.String")] if self._object_mode else []
        yield b"\r\n" + body(*tail, boundary=BOUNDARY)

    async def finish(self):
        self._gate.set()
        return await self.task


async def _pending(db, endpoints):
    return "pending" in (await blob_states(db, endpoints.s3_prefix)).values()


@pytest.mark.parametrize("object_mode", [False, True], ids=["bytes", "object"])
async def test_an_upload_into_a_deleted_and_recreated_instance_is_404(
    client, db, endpoints, object_mode
):
    case_id = new_id()
    await create_case(client, case_id)
    upload = SlowUpload(client, case_id, object_mode=object_mode)
    await _wait_for(lambda: _pending(db, endpoints))
    assert (await client.delete(f"/case-instance/{case_id}")).status == 204
    await create_case(client, case_id)  # the same id, another instance
    response = await upload.finish()
    assert response.status == 404, await response.text()
    error = await response.json()
    assert case_id in error["message"]
    variables = await client.get(f"/case-instance/{case_id}/variables")
    assert await variables.json() == {}, "nothing landed in the new instance"
    states = await blob_states(db, endpoints.s3_prefix)
    assert list(states.values()) == ["garbage"]


async def test_the_same_error_as_an_upload_to_a_deleted_instance(client, db, endpoints):
    messages = []
    for recreate in (False, True):
        case_id = new_id()
        await create_case(client, case_id)
        upload = SlowUpload(client, case_id)
        await _wait_for(lambda: _pending(db, endpoints))
        assert (await client.delete(f"/case-instance/{case_id}")).status == 204
        if recreate:
            await create_case(client, case_id)
        response = await upload.finish()
        assert response.status == 404
        error = await response.json()
        messages.append((error["type"], error["message"].replace(case_id, "{id}")))
    assert messages[0] == messages[1]


async def test_an_upload_whose_instance_was_only_updated_commits(client, db, endpoints):
    """PUT of an existing instance changes its fields, not which instance it is."""
    case_id = new_id()
    await create_case(client, case_id)
    upload = SlowUpload(client, case_id)
    await _wait_for(lambda: _pending(db, endpoints))
    updated = await client.put(f"/case-instance/{case_id}", json={"businessKey": "b-1"})
    assert updated.status == 200
    assert (await upload.finish()).status == 204


async def test_with_auto_create_an_upload_still_belongs_to_its_instance(make_client, db, endpoints):
    client = await make_client(auto_create_case_instances=True)
    case_id = new_id()
    await create_case(client, case_id)
    upload = SlowUpload(client, case_id)
    await _wait_for(lambda: _pending(db, endpoints))
    assert (await client.delete(f"/case-instance/{case_id}")).status == 204
    await create_case(client, case_id)
    assert (await upload.finish()).status == 404
    # An upload that found no instance creates one (or uses the one made meanwhile).
    fresh = new_id()
    upload = SlowUpload(client, fresh)
    await _wait_for(lambda: _pending(db, endpoints))
    await create_case(client, fresh)
    assert (await upload.finish()).status == 204


async def test_incarnations_differ_between_lives_of_an_id(client, db):
    case_id = new_id()
    await create_case(client, case_id)
    first = await db.fetchval("SELECT incarnation FROM case_instance WHERE id = $1", case_id)
    assert (await client.delete(f"/case-instance/{case_id}")).status == 204
    await create_case(client, case_id)
    second = await db.fetchval("SELECT incarnation FROM case_instance WHERE id = $1", case_id)
    assert first is not None
    assert second is not None
    assert first != second
