"""Resumable uploads (tus 1.0.0) through real tus clients: PyPI's tuspy and npm's
tus-js-client in node (tests/clients/tus_upload.js), against `casevars serve`
processes. Each uploads a File with the metadata those clients send (filename,
filetype); the value comes back byte for byte through GET .../data with its SHA-256 as
ETag. Uploads are cut mid-PATCH by the FaultProxy the clients are given as their load
balancer, or stopped by the client, and resumed by the client, on a second replica
that shares the first one's Postgres and bucket."""

from __future__ import annotations

import asyncio
import io
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tusclient.client import TusClient
from tusclient.storage.filestorage import FileStorage

from tests.serving import Serve, serving
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

# Two full parts of 5 MiB (tests/serving.py's part size) and a tail.
SIZE = 12 * MIB + 12_345
METADATA = {"filename": "report.pdf", "filetype": "application/pdf"}
VALUE_INFO = {"filename": "report.pdf", "mimeType": "application/pdf"}
# Where the balancer holds a PATCH before its connection is cut: past the first part.
CUT = 8 * MIB + 4_321
# Time the first replica gets to store what it received before the cut.
SETTLE_SECONDS = 1.0
TUSPY_RETRIES = 8
# The first retry waits a second: the first replica has stored what it received by then.
JS_RETRY_DELAYS = [1000, 1000, 2000, 3000, 5000]


@pytest.fixture(scope="session")
def tus_js() -> Path:
    return tus_js_modules()


@pytest.fixture
async def serve(endpoints, tmp_path) -> AsyncIterator[Serve]:
    async with serving(endpoints, tmp_path) as started:
        yield started


class ClosingUploader(Sha256Uploader):
    """Closes the files tuspy opens for each request (with a file_path) once read."""

    def get_file_stream(self) -> Any:
        stream = super().get_file_stream()
        if stream is self.file_stream:
            return stream
        data = stream.read()
        stream.close()
        return io.BytesIO(data)


def tuspy_upload(path: Path, url: str, **options: Any) -> Sha256Uploader:
    """tuspy uploads the file at path to the creation URL, to its end (in a thread of
    its own: tuspy blocks); the uploader, for what it asked."""
    with path.open("rb") as stream:
        uploader = Sha256Uploader(
            file_stream=stream, client=TusClient(url), metadata=METADATA, **options
        )
        uploader.upload()
    return uploader


@pytest.mark.parametrize("chunk_size", [None, 7 * MIB], ids=["one-patch", "7MiB-patches"])
async def test_tuspy_uploads_a_file(serve, session, tmp_path, chunk_size):
    base = base_of(serve.port)
    case_id = await new_case(session, base)
    path = value_file(tmp_path, SIZE)
    # The chunked uploads also send each PATCH's SHA-256 (Upload-Checksum).
    options = {} if chunk_size is None else {"chunk_size": chunk_size, "upload_checksum": True}

    uploader = await asyncio.to_thread(
        tuspy_upload, path, uploads_url(base, case_id, "report"), **options
    )

    await assert_value(session, base, case_id, "report", path.read_bytes(), VALUE_INFO)
    # A finished upload stays visible, at its end, for a client whose last answer was lost.
    status, headers = await upload_state(session, str(uploader.url))
    assert status == 200
    assert headers["Upload-Offset"] == headers["Upload-Length"] == str(SIZE)


@pytest.mark.parametrize("chunk_size", [None, 7 * MIB], ids=["one-patch", "7MiB-patches"])
async def test_tus_js_client_uploads_a_file(serve, session, tus_js, tmp_path, chunk_size):
    base = base_of(serve.port)
    case_id = await new_case(session, base)
    path = value_file(tmp_path, SIZE, seed=2)
    options = {} if chunk_size is None else {"chunkSize": chunk_size}

    done = await tus_js_upload(
        tus_js,
        endpoint=uploads_url(base, case_id, "report"),
        file=str(path),
        metadata=METADATA,
        **options,
    )

    assert done.status == 0, done.result
    assert done.offsets_of("PATCH")[-1] == SIZE
    assert len(done.offsets_of("PATCH")) == (1 if chunk_size is None else 2)
    await assert_value(session, base, case_id, "report", path.read_bytes(), VALUE_INFO)


async def test_tuspy_resumes_a_cut_upload_on_another_replica(endpoints, session, tmp_path):
    path = value_file(tmp_path, SIZE, seed=3)
    async with replicas(endpoints, tmp_path, 2) as (first, second), balancer(first) as proxy:
        base = base_of(proxy.port)
        case_id = await new_case(session, base)
        proxy.freeze_after(CUT)
        uploading = asyncio.create_task(
            asyncio.to_thread(
                tuspy_upload,
                path,
                uploads_url(base, case_id, "report"),
                retries=TUSPY_RETRIES,
                retry_delay=1,
            )
        )
        await asyncio.wait_for(proxy.frozen.wait(), 30)
        await asyncio.sleep(SETTLE_SECONDS)
        await switch(proxy, second)
        uploader = await uploading

        # The second replica went on from what the first had received: its full part
        # and the tail after it (the creation request and the PATCH's head came first).
        assert CUT - 4096 < uploader.asked[0] < CUT
        assert "PATCH" in second.log.read_text()
        for replica in (first, second):
            await assert_value(
                session, base_of(replica.port), case_id, "report", path.read_bytes(), VALUE_INFO
            )


async def test_tus_js_client_resumes_a_cut_upload_on_another_replica(
    endpoints, session, tus_js, tmp_path
):
    path = value_file(tmp_path, SIZE, seed=4)
    async with replicas(endpoints, tmp_path, 2) as (first, second), balancer(first) as proxy:
        base = base_of(proxy.port)
        case_id = await new_case(session, base)
        proxy.freeze_after(CUT)
        uploading = asyncio.create_task(
            tus_js_upload(
                tus_js,
                endpoint=uploads_url(base, case_id, "report"),
                file=str(path),
                metadata=METADATA,
                retryDelays=JS_RETRY_DELAYS,
            )
        )
        await asyncio.wait_for(proxy.frozen.wait(), 30)
        await asyncio.sleep(SETTLE_SECONDS)
        await switch(proxy, second)
        done = await uploading

        assert done.status == 0, done.result
        resumed_at = done.offsets_of("HEAD")[0]
        assert resumed_at is not None
        assert CUT - 4096 < resumed_at < CUT
        assert done.offsets_of("PATCH")[-1] == SIZE
        await assert_value(
            session, base_of(second.port), case_id, "report", path.read_bytes(), VALUE_INFO
        )


async def test_tus_js_client_resumes_from_its_url_storage_after_it_stopped(
    endpoints, session, tus_js, tmp_path
):
    path = value_file(tmp_path, SIZE, seed=5)
    storage = tmp_path / "tus-urls.json"
    async with replicas(endpoints, tmp_path, 2) as (first, second), balancer(first) as proxy:
        base = base_of(proxy.port)
        case_id = await new_case(session, base)
        scenario: dict[str, Any] = {
            "endpoint": uploads_url(base, case_id, "report"),
            "file": str(path),
            "metadata": METADATA,
            "urlStorage": str(storage),
        }
        # The client is killed while the balancer holds its PATCH; then the
        # connection goes, and the first replica keeps what it received.
        kill = asyncio.Event()
        proxy.freeze_after(CUT)
        stopping = asyncio.create_task(tus_js_upload(tus_js, kill, **scenario))
        await asyncio.wait_for(proxy.frozen.wait(), 30)
        await asyncio.sleep(SETTLE_SECONDS)
        kill.set()
        assert (await stopping).status == -signal.SIGKILL
        await switch(proxy, second)
        await wait_until(lambda: bool(answered(first, "PATCH")))

        resumed = await tus_js_upload(tus_js, **scenario)

        assert resumed.status == 0, resumed.result
        assert resumed.result["resumedFrom"] == resumed.result["url"]
        offset = resumed.offsets_of("HEAD")[0]
        assert offset is not None
        assert CUT - 4096 < offset < CUT
        assert resumed.offsets_of("POST") == []  # no new upload
        await assert_value(
            session, base_of(second.port), case_id, "report", path.read_bytes(), VALUE_INFO
        )


async def test_tuspy_resumes_from_its_url_storage_on_another_replica(endpoints, session, tmp_path):
    path = value_file(tmp_path, SIZE, seed=6)
    # Past one full part, a tail of 2 MiB and 3 bytes: it waits in Postgres.
    stop_at = 7 * MIB + 3
    async with replicas(endpoints, tmp_path, 2) as (first, second), balancer(first) as proxy:
        base = base_of(proxy.port)
        case_id = await new_case(session, base)
        url = uploads_url(base, case_id, "report")

        def upload(stop: int | None) -> Sha256Uploader:
            urls = FileStorage(str(tmp_path / "tuspy-urls.json"))
            try:
                # A file_path: with a file_stream, tuspy closes the stream after taking
                # its fingerprint.
                uploader = ClosingUploader(
                    file_path=str(path),
                    client=TusClient(url),
                    metadata=METADATA,
                    store_url=True,
                    url_storage=urls,
                )
                uploader.upload(stop_at=stop)
                return uploader
            finally:
                urls._db.close()

        first_part = await asyncio.to_thread(upload, stop_at)
        assert first_part.offset == stop_at
        await switch(proxy, second)
        rest = await asyncio.to_thread(upload, None)

        assert rest.url == first_part.url
        assert rest.asked == [stop_at]
        await assert_value(
            session, base_of(second.port), case_id, "report", path.read_bytes(), VALUE_INFO
        )
