"""JSON text, exact: orjson where it is exact, the standard library where it is not.

orjson reads integers only between -2**63 and 2**64-1 exactly (beyond, it turns them
into floats without a word) and refuses to write larger ones, while Camunda keeps
such numbers as BigInteger objects. Any such integer has at least 19 digits.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

_LONG_DIGIT_RUN_TEXT = re.compile(r"[0-9]{19}")
_LONG_DIGIT_RUN_BYTES = re.compile(rb"[0-9]{19}")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def _finite_float(text: str) -> float:
    # The standard library reads 1e400 as infinity, which JSON cannot carry.
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"beyond the range of a double: {text}")
    return number


def loads(raw: str | bytes) -> Any:
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
