"""JSON text, exact: orjson where it is exact, the standard library where it is not.

orjson reads integers only between -2**63 and 2**64-1 exactly (beyond, it turns them
into floats without a word) and refuses to write larger ones, while Camunda keeps
such numbers as BigInteger objects. Any such integer has at least 19 digits.

Values nest arrays and objects at most MAX_DEPTH levels deep: orjson writes at most
254 levels, the standard library's parser and writer (its fallback) stop at Python's
recursion limit, and a response wraps a value in up to two levels more.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from typing import Any

import orjson

# Levels of arrays and objects in a stored value (Jackson, Camunda's parser, reads
# 1,000; orjson writes 254).
MAX_DEPTH = 200

_LONG_DIGIT_RUN_TEXT = re.compile(r"[0-9]{19}")
_LONG_DIGIT_RUN_BYTES = re.compile(rb"[0-9]{19}")
# For nests_deeper_than: an escape inside a string (\" among them), and each bracket
# as a signed byte, +1 for an opening one, -1 for a closing one.
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_BRACKET_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(range(256)).translate(None, b"[]{}")


# parse_cost's factors: orjson allocates about 14 bytes per byte of text while parsing,
# an element becomes an object of up to ~80 bytes, and a parse takes ~9 KiB at least.
_PARSE_PER_BYTE = 16
_PARSE_PER_ELEMENT = 100
_PARSE_FIXED = 16 * 1024


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def _finite_float(text: str) -> float:
    # The standard library reads 1e400 as infinity, which JSON cannot carry.
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"beyond the range of a double: {text}")
    return number


def loads(raw: str | bytes | bytearray) -> Any:
    """Parse JSON; ValueError (or RecursionError) when it is not JSON."""
    long_run = (
        _LONG_DIGIT_RUN_TEXT.search(raw)
        if isinstance(raw, str)
        else _LONG_DIGIT_RUN_BYTES.search(raw)
    )
    if long_run is None:
        return orjson.loads(raw)
    return json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)


def dumps(value: Any) -> bytes:
    """Compact JSON of value, exact for integers of any size."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode()


def parse_cost(raw: bytes | bytearray) -> int:
    """Memory, in bytes, that loads(raw) takes at most while it runs: what the parser
    allocates for the text, plus a Python object for every element (each comma, colon
    and opening bracket starts one). The factors are tracemalloc's peaks on the shapes
    that take the most, with a margin; tests/test_json_memory.py keeps them true."""
    elements = raw.count(b",") + raw.count(b":") + raw.count(b"[") + raw.count(b"{")
    return _PARSE_FIXED + _PARSE_PER_BYTE * len(raw) + _PARSE_PER_ELEMENT * elements


def nests_deeper_than(text: str | bytes | bytearray, limit: int) -> bool:
    """Whether the arrays and objects of JSON text nest more than limit levels ([] is
    one), counted on the text (brackets outside strings) at the speed of bytes methods,
    so that no parser or recursion meets the depth first."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    outside_strings = b"".join(_ESCAPE.sub(b"", raw).split(b'"')[::2])
    steps = outside_strings.translate(_BRACKET_STEPS, _NOT_BRACKETS)
    return max(itertools.accumulate(memoryview(steps).cast("b")), default=0) > limit
