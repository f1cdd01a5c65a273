"""`casevars put` of a large file as a tus 1.0.0 upload (README, "Resumable uploads").

The file is hashed first, so that the creation request carries its SHA-256
(Repr-Digest) and the service refuses, keeping the old value, whatever else arrives.
Then the whole rest of the file goes in one streamed PATCH: the service keeps every
byte it received when a PATCH is cut, so splitting the body would only add requests
(and a tail stored in Postgres at every end that is not on a part boundary). After a cut
connection or a 5xx, 423 or 409 answer, HEAD asks the offset the service holds and the
next PATCH starts there, after an exponential backoff, until --retries attempts in a row
made no progress. The upload's URL is kept in a state file (service/cli/upload_state.py)
from before the first byte until the end, for `put --resume` after a kill."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import BinaryIO, NoReturn

import aiohttp
from yarl import URL

from service.cli import upload_state
from service.cli.progress import Progress, format_size
from service.cli.remote import ClientError, Service, refusal, shown
from service.cli.upload_state import UploadState

TUS_VERSION = "1.0.0"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
# Besides 5xx: another PATCH of the upload still holds it (423, a cut one the service is
# still checkpointing), or the offset sent is not the service's (409).
RETRY_STATUSES = frozenset({409, 423})
# Upload gone (404, 410) or discarded (400: the content did not match its SHA-256).
GONE_STATUSES = frozenset({400, 404, 410})
MAX_RETRY_DELAY_SECONDS = 60.0
# The file is read this much at a time, to hash and to send.
READ_BYTES = 1024 * 1024
# EX_TEMPFAIL of sysexits.h: a temporary failure; the same command may work later.
EXIT_GAVE_UP = 75
# What a request that did not get through raises: the next attempt may work.
CONNECTION_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError)


class GaveUp(ClientError):
    """--retries attempts in a row failed; the upload, if created, stays resumable."""

    exit_status = EXIT_GAVE_UP


class UploadGone(ClientError):
    """The service no longer has the upload, or discarded it."""


class _Retry(Exception):
    """An attempt that failed in a way the next one may not; the message says how."""


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    retries: int  # failed attempts in a row, without progress, before giving up
    first_delay: float  # seconds before the first retry; doubled for each next one

    def delay(self, failures: int) -> float:
        return float(min(self.first_delay * 2 ** (failures - 1), MAX_RETRY_DELAY_SECONDS))


@dataclasses.dataclass(frozen=True)
class Destination:
    service: Service
    case_id: str
    variable: str
    value_type: str  # Bytes or File
    filename: str | None  # File only
    mime_type: str | None  # File only


async def put_resumable(
    destination: Destination, source: Path, policy: RetryPolicy, state_dir: Path, *, resume: bool
) -> tuple[int, str]:
    """Upload the file, continuing the recorded upload with resume; its size and
    SHA-256 hex once the service holds all of it."""
    path = await asyncio.to_thread(source.absolute)
    service = destination.service
    file = upload_state.state_file(
        state_dir, service.url, destination.case_id, destination.variable, path
    )
    async with service.session() as session:
        if resume:
            state = await asyncio.to_thread(_recorded, file, path)
            offset = None  # the service says
        else:
            await _discard_earlier(session, file, path)
            state = await _create(session, destination, path, policy)
            await asyncio.to_thread(upload_state.save, file, state)
            offset = 0
        sender = _Sender(session, state, file, policy, credentials=service.credentials)
        try:
            await sender.send(offset)
        except asyncio.CancelledError:  # Ctrl-C
            sys.stderr.write("the upload is kept: the same command with --resume continues it\n")
            raise
        except UploadGone:
            await asyncio.to_thread(upload_state.remove, file)
            raise
    await asyncio.to_thread(upload_state.remove, file)
    return state.size, state.sha256


def _recorded(file: Path, path: Path) -> UploadState:
    state = upload_state.load(file)
    if state is None:
        raise ClientError(
            f"no unfinished upload of {shown(str(path))} to this variable is recorded "
            f"(in {shown(str(file.parent))}): run without --resume to upload it"
        )
    _check_unchanged(path, state)
    return state


def _check_unchanged(path: Path, state: UploadState) -> None:
    info = path.stat()
    if (info.st_size, info.st_mtime_ns) != (state.size, state.mtime_ns):
        raise ClientError(
            f"{shown(str(path))} changed since its upload began ({state.size} bytes then, "
            f"{info.st_size} now, or modified since): run without --resume to upload it again"
        )


async def _discard_earlier(session: aiohttp.ClientSession, file: Path, path: Path) -> None:
    """A new upload replaces a recorded one, which the service is told to drop."""
    earlier = await asyncio.to_thread(upload_state.load, file)
    if earlier is None:
        return
    sys.stderr.write(
        f"an earlier upload of {shown(str(path))} stopped at {format_size(earlier.offset)}: "
        "starting over (--resume continues such an upload)\n"
    )
    try:
        async with session.delete(earlier.upload_url, headers={"Tus-Resumable": TUS_VERSION}):
            pass  # whatever the answer: unfinished uploads expire anyway
    except CONNECTION_ERRORS:
        pass
    await asyncio.to_thread(upload_state.remove, file)


async def sha256_of(path: Path, size: int) -> str:
    """The file's SHA-256 hex, with a progress line: a sequential read at disk speed."""
    digest = hashlib.sha256()

    def hash_next(stream: BinaryIO) -> int:
        chunk = stream.read(READ_BYTES)
        digest.update(chunk)
        return len(chunk)

    with path.open("rb") as stream, Progress("hashed", size, sys.stderr) as progress:
        while count := await asyncio.to_thread(hash_next, stream):
            progress.advance(count)
        progress.finish()
    return digest.hexdigest()


def _metadata(destination: Destination) -> str:
    """Upload-Metadata: what the multipart form would carry, with tus's usual keys."""
    pairs = {"valueType": destination.value_type}
    if destination.filename is not None:
        pairs["filename"] = destination.filename
    if destination.mime_type is not None:
        pairs["filetype"] = destination.mime_type
    return ",".join(f"{key} {base64.b64encode(v.encode()).decode()}" for key, v in pairs.items())


async def _create(
    session: aiohttp.ClientSession, destination: Destination, path: Path, policy: RetryPolicy
) -> UploadState:
    info = await asyncio.to_thread(path.stat)
    url = destination.service.uploads_url(destination.case_id, destination.variable)
    await _preflight(session, url, path, info.st_size, credentials=destination.service.credentials)
    sha256 = await sha256_of(path, info.st_size)
    if (await asyncio.to_thread(path.stat)).st_mtime_ns != info.st_mtime_ns:
        raise ClientError(f"{shown(str(path))} changed while it was hashed")
    headers = {
        "Tus-Resumable": TUS_VERSION,
        "Upload-Length": str(info.st_size),
        "Upload-Metadata": _metadata(destination),
        "Repr-Digest": f"sha-256=:{base64.b64encode(bytes.fromhex(sha256)).decode()}:",
    }
    location: URL | None = None
    failures = 0
    while location is None:
        try:
            location = await _post_creation(session, url, headers, destination.service)
        except _Retry as retry:
            failures += 1
            await _wait_to_retry(policy, failures, retry, "upload it", print_note)
    return UploadState(
        upload_url=str(location),
        service=destination.service.url,
        case_id=destination.case_id,
        variable=destination.variable,
        path=str(path),
        size=info.st_size,
        mtime_ns=info.st_mtime_ns,
        sha256=sha256,
        offset=0,
    )


async def _preflight(
    session: aiohttp.ClientSession, url: URL, path: Path, size: int, *, credentials: bool
) -> None:
    """OPTIONS before the file is read to be hashed: a file larger than the service's
    Tus-Max-Size, or credentials it refuses, fail at once rather than after a read of
    the whole file. Other answers are left to the creation request."""
    try:
        async with session.options(url) as response:
            if response.status == 401:
                raise await refusal(response, credentials=credentials)
            largest = response.headers.get("Tus-Max-Size", "")
    except aiohttp.ClientConnectorError:
        raise
    except CONNECTION_ERRORS:
        return
    if largest.isdigit() and size > int(largest):
        raise ClientError(
            f"{shown(str(path))} is {size} bytes, larger than the {largest} bytes the "
            "service takes (its Tus-Max-Size)"
        )


async def _post_creation(
    session: aiohttp.ClientSession, url: URL, headers: dict[str, str], service: Service
) -> URL:
    """The new upload's URL. A service that cannot be reached at all is not retried:
    that is a wrong URL far more often than a restart."""
    try:
        async with session.post(url, headers=headers) as response:
            if response.status == 201 and "Location" in response.headers:
                return response.url.join(URL(response.headers["Location"]))
            if _retryable(response.status):
                raise _Retry(f"the service answered HTTP {response.status}")
            raise await refusal(response, credentials=service.credentials)
    except aiohttp.ClientConnectorError:
        raise
    except CONNECTION_ERRORS as error:
        raise _Retry(_cut(error)) from None


def print_note(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


async def _wait_to_retry(
    policy: RetryPolicy, failures: int, retry: _Retry, hint: str, note: Callable[[str], None]
) -> None:
    if failures > policy.retries:
        attempts = "1 failed attempt" if failures == 1 else f"{failures} failed attempts in a row"
        raise GaveUp(f"gave up after {attempts} ({retry}); run the same command again to {hint}")
    delay = policy.delay(failures)
    note(f"{retry}: trying again in {delay:.1f} s (retry {failures} of {policy.retries})")
    await asyncio.sleep(delay)


class _Sender:
    """PATCHes from the offset until the service holds the whole file; a failed attempt
    is followed by a HEAD for the offset. The retry count starts again whenever the
    service's offset has moved on, so a long upload over a flaky line gets there."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        state: UploadState,
        file: Path,
        policy: RetryPolicy,
        *,
        credentials: bool,
    ) -> None:
        self._session, self._state, self._file = session, state, file
        self._policy, self._credentials = policy, credentials
        self._url, self._path = URL(state.upload_url, encoded=True), Path(state.path)
        self._progress = Progress("uploaded", state.size, sys.stderr)

    async def send(self, offset: int | None) -> None:
        """From offset (None: ask the service first) to the end."""
        failures, best = 0, -1
        with self._progress:
            while True:
                try:
                    if offset is None:
                        offset = await self._offset_of()
                        self._progress.resume_at(offset)
                    if offset > best:
                        best, failures = offset, 0
                        await self._record(offset)
                    if offset == self._state.size:
                        break
                    offset = await self._patch(offset)
                except _Retry as retry:
                    await asyncio.to_thread(_check_unchanged, self._path, self._state)
                    failures += 1
                    offset = None
                    await _wait_to_retry(
                        self._policy,
                        failures,
                        retry,
                        "continue it with --resume",
                        self._progress.note,
                    )
            self._progress.finish()

    async def _record(self, offset: int) -> None:
        if offset != self._state.offset:
            self._state = dataclasses.replace(self._state, offset=offset)
            await asyncio.to_thread(upload_state.save, self._file, self._state)

    async def _offset_of(self) -> int:
        """HEAD: how much of the upload the service holds."""
        try:
            async with self._session.head(
                self._url, headers={"Tus-Resumable": TUS_VERSION}
            ) as response:
                if response.status == 200:
                    length = response.headers.get("Upload-Length")
                    if length is not None and length != str(self._state.size):
                        raise ClientError(
                            f"the upload on the service is {shown(length)} bytes long, the "
                            f"file {self._state.size}: run without --resume to upload it again"
                        )
                    return _offset_header(response, self._state, 0)
                await self._refused(response, "HEAD")
        except CONNECTION_ERRORS as error:
            raise _Retry(_cut(error)) from None

    async def _patch(self, offset: int) -> int:
        """One PATCH of the file from offset to its end; the service's new offset."""
        size = self._state.size
        headers = {
            "Tus-Resumable": TUS_VERSION,
            "Upload-Offset": str(offset),
            "Content-Type": OFFSET_CONTENT_TYPE,
            # A length, not chunked encoding: the service knows where the body ends.
            "Content-Length": str(size - offset),
        }
        try:
            with self._path.open("rb") as stream:
                stream.seek(offset)
                body = _read_from(stream, size - offset, self._progress)
                async with self._session.patch(self._url, data=body, headers=headers) as response:
                    if response.status == 204:
                        moved_to = _offset_header(response, self._state, offset)
                        if moved_to == offset:
                            raise _Retry("the service took none of the PATCH's bytes")
                        return moved_to
                    await self._refused(response, "PATCH")
        except CONNECTION_ERRORS as error:
            raise _Retry(_cut(error)) from None

    async def _refused(self, response: aiohttp.ClientResponse, method: str) -> NoReturn:
        if response.status in GONE_STATUSES and not (method == "HEAD" and response.status == 400):
            reason = await refusal(response, credentials=self._credentials)
            raise UploadGone(
                f"{reason} (the service has dropped the upload: run without --resume to "
                "send the file again)"
            )
        if _retryable(response.status):
            raise _Retry(f"the service answered HTTP {response.status} to {method}")
        raise await refusal(response, credentials=self._credentials)


def _retryable(status: int) -> bool:
    return status >= 500 or status in RETRY_STATUSES


def _cut(error: BaseException) -> str:
    return f"the connection failed ({str(error) or type(error).__name__})"


def _offset_header(response: aiohttp.ClientResponse, state: UploadState, low: int) -> int:
    """Upload-Offset, checked to lie between low and the file's size."""
    text = response.headers.get("Upload-Offset", "")
    offset = int(text) if text.isdigit() else -1
    if not low <= offset <= state.size:
        raise ClientError(
            f"the service answered {response.method} of the upload with Upload-Offset "
            f"{shown(text) or 'missing'}, not between {low} and {state.size}"
        )
    return offset


async def _read_from(stream: BinaryIO, count: int, progress: Progress) -> AsyncIterator[bytes]:
    while count > 0:
        chunk = await asyncio.to_thread(stream.read, min(READ_BYTES, count))
        if not chunk:
            raise ClientError("the file ended early: it changed while it was sent")
        count -= len(chunk)
        progress.advance(len(chunk))
        yield chunk
