"""The SQL of resumable uploads (migrations/0013): creating an upload with its pending
blob, the lease that lets one request at a time write to it, the checkpoints of its
progress, and its end (committed, terminated, discarded or expired). resumable.py
drives these; no HTTP here."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from service.storage import CallObserver
from service.storage.db import observed_connection

if TYPE_CHECKING:
    from service.storage.db import AnyConnection

# How long a request holds an upload's lease past its last renewal, by default. A
# SIGKILLed replica's lease runs out after at most this, so a client resuming elsewhere
# waits at most this long (423 meanwhile).
LEASE_SECONDS = 20.0
# A running request renews its lease this many times per lease: one or two renewals that
# Postgres fails do not lose it.
RENEWALS_PER_LEASE = 4


class UploadNotFound(Exception):
    """No upload has this id for this variable of this case instance."""


class UploadExpired(Exception):
    """The upload's time ran out (the collector removes it soon)."""


class UploadLocked(Exception):
    """Another request holds the upload's lease."""


class UploadGone(Exception):
    """The upload row went while a request worked on it (its case instance was deleted)."""


class NoSuchCase(Exception):
    """The case instance does not exist or is closed (and may not be created)."""


@dataclasses.dataclass(frozen=True)
class UploadRow:
    """An upload as Postgres holds it (without its tail, read only when needed)."""

    id: str
    case_id: str
    incarnation: int
    variable_name: str
    value_type: str
    value_info: Mapping[str, Any]
    metadata: str | None
    length: int | None
    offset: int
    blob_key: str | None
    s3_upload_id: str | None
    parts: Sequence[Mapping[str, Any]]  # {"PartNumber", "ETag", "Size"}, in order
    tail_length: int
    sha256_state: bytes | None
    expected_sha256: bytes | None
    expires_at: datetime
    committed: bool
    expired: bool

    @property
    def parts_bytes(self) -> int:
        """The bytes already in S3 parts (the hash state covers exactly these)."""
        return self.offset - self.tail_length


_COLUMNS = """
    id, case_instance_id, case_incarnation, variable_name, value_type, value_info,
    metadata, length, "offset", blob_key, s3_upload_id, parts, octet_length(tail) AS tail_length,
    sha256_state, expected_sha256, expires_at, committed_at IS NOT NULL AS committed,
    expires_at <= now() AS expired
"""


def _row(record: asyncpg.Record) -> UploadRow:
    return UploadRow(
        id=record["id"],
        case_id=record["case_instance_id"],
        incarnation=record["case_incarnation"],
        variable_name=record["variable_name"],
        value_type=record["value_type"],
        value_info=record["value_info"],
        metadata=record["metadata"],
        length=record["length"],
        offset=record["offset"],
        blob_key=record["blob_key"],
        s3_upload_id=record["s3_upload_id"],
        parts=record["parts"],
        tail_length=record["tail_length"],
        sha256_state=record["sha256_state"],
        expected_sha256=record["expected_sha256"],
        expires_at=record["expires_at"],
        committed=record["committed"],
        expired=record["expired"],
    )


@dataclasses.dataclass(frozen=True)
class NewUpload:
    """What creation records."""

    case_id: str
    variable_name: str
    value_type: str
    value_info: Mapping[str, Any]
    metadata: str | None
    length: int | None
    expected_sha256: bytes | None


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """An upload's progress, written in one UPDATE: what a crash after it keeps."""

    offset: int
    parts: Sequence[Mapping[str, Any]]
    tail: bytes | memoryview
    sha256_state: bytes | None
    s3_upload_id: str | None


class UploadRows:
    """The upload table, on the process's pool."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        lease_seconds: float = LEASE_SECONDS,
        observe: CallObserver | None = None,
    ) -> None:
        self._pool = pool
        self._observe = observe
        self.lease_seconds = lease_seconds
        self.renew_seconds = lease_seconds / RENEWALS_PER_LEASE

    def _connection(self, operation: str) -> contextlib.AbstractAsyncContextManager[AnyConnection]:
        return observed_connection(self._pool, operation, self._observe)

    async def count_open(self) -> int:
        async with self._connection("upload_count_open") as connection:
            count = await connection.fetchval(
                "SELECT count(*) FROM upload WHERE committed_at IS NULL"
            )
        return int(count)

    async def create(
        self,
        new: NewUpload,
        *,
        blob_key: str,
        expiry_seconds: float,
        create_case_instance: bool,
    ) -> UploadRow:
        """The upload and its pending blob, in one transaction with a share lock on the
        case instance (created first if allowed); NoSuchCase when it is missing or
        closed."""
        async with (
            self._connection("upload_create") as connection,
            connection.transaction(),
        ):
            if create_case_instance:
                await connection.execute(
                    "INSERT INTO case_instance (id) VALUES ($1) ON CONFLICT DO NOTHING",
                    new.case_id,
                )
            incarnation = await connection.fetchval(
                "SELECT incarnation FROM case_instance WHERE id = $1 AND state <> 'closed' "
                "FOR SHARE",
                new.case_id,
            )
            if incarnation is None:
                raise NoSuchCase(new.case_id)
            await connection.execute(
                "INSERT INTO blob (key, state) VALUES ($1, 'pending')", blob_key
            )
            record = await connection.fetchrow(
                f"""
                INSERT INTO upload (id, case_instance_id, case_incarnation, variable_name,
                    value_type, value_info, metadata, length, blob_key, expected_sha256,
                    expires_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
                    now() + make_interval(secs => $11))
                RETURNING {_COLUMNS}
                """,
                uuid.uuid4().hex,
                new.case_id,
                incarnation,
                new.variable_name,
                new.value_type,
                dict(new.value_info),
                new.metadata,
                new.length,
                blob_key,
                new.expected_sha256,
                expiry_seconds,
            )
        assert record is not None
        return _row(record)

    async def get(self, upload_id: str, case_id: str, name: str) -> UploadRow:
        """UploadNotFound unless the upload exists for this variable."""
        async with self._connection("upload_get") as connection:
            record = await connection.fetchrow(
                f"SELECT {_COLUMNS} FROM upload "
                "WHERE id = $1 AND case_instance_id = $2 AND variable_name = $3",
                upload_id,
                case_id,
                name,
            )
        if record is None:
            raise UploadNotFound(upload_id)
        return _row(record)

    async def lease(
        self, upload_id: str, case_id: str, name: str, token: str, *, expiry_seconds: float
    ) -> UploadRow:
        """Take the upload's lease for one request, and push its expiry back (an upload
        in use does not expire). UploadNotFound, UploadExpired, or UploadLocked when
        another request holds it."""
        async with self._connection("upload_lease") as connection:
            record = await connection.fetchrow(
                f"""
                UPDATE upload SET lease_token = $4,
                    lease_until = now() + make_interval(secs => $5),
                    expires_at = CASE WHEN committed_at IS NULL
                        THEN now() + make_interval(secs => $6) ELSE expires_at END
                WHERE id = $1 AND case_instance_id = $2 AND variable_name = $3
                  AND expires_at > now()
                  AND (lease_until IS NULL OR lease_until < now())
                RETURNING {_COLUMNS}
                """,
                upload_id,
                case_id,
                name,
                token,
                self.lease_seconds,
                expiry_seconds,
            )
        if record is not None:
            return _row(record)
        row = await self.get(upload_id, case_id, name)  # UploadNotFound
        if row.expired:
            raise UploadExpired(upload_id)
        raise UploadLocked(upload_id)

    async def renew(self, upload_id: str, token: str) -> None:
        """UploadGone when the lease is no longer this request's (the row went)."""
        async with self._connection("upload_renew") as connection:
            renewed = await connection.fetchval(
                "UPDATE upload SET lease_until = now() + make_interval(secs => $3) "
                "WHERE id = $1 AND lease_token = $2 RETURNING 1",
                upload_id,
                token,
                self.lease_seconds,
            )
        if not renewed:
            raise UploadGone(upload_id)

    async def release(self, upload_id: str, token: str) -> None:
        async with self._connection("upload_release") as connection:
            await connection.execute(
                "UPDATE upload SET lease_token = NULL, lease_until = NULL "
                "WHERE id = $1 AND lease_token = $2",
                upload_id,
                token,
            )

    async def tail(self, upload_id: str) -> bytes:
        async with self._connection("upload_tail") as connection:
            tail: bytes | None = await connection.fetchval(
                "SELECT tail FROM upload WHERE id = $1", upload_id
            )
        if tail is None:
            raise UploadGone(upload_id)
        return tail

    async def set_length(self, upload_id: str, token: str, length: int) -> None:
        async with self._connection("upload_set_length") as connection:
            updated = await connection.fetchval(
                "UPDATE upload SET length = $3 WHERE id = $1 AND lease_token = $2 RETURNING 1",
                upload_id,
                token,
                length,
            )
        if not updated:
            raise UploadGone(upload_id)

    async def checkpoint(self, upload_id: str, token: str, point: Checkpoint) -> None:
        """Record progress and renew the lease in one UPDATE; UploadGone when the row
        went or the lease is another's."""
        async with self._connection("upload_checkpoint") as connection:
            updated = await connection.fetchval(
                """
                UPDATE upload SET "offset" = $3, parts = $4, tail = $5, sha256_state = $6,
                    s3_upload_id = $7, lease_until = now() + make_interval(secs => $8)
                WHERE id = $1 AND lease_token = $2 RETURNING 1
                """,
                upload_id,
                token,
                point.offset,
                list(point.parts),
                point.tail,
                point.sha256_state,
                point.s3_upload_id,
                self.lease_seconds,
            )
        if not updated:
            raise UploadGone(upload_id)

    @staticmethod
    def committing(
        upload_id: str, token: str, *, expiry_seconds: float
    ) -> Callable[[AnyConnection], Any]:
        """The last step of the transaction that commits the value (Repository's
        write_variables `then`): the upload is finished, its blob now the variable's. It
        stays visible (HEAD answers offset = length) until it expires, so a client whose
        last answer was lost sees it is done."""

        async def step(connection: AnyConnection) -> None:
            updated = await connection.fetchval(
                """
                UPDATE upload SET committed_at = now(), blob_key = NULL, "offset" = length,
                    parts = '[]', tail = '', sha256_state = NULL, s3_upload_id = NULL,
                    expires_at = now() + make_interval(secs => $3)
                WHERE id = $1 AND lease_token = $2 RETURNING 1
                """,
                upload_id,
                token,
                expiry_seconds,
            )
            if not updated:
                raise UploadGone(upload_id)

        return step

    async def delete(self, upload_id: str, token: str | None = None) -> bool:
        """Delete the upload (its pending blob becomes garbage: migrations/0013's
        trigger); with a token, only while that lease holds. False if it was gone."""
        async with self._connection("upload_delete") as connection:
            deleted = await connection.fetchval(
                "DELETE FROM upload WHERE id = $1 AND ($2::text IS NULL OR lease_token = $2) "
                "RETURNING 1",
                upload_id,
                token,
            )
        return bool(deleted)
