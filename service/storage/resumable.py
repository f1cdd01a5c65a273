"""Resumable uploads (tus): one value that arrives over many requests, possibly on many
replicas, and is committed into its variable like a finished multipart upload.

An upload moves through three states, all of them in its Postgres row (upload_rows.py):
receiving (offset < length), received (offset = length: every byte is in S3 parts or in
the row's tail) and committed. A request (a PATCH) takes the row's lease, streams its
body through the part machinery of blobstore.py (buffers from the memory budget, parts
in flight, hashing in a worker thread) and checkpoints after each part S3 confirms:
offset, parts, tail and the saved SHA-256 state in one UPDATE. A body that ends early
(the client went away) keeps what arrived, as the tail. A body with a checksum is all or
nothing: it is checkpointed only once it is verified.

Finishing goes received -> committed: the tail becomes the last part (or the only
object), CompleteMultipartUpload, then the repository's write in one transaction that
also marks the upload committed. Every step of it can be repeated: a finish that failed
(S3 or Postgres down) is retried by the next request on the upload (HEAD included).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from service.config import part_size_for
from service.errors import Unavailable, UploadAborted
from service.storage.blobstore import (
    Blob,
    BlobStore,
    PartBuffer,
    PartSent,
    PartSession,
    ValueSource,
    counted,
    finish_even_if_cancelled,
)
from service.storage.lifecycle import new_blob_key
from service.storage.repository import LostPendingBlob, NewValue, NoSuchCaseInstance, Repository
from service.storage.sha256state import ResumableSha256
from service.storage.upload_rows import (
    Checkpoint,
    NewUpload,
    UploadGone,
    UploadRow,
    UploadRows,
)

log = structlog.get_logger("casevars.resumable")

if TYPE_CHECKING:
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef


class OffsetMismatch(Exception):
    """The request's Upload-Offset is not the upload's offset (409)."""

    def __init__(self, offset: int) -> None:
        super().__init__(offset)
        self.offset = offset


class PastLength(Exception):
    """Bytes or a length beyond what the upload may hold (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


class LengthConflict(Exception):
    """An Upload-Length that contradicts the upload's (set already, or below its offset)."""


class BodyMismatch(Exception):
    """A PATCH body's checksum does not match its bytes; nothing of it was kept."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


class ValueMismatch(Exception):
    """The whole value's SHA-256 is not the one the client gave; the upload is discarded."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


class CaseGone(Exception):
    """The case instance was deleted or closed before the value could be committed; the
    upload is discarded."""


class TooManyUploads(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


@dataclasses.dataclass(frozen=True)
class BodyCheck:
    """A digest of one PATCH body (Upload-Checksum or Content-Digest) and its field."""

    field: str
    sha256: bytes


@dataclasses.dataclass(frozen=True)
class Patch:
    """What a request adds to an upload."""

    offset: int  # where the client says its bytes start
    source: ValueSource  # the body: chunks, or read into the part buffers (socket_body.py)
    size_hint: int | None = None  # the body's Content-Length
    length: int | None = None  # Upload-Length, for an upload created without one
    checks: Sequence[BodyCheck] = ()
    value_sha256: bytes | None = None  # Repr-Digest: the whole value's, checked at the end
    value_field: str = "Repr-Digest"


@dataclasses.dataclass(frozen=True)
class Progress:
    offset: int
    expires_at: datetime
    committed: bool


class ResumableUploads:
    """Creating, continuing, finishing and terminating uploads."""

    def __init__(  # noqa: PLR0913 - collaborators and knobs, keyword-only
        self,
        rows: UploadRows,
        store: BlobStore,
        repository: Repository,
        *,
        prefix: str,
        expiry_seconds: float,
        max_open: int,
        max_bytes: int,
    ) -> None:
        self.rows = rows
        self._store = store
        self._repository = repository
        self._prefix = prefix
        self._expiry_seconds = expiry_seconds
        self._max_open = max_open
        # The largest value: the setting, or what parts that fit the memory budget hold.
        self.max_bytes = min(max_bytes, store.largest_value)

    async def create(self, new: NewUpload, *, create_case_instance: bool) -> UploadRow:
        """TooManyUploads at the cap; NoSuchCase (upload_rows) for an unknown case."""
        if new.length is not None and new.length > self.max_bytes:
            raise PastLength(self.max_bytes)
        # Counted before the insert: replicas creating at once may pass the cap by a few.
        if await self.rows.count_open() >= self._max_open:
            raise TooManyUploads(self._max_open)
        return await self.rows.create(
            new,
            blob_key=new_blob_key(self._prefix),
            expiry_seconds=self._expiry_seconds,
            create_case_instance=create_case_instance,
        )

    @contextlib.asynccontextmanager
    async def _leased(self, upload_id: str, case_id: str, name: str) -> AsyncIterator[_Lease]:
        """The upload's lease for this request, renewed while it runs and released after
        (a release that fails is harmless: the lease runs out)."""
        token = uuid.uuid4().hex
        row = await self.rows.lease(
            upload_id, case_id, name, token, expiry_seconds=self._expiry_seconds
        )
        renewing = asyncio.create_task(self._renew(row.id, token))
        try:
            yield _Lease(row, token)
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            with contextlib.suppress(Exception):
                await finish_even_if_cancelled(self.rows.release(row.id, token))

    async def _renew(self, upload_id: str, token: str) -> None:
        """Until the lease is gone (the request's next checkpoint then says so); a
        renewal Postgres fails is tried again at the next turn."""
        while True:
            await asyncio.sleep(self.rows.renew_seconds)
            try:
                await self.rows.renew(upload_id, token)
            except UploadGone:
                return
            except Unavailable:
                log.warning("upload.lease_not_renewed", upload_id=upload_id)

    async def head(self, upload_id: str, case_id: str, name: str) -> UploadRow:
        """The upload as HEAD shows it. An upload that has every byte but is not committed
        (its finish failed) is finished first, so that offset = length always means
        the value is stored."""
        row = await self.rows.get(upload_id, case_id, name)
        if row.length is not None and row.offset == row.length and not row.committed:
            async with self._leased(upload_id, case_id, name) as lease:
                if not lease.row.committed:
                    await self._finish_stored(lease)
            row = await self.rows.get(upload_id, case_id, name)
        return row

    async def patch(
        self,
        upload_id: str,
        case_id: str,
        name: str,
        patch: Patch,
        *,
        resumed: Callable[[int], None],
    ) -> Progress:
        """Add the body at patch.offset; commits the value when the upload is complete.
        resumed hears the bytes received at an offset above 0."""
        async with self._leased(upload_id, case_id, name) as lease:
            row = lease.row
            if row.offset != patch.offset:
                raise OffsetMismatch(row.offset)
            if patch.length is not None:
                row = await self._set_length(lease, patch.length)
            if row.length is not None and row.offset == row.length:
                if patch.size_hint:
                    raise PastLength(row.length)
                if not row.committed:
                    await self._finish_stored(lease)
                return Progress(row.length, row.expires_at, committed=True)
            limit = self.max_bytes if row.length is None else row.length
            if patch.size_hint is not None and row.offset + patch.size_hint > limit:
                raise PastLength(limit)
            source = counted(patch.source, resumed) if row.offset > 0 else patch.source
            offset = await _Request(self, lease, row, patch, limit).run(source)
            return Progress(offset, row.expires_at, committed=offset == row.length)

    async def _set_length(self, lease: _Lease, length: int) -> UploadRow:
        row = lease.row
        if row.length is not None:
            if length != row.length:
                raise LengthConflict(f"The upload's length is {row.length} already")
            return row
        if length < row.offset:
            raise LengthConflict(f"The upload has {row.offset} bytes already")
        if length > self.max_bytes:
            raise PastLength(self.max_bytes)
        await self.rows.set_length(row.id, lease.token, length)
        return dataclasses.replace(row, length=length)

    async def terminate(self, upload_id: str, case_id: str, name: str) -> None:
        """Delete the upload (tus termination), once no request works on it. A
        committed upload only goes away: its value stays the variable's."""
        async with self._leased(upload_id, case_id, name) as lease:
            row = lease.row
            await self.rows.delete(row.id, lease.token)
            if row.s3_upload_id is not None and row.blob_key is not None:
                await self._abort_quietly(row.blob_key, row.s3_upload_id)

    async def _abort_quietly(self, key: str, s3_upload_id: str) -> None:
        """Abort a multipart upload; if S3 fails, the collector's sweep aborts it later."""
        with contextlib.suppress(Exception):
            await finish_even_if_cancelled(self._store.abort_upload(key, s3_upload_id))

    # --- finishing --------------------------------------------------------------

    async def _finish_stored(self, lease: _Lease) -> None:
        """Finish a received upload from what its row holds (a finish that failed
        before): complete the object unless S3 has it whole already, then commit."""
        row = lease.row
        assert row.blob_key is not None
        assert row.length is not None
        tail = await self.rows.tail(row.id)
        sha256 = _restored(row)
        sha256.update(tail)
        if await self._store.size_of(row.blob_key) != row.length:
            session = self.session(row)
            try:
                buffer = await session.buffers.take(max(1, len(tail)))
                buffer[: len(tail)] = tail
                hashed = await session.hasher.add(buffer, len(tail))
                await session.uploader.finish(buffer, len(tail), hashed, _completed(row.parts))
            finally:
                await finish_even_if_cancelled(session.hasher.settled())
                session.buffers.close()
        await self.commit(lease, sha256.digest())

    @property
    def part_size(self) -> int:
        return self._store.part_size

    def session(self, row: UploadRow) -> PartSession:
        """The part machinery for a request on the upload, where its parts left off."""
        assert row.blob_key is not None
        return self._store.part_session(
            row.blob_key,
            upload_id=row.s3_upload_id,
            parts_sent=len(row.parts),
            sha256=_restored(row),
        )

    async def commit(self, lease: _Lease, sha256: bytes) -> None:
        """The repository's write of a finished multipart upload, in one transaction
        that also marks the upload committed. CaseGone (the upload is discarded) when
        the case instance went meanwhile; UploadGone when the upload did."""
        row = lease.row
        assert row.blob_key is not None
        assert row.length is not None
        if row.expected_sha256 is not None and row.expected_sha256 != sha256:
            await self.discard(row, lease.token)
            raise ValueMismatch("Repr-Digest")
        new = NewValue(
            type=row.value_type,
            value_info=row.value_info,
            blob=Blob(row.blob_key, row.length, sha256),
        )
        step = UploadRows.committing(row.id, lease.token, expiry_seconds=self._expiry_seconds)
        try:
            await self._repository.write_variables(
                row.case_id, {row.variable_name: new}, incarnation=row.incarnation, then=step
            )
        except NoSuchCaseInstance:
            await self.discard(row, lease.token)
            raise CaseGone(row.case_id) from None
        except (LostPendingBlob, UploadGone):
            await finish_even_if_cancelled(self._store.delete_many([row.blob_key]))
            raise UploadGone(row.id) from None
        log.info("upload.committed", upload_id=row.id, size=row.length)

    async def discard(self, row: UploadRow, token: str) -> None:
        """Delete the upload and what it put in S3 (its blob row turns garbage)."""
        log.info("upload.discarded", upload_id=row.id)
        await finish_even_if_cancelled(self.rows.delete(row.id, token))
        if row.blob_key is not None:
            await finish_even_if_cancelled(self._store.delete_many([row.blob_key]))
            if row.s3_upload_id is not None:
                await self._abort_quietly(row.blob_key, row.s3_upload_id)


@dataclasses.dataclass(frozen=True)
class _Lease:
    row: UploadRow
    token: str


def _restored(row: UploadRow) -> ResumableSha256:
    """The hash of the bytes in the upload's parts."""
    if row.sha256_state is None:
        return ResumableSha256()
    return ResumableSha256.restore(row.sha256_state, length=row.parts_bytes)


def _completed(parts: Sequence[Mapping[str, Any]]) -> list[CompletedPartTypeDef]:
    return [{"PartNumber": part["PartNumber"], "ETag": part["ETag"]} for part in parts]


class _Checkpoints:
    """The parts one request sends, recorded in the row in order as S3 confirms them
    (deferred: only when the request says so, for a body that must be verified first)."""

    def __init__(self, rows: UploadRows, lease: _Lease, *, deferred: bool) -> None:
        row = lease.row
        self._rows = rows
        self._lease = lease
        self._deferred = deferred
        self.parts: list[dict[str, Any]] = [dict(part) for part in row.parts]
        self.parts_bytes = row.parts_bytes
        self.state = row.sha256_state
        self.s3_upload_id = row.s3_upload_id
        # Whether the row names the multipart upload: if not, a failure aborts it.
        self.recorded = row.s3_upload_id is not None
        self._queue: asyncio.Queue[PartSent | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._run())

    def add(self, sent: PartSent) -> None:
        if self._task.done():
            self._task.result()  # raises what stopped the checkpoints
        self._queue.put_nowait(sent)

    async def _run(self) -> None:
        while (sent := await self._queue.get()) is not None:
            part = await sent.task
            self.state = await sent.hashed
            self.parts.append(
                {"PartNumber": part["PartNumber"], "ETag": part["ETag"], "Size": sent.size}
            )
            self.parts_bytes += sent.size
            self.s3_upload_id = sent.upload_id
            if not self._deferred:
                await self.write(self.parts_bytes, b"")

    async def drain(self) -> None:
        """Until every part sent is confirmed and (unless deferred) recorded; raises
        what failed. No part may be added after."""
        self._queue.put_nowait(None)
        await asyncio.shield(self._task)

    async def write(self, offset: int, tail: bytes | memoryview) -> None:
        await self._rows.checkpoint(
            self._lease.row.id,
            self._lease.token,
            Checkpoint(offset, self.parts, tail, self.state, self.s3_upload_id),
        )
        self.recorded = self.s3_upload_id is not None

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task


class _Request:
    """One request's bytes into an upload: receive, send parts, checkpoint, and finish
    when the last byte is in."""

    def __init__(
        self, uploads: ResumableUploads, lease: _Lease, row: UploadRow, patch: Patch, limit: int
    ) -> None:
        self._uploads = uploads
        self._lease = dataclasses.replace(lease, row=row)
        self._row = row
        self._patch = patch
        self._limit = limit
        self._session = uploads.session(row)
        self._checkpoints = _Checkpoints(uploads.rows, self._lease, deferred=bool(patch.checks))
        self._body = {check.field: hashlib.sha256() for check in patch.checks}
        self._part = PartBuffer(None)
        self._received = 0

    async def run(self, source: ValueSource) -> int:
        """The upload's offset after this request. A body that ends early (UploadAborted,
        or the request cancelled when its client goes) keeps what arrived, then the
        error goes on."""
        session = self._session
        try:
            await self._first_buffer()
            cut: BaseException | None = None
            try:
                await session.fill_parts(
                    source,
                    self._part,
                    base_part_size=self._uploads.part_size,
                    added=self._added,
                    sent=self._checkpoints.add,
                )
            except (UploadAborted, asyncio.CancelledError) as error:
                cut = error
            if cut is not None:
                # In a task of its own: a cancelled request still records its bytes.
                await finish_even_if_cancelled(self._keep_received())
                raise cut
            offset = await self._conclude()
        except BaseException as error:
            # A discarded upload's multipart upload goes too; else a recorded one stays.
            keep = self._checkpoints.recorded and not isinstance(error, ValueMismatch)
            await finish_even_if_cancelled(session.uploader.abort(keep_upload=keep))
            raise
        finally:
            await finish_even_if_cancelled(self._checkpoints.close())
            await finish_even_if_cancelled(session.hasher.settled())
            session.buffers.close()
        return offset

    async def _keep_received(self) -> None:
        """The body ended early: what arrived stays, unless a checksum was to verify it
        (all or nothing)."""
        await self._checkpoints.drain()
        if not self._patch.checks:
            await self._checkpoints.write(self._row.offset + self._received, self._tail())

    async def _conclude(self) -> int:
        """The whole body is in: verify it, then record it, or finish the upload."""
        await self._checkpoints.drain()
        self._verify_body()
        offset = self._row.offset + self._received
        if offset == self._row.length:
            await self._finish()
        else:
            await self._checkpoints.write(offset, self._tail())
        return offset

    def _tail(self) -> memoryview | bytes:
        return (
            b"" if self._part.buffer is None else memoryview(self._part.buffer)[: self._part.filled]
        )

    async def _first_buffer(self) -> None:
        """The first part buffer, holding the tail earlier requests left; as small as
        the body allows when its length is known."""
        row, hint = self._row, self._patch.size_hint
        size = part_size_for(len(row.parts), self._uploads.part_size)
        if hint is not None:
            size = max(1, min(size, row.tail_length + hint))
        self._part.buffer = await self._session.buffers.take(size)
        if row.tail_length:
            tail = await self._uploads.rows.tail(row.id)
            self._part.buffer[: len(tail)] = tail
            self._part.filled = len(tail)

    def _added(self, new: memoryview) -> None:
        """Bytes of the body, in their part buffer."""
        self._received += len(new)
        if self._row.offset + self._received > self._limit:
            raise PastLength(self._limit)
        for body in self._body.values():
            body.update(new)

    def _verify_body(self) -> None:
        for check in self._patch.checks:
            if self._body[check.field].digest() != check.sha256:
                raise BodyMismatch(check.field)

    async def _finish(self) -> None:
        """The last byte is in: check the value's digest, record the upload as received,
        complete the object and commit."""
        session, row = self._session, self._row
        hashed = None
        if self._part.buffer is not None and self._part.filled:
            hashed = await session.hasher.add(self._part.buffer, self._part.filled)
        sha256 = await session.hasher.digest()
        for expected, field in (
            (self._patch.value_sha256, self._patch.value_field),
            (row.expected_sha256, "Repr-Digest"),
        ):
            if expected is not None and expected != sha256:
                # The multipart upload is aborted on the way out (run()).
                await self._uploads.discard(row, self._lease.token)
                raise ValueMismatch(field)
        assert row.length is not None
        # Received: from here on a failure leaves a finish that the next request retries.
        await self._checkpoints.write(row.length, self._tail())
        await session.uploader.finish(
            self._part.buffer, self._part.filled, hashed, _completed(row.parts)
        )
        await self._uploads.commit(self._lease, sha256)
