"""Camunda's value types (String, the numbers, Date, Json, Xml, Object, Bytes, File...):
a request value object in, what casevars stores out, and a stored variable back into
Camunda's JSON value object. Pure: no I/O.

Camunda converts a typed value by writing the JSON value's Java `toString()` between
quotes and letting Jackson read that JSON string as the target class; the helpers
below reproduce that path (Jackson's trimming, its "empty or 'null' means null", Java's
number and collection texts) so that values and messages match Camunda's.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal

import orjson

from service.camunda import jsontext

ProblemKind = Literal["conversion", "engine", "illegal_argument"]

INT16 = (-(2**15), 2**15 - 1)
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)

JSON_FORMAT = "application/json"
JAVA_FORMAT = "application/x-java-serialized-object"
NO_FILE_VALUE_INFO = "Cannot create file without valueInfo."
NO_FILENAME = (
    "Cannot create file without filename! Please set a name into ValueInfo with key filename"
)
NOT_FILE_CONTENT = "Provided value is not of File, InputStream or byte[] type."
# Camunda's text names 'filename' where it means 'mimeType' (sic).
NULL_MIME_TYPE = (
    "The provided mime type is null. Set a non-null value info property with key 'filename'"
)
NULL_ENCODING = (
    "The provided encoding is null. Set a non-null value info property with key 'encoding'"
)
NON_BOOLEAN_TRANSIENT = "The property 'transient' should have a value of type 'boolean'."
TOO_DEEP = f"The value nests arrays and objects deeper than {jsontext.MAX_DEPTH} levels"

# A File's filename, mimeType and encoding become download headers (Content-Type,
# Content-Disposition), so casevars refuses what no header can carry where Camunda
# stores it and fails its downloads: the media type must be RFC 9110 tokens
# type/subtype (no parameters), the encoding a token (a charset name), the file name
# free of control characters; each at most this many characters.
MAX_FILE_INFO_LENGTH = 255

# The value types by the REST names Camunda prints (GET responses, the OpenAPI enum).
TYPE_NAMES = (
    "String",
    "Boolean",
    "Short",
    "Integer",
    "Long",
    "Double",
    "Date",
    "Null",
    "Bytes",
    "File",
    "Object",
    "Json",
    "Xml",
)
# Camunda's internal (lower-case-first) type names -> the REST names it prints.
# 'number' is abstract: Camunda cannot store it, so casevars calls it unknown.
_TYPE_NAMES = {name[0].lower() + name[1:]: name for name in TYPE_NAMES}

# The Java class named in "Cannot convert value ..." for each primitive type.
_JAVA_CLASSES = {
    "String": "java.lang.String",
    "Boolean": "java.lang.Boolean",
    "Short": "java.lang.Short",
    "Integer": "java.lang.Integer",
    "Long": "java.lang.Long",
    "Double": "java.lang.Double",
    "Date": "java.util.Date",
    "Bytes": "[B",
}

# Java's String.trim() removes every character up to U+0020, not Unicode white space.
_JAVA_BLANK = "".join(chr(code) for code in range(0x21))
# ASCII digits only: Python's \d and int() also take other scripts' digits.
_INTEGRAL = re.compile(r"[+-]?[0-9]+")
# Java's Double.parseDouble syntax in decimal (hexadecimal floats are not accepted).
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fFdD]?")
# Jackson's base64 reader: standard alphabet, padding required, characters up to
# U+0020 skipped before each group of four (so line-wrapped MIME text passes).
_STRICT_BASE64 = re.compile(
    r"(?:[\x00-\x20]*[A-Za-z0-9+/]{4})*"
    r"(?:[\x00-\x20]*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=))?[\x00-\x20]*"
)
_DROP_BLANKS = dict.fromkeys(range(0x21))
_TCHARS = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
# A File's valueInfo key -> (what it is called, its syntax, the rule in words).
_FILE_INFO_RULES = {
    "filename": ("file name", re.compile(r"[^\x00-\x1f\x7f-\x9f]*"), "free of control characters"),
    "mimeType": (
        "mime type",
        re.compile(rf"{_TCHARS}/{_TCHARS}"),
        "type/subtype of RFC 9110 tokens, without parameters",
    ),
    "encoding": ("encoding", re.compile(_TCHARS), "a charset name (an RFC 9110 token)"),
}
_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/]")
_URL_SAFE_TO_STANDARD = str.maketrans("-_", "+/")
# yyyy-MM-dd'T'HH:mm:ss.SSSZ, e.g. 2013-01-23T13:42:42.000+0200.
_DATE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{3})"
    r"([+-])([0-9]{2})([0-9]{2})"
)
_JSON_STRING = json.JSONDecoder()
# A \ud800-\udfff escape: how JSON text spells a (possibly lone) surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class ValueProblem(Exception):
    """A value object Camunda would refuse. `kind` decides how the HTTP layer wraps `message`:

    "conversion": REST-layer conversion error (InvalidRequestException; PUT prefixes
        'Cannot put case execution variable {name}: ', modify prefixes
        'Cannot modify variables for case execution: ').
    "engine": raised by the engine (RestException; PUT prefix as above, modify prefix
        'Cannot modify variables for case execution {id}: ').
    "illegal_argument": IllegalArgumentException, message used as is.
    """

    def __init__(self, message: str, *, kind: ProblemKind) -> None:
        super().__init__(message)
        self.message = message
        self.kind: ProblemKind = kind


class ShapeProblem(Exception):
    """The body does not have the shape of a value object (or holds JSON casevars cannot
    store). Camunda answers such bodies with 400 InvalidRequestException and an EMPTY
    message, as Jackson's mapping errors reach clients through Camunda's REST layer; the
    exception text is only a hint for logs."""


@dataclasses.dataclass(frozen=True)
class ParsedValue:
    """What a write stores for one variable."""

    type: str
    # JSON-storable: str/int/float/bool/None. Date: canonical UTC text. Object/Json/Xml:
    # the serialized text. Bytes/File: None (the content is separate).
    value: Any
    # File: filename, mimeType, encoding; Object: objectTypeName, serializationDataFormat.
    value_info: dict[str, Any]
    # Bytes and File content; None for a null Bytes/File value.
    content: bytes | None
    transient: bool


def resolve_type_name(raw: str) -> str | None:
    """Camunda's lookup: lower-case only the first character; None when unknown."""
    if not raw:
        return None
    return _TYPE_NAMES.get(raw[0].lower() + raw[1:])


def parse_value(name: str, obj: Any) -> ParsedValue:
    """Convert one request value object the way Camunda does.

    Raises ValueProblem with Camunda's inner message (the caller adds the prefix) and
    ShapeProblem when obj is not shaped like a value object.
    """
    if not isinstance(obj, dict):
        raise ShapeProblem("a value object must be a JSON object")
    type_raw = _type_field(obj.get("type"))
    info = _value_info_field(obj.get("valueInfo"))
    value = obj.get("value")
    try:
        if type_raw is None:
            parsed = _parse_untyped(value, info)
        else:
            parsed = _parse_typed(name, type_raw, value, info)
    except RecursionError:
        raise ShapeProblem("the value is nested too deeply") from None
    _check_storable(parsed)
    return parsed


def render_value(  # noqa: PLR0913 - the stored columns plus how to show binary content
    type: str,  # noqa: A002 - the name of the JSON key it fills
    value: Any,
    value_info: Mapping[str, Any],
    *,
    deserialize: bool,
    content: bytes | None = None,
    size: int | None = None,
    data_url: str | None = None,
) -> dict[str, Any]:
    """The {"type", "value", "valueInfo"} object of GET responses for a stored variable.

    Bytes: content given -> its base64; neither content nor size -> a null value; only
    size -> value null and valueInfo {"size", "dataUrl"} (the content is too large to
    inline and is served at data_url: a casevars deviation).
    """
    if type == "Bytes":
        return _render_bytes(content, size, data_url)
    if type == "File":
        return _rendered("File", None, _pick(value_info, ("filename", "mimeType", "encoding")))
    if type == "Object":
        info = _pick(value_info, ("objectTypeName", "serializationDataFormat"))
        shown = value
        if deserialize and value is not None and info.get("serializationDataFormat") == JSON_FORMAT:
            shown = _deserialize_json(value)
        return _rendered("Object", shown, info)
    if type == "Double" and value is not None:
        # jsonb prints whole doubles such as 1e18 as integers; Camunda prints a double.
        return _rendered("Double", float(value), {})
    return _rendered(type, value, {})


def parse_date(text: str) -> datetime:
    """A datetime from exactly yyyy-MM-dd'T'HH:mm:ss.SSSZ; ValueError otherwise."""
    match = _DATE.fullmatch(text)
    if match is None:
        raise ValueError(f"not a date in the format yyyy-MM-dd'T'HH:mm:ss.SSSZ: {text!r}")
    year, month, day, hour, minute, second, millis = (
        int(part) for part in match.group(1, 2, 3, 4, 5, 6, 7)
    )
    sign, offset_hours, offset_minutes = match.group(8), int(match.group(9)), int(match.group(10))
    if offset_minutes > 59:
        raise ValueError(f"not a time zone offset: {text[-5:]!r}")
    offset = timedelta(hours=offset_hours, minutes=offset_minutes)
    zone = timezone(-offset if sign == "-" else offset)
    moment = datetime(year, month, day, hour, minute, second, millis * 1000, tzinfo=zone)
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"date out of range in UTC: {text!r}") from None
    return moment


def format_date(moment: datetime) -> str:
    """The instant in UTC as yyyy-MM-dd'T'HH:mm:ss.SSS+0000; a naive datetime is UTC."""
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond // 1000:03d}+0000"
    )


# --- the value object's fields ----------------------------------------------------


def _type_field(raw: Any) -> str | None:
    if raw is None or isinstance(raw, str):
        return raw
    # Jackson reads a JSON number or boolean into a String property as its text.
    if isinstance(raw, bool | int | float):
        return _java_text(raw)
    raise ShapeProblem("type must be a string")


def _value_info_field(raw: Any) -> dict[str, Any] | None:
    if raw is None or isinstance(raw, dict):
        return raw
    raise ShapeProblem("valueInfo must be a JSON object")


def _transient(info: Mapping[str, Any] | None) -> bool:
    """Camunda's isTransient: absent is False, present must be a boolean (null is not)."""
    if info is None or "transient" not in info:
        return False
    flag = info["transient"]
    if not isinstance(flag, bool):
        raise ValueProblem(NON_BOOLEAN_TRANSIENT, kind="illegal_argument")
    return flag


# --- untyped values ------------------------------------------------------------------


def _parse_untyped(value: Any, info: Mapping[str, Any] | None) -> ParsedValue:
    # Camunda's untyped path reads `transient` only when it is a boolean and ignores any
    # other value (VariableValueDto.toTypedValue); only typed values refuse it.
    flag = info.get("transient") if info is not None else None
    transient = flag if isinstance(flag, bool) else False
    type_name, stored, value_info = _infer(value)
    return ParsedValue(type_name, stored, value_info, None, transient)


def _infer(value: Any) -> tuple[str, Any, dict[str, Any]]:
    """(type, stored value, valueInfo) for a JSON value as Jackson would have typed it."""
    if value is None:
        return "Null", None, {}
    if isinstance(value, bool):
        return "Boolean", value, {}
    if isinstance(value, str):
        return "String", value, {}
    if isinstance(value, int):
        return _infer_integer(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ShapeProblem("a number beyond the range of a double")
        return "Double", value, {}
    if isinstance(value, dict | list):
        java_type = "java.util.LinkedHashMap" if isinstance(value, dict) else "java.util.ArrayList"
        text = _dump_json(value)
        if jsontext.nests_deeper_than(text, jsontext.MAX_DEPTH):
            raise ValueProblem(TOO_DEEP, kind="conversion")
        return "Object", text, _object_info(java_type)
    raise ShapeProblem(f"not a JSON value: {type(value).__name__}")


def _infer_integer(value: int) -> tuple[str, Any, dict[str, Any]]:
    if INT32[0] <= value <= INT32[1]:
        return "Integer", value, {}
    if INT64[0] <= value <= INT64[1]:
        return "Long", value, {}
    try:
        digits = str(value)
    except ValueError:  # beyond Python's int-to-text limit; no JSON parser yields it
        raise ShapeProblem("an integer with too many digits") from None
    return "Object", digits, _object_info("java.math.BigInteger")


def _object_info(java_type: str) -> dict[str, Any]:
    return {"objectTypeName": java_type, "serializationDataFormat": JSON_FORMAT}


# --- typed values (3.4, 3.7, 3.8) ---------------------------------------------------


def _parse_typed(
    name: str, type_raw: str, value: Any, info: Mapping[str, Any] | None
) -> ParsedValue:
    resolved = resolve_type_name(type_raw)
    if resolved is None:
        raise ValueProblem(f"Unsupported value type '{type_raw}'", kind="conversion")
    if resolved in _CONVERTERS:
        return _parse_primitive(resolved, type_raw, value, info)
    if resolved == "Null":
        # The spec ignores a Null value's `value` (Camunda tries, and fails, to convert it).
        return ParsedValue("Null", None, {}, None, _transient(info))
    if resolved == "File":
        return _parse_file(value, info)
    return _parse_serializable(name, resolved, type_raw, value, info)


def _parse_primitive(
    resolved: str, type_raw: str, value: Any, info: Mapping[str, Any] | None
) -> ParsedValue:
    converted = None
    if value is not None:
        try:
            converted = _CONVERTERS[resolved](value)
        except ValueError:
            raise ValueProblem(
                f"Cannot convert value '{_java_text(value)}' of type '{type_raw}' "
                f"to java type {_JAVA_CLASSES[resolved]}",
                kind="conversion",
            ) from None
    # Camunda converts first and reads `transient` while creating the value.
    transient = _transient(info)
    if resolved == "Bytes":
        return ParsedValue("Bytes", None, {}, converted, transient)
    return ParsedValue(resolved, converted, {}, None, transient)


def _parse_file(value: Any, info: Mapping[str, Any] | None) -> ParsedValue:
    # Checks in the order of Camunda's FileValueTypeImpl.createValue.
    if info is None:
        raise ValueProblem(NO_FILE_VALUE_INFO, kind="illegal_argument")
    filename = info.get("filename")
    if filename is None:
        raise ValueProblem(NO_FILENAME, kind="illegal_argument")
    content = None
    if isinstance(value, str):
        content = _decode_base64_lenient(value)
    elif value is not None:
        raise ValueProblem(NOT_FILE_CONTENT, kind="illegal_argument")
    # A null value is a File without content here (the brief's rule); Camunda refuses
    # it with NOT_FILE_CONTENT.
    value_info = {"filename": _java_text(filename)}
    for key, message in (("mimeType", NULL_MIME_TYPE), ("encoding", NULL_ENCODING)):
        if key in info:
            if info[key] is None:
                raise ValueProblem(message, kind="illegal_argument")
            value_info[key] = _java_text(info[key])
    for key, text in value_info.items():
        problem = file_info_problem(key, text)
        if problem is not None:
            raise ValueProblem(problem, kind="illegal_argument")
    return ParsedValue("File", None, value_info, content, _transient(info))


def file_info_problem(key: str, text: str) -> str | None:
    """Why text cannot be a File's `filename`, `mimeType` or `encoding` (key), or None
    when it can: the rules above MAX_FILE_INFO_LENGTH."""
    what, syntax, rule = _FILE_INFO_RULES[key]
    if len(text) > MAX_FILE_INFO_LENGTH:
        return f"The {what} is longer than {MAX_FILE_INFO_LENGTH} characters"
    if not syntax.fullmatch(text):
        return f"Invalid {what} given: '{text}' is not {rule}"
    return None


def _parse_serializable(
    name: str, resolved: str, type_raw: str, value: Any, info: Mapping[str, Any] | None
) -> ParsedValue:
    if value is not None and not isinstance(value, str):
        raise ValueProblem(
            "Must provide 'null' or String value for value of SerializableValue type "
            f"'{type_raw}'.",
            kind="conversion",
        )
    if resolved != "Object":  # Json, Xml: the document text, opaque
        return ParsedValue(resolved, value, {}, None, _transient(info))
    value_info = _object_value_info(info)
    transient = _transient(info)
    _check_object(name, value, value_info, transient=transient)
    if (
        value is not None
        and value_info.get("serializationDataFormat") == JSON_FORMAT
        and jsontext.nests_deeper_than(value, jsontext.MAX_DEPTH)
    ):
        raise ValueProblem(TOO_DEEP, kind="conversion")
    return ParsedValue("Object", value, value_info, None, transient)


def _object_value_info(info: Mapping[str, Any] | None) -> dict[str, Any]:
    value_info: dict[str, Any] = {}
    for key in ("objectTypeName", "serializationDataFormat"):
        text = info.get(key) if info is not None else None
        if text is None:
            continue
        if not isinstance(text, str):
            # Camunda casts these to String and fails with a ClassCastException (500).
            raise ShapeProblem(f"valueInfo.{key} must be a string")
        value_info[key] = text
    return value_info


def _check_object(
    name: str, value: str | None, value_info: Mapping[str, Any], *, transient: bool
) -> None:
    """The engine's refusals of a serialized Object.

    Checked in the order the spec lists them. Camunda itself looks for a serializer (the
    format checks) before it asks for objectTypeName, so a value lacking both gets the
    serializer message there and the objectTypeName message here.
    """
    data_format = value_info.get("serializationDataFormat")
    if value is not None and "objectTypeName" not in value_info:
        raise ValueProblem(
            f"Cannot write serialized value for variable '{name}': "
            "no 'objectTypeName' provided for non-null value.",
            kind="engine",
        )
    if value is not None and data_format is None:
        # Camunda prints its ObjectValue's toString() here; this is the same shape.
        description = (
            "ObjectValue [value=null, isDeserialized=false, serializationDataFormat=null, "
            f"objectTypeName={value_info.get('objectTypeName')}, "
            f"serializedValue={len(value)} chars, isTransient={_java_text(transient)}]"
        )
        raise ValueProblem(f"Cannot find serializer for value '{description}'.", kind="engine")
    if data_format == JAVA_FORMAT:
        # Java serialization is refused even for a null value, as in Camunda.
        raise ValueProblem(
            f"ENGINE-17007 Cannot set variable with name {name}. "
            "Java serialization format is prohibited",
            kind="engine",
        )


# --- conversions of primitive values -------------------------------------------------
# Each takes a non-null JSON value and returns the stored form, or raises ValueError.


def _to_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    return _read_json_string(_java_text(value))


def _to_boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = _scalar_text(value)
    if text is None:
        return None
    # Jackson accepts these three spellings of each (databind#1852), nothing else.
    if text in {"true", "True", "TRUE"}:
        return True
    if text in {"false", "False", "FALSE"}:
        return False
    raise ValueError(text)


def _integral(bounds: tuple[int, int]) -> Callable[[Any], int | None]:
    def convert(value: Any) -> int | None:
        # A float such as 5.0 fails: its Java text "5.0" is not an integer for Jackson,
        # so Camunda refuses it, and so do we.
        text = _scalar_text(value)
        if text is None:
            return None
        if not _INTEGRAL.fullmatch(text):
            raise ValueError(text)
        number = int(text)
        if not bounds[0] <= number <= bounds[1]:
            raise ValueError(text)
        return number

    return convert


def _to_double(value: Any) -> float | None:
    if isinstance(value, float):
        number = value
    else:
        text = _scalar_text(value)
        if text is None:
            return None
        # Refuses "NaN" and "Infinity" too: Jackson takes them, but neither JSON nor
        # jsonb can hold them, so casevars answers with the conversion failure.
        if not _DECIMAL.fullmatch(text):
            raise ValueError(text)
        number = float(text.rstrip("fFdD"))
    if not math.isfinite(number):  # e.g. 1e400, which overflows
        raise ValueError(value)
    return number


def _to_date(value: Any) -> str | None:
    # Jackson trims the text and reads "" or "null" as null; the date itself must then
    # match the pattern exactly, where Camunda's SimpleDateFormat is lenient.
    text = _scalar_text(value)
    if text is None:
        return None
    return format_date(parse_date(text))


def _to_bytes(value: Any) -> bytes:
    text = value if isinstance(value, str) else _java_text(value)
    if not _STRICT_BASE64.fullmatch(text):
        raise ValueError("not base64")
    return base64.b64decode(text.translate(_DROP_BLANKS), validate=True)


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "String": _to_string,
    "Boolean": _to_boolean,
    "Short": _integral(INT16),
    "Integer": _integral(INT32),
    "Long": _integral(INT64),
    "Double": _to_double,
    "Date": _to_date,
    "Bytes": _to_bytes,
}


def _scalar_text(value: Any) -> str | None:
    """The text Jackson parses for a scalar target: value.toString() read as a JSON
    string, trimmed; None where Jackson yields null (empty, blank or the word null)."""
    text = _read_json_string(_java_text(value)).strip(_JAVA_BLANK)
    if not text or text == "null":
        return None
    return text


def _read_json_string(text: str) -> str:
    """Jackson reading '"' + text + '"': escapes decoded, control characters refused,
    and anything after an inner quote ignored (trailing tokens are not an error)."""
    decoded, _ = _JSON_STRING.raw_decode(f'"{text}"')
    assert isinstance(decoded, str)
    return decoded


def _java_text(value: Any) -> str:
    """What Java's toString() prints for the object Jackson made of a JSON value."""
    parts: list[str] = []
    _java_parts(value, parts)
    return "".join(parts)


def _java_parts(value: Any, parts: list[str]) -> None:
    # Pieces joined once at the end: nested lists copied level by level would cost
    # their text times their depth.
    if value is None or isinstance(value, bool):
        parts.append(str(value).lower() if value is not None else "null")
    elif isinstance(value, float):
        parts.append(_java_double(value))
    elif isinstance(value, list):
        parts.append("[")
        for index, item in enumerate(value):
            parts.append(", " if index else "")
            _java_parts(item, parts)
        parts.append("]")
    elif isinstance(value, dict):
        parts.append("{")
        for index, (key, item) in enumerate(value.items()):
            parts.append(f", {key}=" if index else f"{key}=")
            _java_parts(item, parts)
        parts.append("}")
    else:
        parts.append(str(value))  # str and int print as themselves


def _java_double(number: float) -> str:
    """Java's Double.toString: plain between 10^-3 and 10^7, else d.dddE<n>."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if number == 0:
        return "-0.0" if math.copysign(1.0, number) < 0 else "0.0"
    sign = "-" if number < 0 else ""
    # repr gives the shortest digits that read back to the same double, as Java 19+ does.
    _, digit_tuple, exponent = Decimal(repr(abs(number))).normalize().as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + exponent  # digits before the decimal point
    if 1e-3 <= abs(number) < 1e7:
        if point <= 0:
            text = "0." + "0" * -point + digits
        elif point >= len(digits):
            text = digits + "0" * (point - len(digits)) + ".0"
        else:
            text = digits[:point] + "." + digits[point:]
    else:
        text = f"{digits[0]}.{digits[1:] or '0'}E{point - 1}"
    return sign + text


def _decode_base64_lenient(text: str) -> bytes:
    """Camunda's File decoding (Apache commons-codec): skips every character outside
    the alphabet, takes both alphabets, stops at the first '=', padding optional."""
    data = _NOT_BASE64.sub("", text.split("=", 1)[0].translate(_URL_SAFE_TO_STANDARD))
    if len(data) % 4 == 1:  # six lone bits make no byte
        data = data[:-1]
    return base64.b64decode(data + "=" * (-len(data) % 4))


# --- JSON text ----------------------------------------------------------------------


def _dump_json(value: Any) -> str:
    """Compact JSON text of a parsed JSON object or array, exact for any integer."""
    try:
        text = orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        # orjson refuses integers beyond 64 bits (and lone surrogates, caught later).
        try:
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except ValueError:
            raise ShapeProblem("a number beyond the range of a double") from None
    # orjson writes NaN and infinities as null; such a value did not round-trip.
    if "null" in text and orjson.loads(text) != value:
        raise ShapeProblem("a number beyond the range of a double")
    return text


def _deserialize_json(text: Any) -> Any:
    """The stored JSON text parsed; text that is not JSON is shown as stored, since
    Camunda would have stored it too and casevars never fails a read over it."""
    if not isinstance(text, str):
        return text
    if jsontext.nests_deeper_than(text, jsontext.MAX_DEPTH):
        # Stored before casevars bounded depth: shown as text, not nested past what a
        # response can carry.
        return text
    try:
        parsed = jsontext.loads(text)
    except (ValueError, RecursionError):
        return text
    if _SURROGATE_ESCAPE.search(text):
        # The standard library's parser (jsontext's fallback for long integers) reads
        # lone surrogates, which no UTF-8 response can carry: show the text instead.
        try:
            jsontext.dumps(parsed)
        except (ValueError, RecursionError):
            return text
    return parsed


def _check_storable(parsed: ParsedValue) -> None:
    # jsonb goes through orjson (db.py), which refuses lone surrogates; the standard
    # library's JSON parser, the HTTP layer's fallback, lets them in.
    try:
        orjson.dumps(parsed.value)
        orjson.dumps(parsed.value_info)
    except orjson.JSONEncodeError:
        raise ShapeProblem("text that is not valid Unicode") from None
    # Postgres text and jsonb cannot hold the NUL character. The value is a scalar or
    # text, valueInfo a map of texts.
    texts = [parsed.value, *parsed.value_info, *parsed.value_info.values()]
    if any(isinstance(text, str) and "\x00" in text for text in texts):
        raise ValueProblem("Values cannot contain the NUL character (\\u0000)", kind="conversion")


# --- rendering ----------------------------------------------------------------------


def _render_bytes(content: bytes | None, size: int | None, data_url: str | None) -> dict[str, Any]:
    if content is not None:
        return _rendered("Bytes", base64.b64encode(content).decode("ascii"), {})
    if size is None:
        return _rendered("Bytes", None, {})
    return _rendered("Bytes", None, {"size": size, "dataUrl": data_url})


def _rendered(type_name: str, value: Any, value_info: dict[str, Any]) -> dict[str, Any]:
    return {"type": type_name, "value": value, "valueInfo": value_info}


def _pick(value_info: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: value_info[key] for key in keys if value_info.get(key) is not None}
