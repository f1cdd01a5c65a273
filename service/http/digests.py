"""Integrity fields of RFC 9530: Content-Digest (the bytes of this message's content),
Repr-Digest (the whole representation: for casevars, the value) and Want-Repr-Digest.
They are Structured Field dictionaries (RFC 9651), parsed by http-sf. casevars knows
one algorithm, sha-256, the one its ETags already are; the RFC has a recipient ignore
algorithms it does not know, so a field naming only others counts as absent."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, cast

import http_sf

from service.errors import InvalidInput

CONTENT_DIGEST = "Content-Digest"
REPR_DIGEST = "Repr-Digest"
WANT_REPR_DIGEST = "Want-Repr-Digest"
SHA256 = "sha-256"


class DigestMismatch(InvalidInput):
    """The content or value that arrived does not have the digest its field gave (400)."""

    def __init__(self, field: str) -> None:
        super().__init__(
            f"The {field} {SHA256} does not match the bytes received; nothing was stored"
        )


def _dictionary(value: str) -> dict[str, tuple[Any, Any]] | None:
    """A Structured Field dictionary's members (value, parameters), or None."""
    try:
        members = http_sf.parse(value.encode("latin-1"), tltype="dictionary")
    except (ValueError, UnicodeEncodeError):
        return None
    return cast("dict[str, tuple[Any, Any]]", members) if isinstance(members, dict) else None


def sha256_field(headers: Mapping[str, str], field: str) -> bytes | None:
    """The sha-256 a Content-Digest or Repr-Digest field carries, or None. InvalidInput
    when the field is not a dictionary or its sha-256 is not a 32-byte byte sequence."""
    value = headers.get(field)
    if value is None:
        return None
    members = _dictionary(value)
    if members is None:
        raise InvalidInput(f"{field} is not a structured dictionary (RFC 9530)")
    member = members.get(SHA256)
    if member is None:
        return None
    digest = member[0]
    if not isinstance(digest, bytes) or len(digest) != 32:
        raise InvalidInput(f"{field} {SHA256} must be a byte sequence of 32 bytes, as :base64:")
    return digest


def repr_digest(sha256: bytes) -> str:
    """The Repr-Digest (or Content-Digest) value for a SHA-256."""
    return f"{SHA256}=:{base64.b64encode(sha256).decode('ascii')}:"


def wants_repr_digest(headers: Mapping[str, str]) -> bool:
    """Whether to send Repr-Digest: always, unless Want-Repr-Digest gives sha-256 a
    preference of 0 ("not acceptable"). A field casevars cannot read is ignored, as a
    preference may be."""
    value = headers.get(WANT_REPR_DIGEST)
    if value is None:
        return True
    members = _dictionary(value)
    member = None if members is None else members.get(SHA256)
    return member is None or member[0] != 0


def sha256_from_base64(text: str) -> bytes | None:
    """A 32-byte SHA-256 from plain base64 (tus's Upload-Checksum), or None."""
    try:
        digest = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return digest if len(digest) == 32 else None
