"""jsontext.parse_cost is what the memory budget takes for a JSON body before parsing it:
it must be at least what parsing really allocates, for the shapes that allocate the
most per byte (measured with tracemalloc, which sees orjson's and Python's allocations)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable

import pytest

from service.camunda import jsontext

# A number of 20 digits sends the text to the standard library's parser (jsontext).
LONG = b"12345678901234567890"


def _array(item: bytes) -> Callable[[int], bytes]:
    return lambda n: b"[" + b",".join([item] * n) + b"]"


def _joined(template: bytes, n: int) -> bytes:
    return b",".join(template % i for i in range(n))


SHAPES: dict[str, Callable[[int], bytes]] = {
    "empty objects": _array(b"{}"),
    "empty arrays": _array(b"[]"),
    "one-element arrays": _array(b"[1]"),
    "small integers": _array(b"1"),
    "floats": _array(b"1.5"),
    "booleans": _array(b"true"),
    "one-character strings": _array(b'"a"'),
    "escaped strings": _array(b'"\\u00e9"'),
    "objects of one key": _array(b'{"a":1}'),
    "objects of distinct keys": lambda n: b"[" + _joined(b'{"%d":1}', n) + b"]",
    "one object of many keys": lambda n: b"{" + _joined(b'"k%d":1', n) + b"}",
    "one long string": lambda n: b'"' + b"a" * 4 * n + b'"',
    "one long escaped string": lambda n: b'"' + b"\\u00e9" * n + b'"',
    "long integers (standard library)": _array(LONG),
    "empty objects (standard library)": lambda n: b"[" + LONG + b"," + _array(b"{}")(n)[1:],
    "many keys (standard library)": lambda n: b"[" + LONG + b",{" + _joined(b'"k%d":1', n) + b"}]",
    "strings (standard library)": lambda n: b"[" + LONG + b"," + _array(b'"a"')(n)[1:],
    "UTF-8 text (standard library)": lambda n: b"[" + LONG + b',"' + "é".encode() * n + b'"]',
}


def _parse_peak(raw: bytearray) -> int:
    tracemalloc.start()
    try:
        parsed = jsontext.loads(raw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del parsed
    return peak


@pytest.mark.parametrize("count", [1, 1_000, 100_000])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_parse_cost_is_at_least_what_parsing_allocates(shape: str, count: int) -> None:
    raw = bytearray(SHAPES[shape](count))
    peak = _parse_peak(raw)
    assert peak <= jsontext.parse_cost(raw), f"{shape}: {peak} bytes for {len(raw)} of text"


def test_parse_cost_counts_each_element_and_byte() -> None:
    assert jsontext.parse_cost(b"[1,2]") < jsontext.parse_cost(b"[1,2,3]")
    assert jsontext.parse_cost(b'"aa"') < jsontext.parse_cost(b'"aaa"')
    assert jsontext.parse_cost(bytearray(b"{}")) == jsontext.parse_cost(b"{}")
