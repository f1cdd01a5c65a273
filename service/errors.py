"""Domain errors. Each carries Camunda's exception type name and message; the HTTP
layer (service/http/errors.py) picks the status from the class, nothing here knows HTTP."""

from __future__ import annotations

INVALID_REQUEST = "InvalidRequestException"
REST = "RestException"
# What Camunda's engine raises for a value a caller may not give (400).
BAD_USER_REQUEST = "BadUserRequestException"


class CamundaError(Exception):
    """An error a client sees as {"type": type_name, "message": message, "code": code}.

    code is None for errors Camunda's REST layer raises (malformed requests, unknown
    routes) and 0 for errors its engine raises (unknown case instances, refused values),
    as Camunda's own responses have it.
    """

    def __init__(
        self, message: str, *, type_name: str = INVALID_REQUEST, code: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.type_name = type_name
        self.code = code


class InvalidInput(CamundaError):
    """The request is malformed or its values are invalid (400)."""


class Unauthenticated(CamundaError):
    """Credentials are missing or wrong (401); challenge is the WWW-Authenticate value."""

    def __init__(
        self,
        message: str,
        *,
        type_name: str = INVALID_REQUEST,
        challenge: str = 'Basic realm="casevars", Bearer realm="casevars"',
    ) -> None:
        super().__init__(message, type_name=type_name)
        self.challenge = challenge


class Forbidden(CamundaError):
    """The engine does not allow the operation in the current state (403), as Camunda
    answers a case instance transition its state does not lead to."""


class NotFound(CamundaError):
    """The case instance, variable or route does not exist (404)."""


class Conflict(CamundaError):
    """The id is taken by something the request cannot replace (409)."""


class TooLarge(CamundaError):
    """A body, value or header is larger than its configured limit (413)."""


class UnsupportedMediaType(CamundaError):
    """The body is not of a media type this route accepts (415)."""


class RangeNotSatisfiable(CamundaError):
    """A Range header asks for bytes beyond the value (416)."""

    def __init__(self, message: str, *, size: int) -> None:
        super().__init__(message)
        self.size = size


class Gone(CamundaError):
    """The resource existed and is no more: an upload past its expiry (410)."""


class PreconditionFailed(CamundaError):
    """A precondition of the request does not hold: a tus request of another protocol
    version (412)."""


class Locked(CamundaError):
    """Another request holds the resource: an upload a PATCH is writing to (423)."""


class ChecksumMismatch(CamundaError):
    """A tus PATCH body does not match its Upload-Checksum; nothing of it was kept (460)."""


class Unavailable(CamundaError):
    """Postgres or S3 does not answer, or the service is shutting down (503)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type_name=REST)


class StorageError(Exception):
    """Postgres and S3 disagree in a way no request can fix (500); raised by storage."""


class BlobMissing(StorageError):
    """A blob that Postgres names is not in the bucket (`casevars check` reports it)."""


class UploadAborted(Exception):
    """The client went away or sent a broken body while a value was streamed."""
