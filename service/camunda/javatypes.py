"""The syntax of the canonical Java type names a serialized object is stored under,
such as java.util.ArrayList<java.lang.Object> or java.util.Map<java.lang.String, ?>[]:
dotted identifiers, optional <type, ...> arguments (wildcards with extends or super
bounds included), optional [] suffixes."""

from __future__ import annotations

import re

_IDENTIFIER = r"[A-Za-z_$][A-Za-z0-9_$]*"
_NAME = re.compile(rf"{_IDENTIFIER}(?:\.{_IDENTIFIER})*")
_WILDCARD_BOUND = re.compile(r"\s+(?:extends|super)\s+")


def is_java_type_name(text: str) -> bool:
    stripped = text.strip()
    return _parse_type(stripped, 0) == len(stripped)


def _parse_type(text: str, position: int) -> int:
    """Index after the type starting at position, or -1 if there is none."""
    if text.startswith("?", position):
        position += 1
        bound = _WILDCARD_BOUND.match(text, position)
        if bound is None:
            return position
        position = bound.end()
    match = _NAME.match(text, position)
    if match is None:
        return -1
    position = match.end()
    if text.startswith("<", position):
        while True:
            position = _parse_type(text, _skip_spaces(text, position + 1))
            if position < 0:
                return -1
            position = _skip_spaces(text, position)
            if text.startswith(",", position):
                continue
            if not text.startswith(">", position):
                return -1
            position += 1
            break
    while text.startswith("[]", position):
        position += 2
    return position


def _skip_spaces(text: str, position: int) -> int:
    while position < len(text) and text[position] == " ":
        position += 1
    return position
