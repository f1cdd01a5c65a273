"""Resumable uploads (tus 1.0.0) by hand-made requests, on real Postgres and S3: the
protocol's happy paths across part boundaries, every bad input, and the outcomes at
commit time, each leaving `casevars check` clean after `casevars collect`."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import email.utils
import hashlib
import io
import itertools
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from service.config import MIB, Endpoints
from service.http import keys
from service.http.digests import repr_digest
from service.storage import blobstore, check, collector
from tests.conftest import (
    ROOT,
    TEST_PART_SIZE,
    casevars_env,
    new_id,
    run_casevars,
    settings_for_tests,
)
from tests.forms import create_case, data_url, pattern

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = {**TUS, "Content-Type": "application/offset+octet-stream"}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def metadata(**pairs: str) -> str:
    return ",".join(f"{key} {b64(value)}" for key, value in pairs.items())


def uploads_path(case_id: str, name: str) -> str:
    return f"/case-instance/{case_id}/variables/{name}/uploads"


async def create(client: Any, case_id: str, name: str, length: int | None, **headers: str) -> str:
    sent = {**TUS, **headers}
    if length is None:
        sent["Upload-Defer-Length"] = "1"
    else:
        sent["Upload-Length"] = str(length)
    response = await client.post(uploads_path(case_id, name), headers=sent)
    assert response.status == 201, await response.text()
    location: str = response.headers["Location"]
    return location


async def patch(client: Any, url: str, offset: int, data: bytes, **headers: str) -> Any:
    return await client.patch(
        url, data=io.BytesIO(data), headers={**OCTETS, "Upload-Offset": str(offset), **headers}
    )


async def patch_retrying(client: Any, url: str, offset: int, data: bytes) -> Any:
    """A PATCH retried while another request still holds the upload (423)."""
    response = None
    for _ in range(50):
        response = await patch(client, url, offset, data)
        if response.status != 423:
            return response
        await asyncio.sleep(0.1)
    return response


async def offset_of(client: Any, url: str) -> int:
    response = await client.head(url, headers=TUS)
    assert response.status == 200, response.status
    return int(response.headers["Upload-Offset"])


@pytest.fixture
async def case_id(client):
    made = new_id()
    await create_case(client, made)
    return made


async def test_a_value_in_several_patches_reads_back_with_its_sha256(client, case_id):
    content = pattern(2 * TEST_PART_SIZE + 12345)
    url = await create(
        client, case_id, "doc", len(content), **{"Upload-Metadata": metadata(filename="a.bin")}
    )
    cuts = [0, 1000, TEST_PART_SIZE + 5, TEST_PART_SIZE + 7, 2 * TEST_PART_SIZE + 100, len(content)]
    for start, end in itertools.pairwise(cuts):
        assert await offset_of(client, url) == start
        response = await patch(client, url, start, content[start:end])
        assert response.status == 204, await response.text()
        assert response.headers["Upload-Offset"] == str(end)
        assert response.headers["Tus-Resumable"] == "1.0.0"
    got = await client.get(data_url(case_id, "doc"))
    assert got.status == 200
    assert await got.read() == content
    assert got.headers["ETag"] == f'"{hashlib.sha256(content).hexdigest()}"'


# --- helpers for the outcomes ------------------------------------------------------


@pytest.fixture
async def world(make_client, fresh_database_dsn, endpoints):
    """An app on a database of this test's own, so that collect may sweep all of it."""
    own = dataclasses.replace(endpoints, dsn=fresh_database_dsn)
    client = await make_client(endpoints_override=own)
    connection = await asyncpg.connect(fresh_database_dsn)
    async with blobstore.open_blob_store(settings_for_tests(), own) as store:
        yield World(client, own, connection, store)
    await connection.close()


@dataclasses.dataclass
class World:
    client: Any
    endpoints: Endpoints
    db: Any
    store: blobstore.BlobStore

    async def case(self) -> str:
        made = new_id()
        await create_case(self.client, made)
        return made

    async def collect(self) -> collector.CollectResult:
        """A pass that would take every pending blob and multipart upload of a crash."""
        return await collector.collect_once(
            self.endpoints.dsn,
            self.store,
            prefix=self.endpoints.s3_prefix,
            pending_timeout_seconds=0,
            grace_seconds=0,
        )

    async def assert_clean(self) -> None:
        """After a collect, `casevars check` finds nothing wrong."""
        await self.collect()
        report = await check.check(
            self.endpoints.dsn,
            self.store,
            prefix=self.endpoints.s3_prefix,
            pending_timeout_seconds=3600,
        )
        assert report.consistent, report.as_dict()

    async def open_multipart(self) -> list[str]:
        return [u.upload_id async for u in self.store.iter_uploads(self.endpoints.s3_prefix)]


async def value_of(client: Any, case_id: str, name: str) -> tuple[int, bytes, str | None]:
    response = await client.get(data_url(case_id, name))
    return response.status, await response.read(), response.headers.get("ETag")


def etag(content: bytes) -> str:
    return f'"{hashlib.sha256(content).hexdigest()}"'


async def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    body: dict[str, Any] = await response.json()
    assert set(body) == {"type", "message", "code"}
    return body


# --- the protocol ------------------------------------------------------------------


async def test_options_says_what_the_server_offers(client, case_id):
    response = await client.options(uploads_path(case_id, "doc"))
    assert response.status == 204
    assert response.headers["Tus-Version"] == "1.0.0"
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert set(response.headers["Tus-Extension"].split(",")) == {
        "creation",
        "creation-with-upload",
        "creation-defer-length",
        "termination",
        "checksum",
        "expiration",
    }
    assert int(response.headers["Tus-Max-Size"]) == 64 * MIB  # the tests' CASEVARS_MAX_UPLOAD_BYTES
    assert response.headers["Tus-Checksum-Algorithm"] == "sha256"
    on_upload = await client.options(uploads_path(case_id, "doc") + "/whatever")
    assert on_upload.status == 204


async def test_head_shows_offset_length_metadata_and_expiry(client, case_id):
    sent = metadata(filename="report.pdf", filetype="application/pdf", extra="x")
    url = await create(client, case_id, "doc", 100, **{"Upload-Metadata": sent})
    await patch(client, url, 0, b"x" * 40)
    response = await client.head(url, headers=TUS)
    assert response.status == 200
    assert response.headers["Upload-Offset"] == "40"
    assert response.headers["Upload-Length"] == "100"
    assert response.headers["Upload-Metadata"] == sent
    assert response.headers["Cache-Control"] == "no-store"
    assert email.utils.parsedate_to_datetime(response.headers["Upload-Expires"]) > datetime.now(UTC)
    # Until the last byte, the variable keeps its old value (here: none).
    assert (await client.get(f"/case-instance/{case_id}/variables/doc")).status == 404


async def test_location_works_under_every_rest_root(client, case_id):
    response = await client.post(
        f"/engine-rest{uploads_path(case_id, 'doc')}", headers={**TUS, "Upload-Length": "3"}
    )
    assert response.status == 201
    location = response.headers["Location"]
    assert location.startswith(f"/engine-rest{uploads_path(case_id, 'doc')}/")
    assert (await patch(client, location, 0, b"abc")).status == 204
    assert await value_of(client, case_id, "doc") == (200, b"abc", etag(b"abc"))


async def test_a_file_keeps_its_filename_mime_type_and_encoding(client, case_id):
    content = b"hello, world\n"
    sent = metadata(filename="hello.txt", filetype="text/plain", encoding="UTF-8")
    url = await create(client, case_id, "doc", len(content), **{"Upload-Metadata": sent})
    assert (await patch(client, url, 0, content)).status == 204
    response = await client.get(f"/case-instance/{case_id}/variables/doc")
    body = await response.json()
    assert body["type"] == "File"
    assert body["valueInfo"] == {
        "filename": "hello.txt",
        "mimeType": "text/plain",
        "encoding": "UTF-8",
    }
    download = await client.get(data_url(case_id, "doc"))
    assert await download.read() == content
    assert download.headers["Content-Type"].startswith("text/plain")


async def test_bytes_by_default_and_by_value_type(client, case_id):
    for name, sent in (("plain", {}), ("typed", {"valueType": "Bytes", "filename": "x"})):
        headers = {"Upload-Metadata": metadata(**sent)} if sent else {}
        url = await create(client, case_id, name, 2, **headers)
        assert (await patch(client, url, 0, b"hi")).status == 204
        body = await (await client.get(f"/case-instance/{case_id}/variables/{name}")).json()
        assert body["type"] == "Bytes"


async def test_creation_with_upload_and_then_patches(client, case_id):
    content = pattern(TEST_PART_SIZE + 3000)
    response = await client.post(
        uploads_path(case_id, "doc"),
        data=io.BytesIO(content[:4000]),
        headers={**OCTETS, "Upload-Length": str(len(content))},
    )
    assert response.status == 201, await response.text()
    assert response.headers["Upload-Offset"] == "4000"
    url = response.headers["Location"]
    assert (await patch(client, url, 4000, content[4000:])).status == 204
    assert await value_of(client, case_id, "doc") == (200, content, etag(content))


async def test_creation_with_the_whole_value_commits_it(client, case_id):
    response = await client.post(
        uploads_path(case_id, "doc"),
        data=io.BytesIO(b"all"),
        headers={**OCTETS, "Upload-Length": "3"},
    )
    assert response.status == 201
    assert response.headers["Upload-Offset"] == "3"
    assert await value_of(client, case_id, "doc") == (200, b"all", etag(b"all"))


async def test_an_empty_value_is_committed_at_creation(client, case_id):
    response = await client.post(
        uploads_path(case_id, "doc"), headers={**TUS, "Upload-Length": "0"}
    )
    assert response.status == 201
    assert response.headers["Upload-Offset"] == "0"
    assert await value_of(client, case_id, "doc") == (200, b"", etag(b""))


async def test_a_deferred_length_is_given_by_a_later_patch(client, case_id):
    content = pattern(TEST_PART_SIZE + 10)
    url = await create(client, case_id, "doc", None)
    head = await client.head(url, headers=TUS)
    assert head.headers["Upload-Defer-Length"] == "1"
    assert "Upload-Length" not in head.headers
    assert (await patch(client, url, 0, content[:TEST_PART_SIZE])).status == 204
    response = await patch(
        client,
        url,
        TEST_PART_SIZE,
        content[TEST_PART_SIZE:],
        **{"Upload-Length": str(len(content))},
    )
    assert response.status == 204, await response.text()
    assert await value_of(client, case_id, "doc") == (200, content, etag(content))


async def test_a_deferred_length_is_set_once(client, case_id):
    url = await create(client, case_id, "doc", None)
    assert (await patch(client, url, 0, b"ab", **{"Upload-Length": "10"})).status == 204
    again = await patch(client, url, 2, b"cd", **{"Upload-Length": "12"})
    body = await error_of(again, 400)
    assert "Upload-Length" in body["message"]
    same = await patch(client, url, 2, b"cd", **{"Upload-Length": "10"})
    assert same.status == 204
    too_long = await create(client, case_id, "long", None)
    await error_of(
        await patch(client, too_long, 0, b"", **{"Upload-Length": str(64 * MIB + 1)}), 413
    )
    below = await create(client, case_id, "other", None)
    await patch(client, below, 0, b"abcd")
    await error_of(await patch(client, below, 4, b"", **{"Upload-Length": "3"}), 400)


async def test_a_patch_with_a_matching_checksum_is_kept(client, case_id):
    content = pattern(TEST_PART_SIZE + 77)
    url = await create(client, case_id, "doc", len(content))
    for start, end in ((0, 1000), (1000, len(content))):
        piece = content[start:end]
        checksum = "sha256 " + base64.b64encode(hashlib.sha256(piece).digest()).decode()
        response = await patch(client, url, start, piece, **{"Upload-Checksum": checksum})
        assert response.status == 204, await response.text()
    assert await value_of(client, case_id, "doc") == (200, content, etag(content))


async def test_repr_digest_at_creation_and_content_digest_per_patch(client, case_id):
    content = pattern(3000)
    url = await create(
        client,
        case_id,
        "doc",
        len(content),
        **{"Repr-Digest": repr_digest(hashlib.sha256(content).digest())},
    )
    piece = content[:1000]
    ok = await patch(
        client, url, 0, piece, **{"Content-Digest": repr_digest(hashlib.sha256(piece).digest())}
    )
    assert ok.status == 204
    assert (await patch(client, url, 1000, content[1000:])).status == 204
    assert await value_of(client, case_id, "doc") == (200, content, etag(content))


async def test_two_apps_on_one_database_continue_each_other_s_upload(make_client, client, case_id):
    other = await make_client()
    content = pattern(2 * TEST_PART_SIZE + 5)
    url = await create(client, case_id, "doc", len(content))
    cuts = [0, TEST_PART_SIZE - 3, TEST_PART_SIZE + 9, len(content)]
    for index, (start, end) in enumerate(itertools.pairwise(cuts)):
        serving = (client, other)[index % 2]
        assert await offset_of(serving, url) == start
        assert (await patch(serving, url, start, content[start:end])).status == 204
    assert await value_of(other, case_id, "doc") == (200, content, etag(content))


# --- bad inputs --------------------------------------------------------------------


async def test_every_request_but_options_needs_tus_resumable_1_0_0(client, case_id):
    url = await create(client, case_id, "doc", 10)
    requests = [
        ("POST", uploads_path(case_id, "doc"), {"Upload-Length": "1"}),
        ("HEAD", url, {}),
        ("PATCH", url, {"Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}),
        ("DELETE", url, {}),
    ]
    for method, path, headers in requests:
        for version in (None, "0.2.2", "1.0"):
            sent = dict(headers)
            if version is not None:
                sent["Tus-Resumable"] = version
            response = await client.request(method, path, headers=sent)
            assert response.status == 412, (method, version)
            assert response.headers["Tus-Version"] == "1.0.0"
            assert response.headers["Tus-Resumable"] == "1.0.0"
            if method != "HEAD":
                body = await error_of(response, 412)
                assert "1.0.0" in body["message"]
    assert await offset_of(client, url) == 0


async def test_creation_refuses_bad_lengths_and_bodies(client, case_id):
    path = uploads_path(case_id, "doc")
    cases = [
        ({}, 400),  # neither length nor deferral
        ({"Upload-Length": "-1"}, 400),
        ({"Upload-Length": "ten"}, 400),
        ({"Upload-Length": "5", "Upload-Defer-Length": "1"}, 400),
        ({"Upload-Defer-Length": "2"}, 400),
        ({"Upload-Length": str(64 * MIB + 1)}, 413),  # past CASEVARS_MAX_UPLOAD_BYTES
        ({"Upload-Length": "5", "Repr-Digest": "sha-256=:abc:"}, 400),
    ]
    for headers, status in cases:
        await error_of(await client.post(path, headers={**TUS, **headers}), status)
    wrong_type = await client.post(
        path, data=b"abc", headers={**TUS, "Upload-Length": "3", "Content-Type": "text/plain"}
    )
    await error_of(wrong_type, 415)
    assert await open_uploads_of(client, case_id) == 0


async def open_uploads_of(client: Any, case_id: str) -> int:
    pool = client.app[keys.POOL]
    count: int = await pool.fetchval(
        "SELECT count(*) FROM upload WHERE case_instance_id = $1", case_id
    )
    return count


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ("filename YQ==,,x", "is not a key and a base64 value"),
        ("filename YQ== extra", "is not a key and a base64 value"),
        ("filename !!!", "is not base64"),
        ("filename YQ==,filename Yg==", "given twice"),
        (f"filename {base64.b64encode(bytes([0xFF])).decode()}", "not UTF-8"),
        (metadata(valueType="String"), "Unsupported value type 'String'"),
        (metadata(valueType="File"), "Cannot create file without filename"),
        (metadata(filename="a", filetype="not a type"), "Invalid mime type given"),
        (metadata(filename="a\\b/c" * 100), "longer than 255"),
    ],
)
async def test_bad_metadata_is_refused_like_the_multipart_form(client, case_id, pairs, message):
    response = await client.post(
        uploads_path(case_id, "doc"),
        headers={**TUS, "Upload-Length": "1", "Upload-Metadata": pairs},
    )
    body = await error_of(response, 400)
    assert message in body["message"]


async def test_an_unknown_upload_is_404_for_every_method(client, case_id):
    url = await create(client, case_id, "doc", 10)
    elsewhere = url.replace("/variables/doc/", "/variables/other/")
    for target in (uploads_path(case_id, "doc") + "/" + "0" * 32, elsewhere):
        head = await client.head(target, headers=TUS)
        assert head.status == 404
        await error_of(await patch(client, target, 0, b"x"), 404)
        await error_of(await client.delete(target, headers=TUS), 404)


async def test_a_patch_must_be_an_offset_stream_at_the_upload_s_offset(client, case_id):
    url = await create(client, case_id, "doc", 10)
    assert (await patch(client, url, 0, b"abc")).status == 204
    wrong_type = await client.patch(
        url,
        data=b"def",
        headers={**TUS, "Upload-Offset": "3", "Content-Type": "application/octet-stream"},
    )
    await error_of(wrong_type, 415)
    for offset in (0, 2, 4):
        body = await error_of(await patch(client, url, offset, b"def"), 409)
        assert "must be 3" in body["message"]
    missing = await client.patch(url, data=b"def", headers=OCTETS)
    await error_of(missing, 400)
    await error_of(await patch(client, url, 3, b"d", **{"Upload-Offset": "x"}), 400)
    assert await offset_of(client, url) == 3


async def test_a_patch_past_the_length_is_refused(client, case_id):
    url = await create(client, case_id, "doc", 10)
    await error_of(await patch(client, url, 0, b"x" * 11), 413)
    assert await offset_of(client, url) == 0

    async def chunked():
        yield b"x" * 6
        yield b"y" * 6

    response = await client.patch(url, data=chunked(), headers={**OCTETS, "Upload-Offset": "0"})
    await error_of(response, 413)
    assert await offset_of(client, url) == 0
    assert (await patch(client, url, 0, b"z" * 10)).status == 204
    assert await value_of(client, case_id, "doc") == (200, b"z" * 10, etag(b"z" * 10))


async def test_a_checksum_mismatch_is_460_and_keeps_the_state_before(client, case_id):
    content = pattern(TEST_PART_SIZE + 500)
    url = await create(client, case_id, "doc", len(content))
    assert (await patch(client, url, 0, content[:100])).status == 204
    wrong = "sha256 " + base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    # Past a part boundary, so that a part went to S3 before the mismatch showed.
    response = await patch(client, url, 100, content[100:], **{"Upload-Checksum": wrong})
    await error_of(response, 460)
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert await offset_of(client, url) == 100
    bad_digest = repr_digest(hashlib.sha256(b"other").digest())
    await error_of(
        await patch(client, url, 100, content[100:], **{"Content-Digest": bad_digest}), 400
    )
    assert await offset_of(client, url) == 100
    assert (await patch(client, url, 100, content[100:])).status == 204
    assert await value_of(client, case_id, "doc") == (200, content, etag(content))
    metrics = await (await client.get("/metrics")).text()
    assert "casevars_resumable_checksum_mismatches_total 2.0" in metrics


async def test_checksum_algorithms_other_than_sha256_are_refused(client, case_id):
    url = await create(client, case_id, "doc", 3)
    sha1 = "sha1 " + base64.b64encode(hashlib.sha1(b"abc").digest()).decode()
    await error_of(await patch(client, url, 0, b"abc", **{"Upload-Checksum": sha1}), 400)
    await error_of(await patch(client, url, 0, b"abc", **{"Upload-Checksum": "sha256 !!"}), 400)
    assert await offset_of(client, url) == 0


async def test_a_wrong_repr_digest_discards_the_upload_and_keeps_the_old_value(client, case_id):
    await create_then_finish(client, case_id, "doc", b"old")
    wrong = repr_digest(hashlib.sha256(b"something else").digest())
    url = await create(client, case_id, "doc", 6, **{"Repr-Digest": wrong})
    await patch(client, url, 0, b"ne")
    body = await error_of(await patch(client, url, 2, b"wnew"), 400)
    assert "Repr-Digest" in body["message"]
    assert (await client.head(url, headers=TUS)).status == 404
    assert await value_of(client, case_id, "doc") == (200, b"old", etag(b"old"))
    # And one given on the final PATCH.
    url = await create(client, case_id, "doc", 3)
    await error_of(await patch(client, url, 0, b"new", **{"Repr-Digest": wrong}), 400)
    assert await value_of(client, case_id, "doc") == (200, b"old", etag(b"old"))


async def create_then_finish(client: Any, case_id: str, name: str, content: bytes) -> str:
    url = await create(client, case_id, name, len(content))
    response = await patch(client, url, 0, content)
    assert response.status == 204, await response.text()
    return url


async def test_a_second_patch_while_one_runs_is_423(client, case_id):
    url = await create(client, case_id, "doc", 2 * TEST_PART_SIZE)
    release = asyncio.Event()

    async def slow():
        yield b"a" * 1000
        await release.wait()
        yield b"b" * 1000

    second = None
    first = asyncio.ensure_future(
        client.patch(url, data=slow(), headers={**OCTETS, "Upload-Offset": "0"})
    )
    for _ in range(100):  # until the first PATCH holds the lease
        await asyncio.sleep(0.05)
        second = await patch(client, url, 0, b"c" * 10)
        if second.status == 423:
            break
    await error_of(second, 423)
    await error_of(await client.delete(url, headers=TUS), 423)
    release.set()
    assert (await first).status == 204
    assert await offset_of(client, url) == 2000


async def test_a_body_cut_short_keeps_what_arrived(client, case_id):
    content = pattern(TEST_PART_SIZE + 4000)
    url = await create(client, case_id, "doc", len(content))
    sent = TEST_PART_SIZE + 1000
    host, port = client.server.host, client.server.port
    _reader, writer = await asyncio.open_connection(host, port)
    head = (
        f"PATCH {url} HTTP/1.1\r\nHost: {host}\r\nTus-Resumable: 1.0.0\r\n"
        "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
        f"Content-Length: {len(content)}\r\n\r\n"
    ).encode()
    writer.write(head + content[:sent])
    await writer.drain()
    await asyncio.sleep(0.5)
    writer.close()
    await writer.wait_closed()
    offset = 0
    for _ in range(100):
        await asyncio.sleep(0.05)
        response = await client.head(url, headers=TUS)
        offset = int(response.headers["Upload-Offset"])
        if offset == sent:
            break
    assert offset == sent
    # The lease goes a moment after the offset is recorded: a client retries a 423.
    response = await patch_retrying(client, url, sent, content[sent:])
    assert response.status == 204
    assert await value_of(client, case_id, "doc") == (200, content, etag(content))
    metrics = await (await client.get("/metrics")).text()
    assert f"casevars_resumable_bytes_resumed_total {float(len(content) - sent)}" in metrics


# --- outcomes at commit time, each leaving nothing behind --------------------------


async def test_the_case_instance_deleted_meanwhile_takes_the_upload_with_it(world):
    client, case_id = world.client, await world.case()
    content = pattern(TEST_PART_SIZE + 100)
    url = await create(client, case_id, "doc", len(content))
    assert (await patch(client, url, 0, content[: TEST_PART_SIZE + 10])).status == 204
    assert len(await world.open_multipart()) == 1
    assert (await client.delete(f"/case-instance/{case_id}")).status == 204
    await create_case(client, case_id)  # the same id again: another instance
    await error_of(
        await patch(client, url, TEST_PART_SIZE + 10, content[TEST_PART_SIZE + 10 :]), 404
    )
    assert (await client.head(url, headers=TUS)).status == 404
    assert (await client.get(f"/case-instance/{case_id}/variables/doc")).status == 404
    await world.assert_clean()
    assert await world.open_multipart() == []
    assert await world.db.fetchval("SELECT count(*) FROM blob") == 0


async def test_a_case_instance_closed_meanwhile_gets_the_post_s_404(world):
    client, case_id = world.client, await world.case()
    url = await create(client, case_id, "doc", 6)
    assert (await patch(client, url, 0, b"abc")).status == 204
    for transition in ("complete", "close"):
        response = await client.post(f"/case-instance/{case_id}/{transition}", json={})
        assert response.status == 204, await response.text()
    body = await error_of(await patch(client, url, 3, b"def"), 404)
    assert body["message"] == (
        f"Cannot put case execution variable doc: There does not exist any case execution "
        f"with id: '{case_id}': caseExecution is null"
    )
    assert (await client.head(url, headers=TUS)).status == 404
    await world.assert_clean()
    assert await world.db.fetchval("SELECT count(*) FROM blob") == 0


async def test_a_variable_deleted_meanwhile_is_written_again(world):
    client, case_id = world.client, await world.case()
    await create_then_finish(client, case_id, "doc", b"first")
    url = await create(client, case_id, "doc", 6)
    assert (await patch(client, url, 0, b"sec")).status == 204
    assert (await client.delete(f"/case-instance/{case_id}/variables/doc")).status == 204
    assert (await patch(client, url, 3, b"ond")).status == 204
    assert await value_of(client, case_id, "doc") == (200, b"second", etag(b"second"))
    await world.assert_clean()
    assert await world.db.fetchval("SELECT count(*) FROM blob") == 1


async def test_two_uploads_to_one_variable_each_commit_and_the_later_wins(world):
    client, case_id = world.client, await world.case()
    slow = await create(client, case_id, "doc", 4)
    fast = await create(client, case_id, "doc", 4)
    assert (await patch(client, slow, 0, b"sl")).status == 204
    assert (await patch(client, fast, 0, b"fast")).status == 204
    assert await value_of(client, case_id, "doc") == (200, b"fast", etag(b"fast"))
    assert (await patch(client, slow, 2, b"ow")).status == 204
    assert await value_of(client, case_id, "doc") == (200, b"slow", etag(b"slow"))
    await world.assert_clean()
    assert await world.db.fetchval("SELECT count(*) FROM blob WHERE state = 'live'") == 1


async def test_an_expired_upload_is_410_then_collected_and_404(world):
    client, case_id = world.client, await world.case()
    content = pattern(TEST_PART_SIZE + 100)
    url = await create(client, case_id, "doc", len(content))
    assert (await patch(client, url, 0, content[: TEST_PART_SIZE + 50])).status == 204
    await world.db.execute("UPDATE upload SET expires_at = now() - interval '1 second'")
    assert (await client.head(url, headers=TUS)).status == 410
    await error_of(
        await patch(client, url, TEST_PART_SIZE + 50, content[TEST_PART_SIZE + 50 :]), 410
    )
    result = await world.collect()
    assert result.uploads_expired == 1
    assert (await client.head(url, headers=TUS)).status == 404
    assert await world.open_multipart() == []
    await world.assert_clean()
    assert await world.db.fetchval("SELECT count(*) FROM blob") == 0


async def test_an_open_upload_outlives_the_collector_s_stale_sweeps(world):
    """A pending timeout of 0 collects every crashed upload at once, never a live one."""
    client, case_id = world.client, await world.case()
    content = pattern(2 * TEST_PART_SIZE + 100)
    url = await create(client, case_id, "doc", len(content))
    assert (await patch(client, url, 0, content[: TEST_PART_SIZE + 10])).status == 204
    result = await world.collect()
    assert (result.pending_deleted, result.uploads_aborted, result.uploads_expired) == (0, 0, 0)
    assert len(await world.open_multipart()) == 1
    report = await check.check(
        world.endpoints.dsn,
        world.store,
        prefix=world.endpoints.s3_prefix,
        pending_timeout_seconds=0,
    )
    assert report.consistent
    assert (report.pending, report.pending_stale, report.uploads, report.uploads_stale) == (
        1,
        0,
        1,
        0,
    )
    assert (
        await patch(client, url, TEST_PART_SIZE + 10, content[TEST_PART_SIZE + 10 :])
    ).status == 204
    assert await value_of(client, case_id, "doc") == (200, content, etag(content))
    await world.assert_clean()


async def test_terminating_an_open_upload_leaves_nothing(world):
    client, case_id = world.client, await world.case()
    await create_then_finish(client, case_id, "doc", b"old")
    content = pattern(TEST_PART_SIZE + 100)
    url = await create(client, case_id, "doc", len(content))
    assert (await patch(client, url, 0, content[: TEST_PART_SIZE + 10])).status == 204
    response = await client.delete(url, headers=TUS)
    assert response.status == 204
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert (await client.head(url, headers=TUS)).status == 404
    await error_of(await client.delete(url, headers=TUS), 404)
    assert await world.open_multipart() == []
    assert await value_of(client, case_id, "doc") == (200, b"old", etag(b"old"))
    await world.assert_clean()
    assert await world.db.fetchval("SELECT count(*) FROM blob") == 1


async def test_a_finished_upload_stays_visible_and_its_termination_keeps_the_value(world):
    client, case_id = world.client, await world.case()
    url = await create_then_finish(client, case_id, "doc", b"done")
    head = await client.head(url, headers=TUS)
    assert (head.status, head.headers["Upload-Offset"], head.headers["Upload-Length"]) == (
        200,
        "4",
        "4",
    )
    # A client whose last answer was lost may send its last PATCH again: nothing is added.
    assert (await patch(client, url, 4, b"")).status == 204
    await error_of(await patch(client, url, 4, b"more"), 413)
    assert (await client.delete(url, headers=TUS)).status == 204
    assert (await client.head(url, headers=TUS)).status == 404
    assert await value_of(client, case_id, "doc") == (200, b"done", etag(b"done"))
    await world.assert_clean()


async def test_an_unknown_case_instance_is_404_unless_auto_created(make_client):
    client = await make_client()
    case_id = new_id()
    body = await error_of(
        await client.post(uploads_path(case_id, "doc"), headers={**TUS, "Upload-Length": "1"}), 404
    )
    assert "There does not exist any case execution" in body["message"]
    auto = await make_client(auto_create_case_instances=True)
    url = await create(auto, case_id, "doc", 2)
    assert (await patch(auto, url, 0, b"ok")).status == 204
    assert await value_of(auto, case_id, "doc") == (200, b"ok", etag(b"ok"))


async def test_the_cap_on_open_uploads_answers_503_and_counts_in_metrics(world, make_client):
    client = await make_client(endpoints_override=world.endpoints, max_open_uploads=2)
    case_id = await world.case()
    urls = [await create(client, case_id, f"v{i}", 1) for i in range(2)]
    body = await error_of(
        await client.post(uploads_path(case_id, "v3"), headers={**TUS, "Upload-Length": "1"}), 503
    )
    assert "CASEVARS_MAX_OPEN_UPLOADS" in body["message"]
    metrics = await (await client.get("/metrics")).text()
    assert "casevars_resumable_uploads_open 2.0" in metrics
    assert (await patch(client, urls[0], 0, b"x")).status == 204  # committed: no longer open
    await create(client, case_id, "v3", 1)


async def test_every_upload_route_needs_credentials_when_auth_is_on(make_client, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("s3cr3t-token-for-tus-tests\n")
    client = await make_client(auth_tokens_file=tokens)
    bearer = {"Authorization": "Bearer s3cr3t-token-for-tus-tests"}
    case_id = new_id()
    assert (await client.put(f"/case-instance/{case_id}", headers=bearer)).status == 201
    path = uploads_path(case_id, "doc")
    url = path + "/" + "0" * 32
    for method, target in (
        ("OPTIONS", path),
        ("POST", path),
        ("OPTIONS", url),
        ("HEAD", url),
        ("PATCH", url),
        ("DELETE", url),
    ):
        response = await client.request(method, target, headers={**OCTETS, "Upload-Length": "1"})
        assert response.status == 401, (method, target)
        assert response.headers["Tus-Resumable"] == "1.0.0"
    response = await client.post(path, headers={**TUS, **bearer, "Upload-Length": "2"})
    assert response.status == 201
    location = response.headers["Location"]
    sent = await client.patch(
        location, data=b"ok", headers={**OCTETS, **bearer, "Upload-Offset": "0"}
    )
    assert sent.status == 204


async def test_the_readme_s_curl_example_uploads_a_file(client, case_id, tmp_path):
    readme = (ROOT / "README.md").read_text()
    start = readme.index("url=http://127.0.0.1:8080/case-instance/claim-42/variables/scan/uploads")
    script = readme[start : readme.index("```", start)]
    base = f"http://{client.server.host}:{client.server.port}"
    script = script.replace("http://127.0.0.1:8080", base).replace("claim-42", case_id)
    content = pattern(TEST_PART_SIZE + 1234)
    (tmp_path / "scan.tif").write_bytes(content)
    process = await asyncio.create_subprocess_exec(
        "bash", "-euo", "pipefail", "-c", script, cwd=tmp_path
    )
    assert await asyncio.wait_for(process.wait(), 60) == 0
    body = await (await client.get(f"/case-instance/{case_id}/variables/scan")).json()
    assert body["valueInfo"] == {"filename": "scan.tif", "mimeType": "image/tiff"}
    assert await value_of(client, case_id, "scan") == (200, content, etag(content))


async def test_the_collect_and_check_commands_on_an_expired_upload(world):
    client, case_id = world.client, await world.case()
    url = await create(client, case_id, "doc", 2 * TEST_PART_SIZE)
    assert (await patch(client, url, 0, pattern(TEST_PART_SIZE + 9))).status == 204
    await world.db.execute("UPDATE upload SET expires_at = now() - interval '1 second'")
    env = casevars_env(world.endpoints)
    collected = await run_casevars(env, "collect", "--grace", "0")
    assert collected.returncode == 0, collected.stderr
    assert "removed 1 expired resumable uploads" in collected.stdout
    checked = await run_casevars(env, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.rstrip().endswith("consistent")
    assert await world.open_multipart() == []
    assert await world.db.fetchval("SELECT count(*) FROM upload") == 0


async def test_x_http_method_override_makes_a_post_a_patch_or_a_delete(client, case_id):
    url = await create(client, case_id, "doc", 6)
    override = {"X-HTTP-Method-Override": "PATCH", "Upload-Offset": "0"}
    response = await client.post(url, data=b"abc", headers={**OCTETS, **override})
    assert response.status == 204
    assert response.headers["Upload-Offset"] == "3"
    await error_of(await client.post(url, headers=TUS), 405)
    assert (
        await client.post(url, headers={**TUS, "X-HTTP-Method-Override": "DELETE"})
    ).status == 204
    assert (await client.head(url, headers=TUS)).status == 404
