"""The life cycle of the blobs one write makes, the same for every write path (a
multipart upload, Bytes and File values in JSON bodies, a case instance created with
its first variables):

1. a new key is recorded *pending* before the first byte goes to S3, so Postgres knows
   every object the service ever put there;
2. the content is streamed (or put) under that key;
3. the write that points variables at the new blobs makes them *live*, in its own
   transaction;
4. on the way out, whatever did not become live (a failed or cancelled upload, a
   replaced `data` part, a transient value, a write Postgres refused) becomes *garbage*
   at once, for the collector to delete.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable
from types import TracebackType
from typing import Self

from service.errors import Unavailable
from service.storage.blobstore import Blob, BlobStore, ValueSource, finish_even_if_cancelled
from service.storage.repository import LostPendingBlob, Repository


def new_blob_key(prefix: str) -> str:
    """Keys are made here, never from a path, a variable name or a filename."""
    return f"{prefix}{uuid.uuid4().hex}"


class NewBlobs:
    """The blobs of one write, from pending to live or garbage; use it as an async
    context manager around the whole write."""

    def __init__(self, repository: Repository, store: BlobStore, *, prefix: str) -> None:
        self._repository = repository
        self._store = store
        self._prefix = prefix
        self._pending: list[str] = []
        self._live: set[str] = set()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        unused = [key for key in self._pending if key not in self._live]
        if unused:
            # Also when the request is cancelled: a pending row left behind would keep
            # its object until the pending timeout.
            await finish_even_if_cancelled(self._repository.discard_blobs(unused))

    async def _new_key(self) -> str:
        key = new_blob_key(self._prefix)
        await self._repository.add_pending_blob(key)
        self._pending.append(key)
        return key

    async def put_stream(
        self, source: ValueSource, *, max_bytes: int, size_hint: int | None = None
    ) -> Blob:
        """Stream chunks, or a Filler's bytes, into a new pending blob; ValueTooLarge
        past max_bytes."""
        return await self._store.put_stream(
            await self._new_key(), source, max_bytes=max_bytes, size_hint=size_hint
        )

    async def put_bytes(self, content: bytes) -> Blob:
        """A new pending blob holding content already in memory."""
        return await self._store.put_bytes(await self._new_key(), content)

    @contextlib.asynccontextmanager
    async def committing(self, blobs: Iterable[Blob | None]) -> AsyncIterator[None]:
        """Around the Postgres write that makes blobs live: they count as live only if
        it returns. Unavailable when the collector took a blob's pending row first (its
        upload outlived CASEVARS_PENDING_TIMEOUT_SECONDS): the object may have been
        completed after the collector deleted it, with no row left to name it, so it
        is deleted here."""
        keys = {blob.key for blob in blobs if blob is not None}
        try:
            yield
        except LostPendingBlob as lost:
            await finish_even_if_cancelled(self._store.delete_many([lost.key]))
            raise Unavailable(
                "The upload outlived CASEVARS_PENDING_TIMEOUT_SECONDS and was collected; try again"
            ) from None
        self._live |= keys
