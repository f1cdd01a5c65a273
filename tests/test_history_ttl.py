"""The history time to live: the collector removes closed case instances and their
variables once it has passed, and their blobs go the way of every other blob (variable
rows deleted, the trigger makes them garbage, the collector deletes them), leaving
`casevars check` clean. On a fresh database, so that the world holds only this test."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from service.config import Endpoints, Settings
from service.storage import blobstore, check, collector
from service.storage.blobstore import BlobStore
from tests.conftest import TEST_TIMEOUT_SECONDS, casevars_env, new_id, run_casevars
from tests.forms import s3_keys, upload_bytes

DAY = 86400.0


@pytest.fixture
def fresh_endpoints(fresh_database_dsn: str, s3_endpoints: Endpoints) -> Endpoints:
    return dataclasses.replace(s3_endpoints, dsn=fresh_database_dsn)


@pytest.fixture
async def fresh_db(fresh_endpoints: Endpoints) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(fresh_endpoints.dsn)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def store(fresh_endpoints: Endpoints) -> AsyncIterator[BlobStore]:
    settings = Settings(s3_timeout_seconds=TEST_TIMEOUT_SECONDS)
    async with blobstore.open_blob_store(settings, fresh_endpoints) as opened:
        yield opened


async def _case_with_blobs(client, case_id: str) -> None:
    """A case instance with a Bytes value uploaded, a replaced one (garbage) and a
    Bytes value in JSON, all in S3."""
    assert (await client.put(f"/case-instance/{case_id}")).status == 201
    assert (await upload_bytes(client, case_id, "upload", b"first")).status == 204
    assert (await upload_bytes(client, case_id, "upload", b"second")).status == 204
    inline = {"type": "Bytes", "value": base64.b64encode(b"inline").decode()}
    assert (
        await client.put(f"/case-instance/{case_id}/variables/inline", json=inline)
    ).status == 204
    await client.put(f"/case-instance/{case_id}/variables/text", json={"value": "kept"})


async def _close(client, case_id: str) -> None:
    assert (await client.post(f"/case-instance/{case_id}/complete")).status == 204
    assert (await client.post(f"/case-instance/{case_id}/close")).status == 204


async def _age(db, case_id: str, days: float) -> None:
    await db.execute(
        "UPDATE case_instance SET closed_at = closed_at - $2::interval WHERE id = $1",
        case_id,
        timedelta(days=days),
    )


async def _consistent(endpoints: Endpoints, store: BlobStore) -> check.CheckReport:
    report = await check.check(
        endpoints.dsn, store, prefix=endpoints.s3_prefix, pending_timeout_seconds=DAY
    )
    assert report.consistent, report.summary()
    return report


async def test_expired_history_is_removed_with_its_blobs(
    make_client, fresh_endpoints, fresh_db, store
):
    client = await make_client(endpoints_override=fresh_endpoints)
    expired, recent, running = new_id("expired"), new_id("recent"), new_id("running")
    for case_id in (expired, recent, running):
        await _case_with_blobs(client, case_id)
    await _close(client, expired)
    await _close(client, recent)
    await _age(fresh_db, expired, 31)
    await _age(fresh_db, recent, 29)
    await _consistent(fresh_endpoints, store)
    expired_keys = {
        row["blob_key"]
        for row in await fresh_db.fetch(
            "SELECT blob_key FROM variable WHERE case_instance_id = $1 AND blob_key IS NOT NULL",
            expired,
        )
    }
    assert len(expired_keys) == 2

    result = await collector.collect_once(
        fresh_endpoints.dsn,
        store,
        prefix=fresh_endpoints.s3_prefix,
        pending_timeout_seconds=DAY,
        configured_grace_seconds=0,  # the trigger's grace for this pass's own connection
        history_ttl_seconds=30 * DAY,
    )

    assert result.history_removed == 1
    # Its two live blobs became garbage with no grace and are deleted; the value its
    # upload replaced stays garbage for the service's grace, as every replaced value.
    assert result.garbage_deleted == 2
    remaining = await fresh_db.fetch("SELECT id, state FROM case_instance ORDER BY id")
    assert {row["id"]: row["state"] for row in remaining} == {recent: "closed", running: "active"}
    assert (
        await fresh_db.fetchval(
            "SELECT count(*) FROM variable WHERE case_instance_id = $1", expired
        )
        == 0
    )
    keys = await fresh_db.fetch("SELECT key FROM blob")
    assert not expired_keys & {row["key"] for row in keys}
    async with blobstore.open_blob_store(Settings(), fresh_endpoints) as opened:
        assert not expired_keys & await s3_keys(
            opened._client, fresh_endpoints.s3_bucket, fresh_endpoints.s3_prefix
        )
    report = await _consistent(fresh_endpoints, store)
    assert report.live == 4  # the recent and the running instance's two Bytes values each
    assert (await client.get(f"/history/case-instance/{expired}")).status == 404
    assert (await client.get(f"/history/case-instance/{recent}")).status == 200


async def test_the_service_s_collector_applies_the_time_to_live(
    make_client, fresh_endpoints, fresh_db, store
):
    client = await make_client(
        endpoints_override=fresh_endpoints,
        collector_interval_seconds=0.2,
        history_ttl_seconds=0,
        gc_grace_seconds=0,
    )
    case_id = new_id()
    await _case_with_blobs(client, case_id)
    await _close(client, case_id)
    deadline = time.monotonic() + TEST_TIMEOUT_SECONDS
    blobs = cases = None
    while time.monotonic() < deadline:
        blobs = await fresh_db.fetchval("SELECT count(*) FROM blob")
        cases = await fresh_db.fetchval("SELECT count(*) FROM case_instance")
        if blobs == 0 and cases == 0:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail(f"history not collected: {cases} case instances, {blobs} blobs left")
    await _consistent(fresh_endpoints, store)
    metrics = await (await client.get("/metrics")).text()
    assert "casevars_collector_history_removed_total 1.0" in metrics


async def test_collect_command_takes_the_setting_and_the_option(
    fresh_endpoints, fresh_db, make_client, store
):
    client = await make_client(endpoints_override=fresh_endpoints)
    case_id = new_id()
    await _case_with_blobs(client, case_id)
    await _close(client, case_id)
    await _age(fresh_db, case_id, 2)
    env = casevars_env(fresh_endpoints, CASEVARS_HISTORY_TTL_SECONDS=str(3 * DAY))
    kept = await run_casevars(env, "collect")
    assert kept.returncode == 0, kept.stderr
    assert kept.stdout.startswith("removed 0 closed case instances past the history time to live")
    removed = await run_casevars(env, "collect", "--history-ttl", str(DAY), "--grace", "0")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.startswith("removed 1 closed case instances"), removed.stdout
    assert await fresh_db.fetchval("SELECT count(*) FROM case_instance") == 0
    assert await fresh_db.fetchval("SELECT count(*) FROM blob") == 0
    await _consistent(fresh_endpoints, store)


async def test_a_definitions_own_time_to_live_decides_for_its_instances(
    make_client, fresh_endpoints, fresh_db, store
):
    """PUT /case-definition/{id}/history-time-to-live (days) replaces the service's
    time to live for that definition's closed instances; null gives it back."""
    client = await make_client(endpoints_override=fresh_endpoints)
    short, long_, plain = new_id("short"), new_id("long"), new_id("plain")
    created = {}
    for key in (short, long_, plain):
        response = await client.post(f"/case-definition/key/{key}/create", json={})
        created[key] = await response.json()
        await _close(client, created[key]["id"])
        await _age(fresh_db, created[key]["id"], 10)
    assert (
        await client.put(
            f"/case-definition/{created[short]['caseDefinitionId']}/history-time-to-live",
            json={"historyTimeToLive": 5},
        )
    ).status == 204
    assert (
        await client.put(
            f"/case-definition/key/{long_}/history-time-to-live", json={"historyTimeToLive": 20}
        )
    ).status == 204

    async def collect() -> int:
        result = await collector.collect_once(
            fresh_endpoints.dsn,
            store,
            prefix=fresh_endpoints.s3_prefix,
            pending_timeout_seconds=DAY,
            configured_grace_seconds=0,
            history_ttl_seconds=30 * DAY,
        )
        return result.history_removed

    # Closed 10 days ago: past the short definition's 5 days only.
    assert await collect() == 1
    remaining = {row["id"] for row in await fresh_db.fetch("SELECT id FROM case_instance")}
    assert remaining == {created[long_]["id"], created[plain]["id"]}
    # Back to the service's 30 days: the long one stays; a shorter service time to live
    # still spares it (20 days of its own), and takes the one without.
    response = await client.put(
        f"/case-definition/key/{long_}/history-time-to-live", json={"historyTimeToLive": None}
    )
    assert response.status == 204
    assert await collect() == 0
    assert (
        await client.put(
            f"/case-definition/key/{long_}/history-time-to-live", json={"historyTimeToLive": 20}
        )
    ).status == 204
    result = await collector.collect_once(
        fresh_endpoints.dsn,
        store,
        prefix=fresh_endpoints.s3_prefix,
        pending_timeout_seconds=DAY,
        configured_grace_seconds=0,
        history_ttl_seconds=1 * DAY,
    )
    assert result.history_removed == 1
    remaining = {row["id"] for row in await fresh_db.fetch("SELECT id FROM case_instance")}
    assert remaining == {created[long_]["id"]}
    await _consistent(fresh_endpoints, store)
