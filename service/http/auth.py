"""Optional authentication, off unless CASEVARS_AUTH_FILE or CASEVARS_AUTH_TOKENS_FILE is
set: HTTP Basic against an htpasswd file of bcrypt hashes (as Camunda's REST API offers
Basic), and bearer tokens from a file, one a line. When on, every route needs valid
credentials except the health routes and the list of engines (and /metrics with
CASEVARS_METRICS_PUBLIC=true).

The check runs in a middleware, before any handler reads a byte of the body. A refusal
is a 401 in Camunda's error format with the type name JAX-RS gives 401
(NotAuthorizedException) and a WWW-Authenticate header. Secrets are compared in
constant time, and an unknown user costs the same bcrypt check as a known one.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path

import bcrypt
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from service.config import ConfigError, Settings
from service.errors import Unauthenticated
from service.http.errors import refusal_before_middlewares
from service.http.logs import PRINCIPAL_KEY
from service.http.metrics import METRICS
from service.private_api import default_expect_handler

NOT_AUTHORIZED = "NotAuthorizedException"
# Routes open to everyone, by name (routes.py): probes carry no credentials, and
# Camunda's authentication filter lets the list of engines (/engine) through.
OPEN_ROUTES = frozenset({"health-live", "health-ready", "engine-list", "engine-rest:engine-list"})
METRICS_ROUTE = "metrics"
# What `htpasswd -B` writes ($2y$), and the other spellings of bcrypt; cost 4 to 31.
_BCRYPT_HASH = re.compile(r"\$2[aby]\$(?:0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
# A bearer token as RFC 6750 allows it (b64token), long enough not to be guessed.
_TOKEN = re.compile(r"[A-Za-z0-9._~+/-]+=*")
MIN_TOKEN_CHARS = 16
# bcrypt checks only the first 72 bytes of a password (and htpasswd hashes only those);
# bcrypt>=5 refuses longer ones instead of cutting them.
BCRYPT_MAX_PASSWORD_BYTES = 72
# A bcrypt check takes 50-250 ms: verified Basic credentials are remembered this long,
# keyed by an HMAC of user and password under a key the process draws at start (never
# the password itself, nor a digest that could be brute-forced at SHA-256 speed).
CACHE_SECONDS = 60.0
CACHE_MAX_ENTRIES = 1024
# bcrypt checks running at once in threads; more wait their turn, so a flood of bad
# passwords cannot take every thread of the default executor (which also resolves
# host names for the S3 and Postgres connections).
CONCURRENT_CHECKS = 4
# bcrypt checks running at once for one user name (known or not, alike): a flood of
# guesses against one account waits behind itself, so the shared turns above go to
# the others in order, and a good login waits for at most one check per other name.
CHECKS_PER_USER = 1


class Refused(Unauthenticated):
    """Credentials missing or wrong (401); reason is a metrics.AUTH_FAILURES label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, type_name=NOT_AUTHORIZED)
        self.reason = reason


def _sha256(text: str) -> bytes:
    # aiohttp decodes header bytes that are not UTF-8 as surrogates; take them back.
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).digest()


class Authenticator:
    """Checks an Authorization header against the users and tokens read at start-up."""

    def __init__(
        self,
        users: Mapping[str, bytes],
        tokens: Iterable[str],
        *,
        metrics_public: bool = False,
    ) -> None:
        self._users = dict(users)
        self._token_digests = tuple({_sha256(token) for token in tokens})
        self._metrics_public = metrics_public
        # Unknown users are checked against this, so they take as long as known ones.
        self._dummy_hash = _dummy_hash(self._users.values()) if self._users else None
        self._cache: dict[bytes, tuple[str, float]] = {}
        self._cache_key = secrets.token_bytes(32)
        self._checks = asyncio.Semaphore(CONCURRENT_CHECKS)
        # user name -> (its turn, requests holding or waiting for it); an entry goes
        # when its last request does, so made-up names leave nothing behind.
        self._user_turns: dict[str, tuple[asyncio.Semaphore, int]] = {}
        offered, schemes = [], []
        if self._users:
            offered.append("HTTP Basic credentials")
            schemes.append('Basic realm="casevars"')
        if self._token_digests:
            offered.append("a bearer token")
            schemes.append('Bearer realm="casevars"')
        self._offered = " or ".join(offered)
        # WWW-Authenticate offers only the schemes that are configured.
        self._challenge = ", ".join(schemes)

    @classmethod
    def from_settings(cls, settings: Settings) -> Authenticator | None:
        """None when authentication is off; ConfigError for a malformed file."""
        if not settings.auth_enabled:
            return None
        users = {} if settings.auth_file is None else read_users(settings.auth_file)
        tokens = [] if settings.auth_tokens_file is None else read_tokens(settings.auth_tokens_file)
        return cls(users, tokens, metrics_public=settings.metrics_public)

    def needs_credentials(self, request: web.Request) -> bool:
        name = request.match_info.route.name
        if name in OPEN_ROUTES:
            return False
        return not (name == METRICS_ROUTE and self._metrics_public)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Refuses a request without valid credentials before its handler runs, so no
        byte of its body is read."""
        if self.needs_credentials(request):
            request[PRINCIPAL_KEY] = await self._checked(request)
        return await handler(request)

    async def _checked(self, request: web.Request) -> str:
        try:
            return await self.principal(request.headers.get(hdrs.AUTHORIZATION))
        except Refused as refused:
            request.app[METRICS].auth_failures.labels(refused.reason).inc()
            refused.challenge = self._challenge
            raise

    async def expect(self, request: web.Request) -> web.StreamResponse | None:
        """Answers `Expect: 100-continue` with the 401 itself when the credentials are
        wrong, so that a client never sends a body that would be refused (aiohttp sends
        100 Continue before any middleware runs)."""
        if self.needs_credentials(request):
            try:
                await self._checked(request)
            except Refused as refused:
                return refusal_before_middlewares(request, refused)
        await default_expect_handler(request)
        return None

    async def principal(self, authorization: str | None) -> str:
        """Who the header proves to be ("user:<name>" or "token:<fingerprint>");
        Refused otherwise."""
        if authorization is None or not authorization.strip():
            raise Refused("missing", f"Authentication required: send {self._offered}")
        scheme, _, credentials = authorization.strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "bearer" and self._token_digests:
            return self._token(credentials)
        if scheme.lower() == "basic" and self._users:
            return await self._basic(credentials)
        raise Refused("scheme", f"Unsupported authentication scheme: send {self._offered}")

    def _token(self, token: str) -> str:
        digest = _sha256(token)
        # Every known token is compared, whichever matches, and always as 32-byte
        # digests: the time taken tells nothing about the tokens or their lengths.
        matched = False
        for known in self._token_digests:
            matched |= hmac.compare_digest(digest, known)
        if not matched:
            raise Refused("invalid", "Invalid credentials")
        return f"token:{digest.hex()[:12]}"

    async def _basic(self, credentials: str) -> str:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except ValueError:  # binascii.Error, UnicodeDecodeError, non-ASCII text
            decoded = ""
        user, colon, password = decoded.partition(":")
        if not colon:
            raise Refused("malformed", "Malformed Basic credentials: expected user:password")
        key = hmac.digest(self._cache_key, decoded.encode("utf-8", "surrogateescape"), "sha256")
        principal = self._cached(key)
        if principal is not None:
            return principal
        async with self._user_turn(user):
            # Requests with the same credentials that waited here find the first's result.
            principal = self._cached(key)
            if principal is not None:
                return principal
            stored = self._users.get(user)
            assert self._dummy_hash is not None
            secret = password.encode("utf-8", "surrogateescape")[:BCRYPT_MAX_PASSWORD_BYTES]
            async with self._checks:
                valid = await asyncio.to_thread(
                    bcrypt.checkpw, secret, self._dummy_hash if stored is None else stored
                )
            if stored is None or not valid:
                raise Refused("invalid", "Invalid credentials")
            principal = f"user:{user}"
            self._remember(key, principal, time.monotonic() + CACHE_SECONDS)
            return principal

    def _cached(self, key: bytes) -> str | None:
        cached = self._cache.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        return None

    @contextlib.asynccontextmanager
    async def _user_turn(self, user: str) -> AsyncIterator[None]:
        """One of the CHECKS_PER_USER turns of this user name."""
        turn, count = self._user_turns.get(user, (None, 0))
        if turn is None:
            turn = asyncio.Semaphore(CHECKS_PER_USER)
        self._user_turns[user] = (turn, count + 1)
        try:
            async with turn:
                yield
        finally:
            turn, count = self._user_turns[user]
            if count == 1:
                del self._user_turns[user]
            else:
                self._user_turns[user] = (turn, count - 1)

    @property
    def users_checking(self) -> int:
        """User names with a check running or waiting (for tests and metrics)."""
        return len(self._user_turns)

    def _remember(self, key: bytes, principal: str, expires: float) -> None:
        if len(self._cache) >= CACHE_MAX_ENTRIES:
            now = time.monotonic()
            for stale in [k for k, (_, until) in self._cache.items() if until <= now]:
                del self._cache[stale]
            if len(self._cache) >= CACHE_MAX_ENTRIES:
                del self._cache[next(iter(self._cache))]  # the oldest entry
        self._cache[key] = (principal, expires)


def _dummy_hash(hashes: Iterable[bytes]) -> bytes:
    """A hash of nothing, at the cost most users' hashes have."""
    costs = collections.Counter(int(hashed[4:6]) for hashed in hashes)
    cost = costs.most_common(1)[0][0]
    return bcrypt.hashpw(b"casevars: no such user", bcrypt.gensalt(rounds=cost))


def _lines(variable: str, path: Path) -> list[tuple[int, str]]:
    """(line number, text) of the file's lines that are neither blank nor # comments."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{variable}: cannot read {path}: {error}") from None
    stripped = [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1)]
    return [(n, line) for n, line in stripped if line and not line.startswith("#")]


def read_users(path: Path) -> dict[str, bytes]:
    """user -> bcrypt hash from an htpasswd file (`htpasswd -B` lines, user:$2y$...)."""
    variable = "CASEVARS_AUTH_FILE"
    users: dict[str, bytes] = {}
    for number, line in _lines(variable, path):
        user, colon, hashed = line.partition(":")
        if not colon or not user:
            raise ConfigError(f"{variable}: line {number} of {path}: expected user:bcrypt-hash")
        if not _BCRYPT_HASH.fullmatch(hashed):
            raise ConfigError(
                f"{variable}: line {number} of {path}: the hash of user {user!r} is not "
                "bcrypt (create users with `htpasswd -B`; MD5, SHA and crypt hashes are "
                "not accepted)"
            )
        if user in users:
            raise ConfigError(f"{variable}: line {number} of {path}: user {user!r} again")
        users[user] = hashed.encode("ascii")
    if not users:
        raise ConfigError(f"{variable}: no users in {path}")
    return users


def read_tokens(path: Path) -> list[str]:
    """Bearer tokens, one a line; blank lines and # comments are skipped."""
    variable = "CASEVARS_AUTH_TOKENS_FILE"
    tokens = []
    for number, line in _lines(variable, path):
        if not _TOKEN.fullmatch(line):
            raise ConfigError(
                f"{variable}: line {number} of {path}: a token is letters, digits and "
                "-._~+/ (RFC 6750), without spaces"
            )
        if len(line) < MIN_TOKEN_CHARS:
            raise ConfigError(
                f"{variable}: line {number} of {path}: a token needs at least "
                f"{MIN_TOKEN_CHARS} characters"
            )
        tokens.append(line)
    if not tokens:
        raise ConfigError(f"{variable}: no tokens in {path}")
    return tokens
