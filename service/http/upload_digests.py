"""What the digest fields of a multipart upload (POST .../data) promise, and the checks
that hold the upload to them before anything is stored (RFC 9530):

- the request's Repr-Digest, and a Content-Digest or Repr-Digest header on the `data`
  part itself, are the SHA-256 of the value: the data part's bytes, which the blob
  store hashes anyway for the ETag;
- the request's Content-Digest is the SHA-256 of the whole body as sent (the multipart
  bytes), hashed on the way in only when the field is there.

A field that is not a structured dictionary, or whose sha-256 is not 32 bytes, is a 400
before any byte is read; one that names only other algorithms counts as absent."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping

from aiohttp import StreamReader, web

from service.errors import InvalidInput, UploadAborted
from service.http.digests import CONTENT_DIGEST, REPR_DIGEST, DigestMismatch, sha256_field
from service.http.pace import pace_of
from service.private_api import PulledBody

# Bytes after the form's closing delimiter (the epilogue, in practice a line end or
# nothing) read to finish the body's hash; a body that goes on longer is refused.
MAX_EPILOGUE_BYTES = 64 * 1024


@dataclasses.dataclass(frozen=True)
class ValueDigest:
    """A SHA-256 the value must have, and the field that gave it (for the message)."""

    field: str
    sha256: bytes

    def check(self, actual: bytes) -> None:
        if actual != self.sha256:
            raise DigestMismatch(self.field)


def value_digests(headers: Mapping[str, str], *, part: bool) -> tuple[ValueDigest, ...]:
    """The value digests that headers give: on the request, its Repr-Digest; on the
    `data` part, its Content-Digest and its Repr-Digest (the part's content is the
    value, so both name the same bytes)."""
    fields = (CONTENT_DIGEST, REPR_DIGEST) if part else (REPR_DIGEST,)
    found = []
    for field in fields:
        try:
            digest = sha256_field(headers, field)
        except InvalidInput as malformed:
            if not part:
                raise
            raise InvalidInput(f"The data part's {malformed.message}") from None
        if digest is not None:
            found.append(ValueDigest(f"data part's {field}" if part else field, digest))
    return tuple(found)


class HashedBody:
    """The request's body, read through a stream that hashes every byte of it as it is
    taken from the request (private_api.PulledBody): what the form is read from when
    the request has a Content-Digest. Every byte must come through stream: a request
    with one must not have its body read from the socket directly (socket_body.py)."""

    def __init__(self, request: web.Request, expected: bytes) -> None:
        self._request = request
        self._expected = expected
        self._hash = hashlib.sha256()
        self.stream: StreamReader = PulledBody(request.content, self._hash.update)

    @classmethod
    def of(cls, request: web.Request) -> HashedBody | None:
        """None when the request has no Content-Digest with a sha-256 (InvalidInput when
        its Content-Digest is malformed)."""
        expected = sha256_field(request.headers, CONTENT_DIGEST)
        if expected is None:
            return None
        if request.headers.get("Content-Encoding", "identity").strip().lower() != "identity":
            # The field is the digest of the encoded bytes, which aiohttp decodes before
            # anything here sees them: it could never be checked.
            raise InvalidInput(
                f"A {CONTENT_DIGEST} cannot be checked on a body with a Content-Encoding; "
                f"send the value's {REPR_DIGEST} instead"
            )
        return cls(request, expected)

    async def check(self) -> None:
        """After the form: read the rest of the body (at the request's pace), then
        DigestMismatch unless the whole body has the Content-Digest's SHA-256."""
        pace = pace_of(self._request)
        rest = 0
        while True:
            try:
                chunk = await pace.read(self.stream.readany())
            except ConnectionResetError as error:
                raise UploadAborted("the client closed the connection") from error
            except TimeoutError as error:
                raise UploadAborted(
                    f"the client sent nothing for {pace.read_timeout:.0f}s"
                ) from error
            if not chunk:
                break
            rest += len(chunk)
            if rest > MAX_EPILOGUE_BYTES:
                raise InvalidInput(
                    f"The body goes on for more than {MAX_EPILOGUE_BYTES} bytes after the "
                    "form's closing delimiter"
                )
        if self._hash.digest() != self._expected:
            raise DigestMismatch(CONTENT_DIGEST)
