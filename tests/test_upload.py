"""POST /case-instance/{id}/variables/{name}/data, on moto and SeaweedFS."""

from __future__ import annotations

import asyncio
import hashlib
import io

import aiohttp
import orjson
import pytest

from service.config import MIB
from tests.conftest import TEST_PART_SIZE, new_id, proxied_s3
from tests.forms import (
    BOUNDARY,
    FORM,
    assert_nothing_unknown,
    blob_states,
    body,
    create_case,
    data_url,
    part,
    pattern,
    streamed,
    upload,
    upload_bytes,
    variable_row,
)

ERROR_CANNOT_PROCESS = {
    "type": "RestException",
    "message": "multipart/form-data cannot be processed",
    "code": None,
}


@pytest.fixture
async def case_id(client):
    made = new_id()
    await create_case(client, made)
    return made


async def _get_data(client, case_id, name):
    response = await client.get(data_url(case_id, name))
    assert response.status == 200, await response.text()
    return await response.read()


async def _error(response):
    assert response.headers["Content-Type"].startswith("application/json")
    return await response.json()


# --- round trips -------------------------------------------------------------

SIZES = [0, 1, TEST_PART_SIZE - 1, TEST_PART_SIZE, TEST_PART_SIZE + 1, 3 * TEST_PART_SIZE + 17]


@pytest.mark.parametrize("size", SIZES)
async def test_bytes_round_trip(s3_backend, client, db, s3, endpoints, case_id, size):
    content = pattern(size, seed=size)
    response = await upload_bytes(client, case_id, "blob", content)
    assert response.status == 204, await response.text()
    assert await response.read() == b""
    assert await _get_data(client, case_id, "blob") == content

    row = await variable_row(db, case_id, "blob")
    assert row["type"] == "Bytes"
    assert row["state"] == "live"
    assert row["size"] == size
    assert bytes(row["sha256"]) == hashlib.sha256(content).digest()
    assert row["blob_key"].startswith(endpoints.s3_prefix)
    await assert_nothing_unknown(db, s3, endpoints.s3_bucket, endpoints.s3_prefix)


async def test_replacing_a_value_marks_the_old_blob_garbage(client, db, endpoints, case_id):
    await upload_bytes(client, case_id, "v", b"first")
    first_key = (await variable_row(db, case_id, "v"))["blob_key"]
    await upload_bytes(client, case_id, "v", b"second")
    row = await variable_row(db, case_id, "v")
    assert row["blob_key"] != first_key
    states = await blob_states(db, endpoints.s3_prefix)
    assert states == {first_key: "garbage", row["blob_key"]: "live"}
    garbage_after = await db.fetchval(
        "SELECT delete_after - now() > interval '30 minutes' FROM blob WHERE key = $1", first_key
    )
    assert garbage_after, "a replaced blob waits out the grace period"
    assert await _get_data(client, case_id, "v") == b"second"


# --- the seed page, byte for byte ------------------------------------------------

SEED_OBJECT = (
    b"---OSQH1f8lzs83iXFHphqfIuitaQfNKFY74Y\r\n"
    b'Content-Disposition: form-data; name="data"\r\n'
    b"Content-Type: application/json; charset=US-ASCII\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b'["foo", "bar"]\r\n'
    b"---OSQH1f8lzs83iXFHphqfIuitaQfNKFY74Y\r\n"
    b'Content-Disposition: form-data; name="type"\r\n'
    b"Content-Type: text/plain; charset=US-ASCII\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"java.util.ArrayList<java.lang.Object>\r\n"
    b"---OSQH1f8lzs83iXFHphqfIuitaQfNKFY74Y--\r\n"
)

SEED_BINARY = (
    b"---OSQH1f8lzs83iXFHphqfIuitaQfNKFY74Y\r\n"
    b'Content-Disposition: form-data; name="data"; filename="unspecified"\r\n'
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: binary\r\n"
    b"\r\n"
    b"<<Byte Stream ommitted>>\r\n"
    b"---OSQH1f8lzs83iXFHphqfIuitaQfNKFY74Y--\r\n"
)


async def test_seed_example_1_serialized_object(client, db, endpoints, case_id):
    response = await client.post(
        data_url(case_id, "aVarName"), data=SEED_OBJECT, headers={"Content-Type": FORM}
    )
    assert response.status == 204, await response.text()
    row = await variable_row(db, case_id, "aVarName")
    assert row["type"] == "Object"
    assert orjson.loads(row["value"]) == ["foo", "bar"]
    assert row["value_info"] == {
        "objectTypeName": "java.util.ArrayList<java.lang.Object>",
        "serializationDataFormat": "application/json",
    }
    assert row["blob_key"] is None
    # data came before type, so it was streamed to a blob first: now garbage.
    assert set((await blob_states(db, endpoints.s3_prefix)).values()) <= {"garbage"}


async def test_seed_example_2_binary(client, db, case_id):
    response = await client.post(
        data_url(case_id, "aVarName"), data=SEED_BINARY, headers={"Content-Type": FORM}
    )
    assert response.status == 204, await response.text()
    row = await variable_row(db, case_id, "aVarName")
    assert row["type"] == "Bytes"
    assert row["value_info"] == {}
    assert await _get_data(client, case_id, "aVarName") == b"<<Byte Stream ommitted>>"


# --- parts, order and repetition ---------------------------------------------------


async def test_type_first_object_is_read_without_a_blob(client, db, endpoints, case_id):
    response = await upload(
        client,
        case_id,
        "obj",
        part("type", b"java.util.HashMap<java.lang.String, java.lang.Object>", "text/plain"),
        part("data", b'{"a": 1}', "application/json"),
    )
    assert response.status == 204
    row = await variable_row(db, case_id, "obj")
    assert row["type"] == "Object"
    assert await blob_states(db, endpoints.s3_prefix) == {}


async def test_value_type_after_data(client, db, case_id):
    response = await upload(
        client,
        case_id,
        "f",
        part("data", b"hello", "text/plain; encoding=utf-8", filename="hello.txt"),
        part("valueType", b"File"),
    )
    assert response.status == 204, await response.text()
    row = await variable_row(db, case_id, "f")
    assert row["type"] == "File"
    assert row["value_info"] == {
        "filename": "hello.txt",
        "mimeType": "text/plain",
        "encoding": "utf-8",
    }


async def test_repeated_data_part_last_wins(client, db, endpoints, case_id):
    response = await upload(
        client,
        case_id,
        "v",
        part("data", b"first", "application/octet-stream"),
        part("data", b"second", "application/octet-stream"),
    )
    assert response.status == 204
    assert await _get_data(client, case_id, "v") == b"second"
    states = sorted((await blob_states(db, endpoints.s3_prefix)).values())
    assert states == ["garbage", "live"]


async def test_content_transfer_encoding_is_ignored(client, case_id):
    data = part("data", b"not base64!", "application/octet-stream")
    headers = [*data[0], ("Content-Transfer-Encoding", "base64")]
    response = await upload(client, case_id, "v", (headers, data[1]))
    assert response.status == 204
    assert await _get_data(client, case_id, "v") == b"not base64!"


async def test_other_parts_are_ignored(client, case_id):
    response = await upload(
        client,
        case_id,
        "v",
        part("comment", b"whatever", "text/plain"),
        part("data", b"x", "application/octet-stream"),
    )
    assert response.status == 204


async def test_json_data_without_type_is_bytes(client, db, case_id):
    response = await upload(client, case_id, "v", part("data", b'{"a":1}', "application/json"))
    assert response.status == 204
    assert (await variable_row(db, case_id, "v"))["type"] == "Bytes"


@pytest.mark.parametrize("value_type", ["bytes", "Bytes", "file", "File"])
async def test_value_type_first_letter_is_case_insensitive(client, db, case_id, value_type):
    response = await upload(
        client,
        case_id,
        "v",
        part("valueType", value_type.encode(), "text/plain; charset=UTF-8"),
        part("data", b"x", "application/octet-stream", filename="x.bin"),
    )
    assert response.status == 204, await response.text()
    assert (await variable_row(db, case_id, "v"))["type"] == value_type.capitalize()


# --- File metadata ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "info"),
    [
        (None, {"mimeType": "application/octet-stream"}),
        ("Text/Plain; foo=bar", {"mimeType": "text/plain"}),
        ("text/plain; charset=UTF-8", {"mimeType": "text/plain"}),
        ("text/plain; ENCODING=latin1", {"mimeType": "text/plain", "encoding": "latin1"}),
        ('text/plain; encoding="utf-8"', {"mimeType": "text/plain", "encoding": "utf-8"}),
    ],
)
async def test_file_metadata(client, db, case_id, content_type, info):
    response = await upload(
        client,
        case_id,
        "f",
        part("data", b"abc", content_type, filename="a.txt"),
        part("valueType", b"File", "text/plain"),
    )
    assert response.status == 204, await response.text()
    assert (await variable_row(db, case_id, "f"))["value_info"] == {"filename": "a.txt", **info}


async def test_file_with_empty_filename_is_allowed(client, db, case_id):
    response = await upload(
        client, case_id, "f", part("valueType", b"File"), part("data", b"abc", filename="")
    )
    assert response.status == 204
    assert (await variable_row(db, case_id, "f"))["value_info"]["filename"] == ""


async def test_transient_file_is_not_stored(client, db, endpoints, case_id):
    await upload_bytes(client, case_id, "f", b"before")
    response = await upload(
        client,
        case_id,
        "f",
        part("valueType", b"File"),
        part("data", b"abc", "text/plain; transient=true", filename="a.txt"),
    )
    assert response.status == 204
    assert await _get_data(client, case_id, "f") == b"before"
    await asyncio.sleep(0)
    assert sorted((await blob_states(db, endpoints.s3_prefix)).values()) == ["garbage", "live"]


# --- the error cases of 5.5 ---------------------------------------------------------


async def _assert_untouched(client, db, case_id, name, content=b"previous"):
    row = await variable_row(db, case_id, name)
    assert row["type"] == "Bytes"
    assert await _get_data(client, case_id, name) == content


@pytest.fixture
async def previous(client, case_id):
    """A variable `v` holding b"previous" that failed uploads must not change."""
    assert (await upload_bytes(client, case_id, "v", b"previous")).status == 204
    return "v"


async def test_not_multipart_is_415(client, case_id, previous):
    response = await client.post(
        data_url(case_id, "v"), data=b"raw", headers={"Content-Type": "application/octet-stream"}
    )
    assert response.status == 415
    assert (await _error(response))["type"] == "NotSupportedException"


async def test_no_boundary_is_400(client, case_id, previous, db):
    response = await client.post(
        data_url(case_id, "v"),
        data=body(part("data", b"x")),
        headers={"Content-Type": "multipart/form-data"},
    )
    assert response.status == 400
    assert await _error(response) == ERROR_CANNOT_PROCESS
    await _assert_untouched(client, db, case_id, "v")


async def test_body_ending_inside_a_part_is_400_and_stores_nothing(
    client, case_id, previous, db, s3, endpoints
):
    truncated = body(part("data", pattern(7 * MIB), "application/octet-stream"), close=False)
    truncated = truncated[:-1000]
    response = await client.post(
        data_url(case_id, "v"), data=io.BytesIO(truncated), headers={"Content-Type": FORM}
    )
    assert response.status == 400
    assert await _error(response) == ERROR_CANNOT_PROCESS
    await _assert_untouched(client, db, case_id, "v")
    await assert_nothing_unknown(db, s3, endpoints.s3_bucket, endpoints.s3_prefix)


async def test_malformed_part_headers_are_400(client, case_id, previous, db):
    bad = f"--{BOUNDARY}\r\nthis is no header\r\n\r\nx\r\n--{BOUNDARY}--\r\n".encode()
    response = await client.post(data_url(case_id, "v"), data=bad, headers={"Content-Type": FORM})
    assert response.status == 400
    assert await _error(response) == ERROR_CANNOT_PROCESS
    await _assert_untouched(client, db, case_id, "v")


async def test_body_without_any_delimiter_is_400(client, case_id, previous, db):
    response = await client.post(
        data_url(case_id, "v"), data=b"no parts here", headers={"Content-Type": FORM}
    )
    assert response.status == 400
    await _assert_untouched(client, db, case_id, "v")


MISSING_DATA = {
    "type": "InvalidRequestException",
    "message": "Form part with name 'data' is missing",
    "code": None,
}


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ([part("type", b"java.lang.Object")], MISSING_DATA),
        ([part("valueType", b"Bytes")], MISSING_DATA),
        ([], MISSING_DATA),
        (
            [part("type", b"java.util.List"), part("data", b"[]", "unsupported")],
            {
                "type": "InvalidRequestException",
                "message": "Unrecognized content type for serialized java type: unsupported",
                "code": None,
            },
        ),
        (
            [part("type", b"java.util.List"), part("data", b"[]")],
            {
                "type": "InvalidRequestException",
                "message": "Unrecognized content type for serialized java type: null",
                "code": None,
            },
        ),
        (
            [part("valueType", b"Bytes", "application/json"), part("data", b"x")],
            {
                "type": "InvalidRequestException",
                "message": "Form part with name 'valueType' must have a text/plain value",
                "code": None,
            },
        ),
        (
            [part("valueType", b"File"), part("data", b"x", "encoding=utf-8", filename="a")],
            {"type": "RestException", "message": "Invalid mime type given", "code": None},
        ),
        (
            [part("valueType", b"Foo"), part("data", b"x")],
            {"type": "RestException", "message": "Unsupported value type 'Foo'", "code": None},
        ),
        (
            [part("valueType", b"String"), part("data", b"x")],
            {"type": "RestException", "message": "Unsupported value type 'String'", "code": None},
        ),
        (
            [part("valueType", b"BYTES"), part("data", b"x")],
            {"type": "RestException", "message": "Unsupported value type 'BYTES'", "code": None},
        ),
        (
            [part("valueType", b"File"), part("data", b"x", "text/plain")],
            {
                "type": "IllegalArgumentException",
                "message": "Cannot create file without filename! Please set a name into "
                "ValueInfo with key filename",
                "code": None,
            },
        ),
    ],
)
async def test_form_errors(client, db, s3, endpoints, case_id, previous, parts, expected):
    response = await upload(client, case_id, "v", *parts)
    assert response.status == 400
    assert await _error(response) == expected
    await _assert_untouched(client, db, case_id, "v")
    await assert_nothing_unknown(db, s3, endpoints.s3_bucket, endpoints.s3_prefix)


@pytest.mark.parametrize(
    ("type_text", "data"),
    [
        (b"java.util.List", b"[1, 2"),
        (b"java.util.List", b"\xff\xfe"),
        (b"not a type!", b"[]"),
        (b"java.util.List<", b"[]"),
        (b"", b"[]"),
    ],
)
async def test_object_that_cannot_be_deserialized(client, db, case_id, previous, type_text, data):
    response = await upload(
        client,
        case_id,
        "v",
        part("data", data, "application/json"),
        part("type", type_text, "text/plain"),
    )
    assert response.status == 400
    error = await _error(response)
    assert error["type"] == "InvalidRequestException"
    assert error["message"].startswith("Could not deserialize JSON object: ")
    await _assert_untouched(client, db, case_id, "v")


async def test_object_json_null_stores_nothing(client, db, case_id, previous):
    response = await upload(
        client,
        case_id,
        "v",
        part("type", b"java.lang.Object"),
        part("data", b"null", "application/json"),
    )
    assert response.status == 204
    await _assert_untouched(client, db, case_id, "v")


async def test_object_larger_than_the_json_limit_is_413(make_client, db):
    client = await make_client(max_json_bytes=1000)
    case_id = new_id()
    await create_case(client, case_id)
    big = b"[" + b"1," * 1000 + b"1]"
    for parts in (
        [part("type", b"java.util.List"), part("data", big, "application/json")],
        [part("data", big, "application/json"), part("type", b"java.util.List")],
    ):
        response = await upload(client, case_id, "v", *parts)
        assert response.status == 413
        assert await variable_row(db, case_id, "v") is None


# --- unknown case instances ---------------------------------------------------------


async def test_unknown_case_instance_binary(client, db):
    case_id = new_id()
    response = await upload_bytes(client, case_id, "v", b"x")
    assert response.status == 404
    assert await _error(response) == {
        "type": "RestException",
        "message": f"Cannot put case execution variable v: There does not exist any case "
        f"execution with id: '{case_id}': caseExecution is null",
        "code": 0,
    }
    assert await db.fetchval("SELECT count(*) FROM blob WHERE key LIKE '%' AND false") == 0


async def test_unknown_case_instance_object(client):
    case_id = new_id()
    response = await upload(
        client,
        case_id,
        "v",
        part("type", b"java.util.List"),
        part("data", b"[]", "application/json"),
    )
    assert response.status == 404
    assert await _error(response) == {
        "type": "NotFoundException",
        "message": f"There does not exist any case execution with id: '{case_id}': "
        "caseExecution is null",
        "code": 0,
    }


async def test_validation_comes_before_the_case_lookup(client):
    response = await upload(client, new_id(), "v", part("valueType", b"Foo"), part("data", b"x"))
    assert response.status == 400


async def test_auto_create_makes_the_case_instance(make_client, db):
    client = await make_client(auto_create_case_instances=True)
    case_id = new_id()
    assert (await upload_bytes(client, case_id, "v", b"x")).status == 204
    assert (await client.get(f"/case-instance/{case_id}")).status == 200
    assert await _get_data(client, case_id, "v") == b"x"


# --- limits and failures -------------------------------------------------------------


async def test_too_large_is_413_mid_stream(make_client, db, s3, endpoints):
    client = await make_client(max_upload_bytes=6 * MIB)
    case_id = new_id()
    await create_case(client, case_id)
    assert (await upload_bytes(client, case_id, "v", b"previous")).status == 204
    sent = 0

    def chunks():
        nonlocal sent
        yield body(part("data", b"", "application/octet-stream"), close=False)[:-2]
        for _ in range(64):  # 64 MiB offered; the limit is 6 MiB
            sent += MIB
            yield pattern(MIB)

    response = await client.post(
        data_url(case_id, "v"), data=streamed(chunks()), headers={"Content-Type": FORM}
    )
    assert response.status == 413
    assert (await _error(response))["type"] == "InvalidRequestException"
    assert response.headers["Connection"] == "close", "the rest of the body is not read"
    assert sent < 64 * MIB, "the refusal came before the whole body was read"
    await _assert_untouched(client, db, case_id, "v")
    await assert_nothing_unknown(db, s3, endpoints.s3_bucket, endpoints.s3_prefix)


async def _wait_for(predicate, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_client_disconnect_mid_upload(
    s3_backend, client, db, s3, endpoints, case_id, previous
):
    head = (
        f"POST {data_url(case_id, 'v')} HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: {FORM}\r\nContent-Length: {100 * MIB}\r\n\r\n"
    ).encode()
    _, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(head + body(part("data", b"", "application/octet-stream"), close=False)[:-2])
    for _ in range(12):  # two full parts and some
        writer.write(pattern(MIB))
        await writer.drain()
    writer.transport.abort()

    async def settled():
        states = await blob_states(db, endpoints.s3_prefix)
        return "pending" not in states.values() and len(states) == 2

    await _wait_for(settled)
    await _assert_untouched(client, db, case_id, "v")
    await _wait_for(lambda: _no_uploads(s3, endpoints))
    await assert_nothing_unknown(db, s3, endpoints.s3_bucket, endpoints.s3_prefix)


async def _no_uploads(s3, endpoints):
    response = await s3.list_multipart_uploads(
        Bucket=endpoints.s3_bucket, Prefix=endpoints.s3_prefix
    )
    return not response.get("Uploads")


async def test_s3_cut_mid_upload_is_503_and_leaves_no_upload(make_client, db, s3, endpoints):
    async with proxied_s3(endpoints) as (proxy, proxied):
        client = await make_client(proxied, s3_timeout_seconds=2)
        case_id = new_id()
        await create_case(client, case_id)
        assert (await upload_bytes(client, case_id, "v", b"previous")).status == 204

        async def chunks():
            yield body(part("data", b"", "application/octet-stream"), close=False)[:-2]
            for index in range(40):
                if index == 12:
                    await proxy.cut()
                yield pattern(MIB)
            yield b"\r\n" + f"--{BOUNDARY}--\r\n".encode()

        started = asyncio.get_running_loop().time()
        response = await client.post(
            data_url(case_id, "v"), data=chunks(), headers={"Content-Type": FORM}
        )
        elapsed = asyncio.get_running_loop().time() - started
        assert response.status == 503
        error = await _error(response)
        assert error["type"] == "RestException"
        assert "S3" in error["message"]
        assert elapsed < 30
        proxy.restore()
        await _assert_untouched(client, db, case_id, "v")
        # The abort that failed while S3 was cut is retried once it is back.
        await _wait_for(lambda: _no_uploads(s3, endpoints), timeout=30)
        await assert_nothing_unknown(db, s3, endpoints.s3_bucket, endpoints.s3_prefix)


async def test_racing_uploads_last_commit_wins(s3_backend, client, db, s3, endpoints, case_id):
    contents = [pattern(TEST_PART_SIZE + 1000 * index, seed=index) for index in range(4)]
    responses = await asyncio.gather(
        *(upload_bytes(client, case_id, "race", content) for content in contents)
    )
    assert [r.status for r in responses] == [204] * 4
    final = await _get_data(client, case_id, "race")
    assert final in contents
    states = await blob_states(db, endpoints.s3_prefix)
    assert sorted(states.values()) == ["garbage"] * 3 + ["live"]
    row = await variable_row(db, case_id, "race")
    assert states[row["blob_key"]] == "live"
    assert bytes(row["sha256"]) == hashlib.sha256(final).digest()
    await assert_nothing_unknown(db, s3, endpoints.s3_bucket, endpoints.s3_prefix)


async def test_case_deleted_while_uploading_is_404_and_blob_garbage(client, db, endpoints):
    case_id = new_id()
    await create_case(client, case_id)
    gate = asyncio.Event()

    async def chunks():
        yield body(part("data", b"", "application/octet-stream"), close=False)[:-2]
        yield pattern(MIB)
        await gate.wait()
        yield b"end"
        yield b"\r\n" + f"--{BOUNDARY}--\r\n".encode()

    uploading = asyncio.create_task(
        client.post(data_url(case_id, "v"), data=chunks(), headers={"Content-Type": FORM})
    )
    await _wait_for(lambda: _has_pending(db, endpoints))
    assert (await client.delete(f"/case-instance/{case_id}")).status == 204
    gate.set()
    response = await uploading
    assert response.status == 404
    states = await blob_states(db, endpoints.s3_prefix)
    assert list(states.values()) == ["garbage"]


async def _has_pending(db, endpoints):
    return "pending" in (await blob_states(db, endpoints.s3_prefix)).values()


async def test_parts_beyond_the_cap_are_413(client, case_id):
    parts = [part(f"extra{index}", b"x") for index in range(70)]
    response = await upload(client, case_id, "v", *parts, part("data", b"x"))
    assert response.status == 413


async def test_large_non_data_part_is_413(client, case_id):
    response = await upload(
        client, case_id, "v", part("comment", b"x" * 100_000), part("data", b"x")
    )
    assert response.status == 413


async def test_data_part_with_a_multipart_content_type_is_content(client, case_id):
    inner = b"--inner\r\nContent-Type: text/plain\r\n\r\nhi\r\n--inner--\r\n"
    response = await upload(
        client, case_id, "v", part("data", inner, "multipart/mixed; boundary=inner")
    )
    assert response.status == 204, await response.text()
    assert await _get_data(client, case_id, "v") == inner


async def test_upload_through_a_real_socket_client(client, case_id):
    """aiohttp's own FormData, as a client library would build it."""
    form = aiohttp.FormData()
    form.add_field("data", b"from FormData", content_type="application/octet-stream", filename="x")
    form.add_field("valueType", "File")
    response = await client.post(data_url(case_id, "v"), data=form)
    assert response.status == 204, await response.text()
    fetched = await client.get(data_url(case_id, "v"))
    assert await fetched.read() == b"from FormData"
    assert (
        fetched.headers["Content-Disposition"] == "attachment; filename=\"x\"; filename*=UTF-8''x"
    )


async def test_upload_whose_pending_row_was_collected_is_503_and_leaves_no_object(
    client, db, s3, endpoints, case_id, previous
):
    gate = asyncio.Event()

    async def chunks():
        yield body(part("data", b"", "application/octet-stream"), close=False)[:-2]
        yield pattern(MIB)
        await gate.wait()
        yield b"\r\n" + f"--{BOUNDARY}--\r\n".encode()

    uploading = asyncio.create_task(
        client.post(data_url(case_id, "v"), data=chunks(), headers={"Content-Type": FORM})
    )
    await _wait_for(lambda: _has_pending(db, endpoints))
    # What the collector does to a pending blob older than the pending timeout.
    # Only this test's: the database is shared with tests whose open uploads hold theirs.
    await db.execute(
        "DELETE FROM blob WHERE state = 'pending' AND starts_with(key, $1)", endpoints.s3_prefix
    )
    gate.set()
    response = await uploading
    assert response.status == 503
    assert "CASEVARS_PENDING_TIMEOUT_SECONDS" in (await _error(response))["message"]
    await _assert_untouched(client, db, case_id, "v")
    await assert_nothing_unknown(db, s3, endpoints.s3_bucket, endpoints.s3_prefix)


# --- hostile part headers: refused before Postgres, never a 500 --------------------------


def _raw_form(*parts: tuple[bytes, bytes]) -> bytes:
    """A form from raw part headers (any bytes, not only UTF-8) and contents."""
    out = b""
    for headers, content in parts:
        out += f"--{BOUNDARY}\r\n".encode() + headers + b"\r\n\r\n" + content + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


VALUE_TYPE_FILE = (b'Content-Disposition: form-data; name="valueType"', b"File")


def _data(disposition_tail: bytes, content_type: bytes = b"text/plain") -> tuple[bytes, bytes]:
    return (
        b'Content-Disposition: form-data; name="data"'
        + disposition_tail
        + b"\r\nContent-Type: "
        + content_type,
        b"content",
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_data(b"; filename*=UTF-8''a%00b"), "Invalid file name given"),
        (_data(b"; filename*=UTF-8''a%0D%0Ab"), "Invalid file name given"),
        (_data(b"; filename*=UTF-8''a%C2%85b"), "Invalid file name given"),
        (_data(b'; filename="a\x00b"'), "multipart/form-data cannot be processed"),
        (_data(b'; filename="a\x01b"'), "multipart/form-data cannot be processed"),
        (_data(b'; filename="a\xffb"'), "Invalid filename given: not valid UTF-8"),
        (_data(b"; filename*=UTF-8''a%FFb"), "Cannot create file without filename"),
        (_data(b'; filename="' + b"n" * 256 + b'"'), "longer than 255 characters"),
        (_data(b'; filename="a"', b'text/plain; encoding="utf 8"'), "Invalid encoding given"),
        (_data(b'; filename="a"', b'text/plain; encoding="\xff"'), "Invalid encoding given"),
        (_data(b'; filename="a"', b"text/" + b"p" * 300), "longer than 255 characters"),
        (_data(b'; filename="a"', b'text/plain; charset="a\x01b"'), "cannot be processed"),
        (_data(b'; filename="a"', b"text/pl\xffain"), "Invalid mime type given"),
    ],
    ids=[
        "pct-nul",
        "pct-crlf",
        "pct-c1-control",
        "nul",
        "control",
        "not-utf8",
        "pct-not-utf8",
        "long-name",
        "encoding-not-token",
        "encoding-not-utf8",
        "long-mime-type",
        "control-in-parameter",
        "mime-type-not-utf8",
    ],
)
async def test_file_metadata_a_header_cannot_carry_is_400(
    client, db, s3, endpoints, case_id, previous, data, message
):
    form = _raw_form(VALUE_TYPE_FILE, data)
    response = await client.post(data_url(case_id, "v"), data=form, headers={"Content-Type": FORM})
    assert response.status == 400, await response.text()
    error = await _error(response)
    assert message in error["message"]
    await _assert_untouched(client, db, case_id, "v")
    await assert_nothing_unknown(db, s3, endpoints.s3_bucket, endpoints.s3_prefix)


async def test_a_file_name_of_255_characters_is_stored(client, db, case_id):
    name = "é" * 251 + ".pdf"
    form = _raw_form(VALUE_TYPE_FILE, _data(b'; filename="' + name.encode() + b'"'))
    response = await client.post(data_url(case_id, "f"), data=form, headers={"Content-Type": FORM})
    assert response.status == 204, await response.text()
    assert (await variable_row(db, case_id, "f"))["value_info"]["filename"] == name


@pytest.mark.parametrize(
    "headers",
    [
        b'Content-Disposition: form-data; name="data"; broken',
        b"Content-Disposition: ;;",
        b'Content-Disposition: form-data; name="data"; name="data"',
    ],
)
async def test_a_malformed_content_disposition_is_a_part_without_a_name(
    client, db, case_id, previous, headers
):
    """aiohttp reads such a part as one without a name (and warns, which the service
    ignores: the test runner makes warnings errors)."""
    form = _raw_form((headers, b"x"))
    response = await client.post(data_url(case_id, "v"), data=form, headers={"Content-Type": FORM})
    assert response.status == 400
    assert (await _error(response))["message"] in {
        "Form part with name 'data' is missing",
        "multipart/form-data cannot be processed",
    }
    await _assert_untouched(client, db, case_id, "v")


async def test_undecodable_bytes_in_a_refusal_are_shown_not_a_500(client, case_id, previous):
    too_large = _raw_form((b'Content-Disposition: form-data; name="n\xff"', b"x" * 70_000))
    response = await client.post(
        data_url(case_id, "v"), data=too_large, headers={"Content-Type": FORM}
    )
    assert response.status == 413
    assert "Form part 'n?' is larger than" in (await _error(response))["message"]
    obj = _raw_form(
        (b'Content-Disposition: form-data; name="type"', b"java.lang.String"),
        (b'Content-Disposition: form-data; name="data"\r\nContent-Type: text/\xff', b'"x"'),
    )
    response = await client.post(data_url(case_id, "v"), data=obj, headers={"Content-Type": FORM})
    assert response.status == 400
    assert (await _error(response))["message"] == (
        "Unrecognized content type for serialized java type: text/?"
    )


async def test_a_body_with_a_bad_content_encoding_is_400(client, case_id, previous, db):
    form = body(part("data", b"x", "application/octet-stream"))
    response = await client.post(
        data_url(case_id, "v"),
        data=form,
        headers={"Content-Type": FORM, "Content-Encoding": "gzip"},
    )
    assert response.status == 400
    assert (await _error(response))["message"].startswith("The request body is malformed")
    await _assert_untouched(client, db, case_id, "v")


async def test_an_expectation_other_than_100_continue_is_417(client, case_id):
    async with client.put(
        f"/case-instance/{case_id}/variables/x",
        data=b"{}",
        headers={"Content-Type": "application/json", "Expect": "something-else"},
    ) as response:
        assert response.status == 417
        assert await _error(response) == {
            "type": "RestException",
            "message": "HTTP 417 Expectation Failed: only 100-continue is supported",
            "code": None,
        }
        assert response.headers["X-Request-Id"]
