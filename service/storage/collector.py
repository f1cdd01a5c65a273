"""Reconciles Postgres with the bucket. The collector deletes garbage blobs past their
time and pending blobs left by crashed uploads, and aborts stale multipart uploads;
the check compares the blob rows with the objects under the prefix.

Both work in pages, so their memory does not grow with the number of blobs, and the
collector is safe with any number of replicas running it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Self

import asyncpg
import structlog

from service.errors import Unavailable
from service.storage.blobstore import BlobStore, ObjectInfo
from service.storage.db import CONNECTION_ERRORS

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]

log = structlog.get_logger("casevars.collector")

# Blob rows locked, deleted from S3 (one DeleteObjects request) and deleted from
# Postgres per transaction: few enough that the locks are held for one S3 round trip.
COLLECT_PAGE_ROWS = 500
# Blob rows read per query by `check`; ListObjectsV2 returns 1,000 keys a page too.
CHECK_PAGE_ROWS = 1000
# Discrepancies found by the merge are re-verified this many at a time.
VERIFY_BATCH = 500
# HeadObject requests in flight while re-verifying.
HEAD_CONCURRENCY = 8
# Keys shown per kind of inconsistency in the report.
EXAMPLES_PER_KIND = 10
# A one-shot command's own connection: connect timeout, and a bound on any one query.
CONNECT_TIMEOUT_SECONDS = 30.0
QUERY_TIMEOUT_SECONDS = 300.0

Database = asyncpg.Pool | str


@contextlib.contextmanager
def _postgres_errors() -> Iterator[None]:
    """Unavailable when Postgres cannot be reached or lacks the casevars schema."""
    try:
        yield
    except CONNECTION_ERRORS as error:
        raise Unavailable(f"Postgres is unavailable: {type(error).__name__}") from error
    except (asyncpg.UndefinedTableError, asyncpg.UndefinedColumnError) as error:
        raise Unavailable(
            f"the database lacks the casevars schema ({error}); run `casevars migrate`"
        ) from error


class _Connections:
    """Where a pass gets connections: from the pool, one per page (so requests are not
    starved), or the single connection opened from a DSN for the whole pass."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._connection: asyncpg.Connection[asyncpg.Record] | None = None

    async def __aenter__(self) -> Self:
        if isinstance(self._database, str):
            with _postgres_errors():
                self._connection = await asyncpg.connect(
                    self._database,
                    timeout=CONNECT_TIMEOUT_SECONDS,
                    command_timeout=QUERY_TIMEOUT_SECONDS,
                )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            with contextlib.suppress(*CONNECTION_ERRORS):
                await connection.close(timeout=CONNECT_TIMEOUT_SECONDS)

    @contextlib.asynccontextmanager
    async def one(self) -> AsyncIterator[Connection]:
        with _postgres_errors():
            if self._connection is not None:
                yield self._connection
                return
            assert not isinstance(self._database, str)
            async with self._database.acquire() as connection:
                yield connection


# --- the collector -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CollectResult:
    garbage_deleted: int = 0
    pending_deleted: int = 0
    uploads_aborted: int = 0

    @property
    def total(self) -> int:
        return self.garbage_deleted + self.pending_deleted + self.uploads_aborted


# Every page query skips rows a variable points at, whatever their state says: a blob
# wrongly marked is kept rather than lost. A variable references its blob through a
# foreign key, so a transaction pointing a variable at a blob holds a KEY SHARE lock
# on the blob row, which FOR UPDATE SKIP LOCKED steps around. $1 is the page size.
_NOT_REFERENCED = "NOT EXISTS (SELECT 1 FROM variable v WHERE v.blob_key = b.key)"

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
) -> CollectResult:
    """One pass: delete due garbage and stale pending blobs (object, then row) and
    abort multipart uploads under prefix older than the pending timeout.

    Garbage is due at its delete_after or, given grace_seconds, once it has been
    garbage that long (configured_grace_seconds dates rows marked before migration
    0002). `now` defaults to Postgres's clock. Raises Unavailable when Postgres or S3
    fails: pages committed before stay done, the next pass picks up the rest.
    """
    async with _Connections(database) as connections:
        if now is None:
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
    aborted = await _abort_stale_uploads(store, prefix, stale)
    return CollectResult(garbage, pending, aborted)


async def _collect_pages(
    connections: _Connections, store: BlobStore, page_rows: int, query: str, *args: Any
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


async def _abort_stale_uploads(store: BlobStore, prefix: str, initiated_before: datetime) -> int:
    """Abort multipart uploads under prefix started no later than initiated_before.
    Two replicas may abort the same one; the loser's abort finds nothing, harmlessly."""
    aborted = 0
    async for upload in store.iter_uploads(prefix):
        if upload.initiated <= initiated_before:
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
                pool, store, prefix=prefix, pending_timeout_seconds=pending_timeout_seconds
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


# --- the check -----------------------------------------------------------------------


@dataclasses.dataclass
class CheckReport:
    """What `casevars check` found. Inconsistencies: live blobs missing in S3 or of
    another size, objects no blob row names, variables on non-live blobs, live blobs
    no variable points at. Pending and garbage rows are normal."""

    bucket: str
    prefix: str
    objects: int = 0
    object_bytes: int = 0
    live: int = 0
    pending: int = 0
    pending_stale: int = 0
    garbage: int = 0
    garbage_due: int = 0
    rows_outside_prefix: int = 0
    missing: int = 0
    wrong_size: int = 0
    orphans: int = 0
    referenced_not_live: int = 0
    unreferenced_live: int = 0
    uploads: int = 0
    uploads_stale: int = 0
    # S3 promises keys in UTF-8 byte order; a store that breaks it costs re-checks only.
    listing_out_of_order: int = 0
    examples: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    INCONSISTENCIES = (
        "missing",
        "wrong_size",
        "orphans",
        "referenced_not_live",
        "unreferenced_live",
    )

    @property
    def consistent(self) -> bool:
        return not any(getattr(self, kind) for kind in self.INCONSISTENCIES)

    def note(self, kind: str, key: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        shown = self.examples.setdefault(kind, [])
        if len(shown) < EXAMPLES_PER_KIND:
            shown.append(key)

    def as_dict(self) -> dict[str, Any]:
        fields = dataclasses.asdict(self)
        return {"consistent": self.consistent, **fields}

    def summary(self) -> str:
        lines = [
            f"bucket {self.bucket}, prefix {self.prefix!r}",
            f"  objects under the prefix      {self.objects} ({self.object_bytes} bytes)",
            f"  live blobs                    {self.live}",
            f"  pending blobs                 {self.pending} ({self.pending_stale} stale)",
            f"  garbage blobs                 {self.garbage} ({self.garbage_due} due)",
            f"  open multipart uploads        {self.uploads} ({self.uploads_stale} stale)",
        ]
        if self.rows_outside_prefix:
            lines.append(
                f"  blob rows outside the prefix  {self.rows_outside_prefix} (not checked)"
            )
        if self.listing_out_of_order:
            lines.append(f"  keys S3 listed out of order   {self.listing_out_of_order}")
        labels = {
            "missing": "live blobs missing in S3",
            "wrong_size": "live blobs of another size in S3",
            "orphans": "objects no blob row names",
            "referenced_not_live": "variables on a blob not live",
            "unreferenced_live": "live blobs no variable uses",
        }
        for kind, label in labels.items():
            lines.append(f"  {label:<30}{getattr(self, kind)}")
            lines.extend(f"    {key}" for key in self.examples.get(kind, []))
        lines.append("consistent" if self.consistent else "INCONSISTENT")
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class _Row:
    key: str
    state: str
    size: int | None
    referenced: bool

    @property
    def should_exist(self) -> bool:
        """A variable points at it, or it says it is live: its object must be there."""
        return self.referenced or self.state == "live"


_ROW_COLUMNS = """
    b.key, b.state, b.size,
    EXISTS (SELECT 1 FROM variable v WHERE v.blob_key = b.key) AS referenced
"""
# Keyset pages in S3's listing order (UTF-8 bytes: COLLATE "C", index blob_key_c_idx).
_ROWS_FROM = f"""
    SELECT {_ROW_COLUMNS} FROM blob b
    WHERE b.key COLLATE "C" >= $1 ORDER BY b.key COLLATE "C" LIMIT $2
"""
_ROWS_AFTER = f"""
    SELECT {_ROW_COLUMNS} FROM blob b
    WHERE b.key COLLATE "C" > $1 ORDER BY b.key COLLATE "C" LIMIT $2
"""
_ROWS_NAMED = f"SELECT {_ROW_COLUMNS} FROM blob b WHERE b.key = ANY($1::text[])"
_COUNTS = """
    SELECT
        count(*) FILTER (WHERE state = 'live') AS live,
        count(*) FILTER (WHERE state = 'pending') AS pending,
        count(*) FILTER (WHERE state = 'pending' AND created_at <= $2) AS pending_stale,
        count(*) FILTER (WHERE state = 'garbage') AS garbage,
        count(*) FILTER (WHERE state = 'garbage' AND delete_after <= $3) AS garbage_due,
        count(*) FILTER (WHERE NOT starts_with(key, $1)) AS rows_outside_prefix
    FROM blob
"""


async def check(
    database: Database,
    store: BlobStore,
    *,
    prefix: str,
    pending_timeout_seconds: float,
    page_rows: int = CHECK_PAGE_ROWS,
) -> CheckReport:
    """Compare the blob rows under prefix with the objects under prefix.

    A merge join of S3's listing (keys in UTF-8 byte order) with the rows read in the
    same order in keyset pages: memory stays at a page or two whatever the size of
    the bucket. Each page is its own snapshot, so a blob that changes while the check
    runs may look wrong; such suspects are looked at again (the row, then HeadObject)
    before they count, a batch at a time.
    """
    report = CheckReport(bucket=store.bucket, prefix=prefix)
    async with _Connections(database) as connections, connections.one() as connection:
        now = await connection.fetchval("SELECT now()")
        assert isinstance(now, datetime)
        counts = await connection.fetchrow(
            _COUNTS, prefix, now - timedelta(seconds=pending_timeout_seconds), now
        )
        assert counts is not None
        for name, value in counts.items():
            setattr(report, name, value)
        shared = _Shared(connection)
        verifier = _Verifier(shared, store, report)
        async with (
            contextlib.aclosing(_rows(shared, prefix, page_rows)) as rows,
            contextlib.aclosing(_objects(store, prefix, report)) as objects,
        ):
            await _merge(rows, objects, verifier)
        await verifier.flush()
    stale = now - timedelta(seconds=pending_timeout_seconds)
    async for upload in store.iter_uploads(prefix):
        report.uploads += 1
        report.uploads_stale += upload.initiated <= stale
    return report


class _Shared:
    """One connection for the row pages and the verifier; asyncpg runs one query at a
    time on a connection, so they take turns."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._turn = asyncio.Lock()

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        async with self._turn:
            return await self._connection.fetch(query, *args)


async def _rows(shared: _Shared, prefix: str, page_rows: int) -> AsyncGenerator[_Row, None]:
    """Blob rows under prefix in key order. The next page is fetched while this one is
    merged, so Postgres works while the listing is parsed."""
    ahead: asyncio.Task[list[asyncpg.Record]] | None
    ahead = asyncio.ensure_future(shared.fetch(_ROWS_FROM, prefix, page_rows))
    try:
        while ahead is not None:
            page = await ahead
            ahead = None
            if len(page) == page_rows:
                ahead = asyncio.ensure_future(shared.fetch(_ROWS_AFTER, page[-1]["key"], page_rows))
            for record in page:
                if not record["key"].startswith(prefix):
                    return  # Keys with the prefix are contiguous in byte order: all seen.
                yield _Row(record["key"], record["state"], record["size"], record["referenced"])
    finally:
        if ahead is not None:
            ahead.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ahead


async def _objects(
    store: BlobStore, prefix: str, report: CheckReport
) -> AsyncGenerator[ObjectInfo, None]:
    previous = ""
    async for item in store.iter_objects(prefix):
        report.objects += 1
        report.object_bytes += item.size
        if item.key < previous:
            report.listing_out_of_order += 1
        previous = item.key
        yield item


async def _merge(
    rows: AsyncIterator[_Row], objects: AsyncIterator[ObjectInfo], verifier: _Verifier
) -> None:
    """Walk both ordered streams together. Python compares str by code point, which is
    the order of their UTF-8 bytes, so `<` here is S3's and COLLATE "C"'s order."""
    row = await anext(rows, None)
    item = await anext(objects, None)
    while row is not None or item is not None:
        if item is None or (row is not None and row.key < item.key):
            assert row is not None
            if row.should_exist:
                await verifier.suspect_missing(row)
            row = await anext(rows, None)
        elif row is None or item.key < row.key:
            await verifier.suspect_orphan(item)
            item = await anext(objects, None)
        else:
            _compare(row, item, verifier.report)
            row = await anext(rows, None)
            item = await anext(objects, None)


def _compare(row: _Row, item: ObjectInfo, report: CheckReport) -> None:
    """A blob row and its object: both there; states and sizes must agree."""
    if row.referenced and row.state != "live":
        report.note("referenced_not_live", row.key)
    if row.state == "live" and not row.referenced:
        report.note("unreferenced_live", row.key)
    if row.should_exist and row.size is not None and row.size != item.size:
        report.note("wrong_size", row.key)


class _Verifier:
    """Looks again at what the merge found wrong, a batch at a time, so that blobs
    created, replaced or collected while the check ran are not reported."""

    def __init__(self, shared: _Shared, store: BlobStore, report: CheckReport) -> None:
        self._shared = shared
        self._store = store
        self.report = report
        self._missing: list[_Row] = []
        self._orphans: list[ObjectInfo] = []

    async def suspect_missing(self, row: _Row) -> None:
        self._missing.append(row)
        if len(self._missing) >= VERIFY_BATCH:
            await self._verify_missing()

    async def suspect_orphan(self, item: ObjectInfo) -> None:
        self._orphans.append(item)
        if len(self._orphans) >= VERIFY_BATCH:
            await self._verify_orphans()

    async def flush(self) -> None:
        await self._verify_missing()
        await self._verify_orphans()

    async def _verify_missing(self) -> None:
        """A row that should have an object the listing lacked: HeadObject now; if it
        is still absent and the row still wants it, it is missing. An object is never
        deleted while its row is live, so the order (row seen, HEAD, row again) holds."""
        suspects, self._missing = self._missing, []
        sizes = await self._sizes([row.key for row in suspects])
        absent = [row for row, size in zip(suspects, sizes, strict=True) if size is None]
        for row, size in zip(suspects, sizes, strict=True):
            if size is not None:
                self._check_found(row, size)
        if not absent:
            return
        now = {r.key: r for r in await self._named([row.key for row in absent])}
        for row in absent:
            current = now.get(row.key)
            if current is not None and current.should_exist:
                self.report.note("missing", row.key)
                if current.referenced and current.state != "live":
                    self.report.note("referenced_not_live", row.key)
                if current.state == "live" and not current.referenced:
                    self.report.note("unreferenced_live", row.key)

    def _check_found(self, row: _Row, size: int) -> None:
        _compare(row, ObjectInfo(row.key, size, datetime.min.replace(tzinfo=UTC)), self.report)

    async def _verify_orphans(self) -> None:
        """An object without a row: the row now? (a pending row is written before the
        upload starts). If not, HeadObject: the collector deletes an object before its
        row, so an object still there after its row is gone is an orphan."""
        suspects, self._orphans = self._orphans, []
        if not suspects:
            return
        rows = {r.key: r for r in await self._named([item.key for item in suspects])}
        lonely = [item for item in suspects if item.key not in rows]
        for item in suspects:
            if item.key in rows:
                _compare(rows[item.key], item, self.report)
        sizes = await self._sizes([item.key for item in lonely])
        for item, size in zip(lonely, sizes, strict=True):
            if size is not None:
                self.report.note("orphans", item.key)

    async def _named(self, keys: Sequence[str]) -> list[_Row]:
        records = await self._shared.fetch(_ROWS_NAMED, list(keys))
        return [_Row(r["key"], r["state"], r["size"], r["referenced"]) for r in records]

    async def _sizes(self, keys: Sequence[str]) -> list[int | None]:
        slots = asyncio.Semaphore(HEAD_CONCURRENCY)

        async def size_of(key: str) -> int | None:
            async with slots:
                return await self._store.size_of(key)

        return list(await asyncio.gather(*(size_of(key) for key in keys)))
