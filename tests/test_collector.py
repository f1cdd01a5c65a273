"""The collector on a real Postgres (a fresh database per test) and real S3 APIs: what it
deletes, what it never deletes, stale uploads, paging, racing replicas, the background
task inside the app, and `casevars collect` as a process."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any

import asyncpg
import pytest

from service.config import Endpoints, Settings
from service.errors import Unavailable
from service.http import keys
from service.storage import blobstore, collector
from service.storage.blobstore import BlobStore
from tests.conftest import (
    TEST_TIMEOUT_SECONDS,
    casevars_env,
    proxied_s3,
    raw_s3_client,
    run_casevars,
)

HOUR = 3600.0


class RecordingStore(BlobStore):
    """The real blob store, remembering every key it was asked to delete."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deleted: list[str] = []
        self.delete_calls = 0

    async def delete_many(self, keys: Iterable[str]) -> None:
        batch = list(keys)
        self.delete_calls += 1
        self.deleted.extend(batch)
        await super().delete_many(batch)


class World:
    """A fresh database and a fresh S3 prefix, with helpers to put blobs in any state."""

    def __init__(self, dsn: str, endpoints: Endpoints, db: Any, raw: Any) -> None:
        self.dsn = dsn
        self.endpoints = endpoints
        self.prefix = endpoints.s3_prefix
        self.bucket = endpoints.s3_bucket
        self.db = db
        self.raw = raw
        self._case: str | None = None

    def key(self, label: str = "") -> str:
        return f"{self.prefix}{label}{uuid.uuid4().hex}"

    async def put_object(self, key: str, data: bytes = b"value") -> None:
        await self.raw.put_object(Bucket=self.bucket, Key=key, Body=data)

    async def put_objects(self, keys: list[str], data: bytes = b"v") -> None:
        slots = asyncio.Semaphore(16)

        async def put(key: str) -> None:
            async with slots:
                await self.put_object(key, data)

        await asyncio.gather(*(put(key) for key in keys))

    async def object_keys(self) -> set[str]:
        found: set[str] = set()
        paginator = self.raw.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            found.update(item["Key"] for item in page.get("Contents", []))
        return found

    async def row_states(self) -> dict[str, str]:
        rows = await self.db.fetch("SELECT key, state FROM blob")
        return {row["key"]: row["state"] for row in rows}

    async def case(self) -> str:
        if self._case is None:
            self._case = f"case-{uuid.uuid4().hex[:12]}"
            await self.db.execute("INSERT INTO case_instance (id) VALUES ($1)", self._case)
        return self._case

    async def live(
        self, data: bytes = b"value", *, with_object: bool = True, variable: bool = True
    ) -> str:
        key = self.key("live-")
        await self.db.execute(
            "INSERT INTO blob (key, state, size, sha256) VALUES ($1, 'live', $2, $3)",
            key,
            len(data),
            hashlib.sha256(data).digest(),
        )
        if variable:
            await self.point_variable_at(key)
        if with_object:
            await self.put_object(key, data)
        return key

    async def point_variable_at(self, key: str) -> None:
        await self.db.execute(
            "INSERT INTO variable (case_instance_id, name, type, blob_key) "
            "VALUES ($1, $2, 'Bytes', $3)",
            await self.case(),
            f"var-{uuid.uuid4().hex[:8]}",
            key,
        )

    async def garbage(
        self,
        *,
        due_in: float,
        since: float | None = 0.0,
        with_object: bool = True,
        key: str | None = None,
    ) -> str:
        """A garbage blob whose delete_after is due_in seconds from now (negative: past)
        and which became garbage `since` seconds ago (None: before migration 0002)."""
        key = key or self.key("garbage-")
        await self.db.execute(
            """
            INSERT INTO blob (key, state, size, sha256, delete_after, garbage_since)
            VALUES ($1, 'garbage', 5, $2, now() + make_interval(secs => $3),
                    now() - make_interval(secs => $4))
            """,
            key,
            hashlib.sha256(b"value").digest(),
            due_in,
            since,
        )
        if with_object:
            await self.put_object(key)
        return key

    async def pending(self, *, age: float, with_object: bool = True) -> str:
        key = self.key("pending-")
        await self.db.execute(
            "INSERT INTO blob (key, state, created_at) "
            "VALUES ($1, 'pending', now() - make_interval(secs => $2))",
            key,
            age,
        )
        if with_object:
            await self.put_object(key)
        return key

    async def start_upload(self, key: str) -> str:
        """A multipart upload left open, with one part sent, as a crash leaves it."""
        created = await self.raw.create_multipart_upload(Bucket=self.bucket, Key=key)
        upload_id: str = created["UploadId"]
        await self.raw.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"x" * 1024
        )
        return upload_id

    async def open_uploads(self, prefix: str | None = None) -> list[tuple[str, str]]:
        response = await self.raw.list_multipart_uploads(
            Bucket=self.bucket, Prefix=self.prefix if prefix is None else prefix
        )
        return [(u["Key"], u["UploadId"]) for u in response.get("Uploads", [])]


@contextlib.asynccontextmanager
async def open_world(dsn: str, s3_endpoints: Endpoints) -> AsyncIterator[World]:
    endpoints = dataclasses.replace(s3_endpoints, dsn=dsn)
    async with raw_s3_client(endpoints) as raw:
        db = await asyncpg.connect(dsn)
        try:
            yield World(dsn, endpoints, db, raw)
        finally:
            await db.close()


@pytest.fixture
async def world(fresh_database_dsn, s3_endpoints):
    async with open_world(fresh_database_dsn, s3_endpoints) as opened:
        yield opened


def _settings(**overrides: Any) -> Settings:
    return Settings(**{"s3_timeout_seconds": TEST_TIMEOUT_SECONDS, **overrides})


def _recording(opened: BlobStore) -> RecordingStore:
    """The same S3 client, seen through the recording subclass."""
    return RecordingStore(
        opened._client,
        opened.bucket,
        part_size=opened._part_size,
        parts_in_flight=opened._parts_in_flight,
        budget=opened.budget,
    )


@pytest.fixture
async def store(world: World) -> AsyncIterator[RecordingStore]:
    async with blobstore.open_blob_store(_settings(), world.endpoints) as opened:
        yield _recording(opened)


async def _collect(world: World, store: BlobStore, **options: Any) -> collector.CollectResult:
    options.setdefault("pending_timeout_seconds", HOUR)
    return await collector.collect_once(world.dsn, store, prefix=world.prefix, **options)


# --- what is deleted and what is kept ---------------------------------------------


async def test_due_garbage_is_deleted_and_garbage_not_yet_due_is_kept(s3_backend, world, store):
    due = await world.garbage(due_in=-1)
    due_without_object = await world.garbage(due_in=-60, with_object=False)
    not_due = await world.garbage(due_in=HOUR)
    live = await world.live()

    result = await _collect(world, store)

    assert result == collector.CollectResult(garbage_deleted=2)
    assert await world.row_states() == {not_due: "garbage", live: "live"}
    assert await world.object_keys() == {not_due, live}
    assert sorted(store.deleted) == sorted([due, due_without_object])


async def test_old_pending_is_deleted_and_young_pending_is_kept(s3_backend, world, store):
    crashed = await world.pending(age=2 * HOUR)
    crashed_before_first_byte = await world.pending(age=2 * HOUR, with_object=False)
    young = await world.pending(age=60)

    result = await _collect(world, store, pending_timeout_seconds=HOUR)

    assert result == collector.CollectResult(pending_deleted=2)
    assert await world.row_states() == {young: "pending"}
    assert await world.object_keys() == {young}
    assert sorted(store.deleted) == sorted([crashed, crashed_before_first_byte])


async def test_a_blob_a_variable_points_at_is_never_deleted_whatever_its_state(world, store):
    wrongly_garbage = await world.garbage(due_in=-HOUR, since=2 * HOUR)
    await world.point_variable_at(wrongly_garbage)
    wrongly_pending = await world.pending(age=2 * HOUR)
    await world.point_variable_at(wrongly_pending)
    live = await world.live()
    unused_live = await world.live(variable=False)

    result = await _collect(world, store, grace_seconds=0, pending_timeout_seconds=0)

    assert result.garbage_deleted == result.pending_deleted == 0
    assert store.deleted == []
    assert set(await world.row_states()) == {wrongly_garbage, wrongly_pending, live, unused_live}
    assert await world.object_keys() == {wrongly_garbage, wrongly_pending, live, unused_live}


async def test_grace_given_counts_from_when_the_blob_became_garbage(world, store):
    # Marked 10 minutes ago with a grace of an hour: due in 50 minutes.
    recent = await world.garbage(due_in=50 * 60, since=10 * 60)
    # Marked before migration 0002 (no garbage_since): dated from delete_after less
    # the configured grace, so also 10 minutes ago.
    legacy = await world.garbage(due_in=50 * 60, since=None)
    fresh = await world.garbage(due_in=HOUR - 1, since=1)

    kept = await _collect(world, store, grace_seconds=HOUR, configured_grace_seconds=HOUR)
    assert kept.garbage_deleted == 0

    result = await _collect(world, store, grace_seconds=300, configured_grace_seconds=HOUR)
    assert result.garbage_deleted == 2
    assert set(store.deleted) == {recent, legacy}
    assert await world.row_states() == {fresh: "garbage"}


async def test_stale_multipart_uploads_under_the_prefix_are_aborted(s3_backend, world, store):
    key = world.key("upload-")
    await world.start_upload(key)
    elsewhere = f"other-{uuid.uuid4().hex[:12]}/{uuid.uuid4().hex}"
    elsewhere_id = await world.start_upload(elsewhere)
    try:
        if s3_backend != "moto":  # moto dates every upload 2010-11-10: all look stale.
            young = await _collect(world, store, pending_timeout_seconds=HOUR)
            assert young.uploads_aborted == 0
            assert [k for k, _ in await world.open_uploads()] == [key]
            await asyncio.sleep(1.1)  # Initiated has a resolution of a second on some stores.
        result = await _collect(world, store, pending_timeout_seconds=0)
        assert result.uploads_aborted == 1
        assert await world.open_uploads() == []
        assert [k for k, _ in await world.open_uploads(elsewhere)] == [elsewhere]
    finally:
        await world.raw.abort_multipart_upload(
            Bucket=world.bucket, Key=elsewhere, UploadId=elsewhere_id
        )


async def test_zero_grace_and_timeout_collect_every_garbage_and_pending_blob(world, store):
    garbage = [await world.garbage(due_in=HOUR), await world.garbage(due_in=HOUR, since=None)]
    pending = [await world.pending(age=0), await world.pending(age=0, with_object=False)]
    live = await world.live()

    result = await _collect(
        world, store, grace_seconds=0, pending_timeout_seconds=0, configured_grace_seconds=HOUR
    )

    assert (result.garbage_deleted, result.pending_deleted) == (2, 2)
    assert set(store.deleted) == {*garbage, *pending}
    assert await world.row_states() == {live: "live"}
    assert await world.object_keys() == {live}


# --- pages and races ------------------------------------------------------------------


async def _many_due(world: World, count: int, with_objects: int) -> list[str]:
    """count due blobs, garbage and stale pending alternately; the first with_objects
    of them have an object."""
    keys = [world.key(f"{i:05d}-") for i in range(count)]
    await world.db.execute(
        """
        INSERT INTO blob (key, state, delete_after, garbage_since, created_at)
        SELECT k,
               CASE WHEN i % 2 = 0 THEN 'garbage' ELSE 'pending' END,
               CASE WHEN i % 2 = 0 THEN now() - interval '1 minute' END,
               CASE WHEN i % 2 = 0 THEN now() - interval '2 hours' END,
               now() - interval '2 hours'
        FROM unnest($1::text[]) WITH ORDINALITY AS t(k, i)
        """,
        keys,
    )
    await world.put_objects(keys[:with_objects])
    return keys


async def test_works_in_pages_of_bounded_size(world, store):
    keys = await _many_due(world, 1100, with_objects=60)

    result = await _collect(world, store, page_rows=200)

    assert result.garbage_deleted + result.pending_deleted == 1100
    assert sorted(store.deleted) == sorted(keys)
    # 550 garbage rows in pages of 200, then 550 pending rows: 3 + 3 DeleteObjects.
    assert store.delete_calls == 6
    assert await world.row_states() == {}
    assert await world.object_keys() == set()


async def test_collectors_racing_on_the_same_rows_delete_each_blob_once(s3_backend, world):
    keys = await _many_due(world, 400, with_objects=120)
    async with blobstore.open_blob_store(_settings(), world.endpoints) as opened:
        stores = [_recording(opened) for _ in range(4)]
        # Each collector has its own connection (a DSN); small pages make them interleave.
        results = await asyncio.gather(*(_collect(world, racer, page_rows=10) for racer in stores))

    deleted = [key for racer in stores for key in racer.deleted]
    assert len(deleted) == len(set(deleted)) == 400
    assert set(deleted) == set(keys)
    assert sum(r.garbage_deleted + r.pending_deleted for r in results) == 400
    assert sum(1 for racer in stores if racer.deleted) > 1, "the collectors did not overlap"
    assert await world.row_states() == {}
    assert await world.object_keys() == set()


async def test_an_upload_finishing_late_cannot_make_a_collected_pending_blob_live(world, store):
    """A writer's `UPDATE ... SET state = 'live' WHERE state = 'pending'` that comes while
    the collector holds the row waits, then finds nothing: no variable points at a
    deleted object."""
    key = await world.pending(age=2 * HOUR)
    gate = asyncio.Event()
    release = asyncio.Event()

    class SlowStore(RecordingStore):
        async def delete_many(self, keys: Iterable[str]) -> None:
            gate.set()
            await release.wait()
            await super().delete_many(keys)

    slow = SlowStore(
        store._client,
        store.bucket,
        part_size=store._part_size,
        parts_in_flight=1,
        budget=store.budget,
    )
    collecting = asyncio.create_task(_collect(world, slow))
    await gate.wait()
    writer = await asyncpg.connect(world.dsn)
    try:
        async with writer.transaction():
            make_live = asyncio.create_task(
                writer.fetchval(
                    "UPDATE blob SET state = 'live', size = 5, sha256 = $2 "
                    "WHERE key = $1 AND state = 'pending' RETURNING 1",
                    key,
                    hashlib.sha256(b"value").digest(),
                )
            )
            await asyncio.sleep(0.3)
            assert not make_live.done(), "the row lock did not hold the writer"
            release.set()
            assert (await collecting).pending_deleted == 1
            assert await make_live is None
    finally:
        await writer.close()
    assert await world.row_states() == {}


async def test_s3_failing_rolls_the_page_back_and_the_next_pass_finishes(world):
    due = await world.garbage(due_in=-1)
    settings = _settings(s3_timeout_seconds=1.0)
    async with (
        proxied_s3(world.endpoints) as (proxy, proxied),
        blobstore.open_blob_store(settings, proxied) as via_proxy,
    ):
        await proxy.cut()
        with pytest.raises(Unavailable):
            await _collect(world, via_proxy)
        assert await world.row_states() == {due: "garbage"}
        proxy.restore()
        assert (await _collect(world, via_proxy)).garbage_deleted == 1
    assert await world.object_keys() == set()


async def test_a_pool_works_as_well_as_a_dsn(world, store):
    due = await world.garbage(due_in=-1)
    pool = await asyncpg.create_pool(world.dsn, min_size=1, max_size=2)
    try:
        result = await collector.collect_once(
            pool, store, prefix=world.prefix, pending_timeout_seconds=HOUR
        )
    finally:
        await pool.close()
    assert result.garbage_deleted == 1
    assert store.deleted == [due]


# --- the background task --------------------------------------------------------------


async def _eventually(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_the_app_runs_the_collector_survives_s3_failures_and_stops_clean(world, make_client):
    async with proxied_s3(world.endpoints) as (proxy, proxied):
        client = await make_client(proxied, collector_interval_seconds=0.05, s3_timeout_seconds=1.0)
        task = client.app[keys.COLLECTOR]
        live = await world.live()
        first = await world.garbage(due_in=-1)

        async def first_gone() -> bool:
            return first not in await world.row_states()

        await _eventually(first_gone)

        await proxy.cut()
        second = await world.garbage(due_in=-1, with_object=False)
        await asyncio.sleep(0.5)  # several intervals, each failing
        assert not task.done()
        assert second in await world.row_states()
        proxy.restore()

        async def second_gone() -> bool:
            return second not in await world.row_states()

        await _eventually(second_gone)
        assert await world.row_states() == {live: "live"}
        assert await world.object_keys() == {live}

        await client.close()
        assert task.done()
        assert task.cancelled()


async def test_interval_zero_turns_the_collector_off(world, make_client):
    client = await make_client(world.endpoints, collector_interval_seconds=0)
    assert keys.COLLECTOR not in client.app
    await client.close()


# --- `casevars collect` ---------------------------------------------------------------


def cli_env(world: World, **extra: str) -> dict[str, str]:
    return casevars_env(world.endpoints, **extra)


run_cli = run_casevars


# SeaweedFS: moto dates every multipart upload 2010-11-10, so none is young there.
@pytest.mark.parametrize("s3_backend", ["seaweedfs"])
async def test_collect_command_with_zero_grace_and_timeout_leaves_only_live_blobs(
    s3_backend, world
):
    live = await world.live()
    garbage = await world.garbage(due_in=HOUR, since=None)
    await world.pending(age=0)
    await world.start_upload(world.key("upload-"))
    env = cli_env(world, CASEVARS_GC_GRACE_SECONDS="3600")

    kept = await run_cli(env, "collect")
    assert kept.returncode == 0, kept.stderr
    assert "deleted 0 garbage and 0 stale pending blobs, aborted 0" in kept.stdout
    assert garbage in await world.row_states()

    await asyncio.sleep(1.1)  # past the upload's Initiated second
    result = await run_cli(env, "collect", "--grace", "0", "--pending-timeout", "0")
    assert result.returncode == 0, result.stderr
    assert "deleted 1 garbage and 1 stale pending blobs, aborted 1" in result.stdout
    assert '"event":"collect.done"' in result.stderr
    assert await world.row_states() == {live: "live"}
    assert await world.object_keys() == {live}
    assert await world.open_uploads() == []


async def test_collect_command_refuses_a_bad_grace_and_reports_a_dead_database(world):
    bad = await run_cli(cli_env(world), "collect", "--grace", "-5")
    assert bad.returncode == 2
    assert "--grace" in bad.stderr

    down = await run_cli(
        cli_env(world, DATABASE_URL="postgresql://nobody:x@127.0.0.1:1/none"), "collect"
    )
    assert down.returncode == 1
    assert "Postgres is unavailable" in down.stderr
    assert "Traceback" not in down.stderr
