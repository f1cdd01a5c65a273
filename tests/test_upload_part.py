"""UploadPart by the service's own path (service/storage/upload_part.py) against real
S3 APIs: parts that complete into the object, keys that need quoting, S3's errors as
botocore raises them, retries of what botocore retries and only of that, and every
call reported to the metrics' observer."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import botocore.exceptions
import pytest
from aiohttp import web

from service.config import Endpoints
from service.storage import blobstore
from service.storage.blobstore import _PartBody
from service.storage.upload_part import PartUploads
from tests.conftest import free_port, raw_s3_client, settings_for_tests

MIB = 1024 * 1024


def service_client(endpoints: Endpoints) -> contextlib.AbstractAsyncContextManager[Any]:
    """An S3 client configured as the service configures its own."""
    return raw_s3_client(endpoints, config=blobstore.client_config(settings_for_tests()))


class Calls(list[tuple[str, float, bool]]):
    def __call__(self, operation: str, seconds: float, failed: bool) -> None:
        self.append((operation, seconds, failed))


@pytest.mark.parametrize(
    "name", ["plain", "with space+plus", "ünïcödé/and~tilde", "percent%20and&amp=?"]
)
async def test_parts_complete_into_the_object(s3_backend: str, s3_endpoints: Endpoints, name):
    key = f"{s3_endpoints.s3_prefix}{name}"
    first, last = os.urandom(5 * MIB), os.urandom(1234)
    calls = Calls()
    async with service_client(s3_endpoints) as client:
        bucket = s3_endpoints.s3_bucket
        upload_id = (await client.create_multipart_upload(Bucket=bucket, Key=key))["UploadId"]
        parts = PartUploads(client, bucket, calls)
        etags = [
            await parts.upload_part(key, upload_id, number, _PartBody(memoryview(data)))
            for number, data in ((1, first), (2, last))
        ]
        assert etags == [f'"{hashlib.md5(data).hexdigest()}"' for data in (first, last)]
        await client.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={
                "Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]
            },
        )
        stored = await client.get_object(Bucket=bucket, Key=key)
        async with stored["Body"] as body:
            assert await body.read() == first + last
    assert [(operation, failed) for operation, _, failed in calls] == [
        ("UploadPart", False),
        ("UploadPart", False),
    ]


# moto answers a part of an unknown upload with a bare 500 (which is retried).
@pytest.mark.parametrize("s3_backend", ["seaweedfs"])
async def test_an_unknown_upload_is_s3s_error_not_retried(s3_backend: str, s3_endpoints: Endpoints):
    calls = Calls()
    async with service_client(s3_endpoints) as client:
        parts = PartUploads(client, s3_endpoints.s3_bucket, calls)
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            await parts.upload_part(
                f"{s3_endpoints.s3_prefix}x", "no-such-upload", 1, _PartBody(memoryview(b"x"))
            )
    assert raised.value.response["Error"]["Code"] == "NoSuchUpload"
    assert [(operation, failed) for operation, _, failed in calls] == [("UploadPart", True)]


# moto takes any signature.
@pytest.mark.parametrize("s3_backend", ["seaweedfs"])
async def test_a_wrong_secret_is_refused(s3_backend: str, s3_endpoints: Endpoints):
    """The request is really signed, with the client's credentials: S3 checks it."""
    async with service_client(s3_endpoints) as client:
        bucket, key = s3_endpoints.s3_bucket, f"{s3_endpoints.s3_prefix}signed"
        upload_id = (await client.create_multipart_upload(Bucket=bucket, Key=key))["UploadId"]
        wrong = dataclasses.replace(s3_endpoints, s3_secret_access_key="not-the-secret")
        async with service_client(wrong) as forger:
            with pytest.raises(botocore.exceptions.ClientError) as raised:
                await PartUploads(forger, bucket, None).upload_part(
                    key, upload_id, 1, _PartBody(memoryview(b"x"))
                )
        await client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    assert raised.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


@dataclasses.dataclass
class FlakyS3:
    """A proxy in front of real S3 that answers the first `failures` UploadParts with
    `status` and S3's error `code`, and forwards everything else unchanged (the Host
    header too: the signature covers it)."""

    target: str
    status: int
    code: str
    failures: int
    part_requests: int = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if "partNumber" in request.query:
            self.part_requests += 1
            if self.part_requests <= self.failures:
                error = f"<Error><Code>{self.code}</Code><Message>test</Message></Error>"
                return web.Response(status=self.status, text=error)
        async with (
            aiohttp.ClientSession(auto_decompress=False) as session,
            session.request(
                request.method,
                self.target + request.path_qs,
                headers=request.headers,
                data=body,
                skip_auto_headers=["Content-Type"],
            ) as answer,
        ):
            return web.Response(
                status=answer.status, headers=answer.headers, body=await answer.read()
            )


@contextlib.asynccontextmanager
async def flaky_s3(endpoints: Endpoints, flaky: FlakyS3) -> AsyncIterator[Endpoints]:
    app = web.Application()
    app.router.add_route("*", "/{path:.*}", flaky.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]  # the port the kernel chose
    try:
        yield dataclasses.replace(endpoints, s3_endpoint_url=f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("status", "code", "failures", "requests", "succeeds"),
    [
        (503, "SlowDown", 1, 2, True),
        (500, "InternalError", 3, 4, True),  # botocore's four attempts: the last one lands
        (503, "SlowDown", 4, 4, False),  # and no fifth
        (400, "RequestTimeout", 1, 2, True),
        (400, "InvalidArgument", 1, 1, False),  # a refusal is not retried
    ],
)
async def test_retried_as_botocore_retries(
    s3_endpoints: Endpoints, monkeypatch, status, code, failures, requests, succeeds
):
    monkeypatch.setattr(asyncio, "sleep", _no_wait)
    flaky = FlakyS3(str(s3_endpoints.s3_endpoint_url), status, code, failures)
    calls = Calls()
    data = os.urandom(1000)
    async with flaky_s3(s3_endpoints, flaky) as through, service_client(through) as client:
        bucket, key = s3_endpoints.s3_bucket, f"{s3_endpoints.s3_prefix}flaky"
        upload_id = (await client.create_multipart_upload(Bucket=bucket, Key=key))["UploadId"]
        parts = PartUploads(client, bucket, calls)
        body = _PartBody(memoryview(data))
        if succeeds:
            etag = await parts.upload_part(key, upload_id, 1, body)
            assert etag == f'"{hashlib.md5(data).hexdigest()}"'
        else:
            with pytest.raises(botocore.exceptions.ClientError) as raised:
                await parts.upload_part(key, upload_id, 1, body)
            assert raised.value.response["Error"]["Code"] == code
        await client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    assert flaky.part_requests == requests
    assert [(operation, failed) for operation, _, failed in calls] == [("UploadPart", not succeeds)]


async def test_no_answer_is_botocores_connection_error(s3_endpoints: Endpoints, monkeypatch):
    monkeypatch.setattr(asyncio, "sleep", _no_wait)
    calls = Calls()
    async with service_client(s3_endpoints) as client:
        bucket, key = s3_endpoints.s3_bucket, f"{s3_endpoints.s3_prefix}gone"
        upload_id = (await client.create_multipart_upload(Bucket=bucket, Key=key))["UploadId"]
        await client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    nowhere = dataclasses.replace(s3_endpoints, s3_endpoint_url=f"http://127.0.0.1:{free_port()}")
    async with service_client(nowhere) as client:
        with pytest.raises(botocore.exceptions.EndpointConnectionError):
            await PartUploads(client, bucket, calls).upload_part(
                key, upload_id, 1, _PartBody(memoryview(b"x"))
            )
    assert [(operation, failed) for operation, _, failed in calls] == [("UploadPart", True)]


_real_sleep = asyncio.sleep


async def _no_wait(delay: float, result: Any = None) -> Any:
    """asyncio.sleep without the backoff's wait (a retry test need not sit through it)."""
    return await _real_sleep(0, result)
