"""Upload-Metadata of a tus creation: comma-separated `key base64(value)` pairs. It
carries what the multipart form carries: valueType (Bytes or File), the filename, the
mime type (`mimeType`, or `filetype` as tus clients send it) and the encoding, checked
by the same rules as a multipart File's."""

from __future__ import annotations

import base64
import binascii
import dataclasses

from service.camunda import mime
from service.camunda.values import NO_FILENAME, file_info_problem
from service.errors import REST, InvalidInput
from service.http.variables import ILLEGAL_ARGUMENT

# The keys casevars reads; others are kept (HEAD shows them) but mean nothing here.
KNOWN_KEYS = ("valueType", "filename", "filetype", "mimeType", "encoding")
# Upload-Metadata is echoed by HEAD and kept in Postgres: it stays header-sized.
MAX_METADATA_CHARS = 8192
DEFAULT_MIME_TYPE = "application/octet-stream"


@dataclasses.dataclass(frozen=True)
class UploadValue:
    """The value an upload will commit: its type and valueInfo."""

    value_type: str  # Bytes or File
    value_info: dict[str, str]


def _bad(message: str) -> InvalidInput:
    return InvalidInput(f"Upload-Metadata: {message}")


def parse_metadata(header: str | None) -> dict[str, str]:
    """The known keys' values as text; InvalidInput for a header that is not tus's
    format, a key given twice or a known key whose value is not base64 of UTF-8."""
    if header is None or not header.strip():
        return {}
    if len(header) > MAX_METADATA_CHARS:
        raise _bad(f"longer than {MAX_METADATA_CHARS} characters")
    found: dict[str, str] = {}
    seen: set[str] = set()
    for pair in header.split(","):
        fields = pair.strip().split(" ")
        key = fields[0]
        if not key or len(fields) > 2 or not key.isascii() or not key.isprintable():
            raise _bad(f"'{pair.strip()}' is not a key and a base64 value separated by a space")
        if key in seen:
            raise _bad(f"the key {key} is given twice")
        seen.add(key)
        try:
            raw = base64.b64decode(fields[1] if len(fields) == 2 else "", validate=True)
        except (binascii.Error, ValueError):
            raise _bad(f"the value of {key} is not base64") from None
        if key in KNOWN_KEYS:
            try:
                found[key] = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise _bad(f"the value of {key} is not UTF-8 text") from None
    return found


def upload_value(metadata: dict[str, str]) -> UploadValue:
    """Bytes, or a File with its valueInfo. valueType defaults to File when a filename
    is given, else Bytes. The refusals are the multipart upload's, word for word."""
    filename = metadata.get("filename")
    requested = metadata.get("valueType", "File" if filename is not None else "Bytes")
    # Camunda lower-cases only the first letter of a type name, as the form does.
    resolved = {"bytes": "Bytes", "file": "File"}.get(requested[:1].lower() + requested[1:])
    if resolved is None:
        raise InvalidInput(f"Unsupported value type '{requested}'", type_name=REST)
    if resolved == "Bytes":
        return UploadValue("Bytes", {})
    media_type = mime.parse(
        metadata.get("mimeType") or metadata.get("filetype") or DEFAULT_MIME_TYPE
    )
    if media_type is None:
        raise InvalidInput("Invalid mime type given", type_name=REST)
    if filename is None:
        raise InvalidInput(NO_FILENAME, type_name=ILLEGAL_ARGUMENT)
    if media_type.parameters.get("transient", "").lower() == "true":
        raise InvalidInput("A transient File is never stored, so it cannot be uploaded")
    info = {"filename": filename, "mimeType": media_type.essence}
    encoding = metadata.get("encoding", media_type.parameters.get("encoding"))
    if encoding is not None:
        info["encoding"] = encoding
    for key, text in info.items():
        problem = file_info_problem(key, text)
        if problem is not None:
            raise InvalidInput(problem, type_name=ILLEGAL_ARGUMENT)
    return UploadValue("File", info)
