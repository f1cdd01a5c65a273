"""Faults during resumable uploads (tus 1.0.0), driven by real tus clients (tuspy and
tus-js-client) against `casevars serve` processes: a replica SIGKILLed mid-PATCH, S3
down mid-PATCH, Postgres down at the commit, a checksum mismatch, a stale offset (409),
an upload past its expiry, termination of a finished upload. Each ends with the client
having stored its value (or the upload gone), and `casevars collect` (no grace, no
pending timeout) followed by `casevars check` finding the bucket and Postgres
consistent, with no pending or garbage blob and no open multipart upload left.

Clients reach the service through a FaultProxy acting as their load balancer, which
holds a PATCH at a chosen byte; Postgres and S3 are cut through FaultProxies of their
own. Each test has a fresh database and S3 prefix (the collector works on all of it).
The HTTP status of each refusal, byte by byte, is tests/test_tus.py's."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import json
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from tusclient.client import TusClient
from tusclient.exceptions import TusUploadFailed

from service.config import Endpoints
from tests.conftest import proxied_postgres, proxied_s3
from tests.test_faults import collect_and_check_commands
from tests.tus import (
    MIB,
    Sha256Uploader,
    answered,
    assert_value,
    balancer,
    base_of,
    new_case,
    replicas,
    switch,
    tus_js_modules,
    tus_js_upload,
    upload_state,
    uploads_url,
    value_file,
    wait_until,
)

pytestmark = pytest.mark.timeout(180)

SIZE = 12 * MIB + 12_345
METADATA = {"filename": "scan.tiff", "filetype": "image/tiff"}
VALUE_INFO = {"filename": "scan.tiff", "mimeType": "image/tiff"}
# Short timeouts, so that a replica gives up on a cut S3 or Postgres soon, and a short
# lease, so that the lease of a PATCH whose replica died, or that could not release it
# with Postgres down, runs out soon (until then the PATCH gets 423, which both clients
# retry).
LEASE_SECONDS = 5
FAST = {
    "CASEVARS_CLIENT_READ_TIMEOUT_SECONDS": "3",
    "CASEVARS_S3_TIMEOUT_SECONDS": "3",
    "CASEVARS_DB_TIMEOUT_SECONDS": "3",
    "CASEVARS_UPLOAD_LEASE_SECONDS": str(LEASE_SECONDS),
}
SETTLE_SECONDS = 1.0
# The clients retry for longer than a lease lasts.
TUSPY_RETRIES = 30
JS_RETRY_DELAYS = [300, 600, 1000, 2000, 3000, 5000, 5000, 5000, 5000]
EXPIRY_SECONDS = 4


@pytest.fixture
def endpoints(fresh_database_dsn: str, s3_endpoints: Endpoints) -> Endpoints:
    """A fresh database of this test's own, for the collector and the check."""
    return dataclasses.replace(s3_endpoints, dsn=fresh_database_dsn)


@pytest.fixture(scope="session")
def tus_js() -> Path:
    return tus_js_modules()


def uploader(path: Path, creation: str, **options: Any) -> Sha256Uploader:
    """A tuspy uploader of the file at path to the creation URL `creation`, or with
    url=... to an upload made before (tuspy then asks its offset). It reads a copy in
    memory: tuspy keeps its stream open as long as the uploader lives."""
    return Sha256Uploader(
        file_stream=io.BytesIO(path.read_bytes()),
        client=TusClient(creation),
        metadata=METADATA,
        **options,
    )


def _not_the_sha256(data: bytes) -> Any:
    return hashlib.sha256(b"not " + data)


class WrongChecksum(Sha256Uploader):
    """Sends an Upload-Checksum that is not the SHA-256 of the PATCH's body."""

    CHECKSUM_ALGORITHM_PAIR = ("sha256", _not_the_sha256)  # type: ignore[assignment]


async def assert_clean(endpoints: Endpoints) -> None:
    await collect_and_check_commands(endpoints)


async def test_a_sigkilled_replica_loses_at_most_the_patch_in_flight(endpoints, session, tmp_path):
    path = value_file(tmp_path, 24 * MIB, seed=11)
    async with replicas(endpoints, tmp_path, 2, **FAST) as (first, second):
        async with balancer(first) as proxy:
            base = base_of(proxy.port)
            case_id = await new_case(session, base)
            client = uploader(
                path,
                uploads_url(base, case_id, "scan"),
                chunk_size=11 * MIB,
                retries=TUSPY_RETRIES,
                retry_delay=1,
            )
            await asyncio.to_thread(client.upload_chunk)
            assert client.offset == 11 * MIB  # two parts in S3, 1 MiB of tail in Postgres
            # The next PATCH: its first 4 MiB fill the third part with the tail; two
            # more MiB wait in the part buffer when the replica is killed.
            proxy.freeze_after(6 * MIB)
            rest = asyncio.create_task(asyncio.to_thread(client.upload))
            await asyncio.wait_for(proxy.frozen.wait(), 30)
            await wait_for_offset(endpoints, case_id, 15 * MIB)  # the third part's checkpoint
            first.process.kill()
            first.process.wait()
            await switch(proxy, second)
            await rest

        # HEAD on the second replica: the first PATCH entirely, and of the killed one
        # the part S3 had confirmed; only the buffer in flight was lost.
        assert client.asked[0] == 15 * MIB
        await assert_value(
            session, base_of(second.port), case_id, "scan", path.read_bytes(), VALUE_INFO
        )
    await assert_clean(endpoints)


async def test_s3_down_mid_patch_then_tus_js_client_resumes(endpoints, session, tus_js, tmp_path):
    path = value_file(tmp_path, SIZE, seed=12)
    async with (
        proxied_s3(endpoints) as (s3, via_s3_proxy),
        replicas(via_s3_proxy, tmp_path, 1, **FAST) as (replica,),
        balancer(replica) as proxy,
    ):
        base = base_of(proxy.port)
        case_id = await new_case(session, base)
        proxy.freeze_after(8 * MIB)
        uploading = asyncio.create_task(
            tus_js_upload(
                tus_js,
                endpoint=uploads_url(base, case_id, "scan"),
                file=str(path),
                metadata=METADATA,
                retryDelays=JS_RETRY_DELAYS,
            )
        )
        await asyncio.wait_for(proxy.frozen.wait(), 30)
        await wait_for_offset(endpoints, case_id, 5 * MIB)  # the first part is in S3
        await s3.cut()
        proxy.thaw()  # the second part fills up and cannot go to S3
        await wait_until(lambda: any(s >= 500 for s in answered(replica, "PATCH")))
        s3.restore()
        done = await uploading

        assert done.status == 0, done.result
        statuses = [e["status"] for e in done.exchanges if e["method"] == "PATCH"]
        assert statuses[0] >= 500, done.exchanges
        assert statuses[-1] == 204
        resumed_at = done.offsets_of("HEAD")[0]
        assert resumed_at is not None
        assert resumed_at >= 5 * MIB  # the part S3 had taken is kept
        await assert_value(
            session, base_of(replica.port), case_id, "scan", path.read_bytes(), VALUE_INFO
        )
    await assert_clean(endpoints)


async def test_postgres_down_at_commit_keeps_the_old_value_until_tuspy_resumes(
    endpoints, session, tmp_path
):
    old = value_file(tmp_path, MIB, seed=13, name="old.bin")
    path = value_file(tmp_path, SIZE, seed=14)
    async with (
        proxied_postgres(endpoints) as (postgres, via_pg_proxy),
        proxied_s3(via_pg_proxy) as (s3, via_proxies),
        replicas(via_proxies, tmp_path, 1, **FAST) as (replica,),
        balancer(replica) as proxy,
    ):
        base = base_of(proxy.port)
        case_id = await new_case(session, base)
        url = uploads_url(base, case_id, "scan")
        await asyncio.to_thread(uploader(old, url).upload)
        client = uploader(path, url)
        await asyncio.to_thread(client.upload, 11 * MIB)
        # The last PATCH: every byte arrives and is recorded as received; S3 is held
        # while the replica completes the object, Postgres goes, and S3 goes on: the
        # object is whole in S3 and the commit cannot be written.
        s3.freeze()
        last = asyncio.create_task(asyncio.to_thread(client.upload))
        await wait_for_offset(endpoints, case_id, SIZE)
        await postgres.cut()
        s3.thaw()
        with pytest.raises(TusUploadFailed) as failed:
            await last
        assert failed.value.status_code is not None
        assert failed.value.status_code >= 500
        postgres.restore()

        await assert_value(session, base, case_id, "scan", old.read_bytes(), VALUE_INFO)
        # tuspy goes on (once the lease the failed PATCH could not release ran out):
        # the upload is finished from what Postgres and S3 hold, nothing is sent again.
        client.retries, client.retry_delay = TUSPY_RETRIES, 1
        await asyncio.to_thread(client.upload)
        assert client.asked[-1] == SIZE
        await assert_value(session, base, case_id, "scan", path.read_bytes(), VALUE_INFO)
    await assert_clean(endpoints)


async def wait_for_offset(endpoints: Endpoints, case_id: str, offset: int) -> None:
    """Until Postgres (reached directly, not through the test's proxy) records the
    case instance's uncommitted upload as received up to offset."""
    connection = await asyncpg.connect(endpoints.dsn)
    try:
        query = 'SELECT "offset" FROM upload WHERE case_instance_id = $1 AND committed_at IS NULL'
        await wait_until_async(lambda: connection.fetchval(query, case_id), offset)
    finally:
        await connection.close()


async def test_a_checksum_mismatch_leaves_the_upload_where_it_was(endpoints, session, tmp_path):
    path = value_file(tmp_path, SIZE, seed=15)
    async with replicas(endpoints, tmp_path, 1) as (replica,):
        base = base_of(replica.port)
        case_id = await new_case(session, base)
        good = uploader(
            path, uploads_url(base, case_id, "scan"), chunk_size=7 * MIB, upload_checksum=True
        )
        await asyncio.to_thread(good.upload_chunk)
        url = str(good.url)

        bad = WrongChecksum(
            file_stream=io.BytesIO(path.read_bytes()),
            url=url,
            chunk_size=7 * MIB,
            upload_checksum=True,
        )
        with pytest.raises(TusUploadFailed) as failed:
            await asyncio.to_thread(bad.upload_chunk)
        assert failed.value.status_code == 460

        status, headers = await upload_state(session, url)
        assert (status, headers["Upload-Offset"]) == (200, str(7 * MIB))
        await asyncio.to_thread(good.upload)
        await assert_value(session, base, case_id, "scan", path.read_bytes(), VALUE_INFO)
    await assert_clean(endpoints)


async def test_a_stale_offset_gets_409_and_tuspy_recovers(endpoints, session, tmp_path):
    path = value_file(tmp_path, SIZE, seed=16)
    async with replicas(endpoints, tmp_path, 2) as (first, second):
        case_id = await new_case(session, base_of(first.port))
        stale = uploader(
            path, uploads_url(base_of(first.port), case_id, "scan"), chunk_size=5 * MIB
        )
        await asyncio.to_thread(stale.upload_chunk)
        # Another client (on another replica) goes on with the same upload.
        other = Sha256Uploader(
            file_stream=io.BytesIO(path.read_bytes()), url=str(stale.url), chunk_size=5 * MIB
        )
        await asyncio.to_thread(other.upload_chunk)
        assert other.offset == 10 * MIB

        with pytest.raises(TusUploadFailed) as failed:
            await asyncio.to_thread(stale.upload_chunk)  # still at 5 MiB
        assert failed.value.status_code == 409

        stale.retries, stale.retry_delay = 1, 0
        await asyncio.to_thread(stale.upload)
        assert stale.asked == [10 * MIB]
        await assert_value(
            session, base_of(second.port), case_id, "scan", path.read_bytes(), VALUE_INFO
        )
    await assert_clean(endpoints)


async def test_tus_js_client_starts_over_after_its_upload_expired(
    endpoints, session, tus_js, tmp_path
):
    path = value_file(tmp_path, SIZE, seed=17)
    settings = {"CASEVARS_UPLOAD_EXPIRY_SECONDS": str(EXPIRY_SECONDS)}
    async with (
        replicas(endpoints, tmp_path, 1, **settings) as (replica,),
        balancer(replica) as proxy,
    ):
        base = base_of(proxy.port)
        case_id = await new_case(session, base)
        scenario: dict[str, Any] = {
            "endpoint": uploads_url(base, case_id, "scan"),
            "file": str(path),
            "metadata": METADATA,
            "urlStorage": str(tmp_path / "tus-urls.json"),
        }
        # The client dies 7 MiB into its PATCH: a part in S3, a tail in Postgres.
        kill = asyncio.Event()
        proxy.freeze_after(7 * MIB)
        stopping = asyncio.create_task(tus_js_upload(tus_js, kill, **scenario))
        await asyncio.wait_for(proxy.frozen.wait(), 30)
        await asyncio.sleep(SETTLE_SECONDS)
        kill.set()
        assert (await stopping).status == -signal.SIGKILL
        await switch(proxy, replica)
        await wait_until(lambda: bool(answered(replica, "PATCH")))
        (stored_url,) = json.loads((tmp_path / "tus-urls.json").read_text()).values()
        await asyncio.sleep(EXPIRY_SECONDS + 1)

        status, _ = await upload_state(session, stored_url["uploadUrl"])
        assert status == 410
        # The collector removes what the expired upload had stored.
        await assert_clean(endpoints)
        done = await tus_js_upload(tus_js, **scenario)

        assert done.status == 0, done.result
        expired_url = done.result["resumedFrom"]
        assert expired_url is not None
        assert done.result["url"] != expired_url
        methods = [(e["method"], e["status"]) for e in done.exchanges]
        assert methods[0][0] == "HEAD"
        assert methods[0][1] in {404, 410}
        assert methods[1] == ("POST", 201)
        status, _ = await upload_state(session, expired_url)
        assert status in {404, 410}
        await assert_value(session, base, case_id, "scan", path.read_bytes(), VALUE_INFO)
    await assert_clean(endpoints)


async def test_terminating_a_finished_upload_keeps_its_value(endpoints, session, tus_js, tmp_path):
    path = value_file(tmp_path, SIZE, seed=18)
    async with replicas(endpoints, tmp_path, 1) as (replica,):
        base = base_of(replica.port)
        case_id = await new_case(session, base)

        done = await tus_js_upload(
            tus_js,
            endpoint=uploads_url(base, case_id, "scan"),
            file=str(path),
            metadata=METADATA,
            terminate=True,
        )

        assert done.status == 0, done.result  # the client's DELETE got its 204
        assert done.result["terminated"] == done.result["url"]
        status, _ = await upload_state(session, done.result["url"])
        assert status in {404, 410}
        await assert_value(session, base, case_id, "scan", path.read_bytes(), VALUE_INFO)
    await assert_clean(endpoints)


async def wait_until_async(
    value: Callable[[], Awaitable[Any]], expected: Any, timeout: float = 30
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (got := await value()) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"{got!r}, not {expected!r}"
        await asyncio.sleep(0.02)
