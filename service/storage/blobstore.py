"""S3 behind a few verbs. Streams values in with bounded memory (one PutObject when the
value fits in one part, else a multipart upload with a bounded number of parts in
flight) and out in chunks. Callers never see boto types or boto errors."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import io
import mmap
import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Sequence,
)
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

import aiobotocore.session
import botocore.exceptions
from aiobotocore.config import AioConfig

from service import private_api
from service.config import Endpoints, Settings, part_size_for, upload_capacity
from service.errors import BlobMissing, Unavailable
from service.storage import CallObserver, relay
from service.storage.budget import MemoryBudget
from service.storage.sha256state import ResumableSha256
from service.storage.upload_part import PartUploads

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef, ObjectIdentifierTypeDef

T = TypeVar("T")

# Slices a part is written to the S3 connection in.
WRITE_SLICE_BYTES = 1024 * 1024
# Parts at least this large are hashed in a worker thread; smaller ones at once.
THREAD_HASH_BYTES = 1024 * 1024
# What is read of a part before its buffer is taken (copied into it then).
FIRST_BYTES = 64 * 1024
# Size of the chunks a download is read from S3 in.
READ_CHUNK_BYTES = 1024 * 1024
# S3 connections beside those of the parts in flight: downloads and small calls.
S3_CONNECTIONS_BESIDE_PARTS = 32
# DeleteObjects takes at most 1,000 keys per request.
DELETE_BATCH = 1000
# A failed abort is retried this many times, backing off from 1 s to 30 s (~4 min).
ABORT_RETRIES = 12

# Errors that mean "S3 is not there or not answering": the client gets a 503.
_CONNECTION_ERRORS = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.HTTPClientError,
    botocore.exceptions.NoCredentialsError,
    OSError,
    asyncio.TimeoutError,
)


@dataclasses.dataclass(frozen=True)
class Blob:
    """An object casevars stored, with the size and SHA-256 it computed on the way in."""

    key: str
    size: int
    sha256: bytes


class ValueTooLarge(Exception):
    """A streamed value went past the size it may have."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: datetime


@dataclasses.dataclass(frozen=True)
class OpenUpload:
    key: str
    upload_id: str
    initiated: datetime


@dataclasses.dataclass(frozen=True)
class SocketSource:
    """Where the rest of a download arrives once the HTTP client stops reading it."""

    received: bytes  # already read from the socket, to be sent first
    fd: int  # the plain TCP socket the remaining bytes arrive on
    remaining: int
    timeout: float | None  # longest silence of S3 to bear (None: no limit)


class BlobReader:
    """An object's bytes as S3 sends them: iterate for chunks, or take the socket
    they arrive on (take_socket) to relay it without reading it in Python."""

    def __init__(self, body: Any, size: int, stall_seconds: float | None) -> None:
        self._body = body
        self.size = size
        self._stall_seconds = stall_seconds

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            try:
                chunk = await self._body.read(READ_CHUNK_BYTES)
            except (botocore.exceptions.ClientError, *_CONNECTION_ERRORS) as error:
                raise _translate(error, "GetObject") from error
            if not chunk:
                return
            yield chunk

    def take_socket(self) -> SocketSource | None:
        """The S3 connection's socket, handed over with whatever aiohttp has already
        read from it, when it is plain TCP and carries the body as is (no TLS, no chunked
        or content encoding); None otherwise, and the reader is still iterable. Once
        taken, the connection is closed, never reused, when the reader closes."""
        connection = private_api.response_socket_parts(self._body)
        if connection is None:
            return None  # the whole body has already arrived and the connection is back in the pool
        if "Transfer-Encoding" in connection.headers or connection.headers.get(
            "Content-Encoding", "identity"
        ) not in {"identity", ""}:
            return None
        fd = relay.plain_tcp_fd(connection.transport)
        if fd is None:
            return None
        # Synchronous: what aiohttp has read is all in its buffer, and from the pause on
        # the socket is ours.
        received = connection.take()
        if received is None:
            return None  # reading the body has already failed
        return SocketSource(received, fd, self.size - len(received), self._stall_seconds)


def _translate(error: BaseException, action: str) -> Exception:
    """One table from boto errors to ours."""
    if isinstance(error, botocore.exceptions.ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        if code in {"NoSuchKey", "404", "NotFound"}:
            return BlobMissing(f"S3 has no object for {action}")
        return Unavailable(f"S3 refused {action}: {code or error}")
    return Unavailable(f"S3 is unavailable ({action}): {type(error).__name__}")


async def _s3(action: str, call: Awaitable[T]) -> T:
    try:
        return await call
    except (botocore.exceptions.ClientError, *_CONNECTION_ERRORS) as error:
        raise _translate(error, action) from error


async def finish_even_if_cancelled(call: Awaitable[T]) -> T:
    """Run a cleanup step to its end even when the caller is cancelled meanwhile;
    the cancellation is passed on afterwards."""
    task = asyncio.ensure_future(call)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                break
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return task.result()


@runtime_checkable
class Filler(Protocol):
    """A value's bytes written straight into the buffers it is uploaded from."""

    async def fill(self, buffer: mmap.mmap | bytearray, start: int, stop: int) -> int:
        """Write the value's next bytes to buffer[start:stop] (stop > start): how many,
        0 once the value has ended."""
        ...


# What a value is streamed from: chunks as they arrive, or a Filler.
ValueSource = AsyncIterable[bytes] | Filler


class _ChunkFiller:
    """A Filler of chunks: each is copied into the buffers as it comes."""

    def __init__(self, chunks: AsyncIterable[bytes]) -> None:
        self._chunks = aiter(chunks)
        self._view = memoryview(b"")

    async def fill(self, buffer: mmap.mmap | bytearray, start: int, stop: int) -> int:
        while not self._view:
            try:
                self._view = memoryview(await anext(self._chunks))
            except StopAsyncIteration:
                return 0
        added = min(len(self._view), stop - start)
        buffer[start : start + added] = self._view[:added]
        self._view = self._view[added:]
        return added


class _CountedFiller:
    def __init__(self, filler: Filler, heard: Callable[[int], None]) -> None:
        self._filler = filler
        self._heard = heard

    async def fill(self, buffer: mmap.mmap | bytearray, start: int, stop: int) -> int:
        added = await self._filler.fill(buffer, start, stop)
        self._heard(added)
        return added


def counted(source: ValueSource, heard: Callable[[int], None]) -> Filler:
    """The source's bytes, unchanged; heard() is told how many as they pass."""
    return _CountedFiller(as_filler(source), heard)


def as_filler(source: ValueSource) -> Filler:
    return source if isinstance(source, Filler) else _ChunkFiller(source)


class BlobStore:
    """The verbs casevars needs from S3, on one bucket."""

    def __init__(  # noqa: PLR0913 - knobs, keyword-only
        self,
        client: S3Client,
        bucket: str,
        *,
        part_size: int,
        parts_in_flight: int,
        budget: MemoryBudget,
        stall_seconds: float | None = None,
        memory_wait_seconds: float | None = None,
        observe: CallObserver | None = None,
    ) -> None:
        self._client = client
        self.bucket = bucket
        # Parts go by a leaner path than the client's other calls; observe counts them.
        self._parts = PartUploads(client, bucket, observe)
        self._part_size = part_size
        self._parts_in_flight = parts_in_flight
        # Part buffers come from the process's memory budget; an upload waits this long
        # for its first one before a 503 (None: no limit).
        self.budget = budget
        self._memory_wait_seconds = memory_wait_seconds
        # No part may be larger than the whole budget: that caps the largest value.
        self.largest_value = upload_capacity(part_size, largest_part=budget.capacity)
        # Longest S3 may stall a body: take no slice of an upload, or send nothing of a
        # relayed download (None: no limit).
        self._stall_seconds = stall_seconds
        # Aborts that failed (S3 was down) and are retried in the background.
        self._retries: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        """Stop retrying aborts; the collector aborts what is still open later."""
        for task in self._retries:
            task.cancel()
        await asyncio.gather(*self._retries, return_exceptions=True)

    def _abort_later(self, key: str, upload_id: str) -> None:
        task = asyncio.create_task(self._retry_abort(key, upload_id))
        self._retries.add(task)
        task.add_done_callback(self._retries.discard)

    async def _retry_abort(self, key: str, upload_id: str) -> None:
        delay = 1.0
        for _ in range(ABORT_RETRIES):
            await asyncio.sleep(delay)
            try:
                await self.abort_upload(key, upload_id)
            except Unavailable:
                delay = min(delay * 2, 30.0)
            else:
                return

    # --- reachability -------------------------------------------------------

    async def ping(self) -> None:
        """HeadBucket; Unavailable when S3 or the bucket cannot be reached."""
        await _s3("HeadBucket", self._client.head_bucket(Bucket=self.bucket))

    async def ensure_bucket(self) -> None:
        try:
            await self._client.head_bucket(Bucket=self.bucket)
        except botocore.exceptions.ClientError:
            await _s3("CreateBucket", self._client.create_bucket(Bucket=self.bucket))

    # --- writing ------------------------------------------------------------

    async def put_bytes(self, key: str, data: bytes) -> Blob:
        """Store a value already in memory (a base64 value from a JSON body)."""
        await _s3(
            "PutObject",
            self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=_PartBody(memoryview(data), self._stall_seconds),  # type: ignore[arg-type]
            ),
        )
        return Blob(key, len(data), hashlib.sha256(data).digest())

    async def put_stream(
        self,
        key: str,
        source: ValueSource,
        *,
        max_bytes: int,
        size_hint: int | None = None,
    ) -> Blob:
        """Stream the source's bytes into the object `key`: chunks, or a Filler that
        writes them into the part buffers itself. ValueTooLarge past max_bytes (or past
        what parts that fit the memory budget hold). size_hint: the value is known to be
        at most this long (the request's Content-Length), so a small value takes only
        the buffer it needs from the budget.

        Memory stays at (parts in flight + 1) part buffers whatever the size of the
        value, all taken from the budget: the source is not read while the budget has
        no buffer to spare (see _Buffers). On any error or cancellation a multipart
        upload is aborted before the exception leaves (or, if S3 is down, retried in
        the background); nothing is left in S3 but what a completed call reports.
        """
        max_bytes = min(max_bytes, self.largest_value)
        session = self.part_session(key)
        size = 0

        def added(new: memoryview) -> None:
            nonlocal size
            size += len(new)
            if size > max_bytes:
                raise ValueTooLarge(max_bytes)

        first = part_size_for(0, self._part_size)
        try:
            current = PartBuffer(
                await session.buffers.take(
                    first if size_hint is None else max(1, min(first, size_hint))
                )
            )
            await session.fill_parts(source, current, base_part_size=self._part_size, added=added)
            buffer, filled = current.buffer, current.filled
            hashed = None if buffer is None else await session.hasher.add(buffer, filled)
            await session.uploader.finish(buffer, filled, hashed)
            sha256 = await session.hasher.digest()
        except BaseException:
            await finish_even_if_cancelled(session.uploader.abort())
            # No buffer goes back to the budget while a thread still reads it.
            await finish_even_if_cancelled(session.hasher.settled())
            raise
        finally:
            session.buffers.close()
        return Blob(key, size, sha256)

    @property
    def part_size(self) -> int:
        """The first part's size (CASEVARS_S3_PART_SIZE); parts grow by part_size_for."""
        return self._part_size

    def part_session(
        self,
        key: str,
        *,
        upload_id: str | None = None,
        parts_sent: int = 0,
        sha256: ResumableSha256 | None = None,
    ) -> PartSession:
        """The part loop's machinery for the object `key`: put_stream's, or a resumable
        upload request's, which continues the multipart upload `upload_id` (None: none
        yet) after its first parts_sent parts and the hash of their bytes."""
        buffers = _Buffers(self.budget, self._memory_wait_seconds)
        uploader = _PartUploader(
            self._client,
            self.bucket,
            key,
            self._parts_in_flight,
            self._abort_later,
            parts=self._parts,
            buffers=buffers,
            stall_seconds=self._stall_seconds,
            upload_id=upload_id,
            parts_sent=parts_sent,
        )
        return PartSession(buffers, uploader, _PartHasher(sha256))

    # --- reading ------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def open_read(
        self, key: str, *, first: int | None = None, last: int | None = None
    ) -> AsyncIterator[BlobReader]:
        """The object's bytes (first..last inclusive when given).

        The request to S3 is made on entry, so a missing object or an S3 outage
        raises before the caller has sent anything to its own client.
        """
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if first is not None:
            kwargs["Range"] = f"bytes={first}-{'' if last is None else last}"
        response = await _s3("GetObject", self._client.get_object(**kwargs))
        body = response["Body"]
        try:
            yield BlobReader(body, response["ContentLength"], self._stall_seconds)
        finally:
            body.close()

    async def read_all(self, key: str) -> bytes:
        """A small object's whole content (inline Bytes values, serialized objects),
        joined once at its size: no buffer grown step by step and copied at the end,
        large blocks of every size that the allocator would hold on to."""
        async with self.open_read(key) as reader:
            chunks = [chunk async for chunk in reader]
        return b"".join(chunks)

    async def size_of(self, key: str) -> int | None:
        """The object's size, None when it does not exist."""
        try:
            head = await self._client.head_object(Bucket=self.bucket, Key=key)
        except botocore.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise _translate(error, "HeadObject") from error
        except _CONNECTION_ERRORS as error:
            raise _translate(error, "HeadObject") from error
        return head["ContentLength"]

    # --- deleting and listing (collector, check) -----------------------------

    async def delete_many(self, keys: Iterable[str]) -> None:
        """Delete keys (missing ones are fine); Unavailable if S3 refuses any."""
        batch: list[ObjectIdentifierTypeDef] = [{"Key": key} for key in keys]
        for start in range(0, len(batch), DELETE_BATCH):
            objects = batch[start : start + DELETE_BATCH]
            response = await _s3(
                "DeleteObjects",
                self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True}
                ),
            )
            errors = response.get("Errors", [])
            if errors:
                raise Unavailable(f"S3 refused to delete {len(errors)} objects")

    async def iter_objects(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        """Every object under prefix, a page (1,000 keys) at a time."""
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=prefix)
        async for page in _pages(pages, "ListObjectsV2"):
            for item in page.get("Contents", []):
                yield ObjectInfo(item["Key"], item["Size"], item["LastModified"])

    async def iter_uploads(self, prefix: str) -> AsyncIterator[OpenUpload]:
        """Multipart uploads under prefix that were started and never completed or aborted."""
        paginator = self._client.get_paginator("list_multipart_uploads")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=prefix)
        async for page in _pages(pages, "ListMultipartUploads"):
            for item in page.get("Uploads", []):
                yield OpenUpload(item["Key"], item["UploadId"], item["Initiated"])

    async def abort_upload(self, key: str, upload_id: str) -> None:
        try:
            await self._client.abort_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id
            )
        except botocore.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") != "NoSuchUpload":
                raise _translate(error, "AbortMultipartUpload") from error
        except _CONNECTION_ERRORS as error:
            raise _translate(error, "AbortMultipartUpload") from error


async def _pages(pages: AsyncIterable[Any], action: str) -> AsyncIterator[Any]:
    iterator = aiter(pages)
    while True:
        try:
            page = await anext(iterator)
        except StopAsyncIteration:
            return
        except (botocore.exceptions.ClientError, *_CONNECTION_ERRORS) as error:
            raise _translate(error, action) from error
        yield page


class _PartBody:
    """A part's bytes as botocore (length, seek, read for signing) and aiohttp (write)
    use them, without copying the reused part buffer."""

    def __init__(self, view: memoryview, stall_seconds: float | None = None) -> None:
        self.view = view
        # Longest wait for the socket to take the next slice (None: no limit).
        self.stall_seconds = stall_seconds
        self._position = 0

    def __len__(self) -> int:
        return len(self.view)

    def read(self, size: int = -1) -> memoryview:
        end = len(self.view) if size < 0 else min(len(self.view), self._position + size)
        chunk = self.view[self._position : end]
        self._position = end
        return chunk

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: len(self.view)}
        self._position = max(0, min(len(self.view), base[whence] + offset))
        return self._position

    def tell(self) -> int:
        return self._position


# aiohttp writes a part to the S3 connection in large slices, each within
# stall_seconds: an S3 that stops reading fails the part instead of blocking it for good.
private_api.register_sliced_body(_PartBody, slice_bytes=WRITE_SLICE_BYTES)


class _Buffers:
    """One upload's part buffers, reused, at most (parts in flight + 1), all taken from
    the process's memory budget. The first waits its turn in the budget (meanwhile the
    upload reads nothing: the client's socket fills and TCP holds the sender back); a
    further one is taken only if the budget can spare it at once, else the upload
    waits for one of its own to come back from S3. So an upload always holds the one
    buffer it needs to progress, never waits for the budget while holding any (no
    deadlock), and runs fewer parts in flight under pressure: a buffer coming back
    while others wait for the budget goes back to it, unless it is the upload's last.

    A buffer is an anonymous mmap rather than a bytearray: the malloc of glibc keeps
    freed blocks of this size for reuse inside the process, an unmapped mmap is
    returned to the system at once, so memory falls back after a burst of uploads.
    """

    def __init__(self, budget: MemoryBudget, wait_seconds: float | None) -> None:
        self._budget = budget
        self._wait_seconds = wait_seconds
        self._free: list[mmap.mmap] = []
        self._held: dict[int, int] = {}  # id of each buffer taken -> bytes taken for it
        self._returned = asyncio.Event()
        self._closed = False

    async def take(self, size: int) -> mmap.mmap:
        """A buffer of exactly size bytes."""
        while True:
            for buffer in self._free:
                if len(buffer) == size:
                    self._free.remove(buffer)
                    return buffer
            for buffer in self._free:  # the part size grew: the old buffers are no use
                self._drop(buffer)
            self._free.clear()
            # Never more than the whole budget (a part size that is no multiple of pages).
            amount = min(_whole_pages(size), self._budget.capacity)
            if not self._held:
                await self._budget.acquire(amount, timeout=self._wait_seconds)
                break
            if self._budget.try_acquire(amount):
                break
            self._returned.clear()
            await self._returned.wait()  # a part in flight ends within the S3 timeouts
        try:
            buffer = mmap.mmap(-1, size)
        except BaseException:
            self._budget.release(amount)
            raise
        self._held[id(buffer)] = amount
        return buffer

    async def grow(self, buffer: mmap.mmap, filled: int, size: int) -> mmap.mmap:
        """A buffer of size bytes holding the first `filled` bytes of buffer, which is
        given back: the one buffer the upload holds is swapped, never added to."""
        self._drop(buffer)
        bigger = await self.take(size)
        bigger[:filled] = buffer[:filled]
        return bigger

    def give(self, buffer: mmap.mmap) -> None:
        """A buffer S3 is done with."""
        if self._closed:
            return
        if self._budget.waiting and len(self._held) > 1:
            self._drop(buffer)
        else:
            self._free.append(buffer)
        self._returned.set()

    def close(self) -> None:
        """The upload is over: every buffer it took goes back to the budget."""
        self._closed = True
        self._free.clear()
        held, self._held = self._held, {}
        for amount in held.values():
            self._budget.release(amount)

    def _drop(self, buffer: mmap.mmap) -> None:
        amount = self._held.pop(id(buffer), 0)
        if amount:
            self._budget.release(amount)


class _Hash(Protocol):
    """hashlib.sha256 or a ResumableSha256."""

    def update(self, data: Any, /) -> None: ...

    def digest(self) -> bytes: ...


# Done when a part is hashed; its result is the hash state saved right after that part
# when the hash is a ResumableSha256 (a resumable upload checkpoints it), else None.
Hashed = asyncio.Future[bytes | None]


class _PartHasher:
    """The SHA-256 of a value, fed one part buffer at a time: a large part is hashed in
    a worker thread (hashlib lets go of the GIL for large buffers) while the event loop
    goes on receiving the next part and sending this one to S3. One part at a time, in
    order. A resumable upload passes the hash it continues (a ResumableSha256)."""

    def __init__(self, digest: _Hash | None = None) -> None:
        self._digest: _Hash = hashlib.sha256() if digest is None else digest
        self._last: Hashed | None = None

    def _update(self, view: memoryview) -> bytes | None:
        self._digest.update(view)
        return self._digest.save() if isinstance(self._digest, ResumableSha256) else None

    async def add(self, buffer: mmap.mmap, length: int) -> Hashed:
        """Hash buffer[:length] after the parts before it; done when it is hashed (the
        buffer may be reused from then on)."""
        await self.settled()  # long done in practice: a part is hashed faster than received
        view = memoryview(buffer)[:length]
        loop = asyncio.get_running_loop()
        if length < THREAD_HASH_BYTES:
            self._last = loop.create_future()
            self._last.set_result(self._update(view))
        else:
            self._last = loop.run_in_executor(None, self._update, view)
        return self._last

    async def settled(self) -> None:
        """Until no thread hashes any more (whether or not its hashing succeeded)."""
        if self._last is not None:
            await asyncio.wait([self._last])

    async def digest(self) -> bytes:
        if self._last is not None:
            # Shielded: a cancelled wait must not let settled() think the thread is done.
            await asyncio.shield(self._last)
        return self._digest.digest()


def _whole_pages(size: int) -> int:
    """What an mmap of size bytes really takes."""
    return -(-max(size, 1) // mmap.PAGESIZE) * mmap.PAGESIZE


class _PartUploader:
    """One value's upload: a single PutObject if it ends within the first part, else a
    multipart upload created on the first full part, with at most `in_flight` parts
    uploading at once; aborted on failure. A resumable upload continues the multipart
    upload `upload_id` after its first `parts_sent` parts."""

    def __init__(  # noqa: PLR0913 - knobs, keyword-only
        self,
        client: S3Client,
        bucket: str,
        key: str,
        in_flight: int,
        abort_later: Callable[[str, str], None],
        *,
        parts: PartUploads,
        buffers: _Buffers,
        stall_seconds: float | None,
        upload_id: str | None = None,
        parts_sent: int = 0,
    ) -> None:
        self._client = client
        self._parts = parts
        self._stall_seconds = stall_seconds
        self._abort_later = abort_later
        self._bucket = bucket
        self._key = key
        self._slots = asyncio.Semaphore(in_flight)
        self._tasks: list[asyncio.Task[CompletedPartTypeDef]] = []
        self.buffers = buffers
        self.upload_id: str | None = upload_id
        self.parts_sent = parts_sent

    async def send(
        self, buffer: mmap.mmap, length: int, hashed: Hashed
    ) -> asyncio.Task[CompletedPartTypeDef]:
        """Start uploading the next part from buffer; waits while all slots are busy.
        The buffer goes back to self.buffers once S3 has it and `hashed` is done. The
        task's result is the part as CompleteMultipartUpload names it."""
        if self.upload_id is None:
            created = await _s3(
                "CreateMultipartUpload",
                self._client.create_multipart_upload(Bucket=self._bucket, Key=self._key),
            )
            self.upload_id = created["UploadId"]
        await self._slots.acquire()
        self._raise_failed()
        self.parts_sent += 1
        task = asyncio.create_task(
            self._upload_part(self.parts_sent, buffer, length, self.upload_id, hashed)
        )
        self._tasks.append(task)
        return task

    def _raise_failed(self) -> None:
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    async def _upload_part(
        self,
        number: int,
        buffer: mmap.mmap,
        length: int,
        upload_id: str,
        hashed: Hashed,
    ) -> CompletedPartTypeDef:
        try:
            body = _PartBody(memoryview(buffer)[:length], self._stall_seconds)
            etag = await _s3(
                "UploadPart", self._parts.upload_part(self._key, upload_id, number, body)
            )
            return {"PartNumber": number, "ETag": etag}
        finally:
            try:
                await finish_even_if_cancelled(asyncio.wait([hashed]))
            finally:
                self.buffers.give(buffer)
                self._slots.release()

    async def finish(
        self,
        buffer: mmap.mmap | None,
        length: int,
        hashed: Hashed | None,
        earlier: Sequence[CompletedPartTypeDef] = (),
    ) -> None:
        """Send the last (possibly only) part, if any, and complete the upload with the
        parts `earlier` requests sent (a resumable upload's) and this one's."""
        if self.upload_id is None:
            assert buffer is not None  # no part was sent: the first buffer is still here
            body = _PartBody(memoryview(buffer)[:length], self._stall_seconds)
            await _s3(
                "PutObject",
                self._client.put_object(Bucket=self._bucket, Key=self._key, Body=body),  # type: ignore[arg-type]
            )
            return
        if buffer is not None and length:
            assert hashed is not None
            _ = await self.send(buffer, length, hashed)
        parts = await asyncio.gather(*self._tasks)
        await _s3(
            "CompleteMultipartUpload",
            self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": [*earlier, *parts]},
            ),
        )
        self.upload_id = None

    async def abort(self, *, keep_upload: bool = False) -> None:
        """Stop the parts in flight and abort the multipart upload, unless keep_upload
        (a resumable upload goes on with it in a later request)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.upload_id is not None and not keep_upload:
            upload_id, self.upload_id = self.upload_id, None
            try:
                await self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=self._key, UploadId=upload_id
                )
            except Exception:  # noqa: BLE001 - S3 may be down: retry later
                # Retried in the background; the collector aborts what that misses.
                self._abort_later(self._key, upload_id)


@dataclasses.dataclass(frozen=True)
class PartSession:
    """One request's share of a value's upload: part buffers from the memory budget,
    parts in flight to S3 and hashing in a worker thread, as put_stream uses them. On
    the way out: uploader.finish() or uploader.abort(), then `await
    hasher.settled()` and buffers.close(), in that order (no buffer goes back to the
    budget while S3 or a thread still reads it)."""

    buffers: _Buffers
    uploader: _PartUploader
    hasher: _PartHasher

    async def fill_parts(
        self,
        source: ValueSource,
        current: PartBuffer,
        *,
        base_part_size: int,
        added: Callable[[memoryview], None],
        sent: Callable[[PartSent], None] = lambda _: None,
    ) -> None:
        """Fill part buffers from source to its end, sending each full part to S3 as it
        fills. current is the buffer being filled, kept up to date also when this
        raises (the bytes of a cut body are in it); between parts it holds none, and
        the next part's buffer is taken once its first bytes are here, so that a client
        that stops between parts holds no part buffer. added() sees each run of new
        bytes as it lands (and may refuse them by raising), sent() each part sent."""
        fill = as_filler(source).fill
        while True:
            part_size = part_size_for(self.uploader.parts_sent, base_part_size)
            buffer = current.buffer
            if buffer is None:
                first_bytes = bytearray(FIRST_BYTES)
                count = await fill(first_bytes, 0, FIRST_BYTES)
                if not count:
                    return
                buffer = current.buffer = await self.buffers.take(part_size)
                buffer[:count] = first_bytes[:count]
            else:
                if current.filled == len(buffer):
                    # The size hint was wrong: the value goes on, in full-size parts.
                    buffer = await self.buffers.grow(buffer, current.filled, part_size)
                    current.buffer = buffer
                count = await fill(buffer, current.filled, min(len(buffer), part_size))
                if not count:
                    return
            current.filled += count
            with memoryview(buffer) as view, view[current.filled - count : current.filled] as new:
                added(new)
            if current.filled == part_size:
                hashed = await self.hasher.add(buffer, current.filled)
                task = await self.uploader.send(buffer, current.filled, hashed)
                assert self.uploader.upload_id is not None
                sent(PartSent(task, current.filled, hashed, self.uploader.upload_id))
                current.buffer, current.filled = None, 0


@dataclasses.dataclass
class PartBuffer:
    """The part buffer being filled (None between parts) and how much of it is."""

    buffer: mmap.mmap | None
    filled: int = 0


@dataclasses.dataclass(frozen=True)
class PartSent:
    """A part handed to S3: its upload task, its size, its hashing, its multipart upload."""

    task: asyncio.Task[CompletedPartTypeDef]
    size: int
    hashed: Hashed
    upload_id: str


def client_config(settings: Settings) -> AioConfig:
    """Timeouts bound how long a request waits for a dead S3. Integrity: casevars
    computes each value's SHA-256 itself; botocore's extra CRC32 checksums are off."""
    return AioConfig(
        connect_timeout=settings.s3_timeout_seconds,
        read_timeout=settings.s3_timeout_seconds,
        retries={"max_attempts": 3, "mode": "standard"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        s3={"addressing_style": "path", "payload_signing_enabled": False},
        # One connection for every part buffer the budget holds (each may be in flight
        # at once), and more for downloads streaming and small calls beside them.
        max_pool_connections=settings.memory_budget_bytes // settings.s3_part_size
        + S3_CONNECTIONS_BESIDE_PARTS,
    )


def _observe_calls(client: S3Client, observe: CallObserver) -> None:
    """Report every call the client makes, through botocore's own events, so calls
    made outside _s3() (HeadObject, aborts, listing pages) count too. A call's time
    includes botocore's retries; an answer with an error status other than 404, or no
    answer at all, is a failure."""

    def started(context: dict[str, Any], **_: Any) -> None:
        context["casevars_started"] = time.monotonic()

    def seconds(context: dict[str, Any]) -> float:
        started: float = context.get("casevars_started", time.monotonic())
        return time.monotonic() - started

    def answered(context: dict[str, Any], http_response: Any, model: Any, **_: Any) -> None:
        status = http_response.status_code
        observe(model.name, seconds(context), status >= 400 and status != 404)

    def raised(context: dict[str, Any], event_name: str, **_: Any) -> None:
        observe(event_name.rsplit(".", 1)[-1], seconds(context), True)  # noqa: FBT003 - failed

    client.meta.events.register("before-call.s3", started)
    client.meta.events.register("after-call.s3", answered)
    client.meta.events.register("after-call-error.s3", raised)


_session: aiobotocore.session.AioSession | None = None


def botocore_session() -> aiobotocore.session.AioSession:
    """The process's botocore session. Making one loads and parses the S3 service model
    again (about 0.1 s), which a process that opens the blob store more than once (the
    tests, a command after `serve`'s start-up checks) need not pay twice; it holds no
    connection, and caches the credentials the chain resolves (refreshing ones refresh
    themselves)."""
    global _session  # noqa: PLW0603 - one per process, made on first use
    if _session is None:
        _session = aiobotocore.session.get_session()
    return _session


@contextlib.asynccontextmanager
async def open_blob_store(
    settings: Settings,
    endpoints: Endpoints,
    *,
    observe: CallObserver | None = None,
    budget: MemoryBudget | None = None,
) -> AsyncIterator[BlobStore]:
    """One S3 client for the process, closed on exit; observe (metrics) hears of
    every S3 call; part buffers come from budget (None: a budget of its own, of
    CASEVARS_MEMORY_BUDGET_BYTES)."""
    async with botocore_session().create_client(
        "s3",
        endpoint_url=endpoints.s3_endpoint_url,
        region_name=endpoints.s3_region,
        aws_access_key_id=endpoints.s3_access_key_id,
        aws_secret_access_key=endpoints.s3_secret_access_key,
        config=client_config(settings),
    ) as client:
        # botocore sends `Expect: 100-continue` with every body, and aiohttp waits for
        # the interim answer with no timeout at all: an S3 that takes the connection and
        # then hangs would hold an upload forever. Without it, read_timeout bounds the wait.
        private_api.without_expect_100_continue(client)
        if observe is not None:
            _observe_calls(client, observe)
        store = BlobStore(
            client,
            endpoints.s3_bucket,
            part_size=settings.s3_part_size,
            parts_in_flight=settings.s3_parts_in_flight,
            budget=MemoryBudget(settings.memory_budget_bytes) if budget is None else budget,
            stall_seconds=settings.s3_timeout_seconds,
            memory_wait_seconds=settings.client_read_timeout_seconds,
            observe=observe,
        )
        try:
            yield store
        finally:
            await store.close()
