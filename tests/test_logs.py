"""Logs: one JSON line per request (request id, method, route, status, bytes, duration),
start-up and shutdown lines, CASEVARS_LOG_FORMAT and CASEVARS_LOG_LEVEL, and never a
body, a credential or a DSN password."""

from __future__ import annotations

import io
import json
import logging
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from service.app import create_app
from service.http.logs import AccessLogger
from tests.conftest import casevars_env, free_port, new_id, settings_for_tests
from tests.forms import FORM, body, data_url, part, pattern
from tests.serving import Serve, exchange

TOKEN = "log-test-token-0123456789"
SECRET_QUERY = "q-secret-value"


@pytest.fixture
async def logged(aiohttp_client, endpoints, tmp_path, caplog):
    """The real app served with casevars's access logger; returns (client, lines)."""
    tokens = tmp_path / "tokens"
    tokens.write_text(TOKEN + "\n")
    app = create_app(settings_for_tests(auth_tokens_file=tokens), endpoints)
    server = TestServer(app)
    await server.start_server(access_log_class=AccessLogger)
    caplog.set_level(logging.INFO, logger="casevars.access")
    with capture_logs() as lines:
        yield await aiohttp_client(server), lines


def _requests(lines):
    return [line for line in lines if line["event"] == "request"]


async def test_one_line_per_request_with_its_fields(logged):
    client, lines = logged
    auth = {"Authorization": f"Bearer {TOKEN}"}
    case_id = new_id()
    assert (await client.put(f"/case-instance/{case_id}", headers=auth)).status == 201
    content = b"x" * 5000
    form = body(part("data", content, "application/octet-stream"))
    response = await client.post(
        data_url(case_id, "v") + f"?token={SECRET_QUERY}",
        data=form,
        headers={"Content-Type": FORM, "X-Request-Id": "req-upload-1", **auth},
    )
    assert response.status == 204
    download = await client.get(data_url(case_id, "v"), headers=auth)
    assert await download.read() == content

    put, upload, get = _requests(lines)
    assert upload == {
        "event": "request",
        "log_level": "info",
        "request_id": "req-upload-1",
        "method": "POST",
        "route": "/case-instance/{id}/variables/{name}/data",
        "status": 204,
        "bytes_in": len(form),
        "bytes_out": upload["bytes_out"],
        "duration_ms": upload["duration_ms"],
        "remote": "127.0.0.1",
        "principal": upload["principal"],
    }
    assert upload["principal"].startswith("token:")
    assert isinstance(upload["duration_ms"], float)
    assert put["route"] == "/case-instance/{id}"
    assert put["status"] == 201
    assert get["request_id"] == download.headers["X-Request-Id"]
    assert len(get["request_id"]) == 32
    assert get["bytes_out"] > len(content)
    assert get["bytes_in"] == 0
    text = repr(lines)
    assert TOKEN not in text
    assert SECRET_QUERY not in text
    assert case_id not in text, "routes, not raw paths"


async def test_a_refused_upload_shows_how_little_was_read(logged):
    client, lines = logged

    async def announced():
        yield body(part("data", b"", "application/octet-stream"), close=False)
        # The rest of 1 GiB would follow; the 401 is answered first.

    response = await client.post(
        data_url(new_id(), "v"),
        data=announced(),
        headers={"Content-Type": FORM, "Content-Length": str(1024**3)},
    )
    assert response.status == 401
    (line,) = _requests(lines)
    assert line["status"] == 401
    assert line["principal"] is None
    assert line["bytes_in"] < 64 * 1024


async def test_bytes_out_counts_a_download_relayed_in_the_kernel(logged):
    client, lines = logged
    auth = {"Authorization": f"Bearer {TOKEN}"}
    case_id = new_id()
    assert (await client.put(f"/case-instance/{case_id}", headers=auth)).status == 201
    content = pattern(4 * 1024 * 1024, seed=5)
    form = body(part("data", content, "application/octet-stream"))
    response = await client.post(
        data_url(case_id, "v"), data=io.BytesIO(form), headers={"Content-Type": FORM, **auth}
    )
    assert response.status == 204
    download = await client.get(data_url(case_id, "v"), headers=auth)
    assert await download.read() == content
    get = _requests(lines)[-1]
    assert get["method"] == "GET"
    assert len(content) < get["bytes_out"] < len(content) + 2000  # and the headers


async def test_unmatched_routes_have_no_route(logged):
    client, lines = logged
    assert (await client.get("/health/live")).status == 200
    assert (await client.get("/no/such/route")).status == 401
    live, unmatched = _requests(lines)
    assert live["route"] == "/health/live"
    assert live["principal"] is None
    assert unmatched["route"] is None


# --- the process's own lines, as `casevars` writes them -------------------------------


def _env(endpoints, **extra: str) -> dict[str, str]:
    """casevars_env, with the log format left to the default unless extra sets it."""
    env = casevars_env(endpoints, CASEVARS_COLLECTOR_INTERVAL_SECONDS="0", **extra)
    if "CASEVARS_LOG_FORMAT" not in extra:
        del env["CASEVARS_LOG_FORMAT"]
    return env


def _migrate(env, tmp_path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", "migrate"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_json_is_the_default_format(endpoints, tmp_path):
    result = _migrate(_env(endpoints), tmp_path)
    assert result.returncode == 0, result.stderr
    (line,) = _json_lines(result.stdout)
    assert line["event"] == "migrate.done"
    assert line["level"] == "info"
    assert line["logger"] == "casevars"
    assert line["timestamp"].endswith("Z")


def test_log_level_hides_lower_levels(endpoints, tmp_path):
    result = _migrate(_env(endpoints, CASEVARS_LOG_LEVEL="warning"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


def test_console_format(endpoints, tmp_path):
    result = _migrate(_env(endpoints, CASEVARS_LOG_FORMAT="console"), tmp_path)
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert "migrate.done" in line
    assert "[info" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_a_failure_is_one_json_line_without_the_password(endpoints, tmp_path):
    password = "hunter2-not-in-logs"
    nowhere = f"postgresql://casevars:{password}@127.0.0.1:{free_port()}/casevars"
    result = _migrate(_env(endpoints, DATABASE_URL=nowhere), tmp_path)
    assert result.returncode == 1
    (line,) = _json_lines(result.stdout)
    assert line["event"] == "casevars.failed"
    assert line["level"] == "error"
    assert line["command"] == "migrate"
    assert password not in result.stdout + result.stderr


def _wait_until_ready(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "serve exited"
        try:
            with urllib.request.urlopen(f"{url}/health/ready", timeout=5):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    pytest.fail("serve did not become ready")


def test_serve_writes_json_lines_from_start_to_stop(endpoints, tmp_path):
    port = free_port()
    env = _env(endpoints, CASEVARS_PORT=str(port))
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "serve"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_ready(url, process)
        request = urllib.request.Request(
            f"{url}/case-instance/{new_id()}?secret={SECRET_QUERY}",
            headers={"X-Request-Id": "req-serve-1", "Authorization": f"Bearer {TOKEN}"},
        )
        with pytest.raises(urllib.error.HTTPError) as answered:
            urllib.request.urlopen(request, timeout=10)
        answered.value.close()
        assert answered.value.code == 404
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    lines = _json_lines(stdout)  # every line is JSON
    events = [line["event"] for line in lines]
    for expected in ("migrate.done", "serve.started", "serve.stopping", "serve.stopped"):
        assert expected in events, events
    (request_line,) = [line for line in lines if line.get("request_id") == "req-serve-1"]
    assert request_line["event"] == "request"
    assert request_line["logger"] == "casevars.access"
    assert request_line["route"] == "/case-instance/{id}"
    assert request_line["status"] == 404
    assert request_line["method"] == "GET"
    assert isinstance(request_line["duration_ms"], float)
    everything = stdout + stderr
    assert TOKEN not in everything
    assert SECRET_QUERY not in everything
    password = urlsplit(endpoints.dsn).password
    if password:
        assert password not in everything


# --- requests the HTTP layer refuses before any handler ------------------------------

REFUSED = {
    "stray-cr": f"GET /health/live HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\r\n\r\n",
    "non-ascii-url": f"GET /case-instance/{TOKEN}\xff HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad-header": f"GET / HTTP/1.1\r\nHost: x\r\nX-{TOKEN}\x01: v\r\n\r\n",
    "bad-chunk": (
        "PUT /case-instance/c/variables/v HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
        f"\r\nTransfer-Encoding: chunked\r\nAuthorization: Bearer {TOKEN}\r\n\r\n{TOKEN}\r\n"
    ),
    "long-header": f"GET / HTTP/1.1\r\nHost: x\r\nX-Long: {TOKEN}{'t' * 9000}\r\n\r\n",
    "late-headers": f"GET /health/live HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}",
}


def test_refusals_answer_in_camunda_format_and_log_one_line_without_secrets(endpoints, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text(TOKEN + "\n")
    serve = Serve(
        endpoints,
        tmp_path,
        CASEVARS_AUTH_TOKENS_FILE=str(tokens),
        CASEVARS_HEADER_TIMEOUT_SECONDS="1",
    )
    try:
        serve.wait_ready()
        answers = {
            name: exchange(serve.port, raw.encode("utf-8", "surrogateescape"))
            for name, raw in REFUSED.items()
        }
        serve.process.send_signal(signal.SIGTERM)
        serve.process.wait(60)
    finally:
        serve.stop()
    for name, answer in answers.items():
        assert answer.status == (408 if name == "late-headers" else 400), name
        error = json.loads(answer.body)
        assert set(error) == {"type", "message", "code"}
        assert error["type"] == "RestException"
        assert TOKEN not in error["message"]
        assert answer.headers["x-request-id"]
    log = serve.log.read_text()
    assert TOKEN not in log
    lines = _json_lines(log)  # every line is JSON: nothing of aiohttp's own text
    refused = [
        line for line in lines if line["event"] == "request" and line["status"] in {400, 408}
    ]
    assert len(refused) == len(REFUSED)
    ids = {answer.headers["x-request-id"] for answer in answers.values()}
    assert {line["request_id"] for line in refused} == ids
    assert all(line["route"] is None for line in refused)
    reasons = [line for line in lines if line["event"] == "request.refused"]
    assert {line["request_id"] for line in reasons} == ids


def test_a_line_with_undecodable_client_bytes_is_still_one_json_line():
    from service.http.logs import _json_dumps

    line = _json_dumps({"event": "request.refused", "reason": "name n\udcff"})
    assert "\n" not in line
    assert json.loads(line)["reason"] == "name n\udcff"
