"""CPU per UploadPart call: aiobotocore's client.upload_part against the service's own
path (service/storage/upload_part.py), on small parts to the embedded SeaweedFS, so
that the per-call work, not the bytes, is what is measured.

    .venv/bin/python benchmarks/upload_part.py           # 300 calls each
    .venv/bin/python benchmarks/upload_part.py --calls 1000
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable

import orjson
from upload import direct_client, embedded_service

from service.storage.blobstore import _PartBody
from service.storage.upload_part import PartUploads

BODY = memoryview(b"x" * 1024)
WARM_UP = 20


async def per_call(calls: int, upload: Callable[[int], Awaitable[object]]) -> tuple[float, float]:
    """CPU and wall milliseconds per call of upload(part number), after a warm-up."""
    for number in range(1, WARM_UP + 1):
        await upload(number)
    cpu, wall = time.process_time(), time.perf_counter()
    for call in range(calls):
        await upload(call % 100 + 1)
    return (
        (time.process_time() - cpu) / calls * 1000,
        (time.perf_counter() - wall) / calls * 1000,
    )


async def main(calls: int) -> None:
    async with embedded_service() as service:
        s3 = orjson.loads((service.data_dir / "embedded.json").read_bytes())["s3"]
        async with direct_client(s3) as client:
            bucket, key = s3["bucket"], "benchmark/upload-part"
            upload_id = (await client.create_multipart_upload(Bucket=bucket, Key=key))["UploadId"]
            parts = PartUploads(client, bucket, observe=None)

            async def through_botocore(number: int) -> object:
                return await client.upload_part(
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=_PartBody(BODY),
                )

            async def through_service(number: int) -> object:
                return await parts.upload_part(key, upload_id, number, _PartBody(BODY))

            try:
                for name, upload in (
                    ("aiobotocore client.upload_part", through_botocore),
                    ("service PartUploads.upload_part", through_service),
                ):
                    cpu, wall = await per_call(calls, upload)
                    print(f"{name:34} {cpu:5.2f} ms CPU per call, {wall:5.2f} ms wall")
            finally:
                await client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    asyncio.run(main(parser.parse_args().calls))
