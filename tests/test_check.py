"""`casevars check`: the merge of Postgres's blob rows with S3's listing, each kind of
inconsistency, paging past S3's 1,000-key pages in bounded memory, re-verification of
what changed while it ran, and the command on given endpoints and on the embedded
default."""

from __future__ import annotations

import contextlib
import os
import signal
import tracemalloc
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from service.config import Endpoints
from service.storage import blobstore, check
from service.storage.blobstore import BlobStore, ObjectInfo
from tests.conftest import free_port
from tests.test_collector import HOUR, World, _settings, cli_env, open_world, run_cli
from tests.test_embedded import ServeProcess, _processes_using


@pytest.fixture
async def world(fresh_database_dsn: str, s3_endpoints: Endpoints) -> AsyncIterator[World]:
    async with open_world(fresh_database_dsn, s3_endpoints) as opened:
        yield opened


@pytest.fixture
async def store(world: World) -> AsyncIterator[BlobStore]:
    async with blobstore.open_blob_store(_settings(), world.endpoints) as opened:
        yield opened


async def _check(world: World, store: BlobStore, **options: Any) -> check.CheckReport:
    return await check.check(
        world.dsn, store, prefix=world.prefix, pending_timeout_seconds=HOUR, **options
    )


async def _normal_world(world: World) -> list[str]:
    """Blobs in every state a working service leaves: all consistent."""
    return [
        await world.live(b"first"),
        await world.live(b"second value"),
        await world.pending(age=10),  # an upload streaming now
        await world.pending(age=10, with_object=False),  # one that has not sent a byte yet
        await world.pending(age=2 * HOUR),  # a crash leftover, the collector's job
        await world.garbage(due_in=HOUR),  # kept for downloads still running
        await world.garbage(due_in=-1, with_object=False),  # object deleted, row not yet
    ]


async def test_a_working_service_s_blobs_are_consistent(s3_backend, world):
    await _normal_world(world)
    await world.start_upload(world.key("upload-"))

    result = await run_cli(cli_env(world, CASEVARS_PENDING_TIMEOUT_SECONDS="3600"), "check")

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("\nconsistent")
    lines = result.stdout.splitlines()
    assert "  objects under the prefix      5 (32 bytes)" in lines
    assert "  pending blobs                 3 (1 stale)" in lines
    assert "  garbage blobs                 2 (1 due)" in lines
    assert any(line.startswith("  open multipart uploads        1 (") for line in lines)
    assert '"event":"check.done"' in result.stderr  # logs stay out of the report


async def test_check_reports_each_kind_of_inconsistency(s3_backend, world):
    await _normal_world(world)
    missing = await world.live(with_object=False)
    wrong_size = await world.live(b"12345")
    await world.put_object(wrong_size, b"1234")
    orphan = world.key("orphan-")
    await world.put_object(orphan)
    referenced_garbage = await world.garbage(due_in=-1)
    await world.point_variable_at(referenced_garbage)
    unreferenced = await world.live(variable=False)

    result = await run_cli(cli_env(world), "check", "--json")

    assert result.returncode == 1, result.stderr
    report = orjson.loads(result.stdout)
    assert report["consistent"] is False
    assert {kind: report[kind] for kind in check.CheckReport.INCONSISTENCIES} == {
        "missing": 1,
        "wrong_size": 1,
        "orphans": 1,
        "referenced_not_live": 1,
        "unreferenced_live": 1,
    }
    assert report["examples"] == {
        "missing": [missing],
        "wrong_size": [wrong_size],
        "orphans": [orphan],
        "referenced_not_live": [referenced_garbage],
        "unreferenced_live": [unreferenced],
    }

    human = await run_cli(cli_env(world), "check")
    assert human.returncode == 1
    assert human.stdout.rstrip().endswith("INCONSISTENT")
    for key in (missing, wrong_size, orphan, referenced_garbage, unreferenced):
        assert f"    {key}" in human.stdout.splitlines()


async def test_rows_outside_the_prefix_are_counted_not_checked(world, store):
    outside = f"elsewhere-{uuid.uuid4().hex}"
    await world.db.execute(
        "INSERT INTO blob (key, state, size, sha256) VALUES ($1, 'live', 1, $2)",
        outside,
        bytes(32),
    )
    await world.point_variable_at(outside)
    await world.live()

    report = await _check(world, store)

    assert report.consistent
    assert report.rows_outside_prefix == 1
    assert report.live == 2


async def test_keys_beyond_ascii_merge_in_byte_order(s3_backend, world, store):
    """S3 lists keys in UTF-8 byte order and the rows come back COLLATE "C": both
    agree for any key, so nothing is mistaken for missing or orphaned."""
    for label in ("A", "a", "a-", "a.", "a0", "z", "é", "ÿ", "中", "😀"):
        key = f"{world.prefix}{label}"
        await world.db.execute(
            "INSERT INTO blob (key, state, size, sha256) VALUES ($1, 'live', 5, $2)",
            key,
            bytes(32),
        )
        await world.point_variable_at(key)
        await world.put_object(key)

    report = await _check(world, store, page_rows=3)

    assert report.objects == 10
    assert report.listing_out_of_order == 0
    assert report.consistent, report.summary()


async def test_what_changed_while_the_check_ran_is_not_reported(world, store):
    """Suspects are looked at again: an object listed before its row appeared, a live
    row read before its object was listed, an object collected after it was listed."""
    report = check.CheckReport(bucket=world.bucket, prefix=world.prefix)
    connection = world.db
    verifier = check._Verifier(connection, store, report)

    row_came_later = await world.pending(age=0)
    object_came_later = await world.live()
    collected = world.key("collected-")
    really_orphan = world.key("orphan-")
    await world.put_object(really_orphan)
    really_missing = await world.live(with_object=False)
    listed = datetime.now(UTC)
    await verifier.suspect_orphan(ObjectInfo(row_came_later, 5, listed))
    await verifier.suspect_orphan(ObjectInfo(collected, 5, listed))
    await verifier.suspect_orphan(ObjectInfo(really_orphan, 5, listed))
    await verifier.suspect_missing(check._Row(object_came_later, "live", 5, referenced=True))
    await verifier.suspect_missing(check._Row(really_missing, "live", 5, referenced=True))
    await verifier.flush()

    assert (report.orphans, report.missing) == (1, 1)
    assert report.examples == {"orphans": [really_orphan], "missing": [really_missing]}


async def _add_live(world: World, count: int, start: int) -> list[str]:
    """count consistent live blobs (rows, variables, objects) with ordered labels."""
    keys = [f"{world.prefix}{i:06d}" for i in range(start, start + count)]
    case = await world.case()
    await world.db.execute(
        """
        WITH b AS (
            INSERT INTO blob (key, state, size, sha256)
            SELECT k, 'live', 1, decode(repeat('00', 32), 'hex') FROM unnest($1::text[]) AS k
            RETURNING key
        )
        INSERT INTO variable (case_instance_id, name, type, blob_key)
        SELECT $2, 'v-' || key, 'Bytes', key FROM b
        """,
        keys,
        case,
    )
    await world.put_objects(keys, b"v")
    return keys


async def _peak_of_check(world: World, store: BlobStore) -> tuple[check.CheckReport, int]:
    tracemalloc.start()
    try:
        report = await _check(world, store, page_rows=400)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return report, peak


@pytest.mark.parametrize("s3_backend", ["seaweedfs"])
async def test_check_pages_past_s3_pages_in_bounded_memory(s3_backend, world, store):
    keys = await _add_live(world, 2100, 0)
    # A few faults among them, so the merge has to step over gaps on both sides.
    await world.raw.delete_object(Bucket=world.bucket, Key=keys[500])
    await world.put_object(f"{keys[1700]}-orphan")
    await _check(world, store)  # loads botocore's models, once per process

    small, small_peak = await _peak_of_check(world, store)
    assert (small.objects, small.live, small.missing, small.orphans) == (2100, 2100, 1, 1)

    await _add_live(world, 2100, 2100)
    large, large_peak = await _peak_of_check(world, store)
    assert (large.objects, large.live, large.missing, large.orphans) == (4200, 4200, 1, 1)
    # Twice the blobs, the same memory: held are a page of rows, two pages of the
    # listing and the suspects, never the whole set (which would add over 600 KiB).
    assert large_peak < small_peak + 256 * 1024, (small_peak, large_peak)


# --- on the embedded default ---------------------------------------------------------


@pytest.fixture
def serve(tmp_path):
    process = ServeProcess(tmp_path / "data", free_port())
    yield process
    if process.process is not None and process.process.poll() is None:
        process.process.kill()
        process.process.wait()
    for pid in _processes_using(process.data_dir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.timeout(240)
async def test_check_and_collect_use_the_running_embedded_default(serve):
    serve.start()
    await serve.wait_ready()
    state = serve.state()
    endpoints = Endpoints(
        dsn=state["postgres"]["dsn"],
        s3_endpoint_url=state["s3"]["endpoint_url"],
        s3_bucket=state["s3"]["bucket"],
        s3_prefix=state["s3"]["prefix"],
        s3_region=state["s3"]["region"],
        s3_access_key_id=state["s3"]["access_key_id"],
        s3_secret_access_key=state["s3"]["secret_access_key"],
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CASEVARS_", "DATABASE_URL", "S3_", "AWS_"))
    }
    env["CASEVARS_DATA_DIR"] = str(serve.data_dir)
    async with open_world(endpoints.dsn, endpoints) as world:
        live = await world.live()
        await world.garbage(due_in=HOUR)

        checked = await run_cli(env, "check", "--json")
        assert checked.returncode == 0, checked.stderr
        assert orjson.loads(checked.stdout)["live"] == 1

        collected = await run_cli(env, "collect", "--grace", "0", "--pending-timeout", "0")
        assert collected.returncode == 0, collected.stderr
        assert "deleted 1 garbage" in collected.stdout
        assert await world.row_states() == {live: "live"}
    serve.stop()
    assert serve.process is not None
    assert serve.process.returncode == 0


async def test_check_says_when_the_database_is_not_migrated(world, server_dsn):
    result = await run_cli(cli_env(world, DATABASE_URL=server_dsn), "check")
    assert result.returncode == 1
    assert "run `casevars migrate`" in result.stderr
    assert "Traceback" not in result.stderr
