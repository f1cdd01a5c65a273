"""The one blob life cycle of every write path: when Postgres refuses the write that
would make new blobs live, after their contents were stored, the blobs are garbage at
once (collectable now), not pending for the pending timeout, and the collector then
removes their objects."""

from __future__ import annotations

import base64
import dataclasses

import asyncpg
import pytest

from service.storage import collector
from service.storage.blobstore import open_blob_store
from tests.conftest import new_id, raw_s3_client, settings_for_tests
from tests.forms import blob_states, create_case, part, s3_keys, upload

REFUSED = "refused"
CONTENT = base64.b64encode(b"stored, then refused").decode()


@pytest.fixture
async def refusing_endpoints(fresh_database_dsn, s3_endpoints):
    """A database of this test's own where writing a variable named 'refused' fails in
    Postgres, inside the write's transaction and after any blob content is in S3."""
    connection = await asyncpg.connect(fresh_database_dsn)
    try:
        await connection.execute(
            f"""
            CREATE FUNCTION refuse_variable() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
            CREATE TRIGGER refuse_variable BEFORE INSERT OR UPDATE ON variable
            FOR EACH ROW WHEN (NEW.name = '{REFUSED}') EXECUTE FUNCTION refuse_variable();
            """
        )
    finally:
        await connection.close()
    return dataclasses.replace(s3_endpoints, dsn=fresh_database_dsn)


@pytest.fixture
async def refusing(make_client, refusing_endpoints):
    return await make_client(refusing_endpoints)


@pytest.fixture
async def refusing_db(refusing_endpoints):
    connection = await asyncpg.connect(refusing_endpoints.dsn)
    yield connection
    await connection.close()


async def _assert_all_garbage_then_collected(db, endpoints, s3, count):
    states = await blob_states(db, endpoints.s3_prefix)
    assert sorted(states.values()) == ["garbage"] * count, states
    assert await s3_keys(s3, endpoints.s3_bucket, endpoints.s3_prefix) == set(states)
    settings = settings_for_tests()
    async with open_blob_store(settings, endpoints) as store:
        result = await collector.collect_once(
            endpoints.dsn, store, prefix=endpoints.s3_prefix, pending_timeout_seconds=3600
        )
    assert result.garbage_deleted == count
    assert await blob_states(db, endpoints.s3_prefix) == {}
    assert await s3_keys(s3, endpoints.s3_bucket, endpoints.s3_prefix) == set()


@pytest.fixture
async def s3_on_refusing(refusing_endpoints):
    async with raw_s3_client(refusing_endpoints) as raw:
        yield raw


async def test_put_of_bytes_refused_by_postgres_leaves_garbage(
    refusing, refusing_db, refusing_endpoints, s3_on_refusing
):
    case_id = new_id()
    await create_case(refusing, case_id)
    response = await refusing.put(
        f"/case-instance/{case_id}/variables/{REFUSED}", json={"value": CONTENT, "type": "Bytes"}
    )
    assert response.status == 500
    assert (await response.json())["type"] == "RestException"
    await _assert_all_garbage_then_collected(refusing_db, refusing_endpoints, s3_on_refusing, 1)


async def test_modification_refused_by_postgres_leaves_every_new_blob_garbage(
    refusing, refusing_db, refusing_endpoints, s3_on_refusing
):
    case_id = new_id()
    await create_case(refusing, case_id)
    modifications = {
        "accepted": {"value": CONTENT, "type": "Bytes"},
        REFUSED: {"value": CONTENT, "type": "File", "valueInfo": {"filename": "a.txt"}},
    }
    response = await refusing.post(
        f"/case-instance/{case_id}/variables", json={"modifications": modifications}
    )
    assert response.status == 500
    variables = await (await refusing.get(f"/case-instance/{case_id}/variables")).json()
    assert variables == {}
    await _assert_all_garbage_then_collected(refusing_db, refusing_endpoints, s3_on_refusing, 2)


async def test_multipart_upload_refused_by_postgres_leaves_garbage(
    refusing, refusing_db, refusing_endpoints, s3_on_refusing
):
    case_id = new_id()
    await create_case(refusing, case_id)
    response = await upload(refusing, case_id, REFUSED, part("data", b"x" * 6_000_000))
    assert response.status == 500
    await _assert_all_garbage_then_collected(refusing_db, refusing_endpoints, s3_on_refusing, 1)


async def test_creation_refused_by_postgres_leaves_garbage_and_no_instance(
    refusing, refusing_db, refusing_endpoints, s3_on_refusing
):
    variables = {REFUSED: {"value": CONTENT, "type": "Bytes"}}
    response = await refusing.post(
        "/case-definition/key/invoice/create", json={"variables": variables}
    )
    assert response.status == 500
    assert await refusing_db.fetchval("SELECT count(*) FROM case_instance") == 0
    await _assert_all_garbage_then_collected(refusing_db, refusing_endpoints, s3_on_refusing, 1)
