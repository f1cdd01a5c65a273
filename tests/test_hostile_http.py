"""Property-based tests of the HTTP edge with hostile input, against a real `casevars
serve` process (on the test Postgres and moto's S3) over raw sockets: multipart headers
and parameters, Range and its conditions, and raw bodies for the multipart and JSON
readers. Whatever is sent: no 5xx, no cut response, no hang (every exchange has a
client timeout), refusals in Camunda's error format, and what was stored reads back.

Hypothesis drives blocking sockets from plain (synchronous) tests; the service runs in
its own process with its own loop, as in production. Budgets are fixed
(max_examples, derandomize) so the file runs in well under a minute.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.config import Endpoints
from tests.conftest import MOTO_KEYS, TEST_BUCKET, MotoServer, new_id
from tests.forms import pattern
from tests.serving import Answer, Serve, exchange

pytestmark = pytest.mark.timeout(240)

BOUNDARY = "hostile-boundary-7f3a"
FORM = f"multipart/form-data; boundary={BOUNDARY}"
BUDGET = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Service:
    def __init__(self, serve: Serve) -> None:
        self.serve = serve
        self.case_id = new_id("hostile")

    def request(
        self, method: str, path: str, headers: dict[str, bytes] | None = None, body: bytes = b""
    ) -> Answer:
        """One request on its own connection; its answer read whole."""
        head = f"{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n".encode()
        for name, value in (headers or {}).items():
            head += name.encode() + b": " + value + b"\r\n"
        if body or method in {"POST", "PUT"}:
            head += b"Content-Length: %d\r\n" % len(body)
        answer = exchange(self.serve.port, head + b"\r\n" + body, head=method == "HEAD")
        assert answer.status < 500, (answer.status, answer.body[:500])
        if answer.status >= 400 and method != "HEAD":
            assert_camunda_error(answer)
        return answer

    def assert_no_errors_logged(self) -> None:
        for line in self.serve.log.read_text().splitlines():
            entry = json.loads(line)  # every line is JSON
            assert entry["level"] not in {"error", "critical"}, entry


def assert_camunda_error(answer: Answer) -> None:
    assert answer.headers["content-type"].startswith("application/json"), answer.headers
    error = json.loads(answer.body)
    assert set(error) == {"type", "message", "code"}, error
    assert isinstance(error["type"], str)
    assert isinstance(error["message"], str)


@pytest.fixture(scope="module")
def service(
    database_dsn: str, moto_server: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    endpoints = Endpoints(
        database_dsn,
        moto_server.url,
        TEST_BUCKET,
        f"test-{uuid.uuid4().hex[:12]}/",
        "us-east-1",
        **MOTO_KEYS,
    )
    serve = Serve(
        endpoints,
        tmp_path_factory.mktemp("hostile"),
        CASEVARS_CLIENT_READ_TIMEOUT_SECONDS="2",
        CASEVARS_HEADER_TIMEOUT_SECONDS="2",
        CASEVARS_MAX_JSON_BYTES="64KiB",
    )
    try:
        serve.wait_ready()
        made = Service(serve)
        assert made.request("PUT", f"/case-instance/{made.case_id}").status == 201
        yield made
    finally:
        serve.stop()


# --- (a) multipart headers and parameters -----------------------------------------------

# Header bytes: anything but the line end (which would end the header).
header_bytes = st.binary(max_size=120).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
charsets = st.sampled_from([b"UTF-8", b"utf-8", b"iso-8859-1", b"", b"no-such-charset", b"x'"])


@st.composite
def filename_parameters(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["quoted", "extended", "token", "both", "continued", "none"]))
    quoted = b'filename="' + draw(header_bytes) + b'"'
    extended = (
        b"filename*="
        + draw(charsets)
        + b"''"
        + quote_from_bytes(draw(st.binary(max_size=300)), safe=b"").encode()
    )
    return {
        "quoted": b"; " + quoted,
        "extended": b"; " + extended,
        "token": b"; filename=" + draw(st.from_regex(rb"\A[A-Za-z0-9._-]{1,40}\Z")),
        "both": b"; " + quoted + b"; " + extended,
        "continued": b'; filename*0="a"; filename*1="' + draw(header_bytes) + b'"',
        "none": b"",
    }[kind]


content_types = st.one_of(
    st.none(),
    st.sampled_from(
        [
            b"application/octet-stream",
            b"text/plain; encoding=UTF-8",
            b'text/plain; encoding="utf 8"',
            b"Text/Plain; charset=utf-8; transient=true",
            b"text/plain; transient=false",
            b"application/json",
            b"multipart/mixed; boundary=inner",
            b"text/" + b"x" * 300,
            b"encoding=utf-8",
            b"a/b; encoding=\xc2\x85",
        ]
    ),
    header_bytes,
    header_bytes.map(lambda b: b"text/plain; encoding=" + b),
)
part_names = st.one_of(
    st.sampled_from([b"data", b"valueType", b"type", b"_charset_", b"DATA"]), header_bytes
)


@st.composite
def data_parts(draw: st.DrawFn) -> tuple[bytes, bytes]:
    disposition = b'form-data; name="data"' + draw(filename_parameters())
    if draw(st.integers(0, 9)) == 0:  # a name, or a disposition, that is wrong in itself
        disposition = b"form-data; name=" + draw(part_names) + draw(header_bytes)
    headers = [b"Content-Disposition: " + disposition]
    content_type = draw(content_types)
    if content_type is not None:
        headers.append(b"Content-Type: " + content_type)
    # Junk lines, a header or not (not empty: an empty line ends the headers).
    headers += draw(st.lists(header_bytes.filter(bool), max_size=2))
    return b"\r\n".join(headers), draw(st.binary(max_size=2000))


value_types = st.one_of(
    st.sampled_from([b"File", b"Bytes", b"file", b"bytes", b"FILE", b"String"]), header_bytes
)


@st.composite
def forms(draw: st.DrawFn) -> tuple[bytes, bytes | None]:
    """A form, and the content GET .../data must answer when the upload succeeds (None
    when the form has parts whose effect is not plain: a type part, odd names)."""
    data_headers, content = draw(data_parts())
    parts = [(data_headers, content)]
    plain = b'name="data"' in data_headers
    if draw(st.booleans()):
        parts.append((b'Content-Disposition: form-data; name="valueType"', draw(value_types)))
    if draw(st.integers(0, 4)) == 0:
        name = draw(part_names)
        parts.append((b"Content-Disposition: form-data; name=" + name, draw(header_bytes)))
        plain = False
    parts = draw(st.permutations(parts))
    body = b"".join(
        f"--{BOUNDARY}\r\n".encode() + headers + b"\r\n\r\n" + part_content + b"\r\n"
        for headers, part_content in parts
    )
    return body + f"--{BOUNDARY}--\r\n".encode(), content if plain else None


def test_multipart_headers_and_parameters(service: Service) -> None:
    case = f"/case-instance/{service.case_id}"

    @settings(BUDGET, max_examples=120)
    @given(form=forms())
    def check(form: tuple[bytes, bytes | None]) -> None:
        body, content = form
        path = f"{case}/variables/{uuid.uuid4().hex[:8]}"  # none before: a transient File
        answer = service.request("POST", path + "/data", {"Content-Type": FORM.encode()}, body)
        if answer.status != 204:
            assert 400 <= answer.status < 500
            return
        got = service.request("GET", path + "/data")
        head = service.request("HEAD", path + "/data")
        assert head.status == got.status
        if got.status == 404:  # a transient File: nothing stored
            return
        if got.status == 200:
            assert head.headers["content-length"] == str(len(got.body))
            assert head.headers["content-type"] == got.headers["content-type"]
            assert got.headers["content-type"].isascii()
            disposition = got.headers.get("content-disposition", 'attachment; filename="x"')
            assert disposition.startswith('attachment; filename="')
            if content is not None:
                assert got.body == content
        listed = service.request("GET", f"{case}/variables")
        assert listed.status == 200
        assert path.rsplit("/", 1)[1] in json.loads(listed.body)
        assert service.request("GET", path).status == 200
        assert service.request("DELETE", path).status == 204

    check()
    service.assert_no_errors_logged()


# --- (b) Range, If-Range, If-None-Match ---------------------------------------------------

CONTENT = pattern(1000, seed=11)
ETAG = f'"{hashlib.sha256(CONTENT).hexdigest()}"'
SIZE = len(CONTENT)

units = st.sampled_from(["bytes", "BYTES", "Bytes", "bYtEs", "items", "", "byte"])
numbers = st.one_of(
    st.just(""),
    st.integers(0, 2 * SIZE).map(str),
    st.text("0123456789", min_size=1, max_size=30),
    st.just("9" * 5000),
    st.just("0" * 5000 + "7"),
    st.text("\u0660\u0661\u0662\uff10\uff11\u0967\u09e8", min_size=1, max_size=4),
)
blanks = st.sampled_from(["", " ", "\t", "  ", "\u00a0"])
header_text = st.text(st.characters(blacklist_characters="\r\n\x00", codec="utf-8"), max_size=60)


@st.composite
def ranges(draw: st.DrawFn) -> str | None:
    kind = draw(st.sampled_from(["single", "single", "single", "several", "junk", "none"]))
    if kind == "none":
        return None
    if kind == "junk":
        return draw(header_text)
    spec = draw(blanks) + draw(numbers) + draw(blanks) + "-" + draw(blanks) + draw(numbers)
    if kind == "several":
        spec += "," + draw(numbers) + "-" + draw(numbers)
    header: str = draw(blanks) + draw(units) + draw(blanks) + "=" + spec + draw(blanks)
    return header


conditions = st.one_of(
    st.none(),
    st.sampled_from([ETAG, f"W/{ETAG}", "*", f'"other", {ETAG}', '"other"', ETAG[:-1]]),
    header_text,
)


def expected_range(header: str | None, if_range: str | None) -> tuple[int, int] | str | None:
    """The range RFC 9110 asks for: (first, last), None for the whole value, "416"."""
    if header is None or (if_range is not None and if_range.strip() != ETAG):
        return None
    match = re.fullmatch(
        r"[ \t]*bytes[ \t]*=[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*", header, re.IGNORECASE
    )
    if match is None or match.groups() == ("", ""):
        return None
    first_text, last_text = match.groups()
    if first_text == "":
        suffix = int(last_text[:30])  # no value here is anywhere near 30 digits long
        return "416" if suffix == 0 else (max(0, SIZE - suffix), SIZE - 1)
    first = int(first_text.lstrip("0")[:30] or "0")
    last = SIZE - 1 if last_text == "" else int(last_text.lstrip("0")[:30] or "0")
    if first >= SIZE or last < first:
        return "416"
    return first, min(last, SIZE - 1)


def test_range_and_conditions(service: Service) -> None:
    path = f"/case-instance/{service.case_id}/variables/ranged/data"
    form = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="data"\r\n\r\n'.encode()
        + CONTENT
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    stored = service.request("POST", path, {"Content-Type": FORM.encode()}, form)
    assert stored.status == 204

    @settings(BUDGET, max_examples=200)
    @given(
        range_header=ranges(),
        if_range=conditions,
        if_none_match=conditions,
        method=st.sampled_from(["GET", "GET", "HEAD"]),
    )
    def check(
        range_header: str | None, if_range: str | None, if_none_match: str | None, method: str
    ) -> None:
        headers = {
            name: value.encode()
            for name, value in (
                ("Range", range_header),
                ("If-Range", if_range),
                ("If-None-Match", if_none_match),
            )
            if value is not None
        }
        answer = service.request(method, path, headers)
        assert answer.status in {200, 206, 304, 400, 416}, answer.status
        if answer.status == 400:  # the HTTP layer refused the header (a control character)
            return
        matched = if_none_match is not None and (
            if_none_match.strip() == "*"
            or ETAG in (part.strip().removeprefix("W/") for part in if_none_match.split(","))
        )
        if matched:
            assert answer.status == 304
            assert answer.body == b""
            return
        expected = expected_range(range_header, if_range)
        if isinstance(expected, str):  # 416
            assert answer.status == 416
            assert answer.headers["content-range"] == f"bytes */{SIZE}"
            return
        if expected is None:
            assert answer.status == 200
            first, last = 0, SIZE - 1
        else:
            assert answer.status == 206
            first, last = expected
            assert answer.headers["content-range"] == f"bytes {first}-{last}/{SIZE}"
        assert answer.headers["content-length"] == str(last - first + 1)
        if method == "GET":
            assert answer.body == CONTENT[first : last + 1]

    check()
    service.assert_no_errors_logged()


# --- (c) raw bodies for the multipart and the JSON readers ---------------------------------

VALID_FORM = (
    f"--{BOUNDARY}\r\n".encode()
    + b'Content-Disposition: form-data; name="valueType"\r\n\r\nFile\r\n'
    + f"--{BOUNDARY}\r\n".encode()
    + b'Content-Disposition: form-data; name="data"; filename="a.txt"\r\n'
    + b"Content-Type: text/plain; encoding=UTF-8\r\n\r\nsome content\r\n"
    + f"--{BOUNDARY}--\r\n".encode()
)
VALID_JSON = json.dumps(
    {
        "modifications": {
            "a": {"value": "x", "type": "String"},
            "b": {"value": [1, {"c": None}], "type": "Json"},
            "f": {"value": "aGk=", "type": "File", "valueInfo": {"filename": "f.txt"}},
        },
        "deletions": ["z"],
    }
).encode()


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    """base with bytes replaced, inserted or cut away, or random bytes instead."""
    if draw(st.integers(0, 5)) == 0:
        return bytes(draw(st.binary(max_size=3000)))
    data = bytearray(base)
    for _ in range(draw(st.integers(0, 8))):
        at = draw(st.integers(0, len(data)))
        cut = draw(st.integers(0, 4))
        data[at : at + cut] = draw(st.binary(max_size=6))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@st.composite
def chunked(draw: st.DrawFn, body: bytes) -> bytes:
    """body in chunks of random sizes, now and then with a broken chunk line."""
    out = b""
    rest = body
    while rest:
        size = draw(st.integers(1, max(1, len(rest))))
        line = b"%x" % size
        if draw(st.integers(0, 15)) == 0:
            line = draw(st.sampled_from([b"zz", b"-1", b"1;" + b"e" * 10, b"", b"ffffffffffffff"]))
        out += line + b"\r\n" + rest[:size] + b"\r\n"
        rest = rest[size:]
    return out + b"0\r\n\r\n"


def _send(
    service: Service, method: str, path: str, content_type: bytes, body: bytes, chunks: Any
) -> Answer:
    if chunks is None:
        return service.request(method, path, {"Content-Type": content_type}, body)
    raw = (
        f"{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n".encode()
        + b"Content-Type: "
        + content_type
        + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunks
    )
    answer = exchange(service.serve.port, raw)
    assert answer.status < 500, (answer.status, answer.body[:500])
    if answer.status >= 400:
        assert_camunda_error(answer)
    return answer


def test_raw_bodies_for_the_multipart_reader(service: Service) -> None:
    path = f"/case-instance/{service.case_id}/variables/fuzzed/data"
    boundaries = st.sampled_from(
        [
            FORM.encode(),
            b"multipart/form-data",
            b'multipart/form-data; boundary=""',
            b"multipart/form-data; boundary=" + b"b" * 100,
            b"multipart/form-data; boundary=--",
        ]
    )

    @settings(BUDGET, max_examples=120)
    @given(data=st.data(), content_type=boundaries)
    def check(data: Any, content_type: bytes) -> None:
        body = data.draw(mutated(VALID_FORM))
        chunks = data.draw(st.one_of(st.none(), chunked(body))) if body else None
        answer = _send(service, "POST", path, content_type, body, chunks)
        assert answer.status in {204, 400, 404, 408, 411, 413, 415}, answer.status

    check()
    service.assert_no_errors_logged()


def test_raw_bodies_for_the_json_reader(service: Service) -> None:
    case = f"/case-instance/{service.case_id}"
    targets = st.sampled_from(
        [
            ("POST", case + "/variables"),
            ("PUT", case + "/variables/j"),
            ("POST", "/case-instance"),
            ("POST", "/case-definition/key/fuzz/create"),
        ]
    )

    @settings(BUDGET, max_examples=100)
    @given(data=st.data(), target=targets)
    def check(data: Any, target: tuple[str, str]) -> None:
        body = data.draw(mutated(VALID_JSON))
        chunks = data.draw(st.one_of(st.none(), chunked(body))) if body else None
        method, path = target
        answer = _send(service, method, path, b"application/json", body, chunks)
        assert answer.status < 500

    check()
    service.assert_no_errors_logged()
