"""RFC 9530 digests on the multipart upload and on every `/data` download: a request's
Repr-Digest and the `data` part's Content-Digest or Repr-Digest hold the value to its
SHA-256, the request's Content-Digest holds the whole body to its; downloads answer
Repr-Digest unless Want-Repr-Digest turns it off. The fields the tests send and expect
are computed here with hashlib and base64, not with service/http/digests.py; one
upload and its download go through `requests`, which builds the form itself.

Each test has a fresh database and its own S3 prefix, so a collection and a check see
only what the test made."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import gzip
import hashlib
import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
import requests

from service.config import Endpoints
from tests.conftest import TEST_PART_SIZE, new_id
from tests.forms import (
    FORM,
    blob_states,
    body,
    create_case,
    data_url,
    part,
    pattern,
    variable_row,
)
from tests.test_faults import collect_and_check, collect_and_check_commands, settled, wait_for

PREVIOUS = pattern(5000, seed=1)
# More than a part: the new value goes to S3 as a multipart upload.
VALUE = pattern(2 * TEST_PART_SIZE + 123, seed=2)
OTHER = pattern(64, seed=3)


@pytest.fixture
def endpoints(fresh_database_dsn: str, s3_endpoints: Endpoints) -> Endpoints:
    """Overrides conftest's: a fresh database of this test's own, for the collector."""
    return dataclasses.replace(s3_endpoints, dsn=fresh_database_dsn)


@pytest.fixture
async def case_id(client: Any) -> str:
    made = new_id()
    await create_case(client, made)
    response = await _post(client, made, body(_data(PREVIOUS)))
    assert response.status == 204, await response.text()
    return made


def sha256_field(content: bytes) -> str:
    """`sha-256=:<base64>:`, the RFC 9530 field for content, made independently."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(content).digest()).decode() + ":"


def _data(content: bytes, *headers: tuple[str, str]) -> Any:
    names, value = part("data", content, "application/octet-stream")
    return [*names, *headers], value


async def _post(client: Any, case_id: str, form: bytes, **headers: str) -> Any:
    return await client.post(
        data_url(case_id, "v"),
        data=io.BytesIO(form),
        headers={"Content-Type": FORM, **{key.replace("_", "-"): v for key, v in headers.items()}},
    )


async def _served(client: Any, case_id: str) -> bytes:
    response = await client.get(data_url(case_id, "v"))
    assert response.status == 200
    return bytes(await response.read())


def _form_with(where: str, field: str, content: bytes) -> tuple[bytes, dict[str, str]]:
    """A form holding content, with field where the test puts it."""
    if where == "request Repr-Digest":
        return body(_data(content)), {"Repr-Digest": field}
    if where == "part Content-Digest":
        return body(_data(content, ("Content-Digest", field))), {}
    if where == "part Repr-Digest":
        return body(_data(content, ("Repr-Digest", field))), {}
    assert where == "request Content-Digest"
    return body(_data(content)), {"Content-Digest": field}


WHERE = ["request Repr-Digest", "part Content-Digest", "part Repr-Digest", "request Content-Digest"]


def _right_field(where: str, content: bytes) -> str:
    if where == "request Content-Digest":
        return sha256_field(body(_data(content)))  # the whole body as sent
    return sha256_field(content)


# --- uploads --------------------------------------------------------------------------


@pytest.mark.parametrize("where", WHERE)
async def test_a_matching_digest_stores_the_value(client, db, case_id, where):
    form, headers = _form_with(where, _right_field(where, VALUE), VALUE)
    response = await _post(client, case_id, form, **headers)
    assert response.status == 204, await response.text()
    assert await _served(client, case_id) == VALUE
    assert bytes((await variable_row(db, case_id, "v"))["sha256"]) == hashlib.sha256(VALUE).digest()


async def test_every_field_at_once(client, case_id):
    part_field = sha256_field(VALUE)
    form = body(_data(VALUE, ("Content-Digest", part_field), ("Repr-Digest", part_field)))
    response = await _post(
        client,
        case_id,
        form,
        Content_Digest=sha256_field(form),
        Repr_Digest=f"sha-512=:{base64.b64encode(bytes(64)).decode()}:, {part_field}",
    )
    assert response.status == 204, await response.text()
    assert await _served(client, case_id) == VALUE


@pytest.mark.parametrize("where", WHERE)
async def test_a_mismatching_digest_is_400_and_keeps_the_previous_value(
    client, db, endpoints, case_id, where
):
    form, headers = _form_with(where, sha256_field(OTHER), VALUE)
    response = await _post(client, case_id, form, **headers)
    assert response.status == 400
    error = await response.json()
    field = where.removeprefix("request ").replace("part ", "data part's ")
    assert error == {
        "type": "InvalidRequestException",
        "message": f"The {field} sha-256 does not match the bytes received; nothing was stored",
        "code": None,
    }
    assert await _served(client, case_id) == PREVIOUS
    # The new blob was stored, then refused: garbage at once, for the collector.
    states = sorted((await blob_states(db, endpoints.s3_prefix)).values())
    assert states == ["garbage", "live"]
    report = await collect_and_check(endpoints)
    assert report["live"] == 1
    assert await _served(client, case_id) == PREVIOUS


async def test_after_a_mismatch_casevars_collect_and_check_are_clean(client, endpoints, case_id):
    form = body(_data(VALUE))
    response = await _post(client, case_id, form, Content_Digest=sha256_field(form + b"x"))
    assert response.status == 400
    metrics = await (await client.get("/metrics")).text()
    assert 'casevars_uploads_refused_total{reason="digest_mismatch"} 1.0' in metrics
    collected, report = await collect_and_check_commands(endpoints)
    assert "deleted 1 garbage" in collected
    assert report["live"] == 1
    assert await _served(client, case_id) == PREVIOUS


@pytest.mark.parametrize("type_first", [True, False])
async def test_a_serialized_object_is_held_to_its_repr_digest(client, db, case_id, type_first):
    """The value of an object is the data part's JSON: in memory when `type` came first,
    streamed to a blob when it came after."""
    json = b'{"a": [1, 2, 3]}'
    parts = [part("type", b"java.util.HashMap"), part("data", json, "application/json")]
    form = body(*(parts if type_first else parts[::-1]))
    refused = await _post(client, case_id, form, Repr_Digest=sha256_field(json + b" "))
    assert refused.status == 400
    assert "Repr-Digest" in (await refused.json())["message"]
    assert await _served(client, case_id) == PREVIOUS

    stored = await _post(client, case_id, form, Repr_Digest=sha256_field(json))
    assert stored.status == 204, await stored.text()
    assert (await variable_row(db, case_id, "v"))["type"] == "Object"


@pytest.mark.parametrize(
    "headers",
    [
        {"Repr-Digest": f"sha-512=:{base64.b64encode(bytes(64)).decode()}:"},
        {"Content-Digest": "unixsum=30, id-sha-256=:AAAA:"},
        {"Repr-Digest": "md5=:AAAAAAAAAAAAAAAAAAAAAA==:", "Content-Digest": "crc32c=1"},
    ],
)
async def test_unknown_algorithms_are_ignored(client, case_id, headers):
    response = await _post(client, case_id, body(_data(VALUE)), **headers)
    assert response.status == 204, await response.text()
    assert await _served(client, case_id) == VALUE


async def test_an_unknown_algorithm_on_the_part_is_ignored(client, case_id):
    form = body(_data(VALUE, ("Content-Digest", "sha-512=:AAAA:")))
    assert (await _post(client, case_id, form)).status == 204
    assert await _served(client, case_id) == VALUE


MALFORMED = ["sha-256=:abc", "sha-256=1", "sha-256=:AAAA:", "sha-256", "===", 'sha-256="x"']


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("field", MALFORMED[:3])
async def test_a_malformed_field_is_400_before_anything_is_stored(
    client, db, endpoints, case_id, where, field
):
    form, headers = _form_with(where, field, VALUE)
    before = await blob_states(db, endpoints.s3_prefix)
    response = await _post(client, case_id, form, **headers)
    assert response.status == 400
    error = await response.json()
    assert error["type"] == "InvalidRequestException"
    name = where.rsplit(" ", 1)[1]
    assert name in error["message"]
    assert await _served(client, case_id) == PREVIOUS
    assert await blob_states(db, endpoints.s3_prefix) == before  # not a byte went to S3


@pytest.mark.parametrize("field", MALFORMED[3:])
async def test_fields_that_are_not_dictionaries_are_400(client, case_id, field):
    response = await _post(client, case_id, body(_data(VALUE)), Repr_Digest=field)
    assert response.status == 400
    assert "Repr-Digest" in (await response.json())["message"]


async def test_a_body_going_on_after_the_form_is_hashed_up_to_a_limit(client, case_id):
    """The epilogue (bytes after the closing delimiter) is part of the body as sent."""
    form = body(_data(VALUE)) + b"epilogue\r\n"
    stored = await _post(client, case_id, form, Content_Digest=sha256_field(form))
    assert stored.status == 204, await stored.text()
    long = body(_data(OTHER)) + b"line\r\n" * 20_000
    refused = await _post(client, case_id, long, Content_Digest=sha256_field(long))
    assert refused.status == 400
    assert "after the form's closing delimiter" in (await refused.json())["message"]
    assert await _served(client, case_id) == VALUE


async def test_a_chunked_body_in_small_pieces_is_hashed_whole(client, case_id):
    """Transfer-Encoding: chunked, in pieces that split every boundary: the digest is of
    the content, after the chunk framing is gone."""
    form = body(part("valueType", b"Bytes"), _data(VALUE))

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(form), 4099):
            yield form[start : start + 4099]

    response = await client.post(
        data_url(case_id, "v"),
        data=pieces(),
        headers={"Content-Type": FORM, "Content-Digest": sha256_field(form)},
    )
    assert response.status == 204, await response.text()
    assert await _served(client, case_id) == VALUE


async def test_a_client_gone_mid_body_leaves_nothing_pending(client, db, s3, endpoints, case_id):
    """With a Content-Digest the body goes through the hashing stream; a client that goes
    away mid-value still ends as any other: the previous value, no pending blob, no
    open multipart upload."""
    form = body(_data(VALUE))
    head = (
        f"POST {data_url(case_id, 'v')} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: {FORM}\r\nContent-Length: {len(form)}\r\n"
        f"Content-Digest: {sha256_field(form)}\r\n\r\n"
    ).encode()
    _, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(head + form[: len(form) // 2])
    await writer.drain()
    await wait_for(lambda: _has_pending(db, endpoints))
    writer.transport.abort()
    await wait_for(lambda: settled(db, s3, endpoints))
    assert await _served(client, case_id) == PREVIOUS
    report = await collect_and_check(endpoints)
    assert report["live"] == 1


async def _has_pending(db: Any, endpoints: Endpoints) -> bool:
    return "pending" in (await blob_states(db, endpoints.s3_prefix)).values()


async def test_a_content_digest_on_a_content_coded_body_is_400(client, case_id):
    """aiohttp decodes the body before the service sees it: the digest of the encoded
    bytes could not be checked, and is refused rather than ignored."""
    form = gzip.compress(body(_data(VALUE)))
    response = await _post(
        client, case_id, form, Content_Encoding="gzip", Content_Digest=sha256_field(form)
    )
    assert response.status == 400
    assert "Content-Encoding" in (await response.json())["message"]
    assert await _served(client, case_id) == PREVIOUS


async def test_an_unknown_case_instance_is_404_whatever_the_digest(client):
    response = await _post(client, new_id(), body(_data(VALUE)), Repr_Digest=sha256_field(OTHER))
    assert response.status == 404


# --- downloads ------------------------------------------------------------------------


async def _data_routes(client: Any, case_id: str) -> list[str]:
    """Every route a binary value is read at."""
    listed = await client.get("/variable-instance", params={"caseInstanceIdIn": case_id})
    instance_id = next(item["id"] for item in await listed.json() if item["name"] == "v")
    return [
        data_url(case_id, "v"),
        f"/case-execution/{case_id}/variables/v/data",
        f"/case-execution/{case_id}/localVariables/v/data",
        f"/variable-instance/{instance_id}/data",
        f"/history/variable-instance/{instance_id}/data",
        f"/engine-rest/case-instance/{case_id}/variables/v/data",
    ]


@pytest.mark.parametrize("s3_backend", ["moto", "seaweedfs"])
async def test_every_data_route_answers_repr_digest(s3_backend, client, case_id):
    assert (await _post(client, case_id, body(_data(VALUE)))).status == 204
    expected = sha256_field(VALUE)
    etag = '"' + hashlib.sha256(VALUE).hexdigest() + '"'
    for url in await _data_routes(client, case_id):
        whole = await client.get(url)
        assert whole.status == 200, url
        assert await whole.read() == VALUE
        assert whole.headers["Repr-Digest"] == expected, url
        head = await client.head(url)
        assert head.headers["Repr-Digest"] == expected, url
        # A range has the digest of the whole value, not of the bytes sent.
        ranged = await client.get(url, headers={"Range": "bytes=10-19"})
        assert ranged.status == 206
        assert await ranged.read() == VALUE[10:20]
        assert ranged.headers["Repr-Digest"] == expected, url
        unchanged = await client.get(url, headers={"If-None-Match": etag})
        assert unchanged.status == 304
        assert unchanged.headers["Repr-Digest"] == expected, url


@pytest.mark.parametrize(
    ("want", "sent"),
    [
        ("sha-256=0", False),
        ("sha-512=10, sha-256=0", False),
        ("sha-256=1", True),
        ("sha-512=10", True),
        ("not a dictionary ((", True),
    ],
)
async def test_want_repr_digest_is_honoured(client, case_id, want, sent):
    url = data_url(case_id, "v")
    for method in ("GET", "HEAD"):
        for headers in ({}, {"Range": "bytes=0-0"}):
            response = await client.request(
                method, url, headers={"Want-Repr-Digest": want, **headers}
            )
            assert response.status in {200, 206}
            assert ("Repr-Digest" in response.headers) is sent, (method, headers)
            assert response.headers["ETag"]


async def test_a_null_value_has_no_digest(client, case_id):
    put = await client.put(
        f"/case-instance/{case_id}/variables/v", json={"value": None, "type": "Bytes"}
    )
    assert put.status == 204, await put.text()
    response = await client.get(data_url(case_id, "v"))
    assert response.status == 200
    assert "Repr-Digest" not in response.headers
    assert "ETag" not in response.headers


# --- an independent client ------------------------------------------------------------


def _with_requests(base: str, case_id: str, content: bytes) -> tuple[int, int, str, bytes]:
    """Upload content with `requests` (its own multipart encoder), the body's
    Content-Digest computed from the bytes it prepared; then download it."""
    url = base + data_url(case_id, "v")
    with requests.Session() as session:
        prepared = session.prepare_request(
            requests.Request(
                "POST",
                url,
                files={"data": ("value.bin", content, "application/octet-stream")},
                data={"valueType": "File"},
            )
        )
        assert isinstance(prepared.body, bytes)
        prepared.headers["Content-Digest"] = sha256_field(prepared.body)
        prepared.headers["Repr-Digest"] = sha256_field(content)
        posted = session.send(prepared, timeout=30)
        wrong = session.post(
            url,
            files={"data": ("value.bin", content + b"!", "application/octet-stream")},
            data={"valueType": "File"},
            headers={"Repr-Digest": sha256_field(content)},
            timeout=30,
        )
        got = session.get(url, timeout=30)
        return posted.status_code, wrong.status_code, got.headers["Repr-Digest"], got.content


async def test_a_requests_upload_with_its_own_body_digest(client, case_id):
    base = str(client.make_url("")).rstrip("/")
    posted, wrong, field, content = await asyncio.to_thread(_with_requests, base, case_id, VALUE)
    assert (posted, wrong) == (204, 400)
    assert content == VALUE
    algorithm, _, encoded = field.partition("=")
    assert algorithm == "sha-256"
    assert base64.b64decode(encoded.strip(":")) == hashlib.sha256(VALUE).digest()
