"""The client commands for people: `put`, `get` and `ls` against a running casevars.
Content is streamed both ways, never held whole in memory, and checked against the
SHA-256 the service sends as the ETag. Progress goes to stderr, so that `get ... -`
can write the content to stdout."""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import functools
import getpass
import hashlib
import mimetypes
import os
import re
import secrets
import stat
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import quote

import aiohttp
import orjson
from yarl import URL

from service.cli import resumable
from service.cli.progress import PROGRESS_INTERVAL_SECONDS, Progress
from service.cli.remote import (
    CONTROL_CHARACTERS,
    ClientError,
    Service,
    etag_sha256,
    refusal,
    shown,
)
from service.cli.upload_state import state_directory
from service.config import MIB, ClientSettings, ConfigError, http_url, parse_size

__all__ = ["PROGRESS_INTERVAL_SECONDS", "ClientError", "Progress", "Service", "run"]

COMMANDS = frozenset({"put", "get", "ls"})
EXIT_FAILURE = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130
# Files are read, sent, received and written this much at a time.
CHUNK_BYTES = 1024 * 1024
# `ls` asks for the sizes of File values this many at a time.
HEADS_AT_ONCE = 8
# Files larger than this go as a resumable (tus) upload unless --resumable-above says
# otherwise: below it, starting over costs little and the multipart POST needs no hash
# read first and no state file.
RESUMABLE_ABOVE_BYTES = 64 * MIB
RETRIES = 10
FIRST_RETRY_DELAY_SECONDS = 1.0
# mimetypes calls report.txt.gz "text/plain" encoded with gzip: what is stored is gzip.
COMPRESSED_TYPES = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
}


class Digest(Protocol):
    """What is used of a hashlib object."""

    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


# --- put ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Upload:
    source: str  # a path, or "-" for stdin
    as_file: bool
    filename: str | None  # File only: the stored file name
    mime_type: str  # File only


def plan_upload(arguments: argparse.Namespace) -> Upload:
    """What to send; --file-type and --name imply --as-file."""
    source: str = arguments.file
    as_file = bool(arguments.as_file or arguments.file_type or arguments.name)
    filename = arguments.name or (None if source == "-" else Path(source).name)
    if as_file and filename is None:
        raise ClientError("a File value from stdin needs a name: add --name FILENAME")
    mime_type = arguments.file_type
    if mime_type is None and filename is not None:
        guessed, encoding = mimetypes.guess_type(filename, strict=False)
        mime_type = COMPRESSED_TYPES.get(encoding) if encoding else guessed
    return Upload(source, as_file, filename, mime_type or "application/octet-stream")


def _disposition_filename(filename: str) -> str:
    """filename= for every reader; filename*= (RFC 5987) too when the name is not plain
    ASCII text, which readers that know it (aiohttp, casevars) prefer."""
    plain = filename.replace("\\", "\\\\").replace('"', '\\"')
    if filename.isascii() and filename.isprintable() and plain == filename:
        return f'filename="{filename}"'
    fallback = CONTROL_CHARACTERS.sub("_", plain).encode("ascii", "replace").decode()
    return f"filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def form_parts(upload: Upload, boundary: str) -> tuple[bytes, bytes]:
    """The multipart form around the file's bytes: everything before them, and after."""
    lines: list[str] = []
    if upload.as_file:
        assert upload.filename is not None
        lines += [f"--{boundary}", 'Content-Disposition: form-data; name="valueType"', "", "File"]
        disposition = f'form-data; name="data"; {_disposition_filename(upload.filename)}'
        content_type = upload.mime_type
    else:
        disposition, content_type = 'form-data; name="data"', "application/octet-stream"
    lines += [f"--{boundary}", f"Content-Disposition: {disposition}"]
    lines += [f"Content-Type: {content_type}", "", ""]
    return "\r\n".join(lines).encode(), f"\r\n--{boundary}--\r\n".encode()


def _open_source(source: str) -> tuple[BinaryIO, int | None]:
    """The stream to send and its size when it is a regular file."""
    if source == "-":
        return sys.stdin.buffer, None
    stream = Path(source).open("rb")  # noqa: SIM115 - closed by put()
    info = os.fstat(stream.fileno())
    return stream, info.st_size if stat.S_ISREG(info.st_mode) else None


async def _body(
    head: bytes, stream: BinaryIO, tail: bytes, digest: Digest, progress: Progress
) -> AsyncIterator[bytes]:
    yield head
    while chunk := await asyncio.to_thread(stream.read, CHUNK_BYTES):
        digest.update(chunk)
        progress.advance(len(chunk))
        yield chunk
    yield tail


def _goes_resumable(upload: Upload, arguments: argparse.Namespace) -> bool:
    """A regular file above the threshold, or --resume: the tus upload. Stdin cannot be
    read twice, so it always goes as one multipart POST."""
    if upload.source == "-":
        if arguments.resume:
            raise ClientError("--resume needs FILE to be a file, not stdin")
        return False
    if arguments.resume:
        return True
    info = Path(upload.source).stat()
    return stat.S_ISREG(info.st_mode) and info.st_size > arguments.resumable_above


async def _post(service: Service, arguments: argparse.Namespace, upload: Upload) -> tuple[int, str]:
    """The multipart POST of .../data; the size and SHA-256 hex of what was sent."""
    url = service.data_url(arguments.case_id, arguments.variable)
    boundary = f"casevars-{secrets.token_hex(16)}"
    head, tail = form_parts(upload, boundary)
    stream, size = _open_source(upload.source)
    digest = hashlib.sha256()
    try:
        async with service.session() as session:
            with Progress("uploaded", size, sys.stderr) as progress:
                async with session.post(
                    url,
                    data=_body(head, stream, tail, digest, progress),
                    headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
                ) as response:
                    if response.status != 204:
                        raise await refusal(response, credentials=service.credentials)
                progress.finish()
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    return progress.done, digest.hexdigest()


async def _put_resumable(
    service: Service, arguments: argparse.Namespace, upload: Upload, state_dir: Path
) -> tuple[int, str]:
    destination = resumable.Destination(
        service,
        arguments.case_id,
        arguments.variable,
        value_type="File" if upload.as_file else "Bytes",
        filename=upload.filename if upload.as_file else None,
        mime_type=upload.mime_type if upload.as_file else None,
    )
    policy = resumable.RetryPolicy(arguments.retries, arguments.retry_delay)
    return await resumable.put_resumable(
        destination, Path(upload.source), policy, state_dir, resume=arguments.resume
    )


async def put(service: Service, arguments: argparse.Namespace, *, state_dir: Path) -> None:
    """Upload FILE as a Bytes or File value, then check what the service stored."""
    upload = plan_upload(arguments)
    if _goes_resumable(upload, arguments):
        sent_size, sent_sha256 = await _put_resumable(service, arguments, upload, state_dir)
    else:
        sent_size, sent_sha256 = await _post(service, arguments, upload)
    url = service.data_url(arguments.case_id, arguments.variable)
    async with service.session() as session, session.head(url) as response:
        if response.status != 200:
            raise await refusal(response, credentials=service.credentials)
        stored_size, stored_sha256 = response.content_length, etag_sha256(response)
    where = f"{shown(arguments.case_id)}/{shown(arguments.variable)}"
    if stored_sha256 is None:
        sys.stdout.write(f"stored {where}: {stored_size} bytes (the service sent no SHA-256)\n")
        return
    if (stored_size, stored_sha256) != (sent_size, sent_sha256):
        raise ClientError(
            f"{where} holds {stored_size} bytes with SHA-256 {stored_sha256}, but "
            f"{sent_size} bytes with SHA-256 {sent_sha256} were sent (changed meanwhile?)"
        )
    sys.stdout.write(f"stored {where}: {stored_size} bytes, sha256 {stored_sha256} (verified)\n")


# --- get ---------------------------------------------------------------------


@dataclasses.dataclass
class Partial:
    """OUT.part, where the content goes until it is complete and checked, and what an
    earlier download left."""

    path: Path  # OUT.part
    kept: int  # bytes kept from before (a cut download, or a prefix in OUT)
    kept_in: Path | None  # where they are: OUT.part, or OUT itself
    digest: Digest  # SHA-256 of the kept bytes, then of what follows


def partial_file(out: str, *, resume: bool) -> Partial:
    """With --resume, the bytes of OUT.part, or else of OUT, are kept (and hashed)."""
    target = Path(out)
    if target.is_dir():
        raise ClientError(f"{shown(out)} is a directory: give a file name")
    path = target.with_name(target.name + ".part")
    kept_in = next((p for p in (path, target) if resume and p.is_file()), None)
    digest = hashlib.sha256()
    if kept_in is None:
        return Partial(path, 0, None, digest)
    with kept_in.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
    return Partial(path, kept_in.stat().st_size, kept_in, digest)


def _range_start_and_size(response: aiohttp.ClientResponse) -> tuple[int, int] | None:
    """From `Content-Range: bytes 10-99/100` (10, 100); `bytes */100` gives (-1, 100)."""
    text = response.headers.get("Content-Range", "").strip()
    match = re.fullmatch(r"bytes (?:(\d+)-\d+|\*)/(\d+)", text)
    if match is None:
        return None
    return int(match.group(1) or -1), int(match.group(2))


async def _receive(
    response: aiohttp.ClientResponse, sink: BinaryIO, digest: Digest, progress: Progress
) -> None:
    async for chunk in response.content.iter_chunked(CHUNK_BYTES):
        digest.update(chunk)
        await asyncio.to_thread(sink.write, chunk)
        progress.advance(len(chunk))
    await asyncio.to_thread(sink.flush)


def _verdict(expected: str | None, digest: Digest, what: str, *, resumed: int) -> str:
    """How the content compares with the service's SHA-256; ClientError if it differs."""
    if expected is None:
        return "not verified (the service sent no SHA-256)"
    if digest.hexdigest() != expected:
        hint = (
            f": its first {resumed} bytes were not the start of this value; "
            "run again without --resume"
            if resumed
            else ""
        )
        raise ClientError(f"{what} does not match the service's SHA-256 {expected}{hint}")
    return f"sha256 {expected} (verified)"


async def _download_to_stdout(service: Service, url: URL) -> None:
    digest = hashlib.sha256()
    async with service.session() as session, session.get(url) as response:
        if response.status != 200:
            raise await refusal(response, credentials="Authorization" in service.headers)
        with Progress("downloaded", response.content_length, sys.stderr) as progress:
            await _receive(response, sys.stdout.buffer, digest, progress)
            progress.finish()
        verdict = _verdict(etag_sha256(response), digest, "the content", resumed=0)
    sys.stderr.write(f"wrote {progress.done} bytes to stdout, {verdict}\n")


async def _download(response: aiohttp.ClientResponse, partial: Partial) -> tuple[str | None, int]:
    """Write a 200 (the whole value) or 206 (the rest after partial.kept) into
    partial.path; the ETag's SHA-256 and the value's size."""
    if response.status == 200:
        if partial.kept:
            sys.stderr.write("the service sent the whole value: starting over\n")
        partial.kept, partial.digest = 0, hashlib.sha256()
        size = response.content_length
    else:
        start_and_size = _range_start_and_size(response)
        if start_and_size is None or start_and_size[0] != partial.kept:
            content_range = shown(response.headers.get("Content-Range", "none"))
            raise ClientError(
                f"the service answered the range request with Content-Range {content_range}"
            )
        size = start_and_size[1]
        if partial.kept_in is not None and partial.kept_in != partial.path:
            # A prefix in OUT: OUT becomes OUT.part until the rest has come and is checked.
            await asyncio.to_thread(partial.kept_in.replace, partial.path)
    sink = await asyncio.to_thread(partial.path.open, "ab" if partial.kept else "wb")
    progress = Progress("downloaded", size, sys.stderr, done=partial.kept)
    try:
        with progress:
            await _receive(response, sink, partial.digest, progress)
            progress.finish()
    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError) as error:
        reason = str(error) or type(error).__name__
        raise ClientError(
            f"the download was cut after {progress.done} bytes ({reason}); "
            f"run the same command with --resume to continue {shown(str(partial.path))}"
        ) from None
    finally:
        await asyncio.to_thread(sink.close)
    return etag_sha256(response), progress.done


async def _complete_already(
    session: aiohttp.ClientSession,
    url: URL,
    response: aiohttp.ClientResponse,
    partial: Partial,
    *,
    credentials: bool,
) -> tuple[str | None, int]:
    """A 416 to a resumed download is fine when the kept bytes are the whole value
    already: then only the check is left."""
    start_and_size = _range_start_and_size(response)
    size = None if start_and_size is None else start_and_size[1]
    if size != partial.kept:
        raise ClientError(
            f"{shown(str(partial.kept_in))} holds {partial.kept} bytes, more than the "
            f"{size} of the value: it is not its start; run again without --resume"
        )
    async with session.head(url) as head:
        if head.status != 200:
            raise await refusal(head, credentials=credentials)
        return etag_sha256(head), partial.kept


async def get(service: Service, arguments: argparse.Namespace) -> None:
    """Download a value to OUT (through OUT.part, renamed once complete) or to stdout."""
    url = service.data_url(arguments.case_id, arguments.variable)
    out: str = arguments.out
    if out == "-":
        if arguments.resume:
            raise ClientError("--resume needs OUT to be a file, not stdout")
        if sys.stdout.isatty():
            raise ClientError("refusing to write binary content to a terminal: give OUT")
        await _download_to_stdout(service, url)
        return
    partial = await asyncio.to_thread(partial_file, out, resume=arguments.resume)
    if partial.kept:
        sys.stderr.write(f"resuming from {partial.kept} bytes in {shown(str(partial.kept_in))}\n")
    credentials = "Authorization" in service.headers
    async with service.session() as session:
        headers = {"Range": f"bytes={partial.kept}-"} if partial.kept else {}
        async with session.get(url, headers=headers) as response:
            finished = partial.path
            if response.status in {200, 206}:
                expected, size = await _download(response, partial)
            elif response.status == 416 and partial.kept_in is not None:
                expected, size = await _complete_already(
                    session, url, response, partial, credentials=credentials
                )
                finished = partial.kept_in
            else:
                raise await refusal(response, credentials=credentials)
    verdict = _verdict(expected, partial.digest, shown(str(finished)), resumed=partial.kept)
    await asyncio.to_thread(finished.replace, out)
    sys.stdout.write(f"saved {shown(out)}: {size} bytes, {verdict}\n")


# --- ls ----------------------------------------------------------------------


async def _size_of(
    session: aiohttp.ClientSession, url: URL, value: Any, heads: asyncio.Semaphore
) -> str:
    """A variable's size in bytes as shown by ls: "-" when it has none."""
    kind, content, info = value.get("type"), value.get("value"), value.get("valueInfo") or {}
    if kind == "Bytes" and isinstance(content, str):
        return str(len(base64.b64decode(content)))
    if kind == "Bytes" and isinstance(info.get("size"), int):
        return str(info["size"])  # above the service's inline limit
    if kind != "File":
        return "-"
    # The JSON view of a File carries no size: ask the download route.
    async with heads, session.head(url) as response:
        size = response.content_length
        return "-" if response.status != 200 or size is None else str(size)


async def ls(service: Service, arguments: argparse.Namespace) -> None:
    """The variables of a case as a table: name, type, size, file name."""
    case_id: str = arguments.case_id
    url = service.variables_url(case_id).with_query(deserializeValues="false")
    async with service.session() as session:
        async with session.get(url) as response:
            if response.status != 200:
                raise await refusal(response, credentials="Authorization" in service.headers)
            variables: dict[str, Any] = orjson.loads(await response.read())
        names = sorted(variables)
        heads = asyncio.Semaphore(HEADS_AT_ONCE)
        sizes = await asyncio.gather(
            *(
                _size_of(session, service.data_url(case_id, name), variables[name], heads)
                for name in names
            )
        )
    rows = [("NAME", "TYPE", "SIZE", "FILE NAME")]
    for name, size in zip(names, sizes, strict=True):
        value = variables[name]
        filename = (
            (value.get("valueInfo") or {}).get("filename") if value.get("type") == "File" else None
        )
        rows.append((shown(name), str(value.get("type")), size, shown(filename or "")))
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for name, kind, size, filename in rows:
        line = f"{name:<{widths[0]}}  {kind:<{widths[1]}}  {size:>{widths[2]}}  {filename}"
        sys.stdout.write(line.rstrip() + "\n")


# --- command line ------------------------------------------------------------


def add_commands(add_parser: Callable[..., argparse.ArgumentParser]) -> None:
    """put, get and ls, for the `casevars` parser's add_parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url", help="the service's REST root (default: CASEVARS_URL, else http://127.0.0.1:8080)"
    )
    common.add_argument(
        "--user",
        metavar="NAME[:PASSWORD]",
        help="HTTP Basic credentials; the password is asked for when left out "
        "(default: the bearer token in CASEVARS_TOKEN, if set)",
    )
    put_parser = add_parser(
        "put",
        parents=[common],
        help="upload a file (or stdin) as a Bytes or File variable",
        description="Stream FILE to a variable of a case, then check the stored size "
        "and SHA-256 against the local ones.",
    )
    put_parser.add_argument("case_id", metavar="CASE_ID")
    put_parser.add_argument("variable", metavar="VAR_NAME")
    put_parser.add_argument("file", metavar="FILE", help="the file to send; - for stdin")
    put_parser.add_argument(
        "--as-file",
        action="store_true",
        help="store a File value (with a file name and mime type) instead of Bytes",
    )
    put_parser.add_argument(
        "--file-type",
        metavar="MIME",
        help="the File's mime type (default: guessed from its name); implies --as-file",
    )
    put_parser.add_argument(
        "--name",
        metavar="FILENAME",
        help="the File's name (default: FILE's base name; needed for stdin); implies --as-file",
    )
    put_parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the unfinished resumable upload of FILE to this variable that an "
        "earlier put left (killed, or out of retries), from the offset the service holds",
    )
    put_parser.add_argument(
        "--resumable-above",
        type=_size,
        default=RESUMABLE_ABOVE_BYTES,
        metavar="SIZE",
        help="send files larger than SIZE as a resumable upload, continued after a cut "
        "connection (default: 64MiB; 0: every non-empty file)",
    )
    put_parser.add_argument(
        "--retries",
        type=_count,
        default=RETRIES,
        metavar="N",
        help=f"resumable upload: give up after N failed attempts in a row with no progress "
        f"(default: {RETRIES})",
    )
    put_parser.add_argument(
        "--retry-delay",
        type=_seconds,
        default=FIRST_RETRY_DELAY_SECONDS,
        metavar="SECONDS",
        help="resumable upload: wait this long before the first retry, twice as long before "
        f"each next one, at most {resumable.MAX_RETRY_DELAY_SECONDS:.0f} s "
        f"(default: {FIRST_RETRY_DELAY_SECONDS:.0f})",
    )
    get_parser = add_parser(
        "get",
        parents=[common],
        help="download a Bytes or File variable",
        description="Stream a variable's content to OUT (through OUT.part, renamed when "
        "complete and checked against the service's SHA-256) or to stdout.",
    )
    get_parser.add_argument("case_id", metavar="CASE_ID")
    get_parser.add_argument("variable", metavar="VAR_NAME")
    get_parser.add_argument(
        "out", metavar="OUT", nargs="?", default="-", help="the file to write; - or none: stdout"
    )
    get_parser.add_argument(
        "--resume",
        action="store_true",
        help="continue a cut download: keep what OUT.part (or else OUT) holds, fetch the rest",
    )
    ls_parser = add_parser(
        "ls", parents=[common], help="list the variables of a case (name, type, size, file name)"
    )
    ls_parser.add_argument("case_id", metavar="CASE_ID")


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}")
    return seconds


def _ask_password(name: str) -> str:
    # getpass falls back to reading stdin without a terminal, which may be put's data.
    try:
        with Path("/dev/tty").open("rb"):
            pass
    except OSError:
        raise ClientError(
            f"no terminal to ask for the password of {name}: use --user {name}:PASSWORD"
        ) from None
    return getpass.getpass(f"password for {name}: ")


def service_from(arguments: argparse.Namespace, settings: ClientSettings) -> Service:
    """Where to send requests, and the credentials: --user before CASEVARS_TOKEN."""
    url = settings.url
    if arguments.url is not None:
        try:
            url = http_url(arguments.url)
        except ValueError as error:
            raise ClientError(f"--url: {error}") from None
    headers: dict[str, str] = {}
    if arguments.user is not None:
        name, colon, password = arguments.user.partition(":")
        if not colon:
            password = _ask_password(name)
        headers["Authorization"] = aiohttp.BasicAuth(name, password).encode()
    elif settings.token is not None:
        headers["Authorization"] = f"Bearer {settings.token}"
    return Service(url, headers)


def run(arguments: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Run a client command; every failure is one line on stderr and a non-zero status."""
    url, status = "the service", EXIT_FAILURE
    try:
        service = service_from(arguments, ClientSettings.from_env(env))
        url = service.url
        commands: dict[str, Callable[[Service, argparse.Namespace], Coroutine[Any, Any, None]]]
        commands = {
            "put": functools.partial(put, state_dir=state_directory(env)),
            "get": get,
            "ls": ls,
        }
        asyncio.run(commands[arguments.command](service, arguments))
    except ConfigError as error:
        message, status = f"configuration error: {error}", EXIT_CONFIG
    except ClientError as error:
        message, status = str(error), error.exit_status
    except aiohttp.ClientConnectorError as error:
        message = f"cannot reach {url}: {error.os_error.strerror or error.os_error}"
    except (aiohttp.ClientError, TimeoutError) as error:
        message = f"the connection to {url} failed: {str(error) or type(error).__name__}"
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        message = f"{where}{error.strerror or error}"
    except KeyboardInterrupt:
        message, status = "interrupted", EXIT_INTERRUPTED
    else:
        return 0
    sys.stdout.flush()
    sys.stderr.write(f"casevars: {message}\n")
    return status
