import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from service.camunda import jsontext
from service.camunda.jsontext import MAX_DEPTH, nests_deeper_than
from service.camunda.values import (
    MAX_FILE_INFO_LENGTH,
    TOO_DEEP,
    ParsedValue,
    ShapeProblem,
    ValueProblem,
    file_info_problem,
    format_date,
    parse_date,
    parse_value,
    render_value,
    resolve_type_name,
)

INT16_MAX = 2**15 - 1
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
BIG = "java.math.BigInteger"
JAVA_FORMAT = "application/x-java-serialized-object"
NO_FILENAME = (
    "Cannot create file without filename! Please set a name into ValueInfo with key filename"
)
NO_VALUE_INFO = "Cannot create file without valueInfo."
NULL_MIME_TYPE = (
    "The provided mime type is null. Set a non-null value info property with key 'filename'"
)


def _problem(obj, name="aVariableKey"):
    with pytest.raises(ValueProblem) as caught:
        parse_value(name, obj)
    return caught.value


def _stored(obj, name="aVariableKey"):
    parsed = parse_value(name, obj)
    return parsed.type, parsed.value


def _conversion(value, type_sent, java_class):
    return f"Cannot convert value '{value}' of type '{type_sent}' to java type {java_class}"


# --- type names (3.2) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "resolved"),
    [
        ("String", "String"),
        ("string", "String"),
        ("Boolean", "Boolean"),
        ("boolean", "Boolean"),
        ("Short", "Short"),
        ("Integer", "Integer"),
        ("integer", "Integer"),
        ("Long", "Long"),
        ("Double", "Double"),
        ("Date", "Date"),
        ("Bytes", "Bytes"),
        ("bytes", "Bytes"),
        ("Null", "Null"),
        ("Object", "Object"),
        ("File", "File"),
        ("file", "File"),
        ("Json", "Json"),
        ("json", "Json"),
        ("Xml", "Xml"),
        ("xml", "Xml"),
        ("STRING", None),
        ("sTRING", None),
        ("JSON", None),
        ("Number", None),
        ("number", None),
        ("", None),
        ("X", None),
        (" String", None),
    ],
)
def test_type_names_fold_only_the_first_letter(raw, resolved):
    assert resolve_type_name(raw) == resolved


@pytest.mark.parametrize("type_sent", ["STRING", "X", "", "Number", "number", "Strin"])
def test_unknown_type_names_are_unsupported(type_sent):
    problem = _problem({"type": type_sent, "value": "x"})
    assert problem.kind == "conversion"
    assert problem.message == f"Unsupported value type '{type_sent}'"


@pytest.mark.parametrize(("type_sent", "text"), [(123, "123"), (True, "true"), (1.5, "1.5")])
def test_scalar_type_is_read_as_its_text_like_jackson_does(type_sent, text):
    assert _problem({"type": type_sent}).message == f"Unsupported value type '{text}'"


def test_lower_case_type_is_stored_under_the_output_name():
    assert _stored({"type": "integer", "value": 5}) == ("Integer", 5)


# --- shape problems ----------------------------------------------------------------


@pytest.mark.parametrize(
    "obj",
    [
        None,
        "x",
        5,
        [],
        [{"value": 1}],
        {"type": {"a": 1}},
        {"type": ["String"]},
        {"valueInfo": "x"},
        {"valueInfo": []},
        {"valueInfo": 5},
        {"type": "String", "valueInfo": True},
        {"type": "Object", "value": "x", "valueInfo": {"objectTypeName": 5}},
        {"type": "Object", "valueInfo": {"serializationDataFormat": ["a"]}},
        {"value": float("inf")},
        {"value": [1, float("nan")]},
        {"value": {"a": float("-inf")}},
        {"value": "\ud800"},
        {"type": "Json", "value": "x\udfff"},
    ],
)
def test_bodies_that_are_not_value_objects_are_shape_problems(obj):
    with pytest.raises(ShapeProblem):
        parse_value("v", obj)


def test_extra_keys_are_ignored():
    parsed = parse_value("v", {"value": "x", "type": "String", "local": False, "extra": [1]})
    assert parsed == ParsedValue("String", "x", {}, None, transient=False)


# --- values without type (3.3) ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text", ("String", "text")),
        ("", ("String", "")),
        (0, ("Integer", 0)),
        (INT32_MAX, ("Integer", INT32_MAX)),
        (-(2**31), ("Integer", -(2**31))),
        (INT32_MAX + 1, ("Long", INT32_MAX + 1)),
        (-(2**31) - 1, ("Long", -(2**31) - 1)),
        (INT64_MAX, ("Long", INT64_MAX)),
        (-(2**63), ("Long", -(2**63))),
        (1.5, ("Double", 1.5)),
        (5.0, ("Double", 5.0)),
        (1e300, ("Double", 1e300)),
        (True, ("Boolean", True)),
        (False, ("Boolean", False)),
        (None, ("Null", None)),
    ],
)
def test_inferred_primitives(value, expected):
    parsed = parse_value("v", {"value": value})
    assert (parsed.type, parsed.value) == expected
    assert parsed.value_info == {}
    assert parsed.content is None
    assert not parsed.transient
    assert type(parsed.value) is type(expected[1])


def test_absent_value_is_null():
    assert parse_value("v", {}) == ParsedValue("Null", None, {}, None, transient=False)
    assert _stored({"valueInfo": {}}) == ("Null", None)


@pytest.mark.parametrize("number", [INT64_MAX + 1, -(2**63) - 1, 2**64, 10**40, -(10**40)])
def test_integers_beyond_64_bits_become_big_integer_objects(number):
    parsed = parse_value("v", {"value": number})
    assert parsed.type == "Object"
    assert parsed.value == str(number)
    assert parsed.value_info == {
        "objectTypeName": BIG,
        "serializationDataFormat": "application/json",
    }


@pytest.mark.parametrize(
    ("value", "java_type", "text"),
    [
        ({"a": 1, "b": [True, None]}, "java.util.LinkedHashMap", '{"a":1,"b":[true,null]}'),
        ({}, "java.util.LinkedHashMap", "{}"),
        (["foo", "bar"], "java.util.ArrayList", '["foo","bar"]'),
        ([], "java.util.ArrayList", "[]"),
        ([1.5, "ü"], "java.util.ArrayList", '[1.5,"ü"]'),
        ([2**70], "java.util.ArrayList", "[1180591620717411303424]"),
        (
            {"n": -(2**65), "s": "x"},
            "java.util.LinkedHashMap",
            '{"n":-36893488147419103232,"s":"x"}',
        ),
    ],
)
def test_objects_and_arrays_become_json_objects(value, java_type, text):
    parsed = parse_value("v", {"value": value})
    assert parsed.type == "Object"
    assert parsed.value == text
    assert json.loads(parsed.value) == value
    assert parsed.value_info == {
        "objectTypeName": java_type,
        "serializationDataFormat": "application/json",
    }


def test_untyped_json_text_is_what_orjson_writes():
    value = {"k": [1, 2.5, 'x\n"y"', None, {"nested": True}]}
    assert parse_value("v", {"value": value}).value == orjson.dumps(value).decode()


@pytest.mark.parametrize(("flag", "transient"), [(True, True), (False, False)])
def test_untyped_transient(flag, transient):
    assert parse_value("v", {"value": 1, "valueInfo": {"transient": flag}}).transient is transient


@pytest.mark.parametrize("flag", ["true", 1, None, "yes"])
def test_untyped_values_ignore_a_non_boolean_transient_as_camunda_does(flag):
    parsed = parse_value("v", {"value": 1, "valueInfo": {"transient": flag}})
    assert parsed == ParsedValue("Integer", 1, {}, None, transient=False)


# --- primitive conversions (3.4) ----------------------------------------------------


@pytest.mark.parametrize(
    ("type_sent", "value", "expected"),
    [
        # String: everything prints the Java way.
        ("String", "abc", "abc"),
        ("String", "", ""),
        ("String", " padded ", " padded "),
        ("String", 123, "123"),
        ("String", -7, "-7"),
        ("String", True, "true"),
        ("String", False, "false"),
        ("String", 1.5, "1.5"),
        ("String", 5.0, "5.0"),
        ("String", 1e20, "1.0E20"),
        ("String", 1e-4, "1.0E-4"),
        ("String", 12345678.0, "1.2345678E7"),
        ("String", 2**70, "1180591620717411303424"),
        ("String", [1, "a"], "[1, a]"),
        ("String", {"a": 1, "b": [True, None]}, "{a=1, b=[true, null]}"),
        ("string", "lower", "lower"),
        # Boolean
        ("Boolean", True, True),
        ("Boolean", False, False),
        ("Boolean", "true", True),
        ("Boolean", "false", False),
        ("Boolean", "True", True),
        ("Boolean", "FALSE", False),
        ("Boolean", " true ", True),
        # Short
        ("Short", 5, 5),
        ("Short", "5", 5),
        ("Short", INT16_MAX, INT16_MAX),
        ("Short", -(2**15), -(2**15)),
        ("Short", "+12", 12),
        ("Short", "007", 7),
        # Integer
        ("Integer", 5, 5),
        ("Integer", "123", 123),
        ("Integer", " 123 ", 123),
        ("Integer", "-42", -42),
        ("Integer", INT32_MAX, INT32_MAX),
        ("Integer", -(2**31), -(2**31)),
        ("Integer", str(INT32_MAX), INT32_MAX),
        # Long
        ("Long", 5, 5),
        ("Long", "5", 5),
        ("Long", INT64_MAX, INT64_MAX),
        ("Long", -(2**63), -(2**63)),
        ("Long", str(INT64_MAX), INT64_MAX),
        ("Long", INT32_MAX + 1, INT32_MAX + 1),
        # Double
        ("Double", 5, 5.0),
        ("Double", 1.5, 1.5),
        ("Double", "1.5", 1.5),
        ("Double", "5", 5.0),
        ("Double", "-2.5e3", -2500.0),
        ("Double", "1.", 1.0),
        ("Double", ".5", 0.5),
        ("Double", "1.5d", 1.5),
        ("Double", "2f", 2.0),
        ("Double", 2**70, float(2**70)),
        ("Double", 1e300, 1e300),
    ],
)
def test_primitive_conversions(type_sent, value, expected):
    parsed = parse_value("v", {"type": type_sent, "value": value})
    assert parsed.value == expected
    assert type(parsed.value) is type(expected)
    assert parsed.value_info == {}
    assert parsed.content is None


@pytest.mark.parametrize(
    "type_sent", ["String", "Boolean", "Short", "Integer", "Long", "Double", "Date", "Bytes"]
)
@pytest.mark.parametrize("obj_value", [{"value": None}, {}])
def test_typed_null(type_sent, obj_value):
    parsed = parse_value("v", {"type": type_sent, **obj_value})
    assert parsed == ParsedValue(type_sent, None, {}, None, transient=False)


@pytest.mark.parametrize("type_sent", ["Boolean", "Short", "Integer", "Long", "Double", "Date"])
@pytest.mark.parametrize("text", ["", "   ", "null", " null "])
def test_empty_blank_or_null_text_is_a_typed_null_as_jackson_reads_it(type_sent, text):
    assert _stored({"type": type_sent, "value": text}) == (type_sent, None)


@pytest.mark.parametrize(
    ("type_sent", "value", "printed", "java_class"),
    [
        # The examples of the spec.
        ("Integer", "1abc", "1abc", "java.lang.Integer"),
        ("Short", 40000, "40000", "java.lang.Short"),
        ("Integer", 2147483648, "2147483648", "java.lang.Integer"),
        ("Boolean", "1", "1", "java.lang.Boolean"),
        ("Boolean", 1, "1", "java.lang.Boolean"),
        ("Boolean", "yes", "yes", "java.lang.Boolean"),
        # Range edges.
        ("Short", INT16_MAX + 1, "32768", "java.lang.Short"),
        ("Short", -(2**15) - 1, "-32769", "java.lang.Short"),
        ("Short", "32768", "32768", "java.lang.Short"),
        ("Integer", -(2**31) - 1, "-2147483649", "java.lang.Integer"),
        ("Integer", "2147483648", "2147483648", "java.lang.Integer"),
        ("Long", INT64_MAX + 1, "9223372036854775808", "java.lang.Long"),
        ("Long", -(2**63) - 1, "-9223372036854775809", "java.lang.Long"),
        ("Long", "9223372036854775808", "9223372036854775808", "java.lang.Long"),
        # Fractions fail for integral types, even whole ones: Java prints 5.0.
        ("Integer", 5.0, "5.0", "java.lang.Integer"),
        ("Integer", 1.5, "1.5", "java.lang.Integer"),
        ("Short", 1.0, "1.0", "java.lang.Short"),
        ("Long", 5.0, "5.0", "java.lang.Long"),
        ("Long", 1e20, "1.0E20", "java.lang.Long"),
        ("Integer", "5.0", "5.0", "java.lang.Integer"),
        ("Integer", "1e3", "1e3", "java.lang.Integer"),
        # Booleans are not numbers (Python's bool is an int: not here).
        ("Integer", True, "true", "java.lang.Integer"),
        ("Short", False, "false", "java.lang.Short"),
        ("Long", True, "true", "java.lang.Long"),
        ("Double", True, "true", "java.lang.Double"),
        # Non-numeric text and other JSON shapes.
        ("Integer", "abc", "abc", "java.lang.Integer"),
        ("Integer", "1_000", "1_000", "java.lang.Integer"),
        ("Integer", "١٢", "١٢", "java.lang.Integer"),
        ("Integer", "0x10", "0x10", "java.lang.Integer"),
        ("Integer", [1], "[1]", "java.lang.Integer"),
        ("Integer", {"a": 1}, "{a=1}", "java.lang.Integer"),
        ("Double", "abc", "abc", "java.lang.Double"),
        ("Double", "1.5.2", "1.5.2", "java.lang.Double"),
        ("Double", [1.5], "[1.5]", "java.lang.Double"),
        ("Boolean", "t", "t", "java.lang.Boolean"),
        ("Boolean", "tRUE", "tRUE", "java.lang.Boolean"),
        ("Boolean", 1.0, "1.0", "java.lang.Boolean"),
        # NaN and infinities: Jackson would take them, casevars cannot store them.
        ("Double", "NaN", "NaN", "java.lang.Double"),
        ("Double", "Infinity", "Infinity", "java.lang.Double"),
        ("Double", "-Infinity", "-Infinity", "java.lang.Double"),
        ("Double", "INF", "INF", "java.lang.Double"),
        ("Double", "1e400", "1e400", "java.lang.Double"),
        ("Double", float("inf"), "Infinity", "java.lang.Double"),
        ("Double", 10**400, "1" + "0" * 400, "java.lang.Double"),
        # Text that is not a JSON string's content (control characters, bad escapes).
        ("String", {"a": "x\\y"}, "{a=x\\y}", "java.lang.String"),
        ("Integer", "1\n", "1\n", "java.lang.Integer"),
        # Dates.
        ("Date", "2013-01-23", "2013-01-23", "java.util.Date"),
        ("Date", 5, "5", "java.util.Date"),
        ("Date", True, "true", "java.util.Date"),
        # Bytes.
        ("Bytes", "not base64!", "not base64!", "[B"),
        ("Bytes", 123, "123", "[B"),
        ("Bytes", [1], "[1]", "[B"),
    ],
)
def test_conversion_failures(type_sent, value, printed, java_class):
    problem = _problem({"type": type_sent, "value": value})
    assert problem.kind == "conversion"
    assert problem.message == _conversion(printed, type_sent, java_class)


def test_conversion_message_names_the_type_as_sent():
    problem = _problem({"type": "integer", "value": "1abc"})
    assert problem.message == _conversion("1abc", "integer", "java.lang.Integer")


def test_text_goes_through_json_string_reading_like_camunda():
    # Camunda wraps value.toString() in quotes and lets Jackson read it: escapes are
    # decoded and whatever follows an inner quote is ignored.
    assert _stored({"type": "Integer", "value": "\\u0031"}) == ("Integer", 1)
    assert _stored({"type": "Integer", "value": '12"34'}) == ("Integer", 12)
    assert _stored({"type": "String", "value": {"a": "x\\ty"}}) == ("String", "{a=x\ty}")


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        (0.001, "0.001"),
        (0.0001, "1.0E-4"),
        (1234567.0, "1234567.0"),
        (9999999.0, "9999999.0"),
        (1e7, "1.0E7"),
        (123.456, "123.456"),
        (-2.5e-10, "-2.5E-10"),
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (1.7976931348623157e308, "1.7976931348623157E308"),
        (100.0, "100.0"),
        (0.1, "0.1"),
    ],
)
def test_doubles_print_as_java_does(value, printed):
    assert _stored({"type": "String", "value": value}) == ("String", printed)
    assert _problem({"type": "Integer", "value": value}).message == _conversion(
        printed, "Integer", "java.lang.Integer"
    )


@pytest.mark.parametrize(
    "type_sent", ["String", "Boolean", "Short", "Integer", "Long", "Double", "Date", "Bytes"]
)
def test_primitive_value_info_is_ignored_except_transient(type_sent):
    info = {"filename": "a.txt", "objectTypeName": "x", "mimeType": "text/plain"}
    parsed = parse_value("v", {"type": type_sent, "value": None, "valueInfo": info})
    assert parsed.value_info == {}
    assert not parsed.transient


# --- transient -----------------------------------------------------------------------

TYPED_EXAMPLES = [
    {"type": "String", "value": "x"},
    {"type": "Integer", "value": 1},
    {"type": "Null"},
    {"type": "Bytes", "value": "QUJD"},
    {"type": "Date", "value": "2013-01-23T13:42:42.000+0200"},
    {"type": "Json", "value": "{}"},
    {"type": "Xml", "value": "<a/>"},
    {
        "type": "Object",
        "value": "[]",
        "valueInfo": {"objectTypeName": "x", "serializationDataFormat": "application/json"},
    },
    {"type": "File", "value": "QUJD", "valueInfo": {"filename": "a"}},
]


@pytest.mark.parametrize("example", TYPED_EXAMPLES)
@pytest.mark.parametrize("flag", [True, False])
def test_typed_transient(example, flag):
    info = {**example.get("valueInfo", {}), "transient": flag}
    parsed = parse_value("v", {**example, "valueInfo": info})
    assert parsed.transient is flag
    assert "transient" not in parsed.value_info


@pytest.mark.parametrize("example", TYPED_EXAMPLES)
@pytest.mark.parametrize("flag", ["true", 1, 0, None, [], {}])
def test_typed_non_boolean_transient_is_an_illegal_argument(example, flag):
    info = {**example.get("valueInfo", {}), "transient": flag}
    problem = _problem({**example, "valueInfo": info})
    assert problem.kind == "illegal_argument"
    assert problem.message == "The property 'transient' should have a value of type 'boolean'."


def test_conversion_failure_comes_before_the_transient_check():
    problem = _problem({"type": "Integer", "value": "x", "valueInfo": {"transient": "x"}})
    assert problem.kind == "conversion"


def test_unknown_type_comes_before_everything():
    problem = _problem({"type": "X", "value": [], "valueInfo": {"transient": "x"}})
    assert problem.message == "Unsupported value type 'X'"


# --- Null ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "x", 5, [1], {"a": 1}])
def test_null_type_ignores_the_value(value):
    parsed = parse_value("v", {"type": "Null", "value": value, "valueInfo": {"filename": "x"}})
    assert parsed == ParsedValue("Null", None, {}, None, transient=False)


# --- dates (3.5) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("2013-01-23T13:42:42.000+0200", "2013-01-23T11:42:42.000+0000"),
        ("2013-01-23T13:42:42.123+0000", "2013-01-23T13:42:42.123+0000"),
        ("2013-01-23T13:42:42.999-0530", "2013-01-23T19:12:42.999+0000"),
        ("2013-01-01T01:00:00.000+0200", "2012-12-31T23:00:00.000+0000"),
        ("2024-02-29T23:59:59.999-2359", "2024-03-01T23:58:59.999+0000"),
        ("0999-12-31T23:59:59.000+0000", "0999-12-31T23:59:59.000+0000"),
        ("9999-12-31T23:59:59.999+0000", "9999-12-31T23:59:59.999+0000"),
        ("  2013-01-23T13:42:42.000+0200 ", "2013-01-23T11:42:42.000+0000"),
    ],
)
def test_dates_are_stored_in_utc(text, stored):
    assert _stored({"type": "Date", "value": text}) == ("Date", stored)


@pytest.mark.parametrize(
    "text",
    [
        "2013-01-23T13:42:42+0200",  # milliseconds are mandatory
        "2013-01-23T13:42:42.000+02:00",  # no colon in the offset
        "2013-01-23T13:42:42.000Z",
        "2013-01-23T13:42:42.000",
        "2013-01-23T13:42:42.00+0200",
        "2013-01-23T13:42:42.0000+0200",
        "2013-01-23 13:42:42.000+0200",
        "2013-1-23T13:42:42.000+0200",
        "13-01-23T13:42:42.000+0200",
        "2013-13-23T13:42:42.000+0200",
        "2013-02-30T13:42:42.000+0200",
        "2013-01-23T24:00:00.000+0200",
        "2013-01-23T13:60:42.000+0200",
        "2013-01-23T13:42:60.000+0200",
        "2013-01-23T13:42:42.000+0260",
        "2013-01-23T13:42:42.000+2400",
        "0000-01-01T00:00:00.000+0000",
        "0001-01-01T00:00:00.000+0100",  # before year 1 in UTC
        "9999-12-31T23:59:59.999-0100",  # after year 9999 in UTC
        "2013-01-23T13:42:42.000+0200x",
        "٢٠١٣-01-23T13:42:42.000+0200",
        "",
    ],
)
def test_parse_date_refuses_other_forms(text):
    with pytest.raises(ValueError):
        parse_date(text)


@pytest.mark.parametrize(
    "text",
    ["2013-01-23T13:42:42+0200", "2013-01-23T13:42:42.000+02:00", "2013-01-23"],
)
def test_date_values_outside_the_pattern_fail_conversion(text):
    problem = _problem({"type": "Date", "value": text})
    assert problem.kind == "conversion"
    assert problem.message == _conversion(text, "Date", "java.util.Date")


def test_parse_date_keeps_the_instant_and_offset():
    moment = parse_date("2013-01-23T13:42:42.007+0200")
    assert moment == datetime(2013, 1, 23, 11, 42, 42, 7000, tzinfo=UTC)
    assert moment.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2013, 1, 23, 11, 42, 42, tzinfo=UTC), "2013-01-23T11:42:42.000+0000"),
        (datetime(2013, 1, 23, 11, 42, 42, 999_999, tzinfo=UTC), "2013-01-23T11:42:42.999+0000"),
        (
            datetime(2013, 1, 23, 13, 42, 42, 5000, tzinfo=timezone(timedelta(hours=2))),
            "2013-01-23T11:42:42.005+0000",
        ),
        (
            datetime(2013, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=-1))),
            "2013-01-01T01:30:00.000+0000",
        ),
        # A naive datetime is read as UTC.
        (datetime(2013, 1, 23, 11, 42, 42), "2013-01-23T11:42:42.000+0000"),  # noqa: DTZ001
        (datetime(5, 1, 2, 3, 4, 5, tzinfo=UTC), "0005-01-02T03:04:05.000+0000"),
    ],
)
def test_format_date_in_utc_with_milliseconds(moment, text):
    assert format_date(moment) == text


def test_dates_round_trip():
    text = "2021-06-30T23:59:59.321+0000"
    assert format_date(parse_date(text)) == text


# --- Bytes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "content"),
    [
        ("QUJD", b"ABC"),
        ("QUI=", b"AB"),
        ("QQ==", b"A"),
        ("", b""),
        ("  ", b""),
        ("+/+/", base64.b64decode("+/+/")),
        ("QUJD QUJD", b"ABCABC"),
        ("QUJD\r\nQUI=\n", b"ABCAB"),
        ("true", base64.b64decode("true")),
    ],
)
def test_bytes_decode_strict_base64(text, content):
    parsed = parse_value("v", {"type": "Bytes", "value": text})
    assert parsed == ParsedValue("Bytes", None, {}, content, transient=False)


@pytest.mark.parametrize(
    "text",
    [
        "QQ",  # padding is required
        "QUI",
        "QQ=",
        "Q",
        "QUJD=",
        "Q===",
        "-_-_",  # URL-safe alphabet
        "QU JD",  # white space only between groups of four
        "QUJD!",
        "QQ==QUJD",
        "ÄÖÜ=",
    ],
)
def test_bytes_refuse_bad_base64(text):
    problem = _problem({"type": "Bytes", "value": text})
    assert problem.kind == "conversion"
    assert problem.message == _conversion(text, "Bytes", "[B")


def test_bytes_accept_large_content():
    content = bytes(range(256)) * 4096
    text = base64.b64encode(content).decode()
    assert parse_value("v", {"type": "Bytes", "value": text}).content == content


# --- File ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "content"),
    [
        ("QUJD", b"ABC"),
        ("QUI", b"AB"),  # missing padding tolerated
        ("QQ", b"A"),
        ("QUJDR", b"ABC"),  # six lone bits make no byte
        ("QU JD\n", b"ABC"),
        ("Q!U@J#D", b"ABC"),  # anything outside the alphabet is skipped
        ("QUI=QUJD", b"AB"),  # decoding stops at the first '='
        ("-_-_", base64.b64decode("+/+/")),  # URL-safe alphabet too
        ("", b""),
    ],
)
def test_file_decodes_base64_leniently(text, content):
    parsed = parse_value("v", {"type": "File", "value": text, "valueInfo": {"filename": "a"}})
    assert parsed == ParsedValue("File", None, {"filename": "a"}, content, transient=False)


def test_file_keeps_its_metadata():
    info = {
        "filename": "my report.txt",
        "mimeType": "text/plain",
        "encoding": "UTF-8",
        "mimetype": "ignored/casing",
        "other": 1,
    }
    parsed = parse_value("v", {"type": "file", "value": "QUJD", "valueInfo": info})
    assert parsed.type == "File"
    assert parsed.value is None
    assert parsed.value_info == {
        "filename": "my report.txt",
        "mimeType": "text/plain",
        "encoding": "UTF-8",
    }


def test_file_filename_may_be_empty_or_not_text():
    parsed = parse_value("v", {"type": "File", "value": "", "valueInfo": {"filename": ""}})
    assert parsed.value_info == {"filename": ""}
    parsed = parse_value("v", {"type": "File", "value": "", "valueInfo": {"filename": 12}})
    assert parsed.value_info == {"filename": "12"}


def test_file_with_null_value_has_no_content():
    parsed = parse_value("v", {"type": "File", "valueInfo": {"filename": "a"}})
    assert parsed == ParsedValue("File", None, {"filename": "a"}, None, transient=False)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"type": "File", "value": "QUJD"}, NO_VALUE_INFO),
        (
            {"type": "File", "value": "QUJD", "valueInfo": None},
            "Cannot create file without valueInfo.",
        ),
        (
            {"type": "File", "value": "QUJD", "valueInfo": {}},
            NO_FILENAME,
        ),
        (
            {"type": "File", "value": "QUJD", "valueInfo": {"filename": None, "mimeType": "a/b"}},
            NO_FILENAME,
        ),
        (
            {"type": "File", "value": "QUJD", "valueInfo": {"fileName": "a"}},
            NO_FILENAME,
        ),
        (
            {"type": "File", "value": 5, "valueInfo": {"filename": "a"}},
            "Provided value is not of File, InputStream or byte[] type.",
        ),
        (
            {"type": "File", "value": "", "valueInfo": {"filename": "a", "mimeType": None}},
            # Camunda's text names 'filename' for the mime type (sic).
            NULL_MIME_TYPE,
        ),
        (
            {"type": "File", "value": "", "valueInfo": {"filename": "a", "encoding": None}},
            "The provided encoding is null. Set a non-null value info property with key 'encoding'",
        ),
        # valueInfo is checked before the value.
        ({"type": "File", "value": 5}, NO_VALUE_INFO),
    ],
)
def test_file_refusals_are_illegal_arguments(obj, message):
    problem = _problem(obj)
    assert problem.kind == "illegal_argument"
    assert problem.message == message


# --- Object (3.7) --------------------------------------------------------------------


def test_object_is_stored_verbatim():
    info = {"objectTypeName": "foo.Bar", "serializationDataFormat": "application/xml"}
    parsed = parse_value("v", {"type": "Object", "value": "<bar> x </bar>", "valueInfo": info})
    assert parsed == ParsedValue("Object", "<bar> x </bar>", info, None, transient=False)


@pytest.mark.parametrize("data_format", ["application/json", "application/xml", "text/x-own"])
def test_object_accepts_any_named_format_but_java(data_format):
    info = {"objectTypeName": "a.B", "serializationDataFormat": data_format}
    assert parse_value("v", {"type": "object", "value": "x", "valueInfo": info}).value == "x"


def test_object_without_value_or_value_info_is_an_object_null():
    assert parse_value("v", {"type": "Object"}) == ParsedValue(
        "Object", None, {}, None, transient=False
    )


@pytest.mark.parametrize(
    "info",
    [
        {"objectTypeName": "a.B"},
        {"serializationDataFormat": "application/json"},
        {"objectTypeName": None, "serializationDataFormat": None},
    ],
)
def test_object_null_needs_neither_name_nor_format(info):
    parsed = parse_value("v", {"type": "Object", "value": None, "valueInfo": info})
    assert parsed.value is None
    assert parsed.value_info == {k: v for k, v in info.items() if v is not None}


@pytest.mark.parametrize("type_sent", ["Object", "object", "Json", "json", "Xml", "xml"])
@pytest.mark.parametrize("value", [5, 1.5, True, False, [], ["a"], {}, {"a": 1}])
def test_serializable_values_must_be_null_or_text(type_sent, value):
    problem = _problem({"type": type_sent, "value": value})
    assert problem.kind == "conversion"
    assert problem.message == (
        f"Must provide 'null' or String value for value of SerializableValue type '{type_sent}'."
    )


def test_object_without_type_name():
    problem = _problem(
        {
            "type": "Object",
            "value": '["foo"]',
            "valueInfo": {"serializationDataFormat": "application/json"},
        },
        name="aVariableKey",
    )
    assert problem.kind == "engine"
    assert problem.message == (
        "Cannot write serialized value for variable 'aVariableKey': "
        "no 'objectTypeName' provided for non-null value."
    )


def test_object_without_format():
    problem = _problem({"type": "Object", "value": "x", "valueInfo": {"objectTypeName": "a.B"}})
    assert problem.kind == "engine"
    assert problem.message.startswith("Cannot find serializer for value")
    assert problem.message.endswith(".")
    assert "objectTypeName=a.B" in problem.message


@pytest.mark.parametrize("value", ["rO0AB", None])
def test_object_in_java_format_is_prohibited(value):
    info = {
        "objectTypeName": "a.B",
        "serializationDataFormat": "application/x-java-serialized-object",
    }
    problem = _problem({"type": "Object", "value": value, "valueInfo": info}, name="myVar")
    assert problem.kind == "engine"
    assert problem.message == (
        "ENGINE-17007 Cannot set variable with name myVar. Java serialization format is prohibited"
    )


@pytest.mark.parametrize(
    ("info", "start"),
    [
        # The spec's order: objectTypeName, then the format, then Java serialization.
        ({}, "Cannot write serialized value"),
        ({"serializationDataFormat": JAVA_FORMAT}, "Cannot write"),
        ({"objectTypeName": "a.B"}, "Cannot find serializer"),
    ],
)
def test_object_checks_follow_the_spec_order(info, start):
    assert _problem({"type": "Object", "value": "x", "valueInfo": info}).message.startswith(start)


def test_object_transient_check_comes_before_engine_checks():
    problem = _problem({"type": "Object", "value": "x", "valueInfo": {"transient": "no"}})
    assert problem.kind == "illegal_argument"


# --- Json and Xml (3.8) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_sent", "value"),
    [
        ("Json", '{"a": [1, 2]}'),
        ("json", "not even json"),
        ("Xml", "<a><b/></a>"),
        ("xml", ""),
        ("Json", None),
        ("Xml", None),
    ],
)
def test_json_and_xml_are_stored_as_text(type_sent, value):
    info = {"objectTypeName": "ignored", "serializationDataFormat": "ignored"}
    parsed = parse_value("v", {"type": type_sent, "value": value, "valueInfo": info})
    expected_type = type_sent[0].upper() + type_sent[1:]
    assert parsed == ParsedValue(expected_type, value, {}, None, transient=False)


# --- what is stored is storable -------------------------------------------------------


@pytest.mark.parametrize(
    "obj",
    [
        {"value": "x"},
        {"value": 2**64},
        {"value": {"a": [1, 2.5, None]}},
        {"type": "Double", "value": "1e-300"},
        {"type": "Date", "value": "2013-01-23T13:42:42.000+0200"},
        {"type": "File", "value": "QUJD", "valueInfo": {"filename": {"odd": ["name"]}}},
    ],
)
def test_parsed_values_are_plain_json(obj):
    parsed = parse_value("v", obj)
    orjson.dumps(parsed.value)
    orjson.dumps(parsed.value_info)
    assert type(parsed.value_info) is dict


# --- rendering -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_name", "value"),
    [
        ("String", "x"),
        ("String", None),
        ("Boolean", True),
        ("Short", 5),
        ("Integer", -5),
        ("Long", INT64_MAX),
        ("Double", 1.5),
        ("Date", "2013-01-23T11:42:42.000+0000"),
        ("Null", None),
        ("Json", '{"a": 1}'),
        ("Xml", "<a/>"),
        ("Json", None),
    ],
)
@pytest.mark.parametrize("deserialize", [True, False])
def test_render_plain_values(type_name, value, deserialize):
    assert render_value(type_name, value, {}, deserialize=deserialize) == {
        "type": type_name,
        "value": value,
        "valueInfo": {},
    }


@pytest.mark.parametrize(("stored", "shown"), [(5, 5.0), (10**18, 1e18), (2.5, 2.5), (None, None)])
def test_render_double_is_always_a_double(stored, shown):
    rendered = render_value("Double", stored, {}, deserialize=True)
    assert rendered["value"] == shown
    assert type(rendered["value"]) is type(shown)


def test_render_drops_value_info_of_primitives():
    rendered = render_value("String", "x", {"transient": True, "x": 1}, deserialize=True)
    assert rendered["valueInfo"] == {}


@pytest.mark.parametrize(
    ("content", "text"),
    [(b"ABC", "QUJD"), (b"", ""), (b"\xff\xfe", "//4="), (bytes(range(256)) * 3, None)],
)
def test_render_bytes_inline(content, text):
    rendered = render_value("Bytes", None, {}, deserialize=True, content=content, size=len(content))
    expected = text if text is not None else base64.b64encode(content).decode()
    assert rendered == {"type": "Bytes", "value": expected, "valueInfo": {}}
    assert "\n" not in rendered["value"]


def test_render_null_bytes():
    assert render_value("Bytes", None, {}, deserialize=False) == {
        "type": "Bytes",
        "value": None,
        "valueInfo": {},
    }


def test_render_bytes_too_large_to_inline():
    url = "/case-instance/c1/variables/big/data"
    rendered = render_value("Bytes", None, {}, deserialize=True, size=5_000_000, data_url=url)
    assert rendered == {
        "type": "Bytes",
        "value": None,
        "valueInfo": {"size": 5_000_000, "dataUrl": url},
    }


@pytest.mark.parametrize("deserialize", [True, False])
def test_render_file_never_shows_content(deserialize):
    info = {"filename": "a.txt", "mimeType": "text/plain", "encoding": "UTF-8"}
    rendered = render_value("File", None, info, deserialize=deserialize, content=b"ABC")
    assert rendered == {"type": "File", "value": None, "valueInfo": info}
    assert render_value("File", None, {"filename": "b"}, deserialize=True)["valueInfo"] == {
        "filename": "b"
    }


JSON_INFO = {"objectTypeName": "java.util.ArrayList", "serializationDataFormat": "application/json"}
XML_INFO = {"objectTypeName": "a.B", "serializationDataFormat": "application/xml"}


@pytest.mark.parametrize(
    ("stored", "info", "deserialize", "shown"),
    [
        ('["foo","bar"]', JSON_INFO, True, ["foo", "bar"]),
        ('["foo","bar"]', JSON_INFO, False, '["foo","bar"]'),
        ('{"a": {"b": null}}', JSON_INFO, True, {"a": {"b": None}}),
        ("12345678901234567890123", JSON_INFO, True, 12345678901234567890123),
        ("-9223372036854775809", JSON_INFO, True, -9223372036854775809),
        ("[18446744073709551616, 1.5]", JSON_INFO, True, [18446744073709551616, 1.5]),
        ("0.1234567890123456789", JSON_INFO, True, 0.1234567890123456789),
        ("not json", JSON_INFO, True, "not json"),
        ("[NaN]", JSON_INFO, True, "[NaN]"),
        ("[1e400]", JSON_INFO, True, "[1e400]"),
        ("[12345678901234567890, 1e400]", JSON_INFO, True, "[12345678901234567890, 1e400]"),
        ("<b/>", XML_INFO, True, "<b/>"),
        ("<b/>", XML_INFO, False, "<b/>"),
        ("[1]", {"objectTypeName": "a.B", "serializationDataFormat": "text/json"}, True, "[1]"),
        ('"x"', {"objectTypeName": "a.B"}, True, '"x"'),
        (None, JSON_INFO, True, None),
        (None, {}, True, None),
    ],
)
def test_render_object_deserialize_matrix(stored, info, deserialize, shown):
    rendered = render_value("Object", stored, info, deserialize=deserialize)
    assert rendered == {"type": "Object", "value": shown, "valueInfo": info}
    assert type(rendered["value"]) is type(shown)


def test_render_object_value_info_only_when_set():
    info = {"objectTypeName": "a.B", "serializationDataFormat": None, "transient": False}
    rendered = render_value("Object", "x", info, deserialize=False)
    assert rendered["valueInfo"] == {"objectTypeName": "a.B"}


@pytest.mark.parametrize(
    ("obj", "deserialized"),
    [
        ({"value": ["foo", "bar"]}, ["foo", "bar"]),
        ({"value": {"a": 1}}, {"a": 1}),
        ({"value": 2**64}, 2**64),
        ({"value": -(2**70)}, -(2**70)),
        ({"value": [2**80, 0.5]}, [2**80, 0.5]),
    ],
)
def test_untyped_objects_round_trip(obj, deserialized):
    parsed = parse_value("v", obj)
    shown = render_value(parsed.type, parsed.value, parsed.value_info, deserialize=True)
    assert shown["value"] == deserialized
    raw = render_value(parsed.type, parsed.value, parsed.value_info, deserialize=False)
    assert raw["value"] == parsed.value


@pytest.mark.parametrize(
    "obj",
    [
        {"value": "x"},
        {"type": "Short", "value": 7},
        {"type": "Date", "value": "2013-01-23T13:42:42.000+0200"},
        {"type": "Json", "value": "[1]"},
        {"type": "Boolean", "value": "false"},
    ],
)
def test_parsed_values_render_back(obj):
    parsed = parse_value("v", obj)
    rendered = render_value(parsed.type, parsed.value, parsed.value_info, deserialize=True)
    assert rendered == {"type": parsed.type, "value": parsed.value, "valueInfo": {}}


# --- hostile values: depth, File metadata that becomes headers, NUL -----------------


def _nested(depth, inner=1):
    value = inner
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("text", "limit", "deeper"),
    [
        ("1", 0, False),
        ("[]", 0, True),
        ("[]", 1, False),
        ("[[]]", 1, True),
        ('{"a": [{"b": []}]}', 3, True),
        ('{"a": [{"b": []}]}', 4, False),
        ('["[[[[", "{{{{"]', 1, False),  # brackets inside strings do not count
        (r'["\"[[[", [[]]]', 2, True),  # nor after an escaped quote
        (r'["\"[[[", [[]]]', 3, False),
        (r'["\\", [[]]]', 3, False),  # an escaped backslash ends before the quote
        ("[" * 1000 + "]" * 1000, 999, True),
        ("[" * 1000 + "]" * 1000, 1000, False),
        ("[[]," * 300 + "]" * 300, 301, False),  # wide, not deep
    ],
)
def test_nests_deeper_than_counts_brackets_outside_strings(text, limit, deeper):
    assert nests_deeper_than(text, limit) is deeper
    assert nests_deeper_than(text.encode(), limit) is deeper


def test_untyped_values_deeper_than_the_bound_are_refused():
    parsed = parse_value("v", {"value": _nested(MAX_DEPTH)})
    assert parsed.type == "Object"
    problem = _problem({"value": _nested(MAX_DEPTH + 1)})
    assert (problem.kind, problem.message) == ("conversion", TOO_DEEP)
    assert TOO_DEEP == "The value nests arrays and objects deeper than 200 levels"


def test_object_json_text_deeper_than_the_bound_is_refused():
    deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    info = {"objectTypeName": "a.B", "serializationDataFormat": "application/json"}
    problem = _problem({"type": "Object", "value": deep, "valueInfo": info})
    assert (problem.kind, problem.message) == ("conversion", TOO_DEEP)
    within = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert parse_value("v", {"type": "Object", "value": within, "valueInfo": info}).value == within
    # Text in another format is opaque, and so are Json values, which are never parsed.
    xml_info = {"objectTypeName": "a.B", "serializationDataFormat": "application/xml"}
    assert parse_value("v", {"type": "Object", "value": deep, "valueInfo": xml_info}).value == deep
    assert parse_value("v", {"type": "Json", "value": deep}).value == deep


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 5000])
def test_deep_object_json_stored_earlier_is_shown_as_its_text(depth):
    # Stored before the bound: shown as text, which a response can always carry.
    deep = "[" * depth + "]" * depth
    rendered = render_value("Object", deep, JSON_INFO, deserialize=True)
    assert rendered["value"] == deep
    jsontext.dumps({"v": rendered})


def test_object_json_at_the_bound_renders_parsed():
    text = "[" * MAX_DEPTH + "1" + "]" * MAX_DEPTH
    rendered = render_value("Object", text, JSON_INFO, deserialize=True)
    assert rendered["value"] == _nested(MAX_DEPTH - 1, [1])
    # A listing wraps it in two levels more; orjson still writes it.
    orjson.dumps({"name": rendered})


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("filename", ""),
        ("filename", "my report (final).pdf"),
        ("filename", 'ünïcødé \u2028 "quoted" ; , \\.txt'),
        ("filename", "x" * MAX_FILE_INFO_LENGTH),
        ("mimeType", "text/plain"),
        ("mimeType", "Application/vnd.example+json"),
        ("mimeType", "a/" + "b" * (MAX_FILE_INFO_LENGTH - 2)),
        ("encoding", "UTF-8"),
        ("encoding", "iso-8859-1"),
        ("encoding", "x-mac_roman!#$%&'*+.^`|~"),
    ],
)
def test_file_info_that_headers_can_carry(key, text):
    assert file_info_problem(key, text) is None


@pytest.mark.parametrize(
    ("key", "text", "message"),
    [
        (
            "filename",
            "a\x01b",
            "Invalid file name given: 'a\x01b' is not free of control characters",
        ),
        ("filename", "a\r\nSet-Cookie: x", None),
        ("filename", "tab\t", None),
        ("filename", "del\x7f", None),
        ("filename", "c1\x85", None),
        ("filename", "x" * 256, "The file name is longer than 255 characters"),
        (
            "mimeType",
            "text/plain\x01",
            (
                "Invalid mime type given: 'text/plain\x01' is not type/subtype of RFC 9110 "
                "tokens, without parameters"
            ),
        ),
        ("mimeType", "text/plain; charset=UTF-8", None),
        ("mimeType", "text", None),
        ("mimeType", "", None),
        ("mimeType", "text/pläin", None),
        ("mimeType", " text/plain", None),
        ("mimeType", "text/plain/x", None),
        (
            "mimeType",
            "a/" + "b" * MAX_FILE_INFO_LENGTH,
            "The mime type is longer than 255 characters",
        ),
        (
            "encoding",
            "utf-8\x01",
            "Invalid encoding given: 'utf-8\x01' is not a charset name (an RFC 9110 token)",
        ),
        ("encoding", "utf 8", None),
        ("encoding", "", None),
        ("encoding", '"utf-8"', None),
        ("encoding", "utf-8; q=1", None),
        ("encoding", "x" * 256, "The encoding is longer than 255 characters"),
    ],
)
def test_file_info_that_headers_cannot_carry(key, text, message):
    problem = file_info_problem(key, text)
    assert problem is not None
    if message is not None:
        assert problem == message


def test_file_value_with_bad_metadata_is_an_illegal_argument():
    for info in (
        {"filename": "a\x01"},
        {"filename": "a", "mimeType": "text/plain\r\nX: y"},
        {"filename": "a", "encoding": "utf\x008"},
        {"filename": "a", "mimeType": 5},  # its text, '5', is no type/subtype
    ):
        problem = _problem({"type": "File", "value": "QUJD", "valueInfo": info})
        assert problem.kind == "illegal_argument"
        assert problem.message.startswith(("Invalid ", "The "))
    # Camunda's own refusals come first.
    problem = _problem(
        {"type": "File", "value": "", "valueInfo": {"filename": "a\x01", "mimeType": None}}
    )
    assert problem.message == NULL_MIME_TYPE


@pytest.mark.parametrize(
    "obj",
    [
        {"value": "\\u0000"},  # the six characters, not NUL
        {"value": {"a": "\u0000"}},  # stored as JSON text, where NUL is the escape \u0000
        {"type": "Object", "value": '"\\u0000"', "valueInfo": JSON_INFO},
    ],
)
def test_escaped_nul_in_text_is_no_nul(obj):
    parsed = parse_value("v", obj)
    assert "\x00" not in parsed.value
    assert "\\u0000" in parsed.value


@pytest.mark.parametrize(
    "obj",
    [
        {"value": "a\u0000"},
        {"type": "Json", "value": "\u0000"},
        {"type": "Object", "value": "1", "valueInfo": {**JSON_INFO, "objectTypeName": "a\u0000"}},
    ],
)
def test_nul_in_stored_text_is_refused(obj):
    problem = _problem(obj)
    assert problem.message == "Values cannot contain the NUL character (\\u0000)"
