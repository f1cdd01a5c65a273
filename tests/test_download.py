"""GET (and HEAD) /case-instance/{id}/variables/{name}/data, with ETag, ranges and HEAD."""

from __future__ import annotations

import hashlib

import pytest

from tests.conftest import new_id, proxied_s3
from tests.forms import create_case, data_url, part, pattern, upload, upload_bytes

CONTENT = pattern(100_000, seed=7)
ETAG = f'"{hashlib.sha256(CONTENT).hexdigest()}"'


@pytest.fixture
async def case_id(client):
    made = new_id()
    await create_case(client, made)
    assert (await upload_bytes(client, made, "bytes", CONTENT)).status == 204
    return made


async def test_bytes_headers(client, case_id):
    response = await client.get(data_url(case_id, "bytes"))
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert "Content-Disposition" not in response.headers
    assert response.headers["Content-Length"] == str(len(CONTENT))
    assert response.headers["ETag"] == ETAG
    assert response.headers["Accept-Ranges"] == "bytes"
    assert await response.read() == CONTENT


@pytest.mark.parametrize(
    ("filename", "content_type", "expected_type", "disposition"),
    [
        (
            "my report.txt",
            "text/plain; encoding=UTF-8",
            "text/plain; charset=UTF-8",
            "attachment; filename=\"my report.txt\"; filename*=UTF-8''my%20report.txt",
        ),
        (
            "naïve café.pdf",
            "application/pdf",
            "application/pdf",
            "attachment; filename=\"naïve café.pdf\"; filename*=UTF-8''na%C3%AFve%20caf%C3%A9.pdf",
        ),
        (
            "a~b*c_d-e.f+g",
            None,
            "application/octet-stream",
            "attachment; filename=\"a~b*c_d-e.f+g\"; filename*=UTF-8''a%7Eb*c_d-e.f%2Bg",
        ),
    ],
)
async def test_file_headers(client, case_id, filename, content_type, expected_type, disposition):
    response = await upload(
        client,
        case_id,
        "file",
        part("valueType", b"File"),
        part("data", b"file content", content_type, filename=filename),
    )
    assert response.status == 204, await response.text()
    response = await client.get(data_url(case_id, "file"))
    assert response.status == 200
    assert response.headers["Content-Type"] == expected_type
    assert response.headers["Content-Disposition"] == disposition
    assert await response.read() == b"file content"


async def test_empty_value(client, case_id):
    await upload_bytes(client, case_id, "empty", b"")
    response = await client.get(data_url(case_id, "empty"))
    assert response.status == 200
    assert response.headers["Content-Length"] == "0"
    assert await response.read() == b""


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=99990-", 99990, 99999),
        ("bytes=-5", 99995, 99999),
        ("bytes=50000-200000", 50000, 99999),
        ("bytes=-200000", 0, 99999),
    ],
)
async def test_single_range(client, case_id, header, first, last):
    response = await client.get(data_url(case_id, "bytes"), headers={"Range": header})
    assert response.status == 206
    assert response.headers["Content-Range"] == f"bytes {first}-{last}/{len(CONTENT)}"
    assert response.headers["Content-Length"] == str(last - first + 1)
    assert await response.read() == CONTENT[first : last + 1]


@pytest.mark.parametrize(
    "header", ["bytes=100000-", "bytes=200000-300000", "bytes=-0", "bytes=9-3"]
)
async def test_unsatisfiable_range_is_416(client, case_id, header):
    response = await client.get(data_url(case_id, "bytes"), headers={"Range": header})
    assert response.status == 416
    assert response.headers["Content-Range"] == f"bytes */{len(CONTENT)}"
    assert (await response.json())["type"] == "InvalidRequestException"


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("BYTES=0-9", 0, 9),
        ("Bytes=-5", 99995, 99999),
        ("bytes=0000000000000000000000000000000000000010-19", 10, 19),
        ("bytes=99990-" + "9" * 5000, 99990, 99999),
        ("bytes=-" + "9" * 5000, 0, 99999),
    ],
)
async def test_range_unit_in_any_case_and_numbers_of_any_length(
    client, case_id, header, first, last
):
    response = await client.get(data_url(case_id, "bytes"), headers={"Range": header})
    assert response.status == 206
    assert response.headers["Content-Range"] == f"bytes {first}-{last}/{len(CONTENT)}"
    assert await response.read() == CONTENT[first : last + 1]


async def test_a_range_beginning_past_any_size_is_416(client, case_id):
    header = "bytes=" + "9" * 5000 + "-"
    response = await client.get(data_url(case_id, "bytes"), headers={"Range": header})
    assert response.status == 416


@pytest.mark.parametrize(
    "header",
    [
        "bytes=0-1,5-6",
        "items=0-1",
        "bytes=abc",
        "bytes=\u0661-\u0662",  # Arabic-Indic digits: \d, not RFC 9110's DIGIT
        "bytes=\uff10-\uff15",  # fullwidth digits
        "bytes\u00a0=0-1",  # a no-break space is no whitespace here
    ],
)
async def test_other_ranges_get_the_whole_value(client, case_id, header):
    response = await client.get(data_url(case_id, "bytes"), headers={"Range": header})
    assert response.status == 200
    assert await response.read() == CONTENT


async def test_if_range_with_a_stale_etag_gets_the_whole_value(client, case_id):
    response = await client.get(
        data_url(case_id, "bytes"), headers={"Range": "bytes=0-9", "If-Range": '"stale"'}
    )
    assert response.status == 200
    current = await client.get(
        data_url(case_id, "bytes"), headers={"Range": "bytes=0-9", "If-Range": ETAG}
    )
    assert current.status == 206


@pytest.mark.parametrize("header", [ETAG, f"W/{ETAG}", f'"other", {ETAG}', "*"])
async def test_if_none_match_is_304(client, case_id, header):
    response = await client.get(data_url(case_id, "bytes"), headers={"If-None-Match": header})
    assert response.status == 304
    assert response.headers["ETag"] == ETAG
    assert await response.read() == b""


async def test_if_none_match_other_etag_is_200(client, case_id):
    response = await client.get(data_url(case_id, "bytes"), headers={"If-None-Match": '"nope"'})
    assert response.status == 200


async def test_head_sends_headers_only(client, case_id):
    response = await client.head(data_url(case_id, "bytes"))
    assert response.status == 200
    assert response.headers["Content-Length"] == str(len(CONTENT))
    assert response.headers["ETag"] == ETAG
    assert await response.read() == b""


async def test_non_binary_variable_is_400(client, case_id):
    await upload(
        client,
        case_id,
        "obj",
        part("type", b"java.util.List"),
        part("data", b"[1]", "application/json"),
    )
    response = await client.get(data_url(case_id, "obj"))
    assert response.status == 400
    assert await response.json() == {
        "type": "InvalidRequestException",
        "message": f"Value of variable with id {case_id} is not a binary value.",
        "code": None,
    }


async def test_missing_variable_is_404(client, case_id):
    response = await client.get(data_url(case_id, "nope"))
    assert response.status == 404
    assert await response.json() == {
        "type": "InvalidRequestException",
        "message": "case execution variable with name nope does not exist",
        "code": None,
    }


async def test_unknown_case_instance_is_404(client):
    response = await client.get(data_url("ghost", "v"))
    assert response.status == 404
    assert await response.json() == {
        "type": "RestException",
        "message": "Cannot get case execution variable v: case execution ghost doesn't exist: "
        "caseExecution is null",
        "code": 0,
    }


async def test_s3_unreachable_is_503(make_client, endpoints):
    async with proxied_s3(endpoints) as (proxy, proxied):
        client = await make_client(proxied, s3_timeout_seconds=1)
        case_id = new_id()
        await create_case(client, case_id)
        assert (await upload_bytes(client, case_id, "v", b"x")).status == 204
        await proxy.cut()
        response = await client.get(data_url(case_id, "v"))
        assert response.status == 503
        assert (await response.json())["type"] == "RestException"


async def test_content_lost_from_s3_is_answered_as_such(client, db, s3, endpoints, case_id):
    """An object deleted behind casevars's back: a clear 500, on the download and on a
    read that inlines the content, not an unhandled error."""
    small = new_id("small")
    await create_case(client, small)
    assert (await upload_bytes(client, small, "tiny", b"abc")).status == 204
    for case, name in ((case_id, "bytes"), (small, "tiny")):
        key = await db.fetchval(
            "SELECT blob_key FROM variable WHERE case_instance_id = $1 AND name = $2", case, name
        )
        await s3.delete_object(Bucket=endpoints.s3_bucket, Key=key)
    for response in (
        await client.get(data_url(case_id, "bytes")),
        await client.get(f"/case-instance/{small}/variables"),
        await client.get(f"/case-instance/{small}/variables/tiny"),
    ):
        assert response.status == 500
        body = await response.json()
        assert body["type"] == "RestException"
        assert "the stored content of this value is lost" in body["message"]
        assert "casevars check" in body["message"]


# --- stored values a header cannot carry (written before casevars checked them) ---------

OCTETS = "application/octet-stream"
# Stored valueInfo -> the Content-Type a download sends.
UNSENDABLE = {
    "header injection": (
        {
            "filename": "a\r\nX-Evil: 3",
            "mimeType": "text/\r\nX-Evil: 1",
            "encoding": "\r\nX-Evil: 2",
        },
        OCTETS,
    ),
    "control characters": (
        {"filename": "a\x01b\x7f\x85.txt", "mimeType": "text/\x01", "encoding": "\x1b"},
        OCTETS,
    ),
    "a quote that ends the quoted name": (
        {"filename": "x\"; filename*=UTF-8''evil.html; a=\"", "mimeType": "text/plain"},
        "text/plain",
    ),
    "a backslash": ({"filename": 'a\\" b.txt', "mimeType": "text/plain"}, "text/plain"),
    "an 8,150-character name": (
        {"filename": "n" * 8146 + ".pdf", "mimeType": "application/pdf", "encoding": "x y"},
        "application/pdf",
    ),
    "parameters in the mime type": ({"filename": "a", "mimeType": "text/plain; a=b"}, OCTETS),
    "not text": ({"filename": 7, "mimeType": ["text/plain"], "encoding": {"a": 1}}, OCTETS),
}


@pytest.mark.parametrize(("info", "content_type"), UNSENDABLE.values(), ids=UNSENDABLE.keys())
@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_stored_metadata_no_header_can_carry_degrades_to_a_safe_answer(
    client, db, case_id, info, content_type, method
):
    content = b"file content"
    response = await upload(
        client,
        case_id,
        "f",
        part("valueType", b"File"),
        part("data", content, "text/plain", filename="ok.txt"),
    )
    assert response.status == 204
    await db.execute(
        "UPDATE variable SET value_info = $1 WHERE case_instance_id = $2 AND name = 'f'",
        info,
        case_id,
    )
    response = await client.request(method, data_url(case_id, "f"))
    assert response.status == 200
    assert await response.read() == (content if method == "GET" else b"")
    assert response.headers["Content-Length"] == str(len(content))
    assert response.headers["Content-Type"] == content_type
    assert "X-Evil" not in response.headers
    assert "Set-Cookie" not in response.headers
    disposition = response.headers["Content-Disposition"]
    assert disposition.isprintable()
    assert len(disposition) < 4096
    quoted, _, encoded = disposition.removeprefix('attachment; filename="').partition('"; ')
    assert '"' not in quoted
    assert "\\" not in quoted
    assert encoded.startswith("filename*=UTF-8''")
    assert ";" not in encoded
    if isinstance(info["filename"], str) and len(info["filename"]) > 255:
        assert quoted == "n" * 251 + ".pdf"
    listed = await client.get(f"/case-instance/{case_id}/variables")
    assert listed.status == 200


async def test_stored_names_with_quotes_keep_them_in_the_encoded_form(client, db, case_id):
    response = await upload(
        client,
        case_id,
        "f",
        part("valueType", b"File"),
        part("data", b"x", "text/plain", filename="ok.txt"),
    )
    assert response.status == 204
    info = {"filename": 'r\u00e9sum\u00e9 "final".pdf', "mimeType": "application/pdf"}
    await db.execute(
        "UPDATE variable SET value_info = $1 WHERE case_instance_id = $2 AND name = 'f'",
        info,
        case_id,
    )
    response = await client.get(data_url(case_id, "f"))
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="r\u00e9sum\u00e9 _final_.pdf"; '
        "filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.pdf"
    )
