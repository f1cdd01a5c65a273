"""`casevars check`: compares the blob rows in Postgres with the objects under the
prefix in S3 and reports every inconsistency: live blobs missing in S3 or of another
size, objects no row names, variables on blobs that are not live, live blobs no
variable uses. It works in pages, so its memory does not grow with the bucket."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg

from service.storage.blobstore import BlobStore, ObjectInfo
from service.storage.db import Connections, Database

if TYPE_CHECKING:
    from service.storage.db import AnyConnection

# Blob rows read per query; ListObjectsV2 returns 1,000 keys a page too.
CHECK_PAGE_ROWS = 1000
# Discrepancies found by the merge are re-verified this many at a time.
VERIFY_BATCH = 500
# HeadObject requests in flight while re-verifying.
HEAD_CONCURRENCY = 8
# Keys shown per kind of inconsistency in the report.
EXAMPLES_PER_KIND = 10


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
        count(*) FILTER (
            WHERE state = 'pending' AND created_at <= $2
              -- an open resumable upload's blob is pending as long as the upload lives
              AND NOT EXISTS (SELECT 1 FROM upload u WHERE u.blob_key = blob.key)
        ) AS pending_stale,
        count(*) FILTER (WHERE state = 'garbage') AS garbage,
        count(*) FILTER (WHERE state = 'garbage' AND delete_after <= $3) AS garbage_due,
        count(*) FILTER (WHERE NOT starts_with(key, $1)) AS rows_outside_prefix
    FROM blob
"""

_LIVE_MULTIPART = "SELECT s3_upload_id FROM upload WHERE s3_upload_id IS NOT NULL"


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
    async with Connections(database) as connections, connections.one() as connection:
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
        # The multipart uploads open resumable uploads go on with are not stale.
        live = {row[0] for row in await connection.fetch(_LIVE_MULTIPART)}
    stale = now - timedelta(seconds=pending_timeout_seconds)
    async for upload in store.iter_uploads(prefix):
        report.uploads += 1
        report.uploads_stale += upload.initiated <= stale and upload.upload_id not in live
    return report


class _Shared:
    """One connection for the row pages and the verifier; asyncpg runs one query at a
    time on a connection, so they take turns."""

    def __init__(self, connection: AnyConnection) -> None:
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
