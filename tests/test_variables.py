"""The JSON variable routes: GET one, GET all, PUT, DELETE and the modification POST,
with every value type."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json

import orjson
import pytest
import yarl

from service.camunda.jsontext import MAX_DEPTH
from service.camunda.values import TOO_DEEP
from service.http.body import MAX_BODY_DEPTH
from service.http.variables import MAX_DELETIONS, MAX_MODIFICATIONS
from tests.conftest import new_id
from tests.forms import blob_states, create_case, data_url, upload_bytes, variable_row


@pytest.fixture
async def case_id(client):
    made = new_id()
    await create_case(client, made)
    return made


def url(case_id, name=None):
    base = f"/case-instance/{case_id}/variables"
    return base if name is None else f"{base}/{name}"


async def put(client, case_id, name, value):
    return await client.put(url(case_id, name), json=value)


async def get(client, case_id, name, **params):
    response = await client.get(url(case_id, name), params=params)
    assert response.status == 200, await response.text()
    return await response.json()


# --- round trips of every type: PUT -> GET -> GET all -> modify -> DELETE ----------

ROUND_TRIPS = [
    ({"value": "text", "type": "String"}, {"value": "text", "type": "String", "valueInfo": {}}),
    ({"value": True, "type": "Boolean"}, {"value": True, "type": "Boolean", "valueInfo": {}}),
    ({"value": 12, "type": "Short"}, {"value": 12, "type": "Short", "valueInfo": {}}),
    ({"value": 123, "type": "Integer"}, {"value": 123, "type": "Integer", "valueInfo": {}}),
    ({"value": 2**40, "type": "Long"}, {"value": 2**40, "type": "Long", "valueInfo": {}}),
    ({"value": 1.5, "type": "Double"}, {"value": 1.5, "type": "Double", "valueInfo": {}}),
    (
        {"value": "2013-01-23T13:42:42.000+0200", "type": "Date"},
        {"value": "2013-01-23T11:42:42.000+0000", "type": "Date", "valueInfo": {}},
    ),
    ({"value": None, "type": "Null"}, {"value": None, "type": "Null", "valueInfo": {}}),
    ({}, {"value": None, "type": "Null", "valueInfo": {}}),
    (
        {"value": base64.b64encode(b"\x00\x01bytes").decode(), "type": "Bytes"},
        {"value": base64.b64encode(b"\x00\x01bytes").decode(), "type": "Bytes", "valueInfo": {}},
    ),
    (
        {
            "value": base64.b64encode(b"file!").decode(),
            "type": "File",
            "valueInfo": {"filename": "a.txt", "mimeType": "text/plain", "encoding": "UTF-8"},
        },
        {
            "value": None,
            "type": "File",
            "valueInfo": {"filename": "a.txt", "mimeType": "text/plain", "encoding": "UTF-8"},
        },
    ),
    (
        {
            "value": '{"a": [1, 2]}',
            "type": "Object",
            "valueInfo": {
                "objectTypeName": "java.util.HashMap",
                "serializationDataFormat": "application/json",
            },
        },
        {
            "value": {"a": [1, 2]},
            "type": "Object",
            "valueInfo": {
                "objectTypeName": "java.util.HashMap",
                "serializationDataFormat": "application/json",
            },
        },
    ),
    ({"value": '{"x": 1}', "type": "Json"}, {"value": '{"x": 1}', "type": "Json", "valueInfo": {}}),
    ({"value": "<a/>", "type": "Xml"}, {"value": "<a/>", "type": "Xml", "valueInfo": {}}),
    ("untyped", None),
    ({"value": "inferred"}, {"value": "inferred", "type": "String", "valueInfo": {}}),
    ({"value": 7}, {"value": 7, "type": "Integer", "valueInfo": {}}),
    ({"value": 2**33}, {"value": 2**33, "type": "Long", "valueInfo": {}}),
    ({"value": 2.5}, {"value": 2.5, "type": "Double", "valueInfo": {}}),
    ({"value": False}, {"value": False, "type": "Boolean", "valueInfo": {}}),
    (
        {"value": [1, "two"]},
        {
            "value": [1, "two"],
            "type": "Object",
            "valueInfo": {
                "objectTypeName": "java.util.ArrayList",
                "serializationDataFormat": "application/json",
            },
        },
    ),
    (
        {"value": 2**70},
        {
            "value": 2**70,
            "type": "Object",
            "valueInfo": {
                "objectTypeName": "java.math.BigInteger",
                "serializationDataFormat": "application/json",
            },
        },
    ),
]


@pytest.mark.parametrize(("sent", "expected"), [r for r in ROUND_TRIPS if r[1] is not None])
async def test_round_trip(client, db, case_id, sent, expected):
    response = await put(client, case_id, "v", sent)
    assert response.status == 204, await response.text()
    assert await get(client, case_id, "v") == expected
    assert (await get(client, case_id, None))["v"] == expected

    modified = await client.post(
        url(case_id), json={"modifications": {"w": sent}, "deletions": ["v"]}
    )
    assert modified.status == 204, await modified.text()
    everything = await get(client, case_id, None)
    assert everything == {"w": expected}

    assert (await client.delete(url(case_id, "w"))).status == 204
    assert await get(client, case_id, None) == {}


async def test_binary_values_written_as_json_live_in_the_blob_store(client, db, endpoints, case_id):
    content = b"binary via JSON"
    value = {"value": base64.b64encode(content).decode(), "type": "Bytes"}
    assert (await put(client, case_id, "b", value)).status == 204
    row = await variable_row(db, case_id, "b")
    assert row["blob_key"].startswith(endpoints.s3_prefix)
    assert bytes(row["sha256"]) == hashlib.sha256(content).digest()
    fetched = await client.get(data_url(case_id, "b"))
    assert await fetched.read() == content
    # Replacing it by a String hands the blob to the collector.
    assert (await put(client, case_id, "b", {"value": "now text"})).status == 204
    assert set((await blob_states(db, endpoints.s3_prefix)).values()) == {"garbage"}


async def test_null_bytes_value(client, case_id):
    assert (await put(client, case_id, "b", {"type": "Bytes", "value": None})).status == 204
    assert await get(client, case_id, "b") == {"type": "Bytes", "value": None, "valueInfo": {}}
    response = await client.get(data_url(case_id, "b"))
    assert response.status == 200
    assert await response.read() == b""


async def test_file_written_as_json_is_served_by_data(client, case_id):
    value = {
        "type": "File",
        "value": base64.b64encode(b"report").decode(),
        "valueInfo": {"filename": "r.txt", "mimeType": "text/plain"},
    }
    assert (await put(client, case_id, "f", value)).status == 204
    response = await client.get(data_url(case_id, "f"))
    assert response.headers["Content-Type"] == "text/plain"
    assert await response.read() == b"report"


# --- Bytes inline limit (casevars deviation) ---------------------------------------


async def test_bytes_over_the_inline_limit_point_at_data(make_client):
    client = await make_client(inline_bytes_limit=10)
    case_id = new_id()
    await create_case(client, case_id)
    await upload_bytes(client, case_id, "small", b"0123456789")
    await upload_bytes(client, case_id, "large", b"0123456789A")
    small = await get(client, case_id, "small")
    assert small == {
        "type": "Bytes",
        "value": base64.b64encode(b"0123456789").decode(),
        "valueInfo": {},
    }
    large = await get(client, case_id, "large")
    assert large == {
        "type": "Bytes",
        "value": None,
        "valueInfo": {"size": 11, "dataUrl": data_url(case_id, "large")},
    }
    listed = await get(client, case_id, None)
    assert listed == {"small": small, "large": large}


# --- deserializeValue(s) ----------------------------------------------------------

OBJECT = {
    "value": '["foo","bar"]',
    "type": "Object",
    "valueInfo": {
        "objectTypeName": "java.util.ArrayList<java.lang.Object>",
        "serializationDataFormat": "application/json",
    },
}
XML_OBJECT = {
    "value": "<list/>",
    "type": "Object",
    "valueInfo": {"objectTypeName": "a.B", "serializationDataFormat": "application/xml"},
}


@pytest.mark.parametrize(
    ("flag", "json_value"),
    [
        (None, ["foo", "bar"]),
        ("true", ["foo", "bar"]),
        ("TRUE", ["foo", "bar"]),
        ("false", '["foo","bar"]'),
        ("0", '["foo","bar"]'),
        ("yes", '["foo","bar"]'),
        ("", '["foo","bar"]'),
    ],
)
async def test_deserialize_matrix(client, case_id, flag, json_value):
    await put(client, case_id, "o", OBJECT)
    await put(client, case_id, "x", XML_OBJECT)
    await put(client, case_id, "j", {"type": "Json", "value": '{"a":1}'})
    one = {} if flag is None else {"deserializeValue": flag}
    all_ = {} if flag is None else {"deserializeValues": flag}
    assert (await get(client, case_id, "o", **one))["value"] == json_value
    assert (await get(client, case_id, "x", **one))["value"] == "<list/>"
    assert (await get(client, case_id, "j", **one))["value"] == '{"a":1}'
    listed = await get(client, case_id, None, **all_)
    assert listed["o"]["value"] == json_value
    assert listed["x"]["value"] == "<list/>"


async def test_plural_flag_on_single_route_has_no_effect(client, case_id):
    await put(client, case_id, "o", OBJECT)
    single = await get(client, case_id, "o", deserializeValues="false")
    assert single["value"] == ["foo", "bar"]
    listed = await get(client, case_id, None, deserializeValue="false")
    assert listed["o"]["value"] == ["foo", "bar"]


# --- PUT errors (5.4) ----------------------------------------------------------------


def invalid(message, type_name="InvalidRequestException", code=None):
    return {"type": type_name, "message": message, "code": code}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            {"value": "x", "type": "X"},
            invalid("Cannot put case execution variable v: Unsupported value type 'X'"),
        ),
        (
            {"value": "x", "type": "STRING"},
            invalid("Cannot put case execution variable v: Unsupported value type 'STRING'"),
        ),
        (
            {"value": 1, "type": "Number"},
            invalid("Cannot put case execution variable v: Unsupported value type 'Number'"),
        ),
        (
            {"value": "1abc", "type": "Integer"},
            invalid(
                "Cannot put case execution variable v: Cannot convert value '1abc' of type "
                "'Integer' to java type java.lang.Integer"
            ),
        ),
        (
            {"value": 40000, "type": "Short"},
            invalid(
                "Cannot put case execution variable v: Cannot convert value '40000' of type "
                "'Short' to java type java.lang.Short"
            ),
        ),
        (
            {"value": "yes", "type": "Boolean"},
            invalid(
                "Cannot put case execution variable v: Cannot convert value 'yes' of type "
                "'Boolean' to java type java.lang.Boolean"
            ),
        ),
        (
            {"value": "2013-01-23T13:42:42+0200", "type": "Date"},
            invalid(
                "Cannot put case execution variable v: Cannot convert value "
                "'2013-01-23T13:42:42+0200' of type 'Date' to java type java.util.Date"
            ),
        ),
        (
            {"value": "a", "type": "File"},
            invalid("Cannot create file without valueInfo.", "IllegalArgumentException"),
        ),
        (
            {"value": "a", "type": "File", "valueInfo": {"mimetype": "text/plain"}},
            invalid(
                "Cannot create file without filename! Please set a name into ValueInfo "
                "with key filename",
                "IllegalArgumentException",
            ),
        ),
        (
            {"value": 5, "type": "Object"},
            invalid(
                "Cannot put case execution variable v: Must provide 'null' or String value "
                "for value of SerializableValue type 'Object'."
            ),
        ),
        (
            {
                "value": "{}",
                "type": "Object",
                "valueInfo": {"serializationDataFormat": "application/json"},
            },
            invalid(
                "Cannot put case execution variable v: Cannot write serialized value for "
                "variable 'v': no 'objectTypeName' provided for non-null value.",
                "RestException",
            ),
        ),
        (
            {
                "value": "{}",
                "type": "Object",
                "valueInfo": {
                    "objectTypeName": "a.B",
                    "serializationDataFormat": "application/x-java-serialized-object",
                },
            },
            invalid(
                "Cannot put case execution variable v: ENGINE-17007 Cannot set variable with "
                "name v. Java serialization format is prohibited",
                "RestException",
            ),
        ),
        (
            {"value": "x", "valueInfo": {"transient": "yes"}, "type": "String"},
            invalid(
                "The property 'transient' should have a value of type 'boolean'.",
                "IllegalArgumentException",
            ),
        ),
    ],
)
async def test_put_refusals(client, db, case_id, value, expected):
    response = await put(client, case_id, "v", value)
    assert response.status == 400, await response.text()
    assert await response.json() == expected
    assert await variable_row(db, case_id, "v") is None


async def test_object_without_format_names_the_serializer_problem(client, case_id):
    response = await put(
        client,
        case_id,
        "v",
        {"value": "{}", "type": "Object", "valueInfo": {"objectTypeName": "a.B"}},
    )
    assert response.status == 400
    body = await response.json()
    assert body["type"] == "RestException"
    assert body["message"].startswith(
        "Cannot put case execution variable v: Cannot find serializer for value"
    )


@pytest.mark.parametrize("payload", [b"[]", b'"text"', b"{bad", b"", b'{"type": {}}', b"\xff"])
async def test_put_bad_json_is_400_with_empty_message(client, db, case_id, payload):
    response = await client.put(
        url(case_id, "v"), data=payload, headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert await response.json() == invalid("")
    assert await variable_row(db, case_id, "v") is None


async def test_put_not_json_is_415(client, case_id):
    response = await client.put(
        url(case_id, "v"), data=b"x", headers={"Content-Type": "text/plain"}
    )
    assert response.status == 415
    assert (await response.json())["type"] == "NotSupportedException"


async def test_put_over_the_json_limit_is_413(make_client):
    client = await make_client(max_json_bytes=64)
    case_id = new_id()
    await create_case(client, case_id)
    response = await put(client, case_id, "v", {"value": "x" * 100})
    assert response.status == 413


async def test_put_on_unknown_case_instance(client):
    response = await put(client, "ghost", "v", {"value": 1})
    assert response.status == 404
    assert await response.json() == invalid(
        "Cannot put case execution variable v: There does not exist any case execution with "
        "id: 'ghost': caseExecution is null",
        "RestException",
        0,
    )


async def test_bad_value_on_unknown_case_instance_is_400(client):
    response = await put(client, "ghost", "v", {"value": "x", "type": "Integer"})
    assert response.status == 400


async def test_transient_value_is_not_stored(client, case_id):
    response = await put(
        client, case_id, "t", {"value": "x", "type": "String", "valueInfo": {"transient": True}}
    )
    assert response.status == 204
    missing = await client.get(url(case_id, "t"))
    assert missing.status == 404


async def test_auto_create_on_put(make_client):
    client = await make_client(auto_create_case_instances=True)
    case_id = new_id()
    assert (await put(client, case_id, "v", {"value": 1})).status == 204
    assert (await client.get(f"/case-instance/{case_id}")).status == 200
    # Reads of ids never written still answer 404.
    assert (await client.get(url("never-written"))).status == 404


# --- GET errors (5.1, 5.2) -----------------------------------------------------------


async def test_get_missing_variable(client, case_id):
    response = await client.get(url(case_id, "nope"))
    assert response.status == 404
    assert await response.json() == invalid("case execution variable with name nope does not exist")


async def test_get_on_unknown_case_instance(client):
    one = await client.get(url("ghost", "v"))
    assert one.status == 404
    assert await one.json() == invalid(
        "Cannot get case execution variable v: case execution ghost doesn't exist: "
        "caseExecution is null",
        "RestException",
        0,
    )
    listed = await client.get(url("ghost"))
    assert listed.status == 404
    assert await listed.json() == invalid(
        "case execution ghost doesn't exist: caseExecution is null", "NotFoundException", 0
    )


async def test_empty_case_instance_has_no_variables(client, case_id):
    assert await get(client, case_id, None) == {}


# --- DELETE (5.7) ---------------------------------------------------------------------


async def test_delete_missing_variable_is_fine(client, case_id):
    assert (await client.delete(url(case_id, "never"))).status == 204


async def test_delete_on_unknown_case_instance(client):
    response = await client.delete(url("ghost", "v"))
    assert response.status == 404
    assert await response.json() == invalid(
        "Cannot delete case execution variable v: There does not exist any case execution "
        "with id: 'ghost': caseExecution is null",
        "RestException",
        0,
    )


async def test_delete_binary_variable_hands_blob_to_collector(client, db, endpoints, case_id):
    await upload_bytes(client, case_id, "b", b"x")
    assert (await client.delete(url(case_id, "b"))).status == 204
    assert set((await blob_states(db, endpoints.s3_prefix)).values()) == {"garbage"}


# --- modification POST (5.6) -----------------------------------------------------------


async def test_modify_empty_body_is_a_no_op(client, case_id):
    assert (await client.post(url(case_id), json={})).status == 204


async def test_modify_applies_everything_together(client, case_id):
    await put(client, case_id, "old", {"value": 1})
    response = await client.post(
        url(case_id),
        json={
            "modifications": {"a": {"value": "x"}, "b": {"value": 2, "type": "Long"}},
            "deletions": ["old", "never-existed"],
        },
    )
    assert response.status == 204
    assert await get(client, case_id, None) == {
        "a": {"value": "x", "type": "String", "valueInfo": {}},
        "b": {"value": 2, "type": "Long", "valueInfo": {}},
    }


async def test_modify_with_a_bad_value_changes_nothing(client, db, case_id):
    await put(client, case_id, "keep", {"value": "kept"})
    before = await db.fetch(
        "SELECT name, value FROM variable WHERE case_instance_id = $1 ORDER BY name", case_id
    )
    response = await client.post(
        url(case_id),
        json={
            "modifications": {"a": {"value": "x"}, "bad": {"value": "1abc", "type": "Integer"}},
            "deletions": ["keep"],
        },
    )
    assert response.status == 400
    assert await response.json() == invalid(
        "Cannot modify variables for case execution: Cannot convert value '1abc' of type "
        "'Integer' to java type java.lang.Integer"
    )
    after = await db.fetch(
        "SELECT name, value FROM variable WHERE case_instance_id = $1 ORDER BY name", case_id
    )
    assert after == before


async def test_modify_unknown_type(client, case_id):
    response = await client.post(
        url(case_id), json={"modifications": {"a": {"value": "x", "type": "X"}}}
    )
    assert response.status == 400
    assert await response.json() == invalid(
        "Cannot modify variables for case execution: Unsupported value type 'X'"
    )


async def test_modify_engine_problem_names_the_id(client, case_id):
    response = await client.post(
        url(case_id),
        json={
            "modifications": {
                "o": {
                    "value": "{}",
                    "type": "Object",
                    "valueInfo": {"serializationDataFormat": "application/json"},
                }
            }
        },
    )
    assert response.status == 400
    body = await response.json()
    assert body["type"] == "RestException"
    assert body["message"].startswith(f"Cannot modify variables for case execution {case_id}: ")


async def test_modify_set_and_delete_conflict(client, db, case_id):
    await put(client, case_id, "a", {"value": "kept"})
    response = await client.post(
        url(case_id), json={"modifications": {"a": {"value": "x"}}, "deletions": ["a"]}
    )
    assert response.status == 400
    assert await response.json() == invalid(
        f"Cannot modify variables for case execution {case_id}: Cannot set and remove a "
        "variable with the same variable name: 'a' within a command.",
        "RestException",
        0,
    )
    assert (await variable_row(db, case_id, "a"))["value"] == "kept"


@pytest.mark.parametrize(
    "payload",
    [
        {"modifications": "x"},
        {"modifications": [1]},
        {"deletions": "a"},
        {"deletions": [1]},
        {"modifications": {"a": 5}},
        [],
    ],
)
async def test_modify_wrong_shapes(client, case_id, payload):
    response = await client.post(url(case_id), json=payload)
    assert response.status == 400
    assert await response.json() == invalid("")


async def test_modify_unknown_case_instance(client):
    response = await client.post(url("ghost"), json={"modifications": {"a": {"value": 1}}})
    assert response.status == 404
    assert await response.json() == invalid(
        "Cannot modify variables for case execution ghost: There does not exist any case "
        "execution with id: 'ghost': caseExecution is null",
        "RestException",
        0,
    )


async def test_modify_with_binary_values_atomic_with_blobs(client, db, endpoints, case_id):
    content = base64.b64encode(b"abc").decode()
    response = await client.post(
        url(case_id),
        json={
            "modifications": {
                "b1": {"value": content, "type": "Bytes"},
                "b2": {"value": content, "type": "Bytes"},
            }
        },
    )
    assert response.status == 204
    states = await blob_states(db, endpoints.s3_prefix)
    assert sorted(states.values()) == ["live", "live"]


async def test_concurrent_modifications_do_not_deadlock(client, case_id):
    async def modify(order):
        return await client.post(
            url(case_id), json={"modifications": {name: {"value": name} for name in order}}
        )

    results = await asyncio.gather(*(modify("abcdef" if i % 2 else "fedcba") for i in range(10)))
    assert {r.status for r in results} == {204}


# --- names ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["with space", "quote'\"", "ünïcødé", "...", "a.b", "new%0Aline"])
async def test_odd_names_work_as_plain_names(client, case_id, name):
    assert (await put(client, case_id, name, {"value": "x"})).status == 204
    listed = await get(client, case_id, None)
    assert len(listed) == 1
    (stored_name,) = listed
    assert (await client.get(url(case_id, name))).status == 200
    assert (await client.delete(url(case_id, name))).status == 204
    assert stored_name


async def test_dot_dot_name_is_a_clear_4xx(client, case_id):
    # URLs resolve ".." before routing, so it can never name a variable.
    response = await put(client, case_id, "..", {"value": "x"})
    assert 400 <= response.status < 500
    assert "type" in await response.json()


@pytest.mark.parametrize("name", ["x" * 256, "a%00b"])
async def test_names_too_long_or_with_nul_are_400(client, case_id, name):
    response = await put(client, case_id, name, {"value": "x"})
    assert response.status == 400
    assert (await response.json())["type"] == "InvalidRequestException"


async def test_nul_in_a_string_value_is_400(client, db, case_id):
    response = await put(client, case_id, "v", {"value": "a\u0000b"})
    assert response.status == 400
    assert await variable_row(db, case_id, "v") is None


async def test_nul_in_a_modification_name_is_400(client, case_id):
    response = await client.post(url(case_id), json={"modifications": {"a\u0000": {"value": 1}}})
    assert response.status == 400


# --- hostile input: raw paths, depth, File metadata, bounds -----------------------------


def raw_url(client, path):
    """An absolute URL sent exactly as written: no client resolves its '..' or decodes
    its %-escapes."""
    return yarl.URL(str(client.make_url("/")).rstrip("/") + path, encoded=True)


def not_a_segment(value, what):
    return (
        f"'{value}' cannot be a {what} in a URL path: '/' separates path segments, "
        "and '.' and '..' are resolved before routing"
    )


@pytest.mark.parametrize(
    ("segment", "name"), [("..", ".."), ("%2E%2E", ".."), (".", "."), ("a%2Fb", "a/b")]
)
@pytest.mark.parametrize(
    ("method", "route"),
    [("GET", ""), ("PUT", ""), ("DELETE", ""), ("GET", "/data"), ("POST", "/data")],
)
async def test_raw_names_that_are_no_path_segment_are_404(
    client, db, case_id, segment, name, method, route
):
    async with client.session.request(
        method, raw_url(client, f"{url(case_id, segment)}{route}"), json={"value": 1}
    ) as response:
        assert response.status == 404
        assert await response.json() == {
            "type": "NotFoundException",
            "message": not_a_segment(name, "variable name"),
            "code": None,
        }
    assert (
        await db.fetchval("SELECT count(*) FROM variable WHERE case_instance_id = $1", case_id) == 0
    )


@pytest.mark.parametrize("name", ["a/b", "..", ".", ""])
async def test_names_written_by_a_body_must_be_path_segments(client, case_id, name):
    response = await client.post(url(case_id), json={"modifications": {name: {"value": 1}}})
    assert response.status == 400
    assert await response.json() == {
        "type": "InvalidRequestException",
        "message": (
            f"'{name}' cannot be a variable name: it must be one URL path segment "
            "(not empty, '.' or '..', and without '/')"
        ),
        "code": None,
    }
    assert await get(client, case_id, None) == {}
    # Deleting such a name (stored by an earlier version) is fine.
    assert (await client.post(url(case_id), json={"deletions": [name]})).status == 204


async def test_a_json_body_may_start_with_a_utf8_byte_order_mark(client, case_id):
    response = await client.put(
        url(case_id, "v"),
        data=b'\xef\xbb\xbf{"value": "bom"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 204
    assert (await get(client, case_id, "v"))["value"] == "bom"


def nested_text(depth):
    return "[" * depth + "]" * depth


async def test_values_nested_deeper_than_the_bound_are_a_clear_400(client, case_id):
    info = {"objectTypeName": "a.B", "serializationDataFormat": "application/json"}
    deep = {"type": "Object", "value": nested_text(MAX_DEPTH + 1), "valueInfo": info}
    for body in (deep, {"value": json.loads(nested_text(MAX_DEPTH + 1))}):
        response = await put(client, case_id, "v", body)
        assert response.status == 400
        assert await response.json() == {
            "type": "InvalidRequestException",
            "message": f"Cannot put case execution variable v: {TOO_DEEP}",
            "code": None,
        }
    within = {"type": "Object", "value": nested_text(MAX_DEPTH), "valueInfo": info}
    assert (await put(client, case_id, "v", within)).status == 204
    listed = await get(client, case_id, None)
    assert listed["v"]["value"] == json.loads(nested_text(MAX_DEPTH))


async def test_json_bodies_nested_deeper_than_the_bound_are_a_clear_400(client, case_id):
    depth = MAX_BODY_DEPTH + 1
    for route, text in (
        (url(case_id, "v"), '{"value": "x", "junk": ' + nested_text(depth - 1) + "}"),
        (url(case_id), '{"modifications": {"v": {"value": ' + nested_text(depth - 3) + "}}}"),
        ("/case-instance", nested_text(5000)),
    ):
        method = client.put if route.endswith("/v") else client.post
        response = await method(route, data=text, headers={"Content-Type": "application/json"})
        assert response.status == 400
        assert await response.json() == {
            "type": "InvalidRequestException",
            "message": (
                f"The JSON body nests arrays and objects deeper than {MAX_BODY_DEPTH} levels"
            ),
            "code": None,
        }


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 20000])
async def test_deep_json_stored_earlier_reads_back_as_its_text(client, db, case_id, depth):
    # Written before casevars bounded depth: every read still answers, with the text.
    text = nested_text(depth)
    info = {"objectTypeName": "java.util.ArrayList", "serializationDataFormat": "application/json"}
    await db.execute(
        "INSERT INTO variable (case_instance_id, name, type, value, value_info) "
        "VALUES ($1, 'deep', 'Object', $2, $3)",
        case_id,
        text,
        info,
    )
    for flag in ("true", "false"):
        listed = await get(client, case_id, None, deserializeValues=flag)
        assert listed["deep"] == {"type": "Object", "value": text, "valueInfo": info}
        one = await get(client, case_id, "deep", deserializeValue=flag)
        assert one == {"type": "Object", "value": text, "valueInfo": info}


@pytest.mark.parametrize(
    ("info", "message"),
    [
        (
            {"filename": "a.txt", "mimeType": "text/plain\u0001"},
            (
                "Invalid mime type given: 'text/plain\u0001' is not type/subtype of RFC "
                "9110 tokens, without parameters"
            ),
        ),
        (
            {"filename": "a.txt", "mimeType": "text/plain", "encoding": "utf-8\r\nX-Evil: 1"},
            (
                "Invalid encoding given: 'utf-8\r\nX-Evil: 1' is not a charset name "
                "(an RFC 9110 token)"
            ),
        ),
        (
            {"filename": "a\nb.txt"},
            "Invalid file name given: 'a\nb.txt' is not free of control characters",
        ),
        ({"filename": "x" * 256}, "The file name is longer than 255 characters"),
    ],
)
async def test_file_metadata_no_header_can_carry_is_refused(client, db, case_id, info, message):
    body = {"type": "File", "value": base64.b64encode(b"abc").decode(), "valueInfo": info}
    for response in (
        await put(client, case_id, "f", body),
        await client.post(url(case_id), json={"modifications": {"f": body}}),
    ):
        assert response.status == 400
        assert await response.json() == {
            "type": "IllegalArgumentException",
            "message": message,
            "code": None,
        }
    assert await variable_row(db, case_id, "f") is None


async def test_file_metadata_headers_can_carry_downloads(client, case_id):
    info = {"filename": 'ünï "q" ;.txt', "mimeType": "Text/Plain", "encoding": "ISO-8859-1"}
    body = {"type": "File", "value": base64.b64encode(b"abc").decode(), "valueInfo": info}
    assert (await put(client, case_id, "f", body)).status == 204
    for method in ("GET", "HEAD"):
        async with client.session.request(
            method, client.make_url(url(case_id, "f") + "/data")
        ) as r:
            assert r.status == 200
            assert r.headers["Content-Type"] == "Text/Plain; charset=ISO-8859-1"
            assert await r.read() == (b"abc" if method == "GET" else b"")


async def test_modifications_and_deletions_are_bounded(client, case_id):
    over = MAX_MODIFICATIONS + 1
    response = await client.post(
        url(case_id), json={"modifications": {f"v{i}": {"value": i} for i in range(over)}}
    )
    assert response.status == 400
    assert await response.json() == {
        "type": "InvalidRequestException",
        "message": (
            "Cannot modify variables for case execution: At most 1000 variables can be "
            f"written in one request, not {over}"
        ),
        "code": None,
    }
    response = await client.post(url(case_id), json={"deletions": [f"v{i}" for i in range(over)]})
    assert response.status == 400
    assert await response.json() == {
        "type": "InvalidRequestException",
        "message": (
            "Cannot modify variables for case execution: At most 1000 variables can be "
            f"deleted in one request, not {over}"
        ),
        "code": None,
    }
    assert await get(client, case_id, None) == {}
    at_bound = {
        "modifications": {f"v{i}": {"value": i} for i in range(MAX_MODIFICATIONS)},
        "deletions": [f"d{i}" for i in range(MAX_DELETIONS)],
    }
    assert (await client.post(url(case_id), json=at_bound)).status == 204
    assert len(await get(client, case_id, None)) == MAX_MODIFICATIONS


async def test_a_huge_modification_body_is_refused_while_liveness_answers(client, case_id):
    # The attack of the issue: 6,000 modifications and 60,000 deletions (725 KiB) kept
    # the loop busy for 11 s with a quadratic overlap check. Now the count is refused
    # at once, and the liveness probe sent alongside is answered.
    body = orjson.dumps(
        {
            "modifications": {f"m{i}": {"value": i} for i in range(6000)},
            "deletions": [f"d{i}" for i in range(60000)],
        }
    )
    big = asyncio.ensure_future(
        client.post(url(case_id), data=body, headers={"Content-Type": "application/json"})
    )
    live = await client.get("/health/live")
    assert live.status == 200
    response = await big
    assert response.status == 400
    assert (await response.json())["message"].endswith(
        "At most 1000 variables can be written in one request, not 6000"
    )
