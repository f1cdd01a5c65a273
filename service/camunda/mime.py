"""MIME types as Camunda reads them from a `data` part, and the URL encoding of
Content-Disposition file names."""

from __future__ import annotations

import dataclasses
import re
from urllib.parse import quote

# RFC 2045 token characters.
_WORD = r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_MEDIA_TYPE = re.compile(rf"\s*({_WORD})/({_WORD})\s*")
# `; name=value` after the media type: a quoted value may hold `;` itself.
_PARAMETER = re.compile(rf";\s*({_WORD})\s*=\s*({_WORD}|{_QUOTED})\s*")
_EMPTY_PARAMETER = re.compile(r";\s*")


@dataclasses.dataclass(frozen=True)
class MediaType:
    essence: str  # type/subtype, lower-case, without parameters
    parameters: dict[str, str]  # names lower-case, values as sent (unquoted)


def parse(text: str) -> MediaType | None:
    """Parse `type/subtype; name=value; ...`; None when it is not a MIME type
    (Camunda then answers "Invalid mime type given")."""
    match = _MEDIA_TYPE.match(text)
    if match is None:
        return None
    parameters = {}
    position = match.end()
    while position < len(text):
        parameter = _PARAMETER.match(text, position)
        if parameter is None:
            empty = _EMPTY_PARAMETER.match(text, position)  # `text/plain;` or `;;`
            if empty is None:
                return None
            position = empty.end()
            continue
        name, value = parameter.groups()
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        parameters[name.lower()] = value
        position = parameter.end()
    return MediaType(f"{match.group(1)}/{match.group(2)}".lower(), parameters)


def url_encode(text: str) -> str:
    """Java's URLEncoder over UTF-8 (letters, digits and .-*_ kept, everything else
    %XX in upper case), except that a space becomes %20 rather than +."""
    return quote(text, safe="*", encoding="utf-8").replace("~", "%7E")
