"""Optional authentication: HTTP Basic against bcrypt hashes, bearer tokens, the 401 in
Camunda's error format before any body is read, open health routes, /metrics."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import signal
import subprocess
import sys
import threading

import bcrypt
import orjson
import pytest

from service.app import create_app
from service.config import ConfigError, Settings
from service.http import auth
from service.http.auth import Authenticator, read_tokens, read_users
from tests.conftest import ROOT, casevars_env, free_port, new_id, settings_for_tests
from tests.forms import FORM, blob_states, body, data_url, part, upload_bytes
from tests.test_metrics import scrape, total

TOKEN = "tok-0123456789abcdef"
OTHER_TOKEN = "other-token-ABCDEFGHIJ"
LONG_PASSWORD = "p" * 80  # bcrypt reads 72 bytes of it, as htpasswd does
USERS = {"alice": "alice-secret", "bob": "bob secret: with colon", "carol": LONG_PASSWORD}
ANY_ROUTE = "/case-instance/count"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _hash(password: str) -> str:
    return bcrypt.hashpw(password.encode()[:72], bcrypt.gensalt(rounds=4)).decode()


@pytest.fixture
def users_file(tmp_path):
    """alice as `htpasswd -B` writes her ($2y$), bob and carol as Python's bcrypt ($2b$)."""
    alice = "$2y$" + _hash(USERS["alice"])[4:]
    lines = [
        "# users of casevars",
        f"alice:{alice}",
        "",
        f"bob:{_hash(USERS['bob'])}",
        f"carol:{_hash(USERS['carol'])}",
    ]
    path = tmp_path / "users.htpasswd"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def tokens_file(tmp_path):
    path = tmp_path / "tokens"
    path.write_text(f"# bearer tokens\n\n{TOKEN}\n  {OTHER_TOKEN}  \n")
    return path


@pytest.fixture
async def secured(make_client, users_file, tokens_file):
    return await make_client(auth_file=users_file, auth_tokens_file=tokens_file)


async def _refusal(response, schemes=("Basic", "Bearer")):
    assert response.status == 401
    assert response.headers["Content-Type"].startswith("application/json")
    # The challenge offers exactly the configured schemes.
    challenge = response.headers["WWW-Authenticate"]
    assert {part.split()[0] for part in challenge.split(", ")} == set(schemes)
    assert response.headers["X-Request-Id"]
    error = await response.json()
    assert error["type"] == "NotAuthorizedException"
    assert error["code"] is None
    return error["message"]


async def test_off_by_default(client):
    assert (await client.get(ANY_ROUTE)).status == 200
    assert (await client.get("/metrics")).status == 200


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(basic("alice", USERS["alice"]), id="basic-2y"),
        pytest.param(basic("bob", USERS["bob"]), id="basic-password-with-colon"),
        pytest.param(basic("carol", LONG_PASSWORD), id="basic-long-password"),
        pytest.param(f"Bearer {TOKEN}", id="bearer"),
        pytest.param(f"bearer   {OTHER_TOKEN} ", id="bearer-second-token-any-case"),
        pytest.param(basic("alice", USERS["alice"]).replace("Basic", "BASIC"), id="basic-case"),
    ],
)
async def test_valid_credentials(secured, header):
    response = await secured.get(ANY_ROUTE, headers={"Authorization": header})
    assert response.status == 200, await response.text()


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        pytest.param(None, "missing", id="missing"),
        pytest.param("", "missing", id="empty"),
        pytest.param("Digest username=alice", "scheme", id="digest"),
        pytest.param(TOKEN, "scheme", id="token-without-scheme"),
        pytest.param("Basic", "malformed", id="basic-without-credentials"),
        pytest.param("Basic !!not-base64!!", "malformed", id="basic-not-base64"),
        pytest.param("Basic YWxpY2U", "malformed", id="basic-bad-padding"),
        pytest.param(
            "Basic " + base64.b64encode(b"alice").decode(), "malformed", id="basic-without-colon"
        ),
        pytest.param(
            "Basic " + base64.b64encode(b"alice:\xff\xfe").decode(), "malformed", id="not-utf8"
        ),
        pytest.param(basic("mallory", "alice-secret"), "invalid", id="unknown-user"),
        pytest.param(basic("alice", "wrong"), "invalid", id="wrong-password"),
        pytest.param(basic("alice", ""), "invalid", id="empty-password"),
        pytest.param(basic("carol", LONG_PASSWORD[:71]), "invalid", id="long-password-cut"),
        pytest.param("Bearer wrong-token-0123456789", "invalid", id="wrong-token"),
        pytest.param(f"Bearer {TOKEN}x", "invalid", id="token-with-more"),
        pytest.param(f"Bearer {TOKEN[:-1]}", "invalid", id="token-prefix"),
        pytest.param("Bearer", "invalid", id="bearer-without-token"),
        pytest.param(f"Bearer {TOKEN}\u00e9", "invalid", id="bearer-non-ascii"),
    ],
)
async def test_bad_credentials_are_401_in_camunda_format(secured, header, reason):
    headers = {} if header is None else {"Authorization": header}
    await _refusal(await secured.get(ANY_ROUTE, headers=headers))
    samples = await scrape(secured, headers={"Authorization": f"Bearer {TOKEN}"})
    assert total(samples, "casevars_auth_failures_total", reason=reason) == 1
    assert total(samples, "casevars_auth_failures_total") == 1


async def test_unknown_user_and_wrong_password_look_alike(secured):
    unknown = await _refusal(
        await secured.get(ANY_ROUTE, headers={"Authorization": basic("mallory", "x")})
    )
    wrong = await _refusal(
        await secured.get(ANY_ROUTE, headers={"Authorization": basic("alice", "x")})
    )
    token = await _refusal(
        await secured.get(ANY_ROUTE, headers={"Authorization": "Bearer wrong-token-0123456789"})
    )
    assert unknown == wrong == token == "Invalid credentials"


async def test_every_api_route_needs_credentials(secured):
    case_id = new_id()
    for method, path in [
        ("PUT", f"/case-instance/{case_id}"),
        ("GET", f"/case-instance/{case_id}/variables"),
        ("DELETE", f"/case-instance/{case_id}/variables/v"),
        ("GET", data_url(case_id, "v")),
        ("POST", "/case-definition/key/k/create"),
        ("GET", "/no/such/route"),  # 401 before 404: the route table is not probed
        ("DELETE", "/health/live"),  # 401 before 405
    ]:
        await _refusal(await secured.request(method, path))
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert (await secured.put(f"/case-instance/{case_id}", headers=good)).status == 201
    assert (await secured.get("/no/such/route", headers=good)).status == 404


async def test_health_routes_stay_open(secured):
    assert (await secured.get("/health/live")).status == 200
    assert (await secured.get("/health/ready")).status == 200
    wrong = {"Authorization": "Bearer wrong-token-0123456789"}
    assert (await secured.get("/health/live", headers=wrong)).status == 200


async def test_metrics_protected_unless_public(make_client, tokens_file):
    protected = await make_client(auth_tokens_file=tokens_file)
    await _refusal(await protected.get("/metrics"), ("Bearer",))
    assert (await protected.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})).ok
    public = await make_client(auth_tokens_file=tokens_file, metrics_public=True)
    assert (await public.get("/metrics")).status == 200
    await _refusal(await public.get(ANY_ROUTE), ("Bearer",))


async def test_only_the_configured_scheme_is_accepted(make_client, users_file, tokens_file):
    tokens_only = await make_client(auth_tokens_file=tokens_file)
    message = await _refusal(
        await tokens_only.get(ANY_ROUTE, headers={"Authorization": basic("alice", "x")}),
        ("Bearer",),
    )
    assert message == "Unsupported authentication scheme: send a bearer token"
    users_only = await make_client(auth_file=users_file)
    message = await _refusal(
        await users_only.get(ANY_ROUTE, headers={"Authorization": f"Bearer {TOKEN}"}),
        ("Basic",),
    )
    assert message == "Unsupported authentication scheme: send HTTP Basic credentials"
    good = {"Authorization": basic("alice", USERS["alice"])}
    assert (await users_only.get(ANY_ROUTE, headers=good)).status == 200


async def _response_head(reader) -> tuple[bytes, dict[str, str]]:
    status = await reader.readline()
    headers = {}
    while (line := await reader.readline()) not in {b"\r\n", b""}:
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token-0123456789"])
async def test_401_comes_before_the_body_is_read(secured, db, endpoints, authorization):
    """A 1 GiB upload announced by a client without valid credentials: the 401 arrives
    at once, although only a few bytes of the body were ever sent."""
    case_id = new_id()
    head = (
        f"POST {data_url(case_id, 'v')} HTTP/1.1\r\nHost: x\r\nContent-Type: {FORM}\r\n"
        f"Content-Length: {1024**3}\r\n"
        + ("" if authorization is None else f"Authorization: {authorization}\r\n")
        + "\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection(secured.host, secured.port)
    try:
        writer.write(head + body(part("data", b"", "application/octet-stream"), close=False))
        await writer.drain()
        status, headers = await asyncio.wait_for(_response_head(reader), timeout=5)
        assert status.startswith(b"HTTP/1.1 401"), status
        assert "www-authenticate" in headers
        error = orjson.loads(await reader.readexactly(int(headers["content-length"])))
        assert error["type"] == "NotAuthorizedException"
    finally:
        writer.transport.abort()
    good = {"Authorization": f"Bearer {TOKEN}"}
    samples = await scrape(secured, headers=good)
    # The upload handler never ran: nothing refused by it, no byte streamed, no blob.
    assert total(samples, "casevars_uploads_refused_total") == 0
    assert total(samples, "casevars_upload_bytes_total") == 0
    assert await blob_states(db, endpoints.s3_prefix) == {}


async def test_authorized_upload_works(secured):
    headers = {"Authorization": basic("bob", USERS["bob"])}
    case_id = new_id()
    assert (await secured.put(f"/case-instance/{case_id}", headers=headers)).status == 201
    response = await secured.post(
        data_url(case_id, "v"),
        data=body(part("data", b"abc", "application/octet-stream")),
        headers={"Content-Type": FORM, **headers},
    )
    assert response.status == 204
    assert await (await secured.get(data_url(case_id, "v"), headers=headers)).read() == b"abc"
    assert (await upload_bytes(secured, case_id, "v", b"abc")).status == 401


async def test_basic_checks_are_cached_and_run_off_the_loop(secured, users_file, monkeypatch):
    calls: list[tuple[bytes, str]] = []
    real_checkpw = bcrypt.checkpw

    def checkpw(password: bytes, hashed: bytes) -> bool:
        calls.append((hashed, threading.current_thread().name))
        return real_checkpw(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", checkpw)
    alice = {"Authorization": basic("alice", USERS["alice"])}
    for _ in range(5):
        assert (await secured.get(ANY_ROUTE, headers=alice)).status == 200
    assert len(calls) == 1
    assert calls[0][1] != threading.main_thread().name
    # Another user, a wrong password (never cached) and an unknown user each cost a check:
    # an unknown user is checked against a dummy hash, so it takes as long.
    assert (await secured.get(ANY_ROUTE, headers={"Authorization": basic("bob", USERS["bob"])})).ok
    for _ in range(2):
        wrong = {"Authorization": basic("alice", "wrong")}
        assert (await secured.get(ANY_ROUTE, headers=wrong)).status == 401
    unknown = {"Authorization": basic("mallory", "x")}
    assert (await secured.get(ANY_ROUTE, headers=unknown)).status == 401
    assert len(calls) == 5
    stored = set(read_users(users_file).values())
    assert calls[-2][0] in stored
    assert calls[-1][0] not in stored


async def test_the_cache_holds_digests_and_expires(users_file, monkeypatch):
    authenticator = Authenticator(read_users(users_file), [])
    header = basic("alice", USERS["alice"])
    assert await authenticator.principal(header) == "user:alice"
    (key,) = authenticator._cache
    assert len(key) == 32
    assert USERS["alice"].encode() not in key
    assert header.encode() not in key
    # Once the entry is past its time, the password is checked again.
    monkeypatch.setattr(auth, "CACHE_SECONDS", -1.0)
    authenticator._cache.clear()
    await authenticator.principal(header)
    checks = 0
    real_checkpw = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        nonlocal checks
        checks += 1
        return real_checkpw(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    await authenticator.principal(header)
    assert checks == 1


async def test_the_cache_is_bounded(users_file, monkeypatch):
    monkeypatch.setattr(auth, "CACHE_MAX_ENTRIES", 2)
    authenticator = Authenticator(read_users(users_file), [])
    for user, password in USERS.items():
        assert await authenticator.principal(basic(user, password)) == f"user:{user}"
    assert len(authenticator._cache) == 2


async def test_the_cache_is_keyed_by_the_credentials_not_the_header(users_file, monkeypatch):
    authenticator = Authenticator(read_users(users_file), [])
    encoded = basic("alice", USERS["alice"]).split()[1]
    for spaces in range(1, 4):
        assert await authenticator.principal("Basic" + " " * spaces + encoded) == "user:alice"
    (key,) = authenticator._cache
    assert key != hashlib.sha256(f"Basic {encoded}".encode()).digest(), "keyed, not plain"
    other = Authenticator(read_users(users_file), [])
    await other.principal(basic("alice", USERS["alice"]))
    assert set(other._cache) != {key}, "each process draws its own key"


async def _queued(tasks):
    for _ in range(10):
        await asyncio.sleep(0)
    return sum(not task.done() for task in tasks)


async def test_a_flood_of_wrong_passwords_does_not_hold_up_another_users_login(users_file):
    """Structural: the good login is answered while almost the whole flood still waits
    (with one queue for all, it came after every check queued before it)."""
    authenticator = Authenticator(read_users(users_file), [])
    flood = [
        asyncio.create_task(authenticator.principal(basic("bob", f"guess {n}"))) for n in range(40)
    ]
    await _queued(flood)
    assert await authenticator.principal(basic("alice", USERS["alice"])) == "user:alice"
    assert sum(not task.done() for task in flood) >= 30
    results = await asyncio.gather(*flood, return_exceptions=True)
    assert all(isinstance(result, auth.Refused) for result in results)
    assert authenticator.users_checking == 0, "no user name is left behind"


async def test_made_up_user_names_queue_like_real_ones(users_file):
    """An unknown user takes the same turns and the same bcrypt check as a known one."""
    authenticator = Authenticator(read_users(users_file), [])
    flood = [
        asyncio.create_task(authenticator.principal(basic("mallory", f"guess {n}")))
        for n in range(40)
    ]
    await _queued(flood)
    assert await authenticator.principal(basic("alice", USERS["alice"])) == "user:alice"
    assert sum(not task.done() for task in flood) >= 30
    await asyncio.gather(*flood, return_exceptions=True)
    assert authenticator.users_checking == 0


async def test_concurrent_logins_with_the_same_credentials_cost_one_check(users_file, monkeypatch):
    checks = 0
    real_checkpw = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        nonlocal checks
        checks += 1
        return real_checkpw(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    authenticator = Authenticator(read_users(users_file), [])
    header = basic("alice", USERS["alice"])
    principals = await asyncio.gather(*(authenticator.principal(header) for _ in range(10)))
    assert principals == ["user:alice"] * 10
    assert checks == 1


async def test_a_flood_against_the_service_leaves_other_logins_answered(make_client, tmp_path):
    # bob's hash costs more (about 60 ms a check), so his flood is still queued when
    # alice's login, checked alongside it, is answered.
    slow = bcrypt.hashpw(b"bob", bcrypt.gensalt(rounds=10)).decode()
    users = tmp_path / "users.htpasswd"
    users.write_text(f"alice:{_hash(USERS['alice'])}\nbob:{slow}\n")
    secured = await make_client(auth_file=users)
    flood = [
        asyncio.create_task(
            secured.get(ANY_ROUTE, headers={"Authorization": basic("bob", f"guess {n}")})
        )
        for n in range(12)
    ]
    await asyncio.sleep(0.05)  # the flood's requests are in first
    alice = {"Authorization": basic("alice", USERS["alice"])}
    assert (await secured.get(ANY_ROUTE, headers=alice)).status == 200
    assert sum(not task.done() for task in flood) >= 8
    assert [r.status for r in await asyncio.gather(*flood)] == [401] * 12


async def test_token_principal_is_a_fingerprint(tokens_file):
    authenticator = Authenticator({}, read_tokens(tokens_file))
    principal = await authenticator.principal(f"Bearer {TOKEN}")
    assert principal.startswith("token:")
    assert TOKEN not in principal


# --- the files ---------------------------------------------------------------


def test_files_skip_blank_lines_and_comments(users_file, tokens_file):
    assert set(read_users(users_file)) == set(USERS)
    assert read_tokens(tokens_file) == [TOKEN, OTHER_TOKEN]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", "no users in", id="empty"),
        pytest.param("# only a comment\n\n", "no users in", id="only-comments"),
        pytest.param("alice\n", "line 1 .*expected user:bcrypt-hash", id="no-colon"),
        pytest.param(":$2b$04$" + "a" * 53 + "\n", "expected user:bcrypt-hash", id="no-user"),
        pytest.param(
            "alice:$apr1$abc$0123456789012345678901\n", "not bcrypt .*htpasswd -B", id="md5"
        ),
        pytest.param("alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", "not bcrypt", id="sha"),
        pytest.param("alice:plaintext\n", "not bcrypt", id="plain"),
        pytest.param("alice:$2b$04$tooshort\n", "not bcrypt", id="truncated-hash"),
        pytest.param(
            f"alice:{'$2b$04$' + 'a' * 53}\nalice:{'$2b$04$' + 'b' * 53}\n",
            "line 2 .*user 'alice' again",
            id="duplicate",
        ),
    ],
)
def test_malformed_users_file_is_a_config_error(tmp_path, text, expected):
    path = tmp_path / "users"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"CASEVARS_AUTH_FILE: .*{expected}") as raised:
        read_users(path)
    assert "aaaaaaaa" not in str(raised.value), "a hash is never shown"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", "no tokens in", id="empty"),
        pytest.param("\n# none yet\n   \n", "no tokens in", id="only-comments"),
        pytest.param("short-token\n", "line 1 .*at least 16 characters", id="short"),
        pytest.param(f"{TOKEN}\nhas a space in it ok\n", "line 2 .*without spaces", id="space"),
        pytest.param("tok\u00e9n-0123456789abcdef\n", "RFC 6750", id="non-ascii"),
    ],
)
def test_malformed_tokens_file_is_a_config_error(tmp_path, text, expected):
    path = tmp_path / "tokens"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"CASEVARS_AUTH_TOKENS_FILE: .*{expected}") as raised:
        read_tokens(path)
    assert "0123456789abcdef" not in str(raised.value), "a token is never shown"


def test_unreadable_file_is_a_config_error(tmp_path):
    path = tmp_path / "tokens"
    path.write_bytes(b"\xff\xfe not utf-8\n")
    with pytest.raises(ConfigError, match="CASEVARS_AUTH_TOKENS_FILE: cannot read"):
        read_tokens(path)


def test_create_app_reads_the_files(tmp_path, endpoints, users_file):
    empty = tmp_path / "empty-tokens"
    empty.write_text("")
    settings = settings_for_tests(auth_file=users_file, auth_tokens_file=empty)
    with pytest.raises(ConfigError, match="CASEVARS_AUTH_TOKENS_FILE: no tokens"):
        create_app(settings, endpoints)
    assert Authenticator.from_settings(Settings()) is None


def test_serve_refuses_a_malformed_file_with_a_clear_message(tmp_path, endpoints):
    tokens = tmp_path / "tokens"
    tokens.write_text("short\n")
    env = casevars_env(
        endpoints, CASEVARS_PORT=str(free_port()), CASEVARS_AUTH_TOKENS_FILE=str(tokens)
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "serve"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
    assert process.returncode == 2
    assert stderr.strip().splitlines()[-1] == (
        f"casevars: configuration error: CASEVARS_AUTH_TOKENS_FILE: line 1 of {tokens}: "
        "a token needs at least 16 characters"
    )


async def test_expect_continue_gets_the_401_instead_of_100(make_client, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("t" * 32 + "\n")
    client = await make_client(auth_tokens_file=tokens)
    import asyncio

    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        b"POST /case-instance/c/variables/v/data HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1073741824\r\n"
        b"Expect: 100-continue\r\n\r\n"
    )
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 5)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    writer.close()
    assert status_line.startswith(b"HTTP/1.1 401")
    assert b'www-authenticate: bearer realm="casevars"' in head.lower()
    assert b"basic" not in head.lower()
