"""The service as the client commands see it: its URLs, an aiohttp session with the
client's timeouts, and a refusal turned into one line for the user."""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Mapping
from urllib.parse import quote

import aiohttp
import orjson
from yarl import URL

CONNECT_TIMEOUT_SECONDS = 30.0
# The service answers an upload once its last part is in S3; a connection silent for
# this long is taken for dead.
READ_TIMEOUT_SECONDS = 300.0
# A refusal's body is read up to this size for its message.
MAX_ERROR_BODY_BYTES = 64 * 1024
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


class ClientError(Exception):
    """What went wrong, in one line for the user; never shown with a traceback."""

    exit_status = 1


@dataclasses.dataclass(frozen=True)
class Service:
    url: str  # the REST root, without a trailing slash
    headers: Mapping[str, str]  # Authorization, when credentials are given

    def variables_url(self, case_id: str) -> URL:
        return URL(f"{self.url}/case-instance/{segment(case_id)}/variables", encoded=True)

    def data_url(self, case_id: str, name: str) -> URL:
        return URL(f"{self.variables_url(case_id)}/{segment(name)}/data", encoded=True)

    def uploads_url(self, case_id: str, name: str) -> URL:
        """Where resumable (tus) uploads to the variable are created."""
        return URL(f"{self.variables_url(case_id)}/{segment(name)}/uploads", encoded=True)

    @property
    def credentials(self) -> bool:
        return "Authorization" in self.headers

    def session(self) -> aiohttp.ClientSession:
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=CONNECT_TIMEOUT_SECONDS, sock_read=READ_TIMEOUT_SECONDS
        )
        # auto_decompress off: the bytes written are the bytes the ETag was made from.
        return aiohttp.ClientSession(headers=self.headers, timeout=timeout, auto_decompress=False)


def segment(text: str) -> str:
    return quote(text, safe="")


def shown(text: str) -> str:
    """Text from the service or a path, safe to print on a terminal."""
    return CONTROL_CHARACTERS.sub("?", text)


async def refusal(response: aiohttp.ClientResponse, *, credentials: bool) -> ClientError:
    """The one-line error for a response that is not a success: the service's message."""
    raw = await response.content.read(MAX_ERROR_BODY_BYTES)
    message = raw.decode("utf-8", "replace").strip()
    with contextlib.suppress(ValueError):
        body = orjson.loads(raw)
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            message = body["message"]
    message = " ".join(shown(message).split())
    status = f"HTTP {response.status} {response.reason or ''}".strip()
    if response.status == 401:
        if not credentials:
            return ClientError(
                "authentication failed: the service asks for credentials "
                "(set CASEVARS_TOKEN or use --user)"
            )
        return ClientError(f"authentication failed: {message or status}")
    return ClientError(f"{status}: {message}" if message else status)


def etag_sha256(response: aiohttp.ClientResponse) -> str | None:
    """The SHA-256 hex the service sends as a strong ETag, if it sent one."""
    etag = response.headers.get("ETag", "")
    match = re.fullmatch(r'"([0-9a-f]{64})"', etag.strip())
    return None if match is None else match.group(1)
