"""What `casevars put` keeps on disk about an unfinished resumable upload, so that
`put --resume` can continue it after the command itself was killed.

One JSON file per upload in $XDG_STATE_HOME/casevars/uploads/ (~/.local/state/casevars/
uploads/ when XDG_STATE_HOME is unset), named by the SHA-256 of the service's URL, the
case instance, the variable and the file's absolute path. It is written before the first
byte is sent and removed once the service holds the whole value."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from service.cli.remote import ClientError, shown

STATE_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class UploadState:
    upload_url: str  # the tus upload's URL, as the service's Location named it
    service: str  # the REST root the upload was created through
    case_id: str
    variable: str
    path: str  # the file, absolute
    size: int
    mtime_ns: int
    sha256: str  # hex, of the whole file, sent at creation as Repr-Digest
    offset: int  # what the service last said it holds; HEAD is asked again on resume


def state_directory(env: Mapping[str, str]) -> Path:
    """Where unfinished uploads are kept (XDG Base Directory: state data)."""
    base = env.get("XDG_STATE_HOME", "")
    # The specification says a relative XDG_STATE_HOME is invalid: ignore it then.
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "state"
    return root / "casevars" / "uploads"


def state_file(directory: Path, service: str, case_id: str, variable: str, path: Path) -> Path:
    """The one state file of an upload of `path` to this variable through this service."""
    key = "\0".join((service, case_id, variable, str(path)))
    return directory / f"{hashlib.sha256(key.encode()).hexdigest()}.json"


def load(file: Path) -> UploadState | None:
    """The state kept in file; None when there is none."""
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        return None
    try:
        document: Any = orjson.loads(raw)
        if document.get("format") != STATE_FORMAT:
            raise ValueError("another format")
        fields = {field.name: document[field.name] for field in dataclasses.fields(UploadState)}
        return UploadState(**fields)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ClientError(
            f"the upload state in {shown(str(file))} cannot be read ({error}); "
            "run without --resume to start over"
        ) from None


def save(file: Path, state: UploadState) -> None:
    """Write the state whole or not at all (a kill mid-write leaves the old one)."""
    file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = file.with_name(f"{file.name}.{os.getpid()}.tmp")
    document = {"format": STATE_FORMAT, **dataclasses.asdict(state)}
    with partial.open("wb") as stream:
        stream.write(orjson.dumps(document, option=orjson.OPT_INDENT_2))
        stream.flush()
        os.fsync(stream.fileno())
    partial.replace(file)


def remove(file: Path) -> None:
    file.unlink(missing_ok=True)
