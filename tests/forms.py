"""Multipart bodies built byte by byte, so tests control every header and line end,
and checks of what the service left in Postgres and S3."""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

BOUNDARY = "-OSQH1f8lzs83iXFHphqfIuitaQfNKFY74Y"
FORM = f"multipart/form-data; boundary={BOUNDARY}"

Part = tuple[Sequence[tuple[str, str]], bytes]


def part(name: str, content: bytes, content_type: str | None = None, **params: str) -> Part:
    disposition = f'form-data; name="{name}"' + "".join(
        f'; {key}="{value}"' for key, value in params.items()
    )
    headers = [("Content-Disposition", disposition)]
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    return headers, content


def body(*parts: Part, boundary: str = BOUNDARY, close: bool = True) -> bytes:
    out = bytearray()
    for headers, content in parts:
        out += f"--{boundary}\r\n".encode()
        for key, value in headers:
            out += f"{key}: {value}\r\n".encode()
        out += b"\r\n" + content + b"\r\n"
    if close:
        out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def pattern(size: int, seed: int = 0) -> bytes:
    """Deterministic bytes that are not all alike (so misplaced parts would show)."""
    block = hashlib.sha256(f"{seed}".encode()).digest() * 2048  # 64 KiB
    repeats = size // len(block) + 1
    return (block * repeats)[:size]


async def streamed(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def data_url(case_id: str, name: str) -> str:
    return f"/case-instance/{case_id}/variables/{name}/data"


async def upload(client: Any, case_id: str, name: str, *parts: Part) -> Any:
    return await client.post(
        data_url(case_id, name), data=io.BytesIO(body(*parts)), headers={"Content-Type": FORM}
    )


async def upload_bytes(client: Any, case_id: str, name: str, content: bytes) -> Any:
    return await upload(client, case_id, name, part("data", content, "application/octet-stream"))


async def create_case(client: Any, case_id: str) -> None:
    response = await client.put(f"/case-instance/{case_id}")
    assert response.status == 201, await response.text()


async def blob_states(db: Any, prefix: str) -> dict[str, str]:
    rows = await db.fetch("SELECT key, state FROM blob WHERE key LIKE $1 || '%'", prefix)
    return {row["key"]: row["state"] for row in rows}


async def variable_row(db: Any, case_id: str, name: str) -> Any:
    return await db.fetchrow(
        """
        SELECT v.type, v.value, v.value_info, v.blob_key, b.size, b.sha256, b.state
        FROM variable v LEFT JOIN blob b ON b.key = v.blob_key
        WHERE v.case_instance_id = $1 AND v.name = $2
        """,
        case_id,
        name,
    )


async def s3_keys(s3: Any, bucket: str, prefix: str) -> set[str]:
    keys: set[str] = set()
    paginator = s3.get_paginator("list_objects_v2")
    async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        keys.update(item["Key"] for item in page.get("Contents", []))
    return keys


async def open_uploads(s3: Any, bucket: str, prefix: str) -> list[str]:
    response = await s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
    return [upload["Key"] for upload in response.get("Uploads", [])]


async def assert_nothing_unknown(db: Any, s3: Any, bucket: str, prefix: str) -> None:
    """Every object under the prefix is a blob Postgres knows (pending, live or
    garbage), and no multipart upload is open."""
    known = await blob_states(db, prefix)
    unknown = await s3_keys(s3, bucket, prefix) - set(known)
    assert unknown == set(), f"objects Postgres does not know: {unknown}"
    assert await open_uploads(s3, bucket, prefix) == []
