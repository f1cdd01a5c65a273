"""Settings, read once from the environment. No other module reads os.environ."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
TIB = 1024 * GIB

# S3 refuses parts below 5 MiB (except the last) and objects above 5 TiB.
S3_MIN_PART_SIZE = 5 * MIB
S3_MAX_PART_SIZE = 5 * GIB
S3_MAX_PARTS = 10_000
S3_MAX_OBJECT_SIZE = 5 * TIB
# The part size doubles every this many parts, so a value of any allowed size
# fits in S3's 10,000 parts while small and medium uploads keep small buffers.
PARTS_PER_SIZE_STEP = 1_000

LogFormat = Literal["json", "console"]

DAY_SECONDS = 86400
HISTORY_TTL_DEFAULT_SECONDS = 180.0 * DAY_SECONDS


class ConfigError(Exception):
    """A setting is missing, unknown or malformed. The message names it."""


def parse_size(text: str) -> int:
    """Bytes from '8388608', '8MiB', '8M', '5TiB' (binary units only)."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)(?:i?B)?\s*", text, flags=re.IGNORECASE)
    if match is None:
        raise ValueError(f"not a size: {text!r} (use bytes or a suffix such as 8MiB)")
    number, unit = match.groups()
    return int(number) * {"": 1, "K": KIB, "M": MIB, "G": GIB, "T": TIB}[unit.upper()]


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {text!r} (use true or false)")


def parse_seconds(text: str) -> float:
    value = float(text)
    if value < 0 or value != value:  # noqa: PLR0124 - NaN check
        raise ValueError(f"not a number of seconds: {text!r}")
    return value


def upload_capacity(part_size: int, largest_part: int = S3_MAX_PART_SIZE) -> int:
    """The largest value a multipart upload can hold when parts grow from part_size
    and none may be larger than largest_part (a part buffer must fit the memory budget)."""
    total = 0
    for part_number in range(S3_MAX_PARTS):
        size = part_size_for(part_number, part_size)
        if size > largest_part:
            break
        total += size
    return total


def inline_cost(size: int) -> int:
    """Memory a Bytes value of `size` bytes takes from the budget while it is inlined in a
    JSON view: the content, its base64 text and the JSON around it (measured by
    benchmarks/memory.py), plus a little for the objects around them."""
    return 4 * size + 64 * KIB


def part_size_for(part_index: int, base: int) -> int:
    """Size of the part at zero-based part_index when the first part has size base."""
    return min(base << (part_index // PARTS_PER_SIZE_STEP), S3_MAX_PART_SIZE)


@dataclasses.dataclass(frozen=True)
class Settings:
    # Postgres DSN; None means "start the embedded Postgres".
    database_url: str | None = None
    # S3 endpoint; None means "start the embedded SeaweedFS".
    s3_endpoint_url: str | None = None
    s3_bucket: str = "casevars"
    s3_region: str = "us-east-1"
    # Every blob key starts with this; the collector and `check` look only here.
    s3_prefix: str = "casevars/"
    host: str = "127.0.0.1"
    port: int = 8080
    # Where the embedded Postgres and SeaweedFS keep their data.
    data_dir: Path = Path(".casevars")
    # First S3 part size in bytes; parts double every 1,000 parts.
    s3_part_size: int = 8 * MIB
    # Parts uploaded concurrently while the next one is read from the client.
    s3_parts_in_flight: int = 2
    # Seconds to wait for S3 to connect or answer before a 503.
    s3_timeout_seconds: float = 30.0
    # Seconds to wait for a Postgres connection or query before a 503.
    db_timeout_seconds: float = 10.0
    db_pool_max_size: int = 10
    # Postgres is reached through a pooler in transaction mode (PgBouncer's
    # pool_mode=transaction): no prepared-statement cache, no session settings.
    db_transaction_pooling: bool = False
    # A larger upload is refused with 413 as soon as the limit is crossed.
    max_upload_bytes: int = S3_MAX_OBJECT_SIZE
    # A resumable upload (tus) that no request touches for this long expires: the
    # collector removes it and what it stored. Each PATCH starts the time again.
    upload_expiry_seconds: float = float(DAY_SECONDS)
    # Resumable uploads open at once (not yet committed, not expired), over all case
    # instances; creating one more answers 503.
    max_open_uploads: int = 1000
    # A request on a resumable upload holds it (renewing) while it runs; when its
    # replica dies, the upload is locked (423) for at most this long.
    upload_lease_seconds: float = 20.0
    # JSON bodies and serialized objects are parsed in memory: this bounds them.
    max_json_bytes: int = 16 * MIB
    # Bytes values up to this size are inlined (base64) in JSON views.
    inline_bytes_limit: int = MIB
    # Memory the large buffers of all requests together may take (upload part buffers,
    # Bytes inlined in JSON views); a request that would go past it waits.
    memory_budget_bytes: int = 512 * MIB
    # Create a case instance on its first variable write instead of answering 404.
    auto_create_case_instances: bool = False
    # A replaced or deleted blob is kept this long so running downloads finish.
    gc_grace_seconds: float = 3600.0
    # A pending blob older than this is a crashed upload's leftover.
    pending_timeout_seconds: float = 86400.0
    # Seconds between collector runs inside `serve`; 0 turns the collector off.
    collector_interval_seconds: float = 60.0
    # A closed case instance and its variables stay readable in history this long after
    # closing; then the collector removes them. 180 days: the history time to live
    # Camunda 7.20 and later give definitions that set none.
    history_ttl_seconds: float = HISTORY_TTL_DEFAULT_SECONDS
    # On SIGTERM, requests in flight get this long before they are aborted.
    shutdown_grace_seconds: float = 30.0
    # A client that sends nothing for this long is disconnected.
    client_read_timeout_seconds: float = 60.0
    # A body must arrive at this rate at least, measured over every read timeout's worth
    # of waiting for it; a trickling client is disconnected. 0: no minimum.
    client_min_bytes_per_second: float = 1024.0
    # A request's line and headers must all arrive within this long of its first byte.
    header_timeout_seconds: float = 20.0
    # A connection that sends no byte of a next request for this long is closed. Above
    # the idle timeout of a proxy in front (60 s for most), so that the proxy, not
    # casevars, closes a connection it might be about to reuse.
    keepalive_timeout_seconds: float = 75.0
    # Relay downloads from S3's socket to the client's inside the kernel (splice(2)) when
    # both are plain TCP on Linux; off: every byte goes through Python.
    splice_downloads: bool = True
    log_format: LogFormat = "json"
    log_level: str = "INFO"
    # htpasswd-style file of users with bcrypt hashes (HTTP Basic); None: no Basic auth.
    auth_file: Path | None = None
    # File of bearer tokens, one a line; None: no bearer auth.
    auth_tokens_file: Path | None = None
    # Serve /metrics without credentials even when authentication is on.
    metrics_public: bool = False

    @property
    def embedded_postgres(self) -> bool:
        return self.database_url is None

    @property
    def embedded_s3(self) -> bool:
        return self.s3_endpoint_url is None

    @property
    def auth_enabled(self) -> bool:
        return self.auth_file is not None or self.auth_tokens_file is not None

    def __repr__(self) -> str:
        fields = dataclasses.asdict(self)
        if self.database_url is not None:
            fields["database_url"] = mask_dsn(self.database_url)
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in fields.items()) + ")"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build settings from environment variables; ConfigError names the bad one."""
        values: dict[str, Any] = {}
        for name, (field, parse) in _ENV.items():
            raw = env.get(name)
            if raw is None:
                continue
            try:
                values[field] = parse(raw)
            except ValueError as error:
                raise ConfigError(f"{name}: {error}") from None
        unknown = sorted(
            k
            for k in env
            if k.startswith("CASEVARS_") and k not in _ENV and k not in CLIENT_ENVIRONMENT_VARIABLES
        )
        if unknown:
            raise ConfigError(f"unknown setting {unknown[0]} (see the README for the list)")
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.s3_part_size < S3_MIN_PART_SIZE:
            raise ConfigError("CASEVARS_S3_PART_SIZE: S3 needs parts of at least 5MiB")
        if self.s3_part_size > S3_MAX_PART_SIZE:
            raise ConfigError("CASEVARS_S3_PART_SIZE: S3 allows parts of at most 5GiB")
        if not 1 <= self.s3_parts_in_flight <= 64:
            raise ConfigError("CASEVARS_S3_PARTS_IN_FLIGHT: must be between 1 and 64")
        if self.max_upload_bytes > S3_MAX_OBJECT_SIZE:
            raise ConfigError("CASEVARS_MAX_UPLOAD_BYTES: S3 objects are at most 5TiB")
        if self.max_upload_bytes > upload_capacity(self.s3_part_size):
            raise ConfigError(
                "CASEVARS_MAX_UPLOAD_BYTES: larger than 10,000 parts starting at "
                "CASEVARS_S3_PART_SIZE can hold; raise the part size"
            )
        self._validate_memory_budget()
        if not 1 <= self.port <= 65535:
            raise ConfigError("CASEVARS_PORT: must be between 1 and 65535")
        if self.db_pool_max_size < 1:
            raise ConfigError("CASEVARS_DB_POOL_MAX_SIZE: must be at least 1")
        if self.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ConfigError("CASEVARS_LOG_LEVEL: use DEBUG, INFO, WARNING or ERROR")
        if self.s3_prefix.startswith("/"):
            raise ConfigError("S3_PREFIX: must not start with '/'")
        for name, path in (
            ("CASEVARS_AUTH_FILE", self.auth_file),
            ("CASEVARS_AUTH_TOKENS_FILE", self.auth_tokens_file),
        ):
            if path is not None and not path.is_file():
                raise ConfigError(f"{name}: no such file: {path}")

    def _validate_memory_budget(self) -> None:
        # Each request that takes from the budget must fit in it alone, or it would wait
        # for ever.
        if self.memory_budget_bytes < self.s3_part_size:
            raise ConfigError(
                "CASEVARS_MEMORY_BUDGET_BYTES: must hold at least one part buffer "
                "(CASEVARS_S3_PART_SIZE)"
            )
        if self.memory_budget_bytes < inline_cost(self.inline_bytes_limit):
            raise ConfigError(
                "CASEVARS_MEMORY_BUDGET_BYTES: must hold at least one inlined Bytes value "
                "(4 x CASEVARS_INLINE_BYTES_LIMIT + 64KiB)"
            )


def mask_dsn(dsn: str) -> str:
    """The DSN with its password replaced, for logs."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", dsn)


def _non_empty(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text.strip()


def _prefix(text: str) -> str:
    text = text.strip()
    return text if not text or text.endswith("/") else text + "/"


def _port(text: str) -> int:
    return int(text)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"must be a positive whole number, not {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    value = parse_seconds(text)
    if value == 0:
        raise ValueError("must be more than 0 seconds")
    return value


def _rate(text: str) -> float:
    value = float(text)
    if not 0 <= value < float("inf"):  # NaN fails this too
        raise ValueError(f"not a number of bytes per second: {text!r}")
    return value


def _finite_seconds(text: str) -> float:
    value = parse_seconds(text)
    if value == float("inf"):
        raise ValueError(f"not a finite number of seconds: {text!r}")
    return value


def _log_format(text: str) -> LogFormat:
    lowered = text.strip().lower()
    if lowered == "json":
        return "json"
    if lowered == "console":
        return "console"
    raise ValueError(f"use json or console, not {text!r}")


def _size(text: str) -> int:
    value = parse_size(text)
    if value < 1:
        raise ValueError("must be at least 1 byte")
    return value


def _path(text: str) -> Path:
    return Path(_non_empty(text))


_ENV: dict[str, tuple[str, Callable[[str], Any]]] = {
    "DATABASE_URL": ("database_url", _non_empty),
    "S3_ENDPOINT_URL": ("s3_endpoint_url", _non_empty),
    "S3_BUCKET": ("s3_bucket", _non_empty),
    "S3_REGION": ("s3_region", _non_empty),
    "S3_PREFIX": ("s3_prefix", _prefix),
    "CASEVARS_HOST": ("host", _non_empty),
    "CASEVARS_PORT": ("port", _port),
    "CASEVARS_DATA_DIR": ("data_dir", _path),
    "CASEVARS_S3_PART_SIZE": ("s3_part_size", _size),
    "CASEVARS_S3_PARTS_IN_FLIGHT": ("s3_parts_in_flight", _positive_int),
    "CASEVARS_S3_TIMEOUT_SECONDS": ("s3_timeout_seconds", parse_seconds),
    "CASEVARS_DB_TIMEOUT_SECONDS": ("db_timeout_seconds", parse_seconds),
    "CASEVARS_DB_POOL_MAX_SIZE": ("db_pool_max_size", _positive_int),
    "CASEVARS_DB_TRANSACTION_POOLING": ("db_transaction_pooling", parse_bool),
    "CASEVARS_MAX_UPLOAD_BYTES": ("max_upload_bytes", _size),
    "CASEVARS_UPLOAD_EXPIRY_SECONDS": ("upload_expiry_seconds", _positive_seconds),
    "CASEVARS_MAX_OPEN_UPLOADS": ("max_open_uploads", _positive_int),
    "CASEVARS_UPLOAD_LEASE_SECONDS": ("upload_lease_seconds", _positive_seconds),
    "CASEVARS_MAX_JSON_BYTES": ("max_json_bytes", _size),
    "CASEVARS_INLINE_BYTES_LIMIT": ("inline_bytes_limit", parse_size),
    "CASEVARS_MEMORY_BUDGET_BYTES": ("memory_budget_bytes", _size),
    "CASEVARS_AUTO_CREATE_CASE_INSTANCES": ("auto_create_case_instances", parse_bool),
    "CASEVARS_GC_GRACE_SECONDS": ("gc_grace_seconds", parse_seconds),
    "CASEVARS_PENDING_TIMEOUT_SECONDS": ("pending_timeout_seconds", parse_seconds),
    "CASEVARS_COLLECTOR_INTERVAL_SECONDS": ("collector_interval_seconds", parse_seconds),
    "CASEVARS_HISTORY_TTL_SECONDS": ("history_ttl_seconds", _finite_seconds),
    "CASEVARS_SHUTDOWN_GRACE_SECONDS": ("shutdown_grace_seconds", parse_seconds),
    "CASEVARS_CLIENT_READ_TIMEOUT_SECONDS": ("client_read_timeout_seconds", parse_seconds),
    "CASEVARS_CLIENT_MIN_BYTES_PER_SECOND": ("client_min_bytes_per_second", _rate),
    "CASEVARS_HEADER_TIMEOUT_SECONDS": ("header_timeout_seconds", _positive_seconds),
    "CASEVARS_KEEPALIVE_TIMEOUT_SECONDS": ("keepalive_timeout_seconds", _positive_seconds),
    "CASEVARS_SPLICE_DOWNLOADS": ("splice_downloads", parse_bool),
    "CASEVARS_LOG_FORMAT": ("log_format", _log_format),
    "CASEVARS_LOG_LEVEL": ("log_level", lambda text: text.strip().upper()),
    "CASEVARS_AUTH_FILE": ("auth_file", _path),
    "CASEVARS_AUTH_TOKENS_FILE": ("auth_tokens_file", _path),
    "CASEVARS_METRICS_PUBLIC": ("metrics_public", parse_bool),
}

# Every environment variable the service reads, for the README and the deployment checks.
ENVIRONMENT_VARIABLES = frozenset(_ENV)


@dataclasses.dataclass(frozen=True)
class ClientSettings:
    """What the client commands (put, get, ls) take from the environment."""

    # The service's REST root, e.g. http://127.0.0.1:8080 or https://host/engine-rest.
    url: str = "http://127.0.0.1:8080"
    # Sent as `Authorization: Bearer ...`; None: no token.
    token: str | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ClientSettings:
        values: dict[str, str] = {}
        for name, (field, parse) in _CLIENT_ENV.items():
            if name in env:
                try:
                    values[field] = parse(env[name])
                except ValueError as error:
                    raise ConfigError(f"{name}: {error}") from None
        return cls(**values)


def http_url(text: str) -> str:
    """An http(s) URL without its trailing slash."""
    text = _non_empty(text).rstrip("/")
    if not re.fullmatch(r"https?://[^/\s]+(/\S*)?", text, flags=re.IGNORECASE):
        raise ValueError(f"not an http:// or https:// URL: {text!r}")
    return text


_CLIENT_ENV: dict[str, tuple[str, Callable[[str], str]]] = {
    "CASEVARS_URL": ("url", http_url),
    "CASEVARS_TOKEN": ("token", _non_empty),
}
# Read by the client commands only; the service accepts them and ignores them.
CLIENT_ENVIRONMENT_VARIABLES = frozenset(_CLIENT_ENV)


@dataclasses.dataclass(frozen=True)
class Endpoints:
    """Where Postgres and S3 are, once the embedded default (if any) has started."""

    dsn: str
    s3_endpoint_url: str | None
    s3_bucket: str
    s3_prefix: str
    s3_region: str
    # None: the standard AWS credential chain (environment, profile, IAM role).
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = dataclasses.field(default=None, repr=False)

    def __repr__(self) -> str:
        return (
            f"Endpoints(dsn={mask_dsn(self.dsn)!r}, s3_endpoint_url={self.s3_endpoint_url!r}, "
            f"s3_bucket={self.s3_bucket!r}, s3_prefix={self.s3_prefix!r})"
        )
