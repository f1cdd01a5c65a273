"""Property-based hostile input (hypothesis) against the live app on real Postgres and
S3: value objects, modification bodies, ids and names in paths, and case-instance
queries. Whatever casevars accepts must read back through every read route without a
5xx or a cut response; whatever it refuses is a 4xx in Camunda's error format.

Hypothesis drives plain functions, so the app runs on an event loop in a thread of its
own and the tests talk to it with the standard library's blocking HTTP client, which
sends paths exactly as written (no '..' resolved, no %-escape decoded). Examples are
derandomized and the database of failing examples is off, so every run tries the same
inputs; the budgets keep the whole file well under a minute.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import http.client
import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from aiohttp import web
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from service.app import create_app
from service.camunda.jsontext import MAX_DEPTH
from service.camunda.queries import VARIABLE_OPERATORS
from service.camunda.values import TYPE_NAMES
from service.config import Endpoints
from service.http.cases import UNSUPPORTED_FILTERS
from service.http.variables import MAX_DELETIONS, MAX_MODIFICATIONS
from tests.conftest import MOTO_KEYS, TEST_BUCKET, MotoServer, free_port, new_id, settings_for_tests

# Longer request lines get aiohttp's plain 400 before any handler (README, Limits).
MAX_REQUEST_LINE = 8000

EXAMPLES = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --- the app in a thread, and a blocking client ------------------------------------------


@dataclasses.dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Service:
    """The real app served on a loop in a thread of its own."""

    def __init__(self, endpoints: Endpoints) -> None:
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(create_app(settings_for_tests(), endpoints))
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(60)

    def start(self) -> None:
        self._thread.start()
        self._call(self._runner.setup())
        self._call(web.TCPSite(self._runner, "127.0.0.1", self.port).start())

    def stop(self) -> None:
        self._call(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()

    def request(
        self, method: str, path: str, body: bytes | None = None, content_type: str | None = None
    ) -> Answer:
        """One request on a fresh connection; the whole answer is read, so a response
        cut short fails the test (http.client raises IncompleteRead)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            headers = {} if content_type is None else {"Content-Type": content_type}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return Answer(response.status, response.headers, response.read())
        finally:
            connection.close()

    def json(self, method: str, path: str, body: bytes) -> Answer:
        return self.request(method, path, body, "application/json")


@pytest.fixture(scope="module")
def service(database_dsn: str, moto_server: MotoServer) -> Iterator[Service]:
    endpoints = Endpoints(
        database_dsn,
        moto_server.url,
        TEST_BUCKET,
        f"test-{new_id('hostile')}/",
        "us-east-1",
        **MOTO_KEYS,
    )
    served = Service(endpoints)
    served.start()
    yield served
    served.stop()


def well_formed(answer: Answer) -> Answer:
    """No 5xx; a refusal carries exactly Camunda's error body."""
    assert answer.status < 500, (answer.status, answer.body[:500])
    if answer.status >= 400:
        error = answer.json()
        assert set(error) == {"type", "message", "code"}, error
        assert isinstance(error["type"], str)
        assert error["type"]
        assert isinstance(error["message"], str)
        assert error["code"] is None or isinstance(error["code"], int)
    return answer


def segment(text: str) -> str:
    return quote(text, safe="")


# --- JSON with what the standard library's encoder cannot write -------------------------


@dataclasses.dataclass(frozen=True)
class Raw:
    """JSON text put into a body as it is: integers of thousands of digits, nesting
    deeper than Python's recursion allows, numbers beyond a double."""

    text: str


def encode(value: Any) -> str:
    """JSON text of value; lone surrogates become \\ud800 escapes (ensure_ascii)."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        items = (json.dumps(key) + ":" + encode(item) for key, item in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(encode(item) for item in value) + "]"
    return json.dumps(value)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# --- strategies ---------------------------------------------------------------------------
# Mostly well-formed input with one hostile part, since a body refused for its shape
# never reaches the code behind it, and anything at all now and then.

# Any code point, lone surrogates and control characters included.
any_text = st.text(st.characters(exclude_categories=()), max_size=12)
controls = st.sampled_from(
    ["a\x01", "\x00", "a\x00b", "\r\n", "x\ny", "\t", "\x7f", "\x85", "\x1b[0m"]
)
surrogates = st.sampled_from(["\ud800", "x\udfff", "\udbff\udc00"])
deep_texts = st.sampled_from(
    [nested(depth) for depth in (MAX_DEPTH, MAX_DEPTH + 1, 253, 254, 255, 1000, 1024, 20000)]
    + ["[" * 300, '{"a":' * 300 + "1" + "}" * 300]
)
special_text = st.sampled_from(
    [
        "",
        " ",
        "null",
        " 12 ",
        "true",
        "QUJD",
        "QUJD\n",
        "2013-01-23T13:42:42.000+0200",
        "1e400",
        "NaN",
        "[1, 2]",
        '{"a": 1}',
        "12345678901234567890123",
        "1" * 5000,
        "..",
        "a/b",
        "%2F",
        "x" * 256,
        "\\u0000",
    ]
)
texts = controls | surrogates | special_text | deep_texts | any_text
raw_json = st.sampled_from(
    [
        Raw("1" * 5000),
        Raw("-" + "9" * 4301),
        Raw(str(10**400)),
        Raw("1e400"),
        Raw("-0.0"),
        Raw("123456789012345678901234567890.5"),
        Raw(nested(MAX_DEPTH - 1)),
        Raw(nested(MAX_DEPTH)),
        Raw(nested(MAX_DEPTH + 1)),
        Raw(nested(1000)),
        Raw(nested(1100)),
        Raw('"\\ud800"'),
        Raw('"\\u0000"'),
    ]
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([2**31, 2**63, -(2**63) - 1, 2**64, 10**30])
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
)
json_values = st.recursive(
    scalars | raw_json,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
type_names = st.sampled_from(
    [*TYPE_NAMES, *(name[0].lower() + name[1:] for name in TYPE_NAMES), "STRING", "Number", ""]
) | (any_text | st.integers() | st.booleans() | st.none())
header_texts = st.sampled_from(
    [
        "text/plain",
        "application/pdf",
        "Application/vnd.x+json",
        "text/plain; charset=UTF-8",
        "text/plain\x01",
        "text/plain\r\nX-Evil: 1",
        "a b/c",
        "UTF-8",
        "utf 8",
        '"utf-8"',
        "report.pdf",
        "ünïcødé.txt",
        'a "b";.txt',
        "a\\b",
        "x" * 256,
        "",
    ]
)
file_infos = st.fixed_dictionaries(
    {"filename": header_texts | texts | st.integers()},
    optional={
        "mimeType": header_texts | controls | texts | st.none(),
        "encoding": header_texts | controls | texts | st.none(),
        "transient": st.booleans() | json_values,
    },
)
JSON_OBJECT_INFO = {
    "objectTypeName": "java.util.ArrayList",
    "serializationDataFormat": "application/json",
}
object_infos = st.just(JSON_OBJECT_INFO) | st.fixed_dictionaries(
    {},
    optional={
        "objectTypeName": texts | json_values,
        "serializationDataFormat": st.sampled_from(
            ["application/json", "application/xml", "application/x-java-serialized-object"]
        )
        | texts,
        "transient": st.booleans() | json_values,
    },
)
value_infos = file_infos | object_infos | st.dictionaries(texts, json_values, max_size=4)
contents = st.binary(max_size=64).map(lambda data: base64.b64encode(data).decode())
json_texts = st.sampled_from(["[1, 2]", '{"a": {"b": null}}', "12345678901234567890123"])
value_objects = (
    st.fixed_dictionaries(
        {"type": st.sampled_from(["File", "file"]), "valueInfo": file_infos},
        optional={"value": contents | texts},
    )
    | st.fixed_dictionaries({"type": st.just("Bytes")}, optional={"value": contents | texts})
    | st.fixed_dictionaries(
        {"type": st.just("Object"), "valueInfo": object_infos},
        optional={"value": deep_texts | json_texts | texts},
    )
    | st.fixed_dictionaries({"type": st.sampled_from(["Json", "Xml"]), "value": deep_texts | texts})
    | st.fixed_dictionaries({"type": st.sampled_from(TYPE_NAMES), "value": scalars | json_values})
    | st.fixed_dictionaries({"value": json_values | raw_json})
    | st.fixed_dictionaries(
        {},
        optional={
            "type": type_names,
            "value": json_values | contents | raw_json,
            "valueInfo": value_infos | json_values,
            "junk": json_values,
        },
    )
)
bodies = (
    value_objects.map(encode)
    | st.sampled_from(["[]", '"x"', "1", "{", "", "\ufeff{}", "null"])
    | st.builds(lambda depth: '{"value": ' + nested(depth) + "}", st.integers(0, 1100))
)
# Text that is one path segment, or might not be once a server decodes it.
segments = (
    st.lists(
        st.sampled_from(
            [".", "..", "%2F", "%2f", "%2E", "%2e%2E", "%00", "%25", "%FF", "%ED%A0%80", "%C3%A9"]
        )
        | st.text("abcXYZ019.-_~!$&'()*+,;=:@", max_size=4),
        min_size=1,
        max_size=4,
    ).map("".join)
    | any_text.filter(bool).map(segment)
    | st.just("x" * 256)
)


# --- (a) value objects ---------------------------------------------------------------------


def is_segment(text: str) -> bool:
    """README: '/' cannot appear in a path segment, and URLs resolve '.' and '..'."""
    return text not in {"", ".", ".."} and "/" not in text


def check_reads(service: Service, case_path: str, names: Any = None) -> None:
    """The case's variables (or those of names) read back, whole and without a 5xx,
    through every read route, and each is one a path can name."""
    for flag in ("true", "false"):
        listed = well_formed(
            service.request("GET", f"{case_path}/variables?deserializeValues={flag}")
        )
        assert listed.status == 200
        for name, shown in listed.json().items():
            assert is_segment(name), name
            if names is not None and name not in names:
                continue
            path = f"{case_path}/variables/{segment(name)}"
            one = well_formed(service.request("GET", f"{path}?deserializeValue={flag}"))
            assert one.status == 200, (name, one.body[:300])
            assert one.json() == shown
            event(f"stored {shown['type']}")  # shown by --hypothesis-show-statistics
            if shown["type"] in {"Bytes", "File"} and flag == "true":
                for method in ("GET", "HEAD"):
                    data = well_formed(service.request(method, f"{path}/data"))
                    assert data.status == 200, (name, data.status, data.body[:300])
                    if method == "GET":
                        assert len(data.body) == int(data.headers["Content-Length"])


def new_case(service: Service) -> str:
    path = f"/case-instance/{new_id('hostile')}"
    assert service.request("PUT", path).status == 201
    return path


@pytest.fixture(scope="module")
def case_path(service: Service) -> str:
    return new_case(service)


# The attacks of the issue and their kin, tried first on every run.
ATTACKS = [
    {"type": "File", "value": "QUJD", "valueInfo": {"filename": "a", "mimeType": "text/plain\x01"}},
    {"type": "File", "valueInfo": {"filename": "a", "mimeType": "a/b", "encoding": "utf\r\n8"}},
    {"type": "File", "value": "QUJD", "valueInfo": {"filename": "a\r\nSet-Cookie: x=1"}},
    {"type": "Object", "value": nested(1000), "valueInfo": JSON_OBJECT_INFO},
    {"type": "Object", "value": nested(MAX_DEPTH + 1), "valueInfo": JSON_OBJECT_INFO},
    {"type": "Json", "value": nested(1000)},
    {"value": Raw(nested(1000))},
    {"value": Raw("1" * 5000)},
    {"value": "\\u0000"},
    {"value": "\ud800"},
]


def with_attacks(test: Any) -> Any:
    for attack in ATTACKS:
        test = example(body=encode(attack), bom=False)(test)
    return example(body='{"value": "bom"}', bom=True)(test)


@EXAMPLES
@given(body=bodies, bom=st.booleans())
@with_attacks
def test_any_value_object_is_stored_and_read_back_or_refused(service, case_path, body, bom):
    raw = ("\ufeff" if bom else "") + body
    answer = well_formed(
        service.json("PUT", f"{case_path}/variables/v", raw.encode("utf-8", "surrogatepass"))
    )
    assert answer.status in {204, 400}, (answer.status, answer.body[:300])
    event(f"PUT {answer.status}")
    check_reads(service, case_path)


# --- (b) modification bodies ------------------------------------------------------------

names = st.sampled_from(["a", "b", "c"]) | texts
many = st.sampled_from([0, 0, 0, 1001, 60000])


@pytest.fixture(scope="module")
def modified_case(service: Service) -> str:
    return new_case(service)


@EXAMPLES
@given(
    modifications=st.dictionaries(names, value_objects, max_size=4) | json_values,
    deletions=st.lists(names, max_size=4) | json_values,
    more_modifications=many,
    more_deletions=many,
)
# The stall: 6,000 modifications and 60,000 deletions.
@example(modifications={}, deletions=[], more_modifications=60000, more_deletions=60000)
@example(modifications={"a/b": {"value": 1}}, deletions=[], more_modifications=0, more_deletions=0)
@example(modifications={"..": {"value": 1}}, deletions=[], more_modifications=0, more_deletions=0)
def test_any_modification_body_is_all_or_nothing_and_reads_back(
    service, modified_case, modifications, deletions, more_modifications, more_deletions
):
    case_path = modified_case
    if isinstance(modifications, dict):
        more = {f"m{i}": {"value": i} for i in range(more_modifications // 10)}
        modifications = {**modifications, **more}
    if isinstance(deletions, list):
        deletions = [*deletions, *(f"d{i}" for i in range(more_deletions))]
    before = service.request("GET", f"{case_path}/variables?deserializeValues=false").body
    body = encode({"modifications": modifications, "deletions": deletions})
    answer = well_formed(
        service.json("POST", f"{case_path}/variables", body.encode("utf-8", "surrogatepass"))
    )
    assert answer.status in {204, 400}, (answer.status, answer.body[:300])
    event(f"POST {answer.status}")
    if answer.status == 204:
        assert not isinstance(modifications, dict) or len(modifications) <= MAX_MODIFICATIONS
        assert not isinstance(deletions, list) or len(deletions) <= MAX_DELETIONS
    else:
        after = service.request("GET", f"{case_path}/variables?deserializeValues=false").body
        assert json.loads(after) == json.loads(before)  # nothing half-written
    check_reads(service, case_path, modifications if isinstance(modifications, dict) else {})


# --- (c) ids and names in the path ----------------------------------------------------------


@EXAMPLES
@given(case=segments, name=segments)
@example(case="a%2Fb", name="v")
@example(case="ok", name="a%2Fb")
@example(case="ok", name="..")
@example(case="ok", name="%2E%2E")
@example(case=".", name="v")
def test_any_id_and_name_in_a_path_is_a_resource_or_a_clear_4xx(service, case, name):
    case_path = f"/case-instance/{case}"
    variable = f"{case_path}/variables/{name}"
    created = well_formed(service.request("PUT", case_path))
    put = well_formed(service.json("PUT", variable, b'{"value": "x"}'))
    event(f"case {created.status}, variable {put.status}")
    for method, path in (
        ("GET", case_path),
        ("GET", variable),
        ("GET", f"{case_path}/variables"),
        ("GET", f"{variable}/data"),
        ("HEAD", f"{variable}/data"),
    ):
        answer = service.request(method, path)
        assert answer.status < 500, (method, path, answer.status)
        if method != "HEAD":
            well_formed(answer)
    if created.status in {200, 201}:
        assert is_segment(created.json()["id"]), created.json()["id"]
        assert service.request("GET", case_path).status == 200
        check_reads(service, case_path)
    if put.status == 204:
        assert well_formed(service.request("GET", variable)).json()["value"] == "x"
        assert well_formed(service.request("DELETE", variable)).status == 204
    well_formed(service.request("DELETE", case_path))


# --- (d) queries ----------------------------------------------------------------------------

filter_names = st.sampled_from(
    [
        "caseInstanceId",
        "businessKey",
        "caseDefinitionKey",
        "caseDefinitionId",
        "tenantIdIn",
        "withoutTenantId",
        "active",
        "completed",
        "terminated",
        "variableNamesIgnoreCase",
        "variableValuesIgnoreCase",
        *UNSUPPORTED_FILTERS,
    ]
)
query_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts
conditions = st.fixed_dictionaries(
    {
        "name": names,
        "operator": st.sampled_from(VARIABLE_OPERATORS),
        "value": query_scalars,
    }
) | st.fixed_dictionaries(
    {},
    optional={
        "name": texts | json_values,
        "operator": st.sampled_from(VARIABLE_OPERATORS) | texts,
        "value": json_values,
    },
)
condition_lists = st.lists(conditions, max_size=3) | st.sampled_from([101, 16400]).map(
    lambda count: [{"name": "a", "operator": "eq", "value": i} for i in range(count)]
)
sorting = st.fixed_dictionaries(
    {
        "sortBy": st.sampled_from(["caseInstanceId", "tenantId", "caseDefinitionKey"]),
        "sortOrder": st.sampled_from(["asc", "desc"]),
    }
) | st.fixed_dictionaries(
    {},
    optional={"sortBy": texts | json_values, "sortOrder": texts | json_values},
)
tenant_lists = st.lists(names, max_size=3) | st.sampled_from([1001, 100000]).map(
    lambda count: [f"t{i}" for i in range(count)]
)
query_bodies = st.fixed_dictionaries(
    {},
    optional={
        "variables": condition_lists | json_values,
        "sorting": st.lists(sorting, max_size=3)
        | st.just([{"sortBy": "tenantId", "sortOrder": "asc"}] * 11)
        | json_values,
        "tenantIdIn": tenant_lists | json_values,
        "businessKey": texts,
        "caseInstanceId": texts,
    },
).flatmap(
    lambda body: st.dictionaries(filter_names, query_scalars | json_values, max_size=2).map(
        lambda more: {**more, **body}
    )
)
paging_text = (
    st.integers(-5, 2**32).map(str)
    | st.sampled_from(["1" * 4400, "0" * 4400 + "7", "9" * 11, "+1", "1.0", "", "²", "0x10"])
    | texts
)
paging = st.dictionaries(st.sampled_from(["firstResult", "maxResults"]), paging_text)
query_strings = st.dictionaries(
    filter_names | st.sampled_from(["variables", "sortBy", "sortOrder"]),
    texts
    | st.sampled_from(["a_eq_b", "a_like_%x%,b_gt_1", "a_eq", "t1,t2", "caseInstanceId", "asc"])
    | st.just(",".join(["a_eq_b"] * 101)),
    max_size=4,
)


def query_answer(answer: Answer, path: str) -> None:
    well_formed(answer)
    assert answer.status in {200, 400}, (answer.status, answer.body[:300])
    event(f"{answer.status}")
    if answer.status == 200:
        shown = answer.json()
        assert isinstance(shown, dict if path.endswith("/count") else list)


@EXAMPLES
@given(
    body=query_bodies,
    paging=paging,
    path=st.sampled_from(["/case-instance", "/case-instance/count"]),
)
@example(body={}, paging={"firstResult": "1" * 5000}, path="/case-instance")
@example(
    body={"variables": [{"name": "a", "operator": "eq", "value": "x"}] * 16400},
    paging={},
    path="/case-instance/count",
)
@example(body={"businessKey": "\ud800", "x": Raw("1" * 30)}, paging={}, path="/case-instance")
def test_any_query_body_is_answered_or_refused(service, body, paging, path):
    query = f"?{urlencode(paging, quote_via=quote, errors='surrogatepass')}" if paging else ""
    assume(len(query) < MAX_REQUEST_LINE)
    raw = encode(body).encode("utf-8", "surrogatepass")
    query_answer(service.json("POST", path + query, raw), path)


@EXAMPLES
@given(
    params=query_strings,
    paging=paging,
    path=st.sampled_from(["/case-instance", "/case-instance/count"]),
)
def test_any_query_string_is_answered_or_refused(service, params, paging, path):
    encoded = urlencode({**params, **paging}, quote_via=quote, errors="surrogatepass")
    assume(len(encoded) < MAX_REQUEST_LINE)
    query_answer(service.request("GET", f"{path}?{encoded}"), path)
