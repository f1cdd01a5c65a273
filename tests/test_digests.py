"""The resumable SHA-256 and the RFC 9530 field helpers, against hashlib and the RFC's
own examples."""

from __future__ import annotations

import base64
import hashlib
import mmap
import os

import pytest

from service.errors import InvalidInput
from service.http import digests
from service.storage.sha256state import ResumableSha256, StateError


@pytest.mark.parametrize("sizes", [[0], [1], [63, 1], [64, 64], [1000, 5, 70000], [3 << 20]])
def test_saved_and_restored_state_gives_hashlibs_digest(sizes: list[int]) -> None:
    chunks = [os.urandom(size) for size in sizes]
    hasher = ResumableSha256()
    done = 0
    for chunk in chunks:
        hasher.update(chunk)
        done += len(chunk)
        # Every chunk continues from a saved state, as a PATCH on another replica would.
        hasher = ResumableSha256.restore(hasher.save(), length=done)
    assert hasher.length == done
    assert hasher.digest() == hashlib.sha256(b"".join(chunks)).digest()


def test_digest_does_not_end_the_hash() -> None:
    hasher = ResumableSha256()
    hasher.update(b"abc")
    assert hasher.digest() == hashlib.sha256(b"abc").digest()
    hasher.update(bytearray(b"def"))
    assert hasher.digest() == hashlib.sha256(b"abcdef").digest()


def test_buffers_of_every_kind_hash_alike() -> None:
    data = os.urandom(10_000)
    buffer = mmap.mmap(-1, len(data))
    buffer[:] = data
    mapped = memoryview(buffer)
    for piece in (data, bytearray(data), memoryview(data)[1:], mapped[1:], buffer):
        hasher = ResumableSha256()
        hasher.update(piece)
        expected = data if len(piece) == len(data) else data[1:]
        assert hasher.digest() == hashlib.sha256(expected).digest()
    mapped.release()
    buffer.close()  # no view of it is left behind by update()


@pytest.mark.parametrize(
    ("state", "length"),
    [(b"", 0), (b"\x02" + bytes(112), 0), (ResumableSha256().save()[:-1], 0)],
)
def test_states_that_do_not_restore_are_refused(state: bytes, length: int) -> None:
    with pytest.raises(StateError):
        ResumableSha256.restore(state, length=length)


def test_a_state_for_another_length_is_refused() -> None:
    hasher = ResumableSha256()
    hasher.update(b"x" * 100)
    with pytest.raises(StateError, match="covers 100 bytes"):
        ResumableSha256.restore(hasher.save(), length=99)


# RFC 9530 appendix B: the digest of {"hello": "world"}.
RFC_CONTENT = b'{"hello": "world"}'
RFC_FIELD = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"


def test_a_field_from_the_rfc_reads_as_its_sha256() -> None:
    expected = hashlib.sha256(RFC_CONTENT).digest()
    assert digests.sha256_field({"Content-Digest": RFC_FIELD}, "Content-Digest") == expected
    assert digests.repr_digest(expected) == RFC_FIELD


def test_unknown_algorithms_are_ignored() -> None:
    field = "sha-512=:" + base64.b64encode(bytes(64)).decode() + ":, unixsum=1"
    assert digests.sha256_field({"Repr-Digest": field}, "Repr-Digest") is None
    assert digests.sha256_field({}, "Repr-Digest") is None


@pytest.mark.parametrize(
    "field",
    ["===", "sha-256=:abc", "sha-256=abc", "sha-256=1", "sha-256=:" + "A" * 4 + ":", "sha-256=é"],
)
def test_malformed_fields_are_invalid_input(field: str) -> None:
    with pytest.raises(InvalidInput, match="Repr-Digest"):
        digests.sha256_field({"Repr-Digest": field}, "Repr-Digest")


@pytest.mark.parametrize(
    ("want", "sent"),
    [
        (None, True),
        ("sha-256=1", True),
        ("sha-512=3, sha-256=0", False),
        ("sha-512=1", True),
        ("??", True),
    ],
)
def test_want_repr_digest_can_only_turn_sha256_off(want: str | None, sent: bool) -> None:
    headers = {} if want is None else {"Want-Repr-Digest": want}
    assert digests.wants_repr_digest(headers) is sent


def test_tus_checksums_are_plain_base64() -> None:
    digest = hashlib.sha256(b"x").digest()
    assert digests.sha256_from_base64(base64.b64encode(digest).decode()) == digest
    assert digests.sha256_from_base64("not base64!") is None
    assert digests.sha256_from_base64(base64.b64encode(b"short").decode()) is None
