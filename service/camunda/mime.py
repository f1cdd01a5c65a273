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
_PARAMETER = re.compile(rf"\s*({_WORD})\s*=\s*({_WORD}|{_QUOTED})\s*")


@dataclasses.dataclass(frozen=True)
class MediaType:
    essence: str  # type/subtype, lower-case, without parameters
    parameters: dict[str, str]  # names lower-case, values as sent (unquoted)


def parse(text: str) -> MediaType | None:
    """Parse `type/subtype; name=value; ...`; None when it is not a MIME type
    (Camunda then answers "Invalid mime type given")."""
    head, *rest = text.split(";")
    match = _MEDIA_TYPE.fullmatch(head)
    if match is None:
        return None
    parameters = {}
    for item in rest:
        if not item.strip():
            continue
        parameter = _PARAMETER.fullmatch(item)
        if parameter is None:
            return None
        name, value = parameter.groups()
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        parameters[name.lower()] = value
    return MediaType(f"{match.group(1)}/{match.group(2)}".lower(), parameters)


def url_encode(text: str) -> str:
    """Java's URLEncoder over UTF-8 (letters, digits and .-*_ kept, everything else
    %XX in upper case), except that a space becomes %20 rather than +."""
    return quote(text, safe="*", encoding="utf-8").replace("~", "%7E")
