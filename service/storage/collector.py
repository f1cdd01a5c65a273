"""The collector: removes closed case instances whose history time to live has passed,
deletes garbage blobs past their time and pending blobs left by crashed uploads, and
aborts stale multipart uploads. It works in pages, so its memory
does not grow with the number of blobs, and it is safe with any number of replicas
running it at once. check.py holds the consistency check."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import structlog

from service.errors import Unavailable
from service.storage.blobstore import BlobStore
from service.storage.db import Connections, Database

log = structlog.get_logger("casevars.collector")

# Blob rows locked, deleted from S3 (one DeleteObjects request) and deleted from
# Postgres per transaction: few enough that the locks are held for one S3 round trip.
COLLECT_PAGE_ROWS = 500


@dataclasses.dataclass(frozen=True)
class CollectResult:
    garbage_deleted: int = 0
    pending_deleted: int = 0
    uploads_aborted: int = 0
    history_removed: int = 0  # closed case instances past the history time to live
    uploads_expired: int = 0  # resumable uploads past their expiry, not committed

    @property
    def total(self) -> int:
        return (
            self.garbage_deleted
            + self.pending_deleted
            + self.uploads_aborted
            + self.history_removed
            + self.uploads_expired
        )


# Every page query skips rows a variable points at, whatever their state says: a blob
# wrongly marked is kept rather than lost. A variable references its blob through a
# foreign key, so a transaction pointing a variable at a blob holds a KEY SHARE lock
# on the blob row, which FOR UPDATE SKIP LOCKED steps around. $1 is the page size.
# A resumable upload's pending blob lives as long as the upload (migrations/0013), however
# old: its row names it, and is skipped the same way.
_NOT_REFERENCED = """
    NOT EXISTS (SELECT 1 FROM variable v WHERE v.blob_key = b.key)
    AND NOT EXISTS (SELECT 1 FROM upload u WHERE u.blob_key = b.key)
"""

_DUE_GARBAGE = f"""
    SELECT key FROM blob b
    WHERE state = 'garbage' AND delete_after <= $2 AND {_NOT_REFERENCED}
    LIMIT $1 FOR UPDATE SKIP LOCKED
"""
# With a grace given on the command line: garbage for longer than that. Rows marked
# before migration 0002 have no garbage_since; they became garbage at delete_after
# less the configured grace ($3).
_GARBAGE_SINCE = f"""
    SELECT key FROM blob b
    WHERE state = 'garbage'
      AND coalesce(garbage_since, delete_after - make_interval(secs => $3)) <= $2
      AND {_NOT_REFERENCED}
    LIMIT $1 FOR UPDATE SKIP LOCKED
"""
_STALE_PENDING = f"""
    SELECT key FROM blob b
    WHERE state = 'pending' AND created_at <= $2 AND {_NOT_REFERENCED}
    LIMIT $1 FOR UPDATE SKIP LOCKED
"""


# Closed case instances whose history time to live has passed at $2, a page at a time:
# their definition's own (PUT /case-definition/{id}/history-time-to-live, in days), or
# else $3 seconds after closed_at. The first bound, the shortest of all those times to
# live, is one value for the whole statement, so the range scan of
# case_instance_closed_idx reads only instances that may be due. The delete cascades to
# their variables, whose trigger (migrations/0003) makes their blobs garbage in the same
# statement: history's blobs go the way of every other, and this pass or a later one
# deletes them after the grace.
_EXPIRED_HISTORY = """
    DELETE FROM case_instance WHERE id IN (
        SELECT c.id FROM case_instance c
        LEFT JOIN case_definition d ON d.id = c.case_definition_id
        WHERE c.state = 'closed'
          AND c.closed_at <= coalesce($2::timestamptz, now()) - least(
                make_interval(secs => $3::float8),
                (SELECT make_interval(days => min(history_ttl_days)) FROM case_definition))
          AND c.closed_at <= coalesce($2::timestamptz, now()) - coalesce(
                make_interval(days => d.history_ttl_days), make_interval(secs => $3::float8))
        LIMIT $1 FOR UPDATE OF c SKIP LOCKED
    )
"""


# Resumable uploads past their expiry at $2 (None: now) that no request holds, a page at
# a time. Their delete trigger (migrations/0013) makes their pending blobs garbage in the
# same statement; their multipart uploads are aborted after it (or, if S3 fails then, by
# the stale sweep below, once no row names them).
_EXPIRED_UPLOADS = """
    DELETE FROM upload WHERE id IN (
        SELECT id FROM upload
        WHERE expires_at <= coalesce($2::timestamptz, now())
          AND (lease_until IS NULL OR lease_until < now())
        LIMIT $1 FOR UPDATE SKIP LOCKED
    )
    RETURNING blob_key, s3_upload_id
"""
# The multipart uploads live resumable uploads go on with: the stale sweep spares them.
_LIVE_MULTIPART = "SELECT s3_upload_id FROM upload WHERE s3_upload_id IS NOT NULL"


async def collect_once(  # noqa: PLR0913 - keyword-only knobs, most with defaults
    database: Database,
    store: BlobStore,
    *,
    prefix: str,
    pending_timeout_seconds: float,
    grace_seconds: float | None = None,
    configured_grace_seconds: float = 0.0,
    now: datetime | None = None,
    page_rows: int = COLLECT_PAGE_ROWS,
    history_ttl_seconds: float | None = None,
) -> CollectResult:
    """One pass: remove closed case instances history_ttl_seconds after they closed, or
    their definition's own history time to live after (None: keep them all), then
    delete due garbage and stale pending blobs (object, then row) and abort multipart
    uploads under prefix older than the pending timeout.

    Garbage is due at its delete_after or, given grace_seconds, once it has been
    garbage that long (configured_grace_seconds dates rows marked before migration
    0002). `now` defaults to Postgres's clock. Raises Unavailable when Postgres or S3
    fails: pages committed before stay done, the next pass picks up the rest.
    """
    async with Connections(database) as connections:
        history = 0
        # A pool's connections carry the grace the triggers give (db.py); a connection
        # of its own from a DSN is told the configured one.
        trigger_grace = configured_grace_seconds if isinstance(database, str) else None
        expired = await _remove_expired_uploads(connections, store, page_rows, now, trigger_grace)
        if history_ttl_seconds is not None:
            history = await _remove_expired_history(
                connections, page_rows, now, history_ttl_seconds, trigger_grace
            )
        if now is None:
            # Read after the history went: blobs it released with no grace are due now.
            async with connections.one() as connection:
                now = await connection.fetchval("SELECT now()")
            assert isinstance(now, datetime)
        if grace_seconds is None:
            garbage = await _collect_pages(connections, store, page_rows, _DUE_GARBAGE, now)
        else:
            garbage = await _collect_pages(
                connections,
                store,
                page_rows,
                _GARBAGE_SINCE,
                now - timedelta(seconds=grace_seconds),
                configured_grace_seconds,
            )
        stale = now - timedelta(seconds=pending_timeout_seconds)
        pending = await _collect_pages(connections, store, page_rows, _STALE_PENDING, stale)
        async with connections.one() as connection:
            live = {row["s3_upload_id"] for row in await connection.fetch(_LIVE_MULTIPART)}
    aborted = await _abort_stale_uploads(store, prefix, stale, live)
    return CollectResult(garbage, pending, aborted, history, expired)


async def _remove_expired_uploads(
    connections: Connections,
    store: BlobStore,
    page_rows: int,
    now: datetime | None,
    trigger_grace_seconds: float | None,
) -> int:
    """Delete expired resumable uploads in pages and abort their multipart uploads;
    returns how many had not been committed."""
    expired = 0
    while True:
        async with connections.one() as connection, connection.transaction():
            if trigger_grace_seconds is not None:
                await connection.execute(
                    "SELECT set_config('casevars.gc_grace_seconds', $1, true)",
                    str(trigger_grace_seconds),
                )
            rows = await connection.fetch(_EXPIRED_UPLOADS, page_rows, now)
        expired += sum(row["blob_key"] is not None for row in rows)
        for row in rows:
            if row["s3_upload_id"] is not None and row["blob_key"] is not None:
                with contextlib.suppress(Unavailable):  # the stale sweep retries it
                    await store.abort_upload(row["blob_key"], row["s3_upload_id"])
        if len(rows) < page_rows:
            return expired


async def _remove_expired_history(
    connections: Connections,
    page_rows: int,
    now: datetime | None,
    ttl_seconds: float,
    trigger_grace_seconds: float | None,
) -> int:
    """Delete expired closed case instances in pages, one short transaction each;
    replicas skip each other's pages. Returns how many."""
    removed = 0
    while True:
        async with connections.one() as connection, connection.transaction():
            if trigger_grace_seconds is not None:
                await connection.execute(
                    "SELECT set_config('casevars.gc_grace_seconds', $1, true)",
                    str(trigger_grace_seconds),
                )
            status = await connection.execute(_EXPIRED_HISTORY, page_rows, now, ttl_seconds)
        count = int(status.split()[-1])  # "DELETE n"
        removed += count
        if count < page_rows:
            return removed


async def _collect_pages(
    connections: Connections, store: BlobStore, page_rows: int, query: str, *args: Any
) -> int:
    """Delete the blobs query selects, one short transaction per page; returns how many."""
    deleted = 0
    while True:
        async with connections.one() as connection, connection.transaction():
            keys = [row["key"] for row in await connection.fetch(query, page_rows, *args)]
            if keys:
                # The order is what makes this safe. The rows stay locked while S3
                # deletes their objects: another collector skips them (SKIP LOCKED),
                # and an upload finishing late cannot turn a pending row live meanwhile
                # (its UPDATE waits for this commit, then finds no row). Objects go
                # first: if S3 fails or this process dies here, the transaction rolls
                # back and the rows bring the (idempotent) delete back next pass, while
                # rows deleted first would leave objects that nothing names.
                await store.delete_many(keys)
                await connection.execute("DELETE FROM blob WHERE key = ANY($1::text[])", keys)
        deleted += len(keys)
        if len(keys) < page_rows:
            return deleted


async def _abort_stale_uploads(
    store: BlobStore, prefix: str, initiated_before: datetime, live: set[str]
) -> int:
    """Abort multipart uploads under prefix started no later than initiated_before,
    but those of live resumable uploads. Two replicas may abort the same one; the
    loser's abort finds nothing, harmlessly."""
    aborted = 0
    async for upload in store.iter_uploads(prefix):
        if upload.initiated <= initiated_before and upload.upload_id not in live:
            await store.abort_upload(upload.key, upload.upload_id)
            aborted += 1
    return aborted


async def collect_forever(  # noqa: PLR0913 - keyword-only knobs and a callback
    pool: asyncpg.Pool,
    store: BlobStore,
    *,
    prefix: str,
    interval_seconds: float,
    pending_timeout_seconds: float,
    history_ttl_seconds: float | None = None,
    on_pass: Callable[[CollectResult | None], None] | None = None,
) -> None:
    """Run collect_once every interval until cancelled. A failed pass is logged and
    the next interval tries again; cancelling mid-page rolls that page back, and its
    rows come back next time (deleting an object twice is harmless). on_pass
    (metrics) hears each pass's result, or None when it failed."""
    while True:
        await asyncio.sleep(interval_seconds)
        started = time.monotonic()
        result: CollectResult | None = None
        try:
            result = await collect_once(
                pool,
                store,
                prefix=prefix,
                pending_timeout_seconds=pending_timeout_seconds,
                history_ttl_seconds=history_ttl_seconds,
            )
        except Unavailable as error:
            log.warning("collector.unavailable", error=error.message)
        except Exception:
            log.exception("collector.failed")
        else:
            log.log(
                logging.INFO if result.total else logging.DEBUG,
                "collector.done",
                **dataclasses.asdict(result),
                duration_ms=round((time.monotonic() - started) * 1000, 2),
            )
        if on_pass is not None:
            on_pass(result)
