"""The client commands (put, get, ls) run as a user runs them, against one real
`casevars serve` on its embedded default, started once for this module."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest

from service.cli.client import PROGRESS_INTERVAL_SECONDS, Progress
from service.config import ClientSettings, ConfigError, Settings
from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.timeout(240)

MIB = 1024 * 1024
PART_SIZE = 5 * MIB
MAX_UPLOAD = 30 * MIB
INLINE_LIMIT = 64 * 1024
TOKEN = "client-test-token"
USER, PASSWORD = "alice", "correct horse"
CLI_TIMEOUT_SECONDS = 60


@dataclass
class Service:
    url: str
    log: Path
    process: subprocess.Popen[bytes]
    # False while the service does not check credentials yet.
    auth_enforced: bool

    def request(self, method: str, path: str, body: object = None) -> int:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        request.add_header("Authorization", f"Bearer {TOKEN}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code

    def headers(self, path: str) -> dict[str, str]:
        request = urllib.request.Request(f"{self.url}{path}", method="HEAD")
        request.add_header("Authorization", f"Bearer {TOKEN}")
        with urllib.request.urlopen(request, timeout=30) as response:
            return dict(response.headers)

    def new_case(self) -> str:
        case_id = f"case-{uuid.uuid4().hex[:12]}"
        assert self.request("PUT", f"/case-instance/{case_id}") == 201
        return case_id

    def access_log_statuses(self) -> list[int]:
        statuses = []
        for line in self.log.read_text().splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("event") == "request":
                    statuses.append(entry["status"])
        return statuses


def _serve_env(data_dir: Path, port: int, auth_dir: Path | None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CASEVARS_", "DATABASE_URL", "S3_"))
    }
    env |= {
        "CASEVARS_DATA_DIR": str(data_dir),
        "CASEVARS_PORT": str(port),
        "CASEVARS_S3_PART_SIZE": "5MiB",
        "CASEVARS_MAX_UPLOAD_BYTES": "30MiB",
        "CASEVARS_INLINE_BYTES_LIMIT": "64KiB",
        "CASEVARS_COLLECTOR_INTERVAL_SECONDS": "0",
    }
    if auth_dir is not None:
        tokens = auth_dir / "tokens"
        tokens.write_text(f"{TOKEN}\n")
        users = auth_dir / "users"
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
        users.write_text(f"{USER}:{hashed}\n")
        env |= {"CASEVARS_AUTH_TOKENS_FILE": str(tokens), "CASEVARS_AUTH_FILE": str(users)}
    return env


def _start(tmp: Path, *, auth: bool) -> tuple[subprocess.Popen[bytes], Path, str]:
    port = free_port()
    log = tmp / f"serve-{port}.log"
    env = _serve_env(tmp / "data", port, tmp if auth else None)
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve"], env=env, stdout=out, stderr=out, cwd=tmp
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return process, log, url
        try:
            urllib.request.urlopen(f"{url}/health/ready", timeout=5).close()
        except urllib.error.HTTPError:
            return process, log, url  # it answers (health may want credentials)
        except OSError:
            time.sleep(0.2)
            continue
        return process, log, url
    process.kill()
    pytest.fail(f"serve not ready: {log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("client")
    process, log, url = _start(tmp, auth=True)
    if process.poll() is not None:
        # A service that does not know the auth settings yet refuses to start.
        assert "unknown setting" in log.read_text(), log.read_text()[-3000:]
        process, log, url = _start(tmp, auth=False)
        assert process.poll() is None, log.read_text()[-3000:]
    probe = urllib.request.Request(f"{url}/case-instance/count")
    probe.add_header("Authorization", "Bearer wrong-token")
    try:
        urllib.request.urlopen(probe, timeout=30).close()
        enforced = False
    except urllib.error.HTTPError as error:
        enforced = error.code == 401
    yield Service(url, log, process, enforced)
    _stop(process)


def casevars(
    service: Service, *args: str, stdin: bytes | None = None, **env: str
) -> subprocess.CompletedProcess[bytes]:
    """Run the command line as a user does, with the good token unless env says otherwise."""
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CASEVARS_URL": service.url}
    environment["CASEVARS_TOKEN"] = TOKEN
    environment.update(env)
    environment = {key: value for key, value in environment.items() if value}
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        env=environment,
        cwd=ROOT,
        timeout=CLI_TIMEOUT_SECONDS,
    )


def one_line_error(result: subprocess.CompletedProcess[bytes]) -> str:
    """The command failed with one `casevars: ...` line last on stderr (after what it
    reported while it worked, if anything), and no traceback."""
    stderr = result.stderr.decode()
    assert result.returncode != 0, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("casevars: ")]
    assert errors == stderr.splitlines()[-1:], stderr
    return errors[0]


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


# --- configuration (no service needed) ---------------------------------------


def test_client_settings_come_from_the_environment():
    assert ClientSettings.from_env({}) == ClientSettings("http://127.0.0.1:8080", None)
    settings = ClientSettings.from_env(
        {"CASEVARS_URL": "https://h.example/engine-rest/", "CASEVARS_TOKEN": "t0ken"}
    )
    assert settings.url == "https://h.example/engine-rest"
    assert settings.token == "t0ken"
    assert "t0ken" not in repr(settings)
    with pytest.raises(ConfigError, match="CASEVARS_URL"):
        ClientSettings.from_env({"CASEVARS_URL": "127.0.0.1:8080"})
    with pytest.raises(ConfigError, match="CASEVARS_TOKEN"):
        ClientSettings.from_env({"CASEVARS_TOKEN": " "})


def test_the_service_accepts_the_client_variables():
    Settings.from_env({"CASEVARS_URL": "http://x:1", "CASEVARS_TOKEN": "t"})


def test_client_commands_need_no_service_settings(tmp_path):
    # A service setting that would stop `serve` does not matter to a client, and no
    # embedded server is started (nothing appears in the working folder).
    url = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run(
        [sys.executable, "-m", "service", "ls", "some-case"],
        env={"PATH": "/usr/bin:/bin", "CASEVARS_PORT": "eighty", "CASEVARS_URL": url},
        capture_output=True,
        cwd=tmp_path,
        timeout=CLI_TIMEOUT_SECONDS,
    )
    assert one_line_error(result).startswith(f"casevars: cannot reach {url}: ")
    assert list(tmp_path.iterdir()) == []


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_shows_bytes_rate_and_time_left():
    terminal = FakeTerminal()
    progress = Progress("uploaded", 10 * MIB, terminal)
    time.sleep(PROGRESS_INTERVAL_SECONDS * 1.5)
    progress.advance(MIB)
    line = terminal.getvalue()
    assert line.startswith("\ruploaded  [##------------------]  1.0 MiB / 10.0 MiB   10%  ")
    assert line.endswith(" left\x1b[K")
    assert "MiB/s" in line
    progress.finish()
    assert terminal.getvalue().endswith("\n")


# --- put and get --------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1000, 12 * MIB], ids=["empty", "small", "three-parts"])
def test_put_get_round_trip(service, tmp_path, size):
    case_id = service.new_case()
    content = os.urandom(size)
    source = tmp_path / "source.bin"
    source.write_bytes(content)
    put = casevars(service, "put", case_id, "blob", str(source))
    assert put.returncode == 0, put.stderr
    assert put.stdout.decode() == (
        f"stored {case_id}/blob: {size} bytes, sha256 {sha256(content)} (verified)\n"
    )
    # Not a terminal: one plain line, no bar.
    assert put.stderr.decode().startswith(f"uploaded {size} bytes in ")
    assert "\r" not in put.stderr.decode()

    out = tmp_path / "out.bin"
    got = casevars(service, "get", case_id, "blob", str(out))
    assert got.returncode == 0, got.stderr
    assert out.read_bytes() == content
    assert not (tmp_path / "out.bin.part").exists()
    assert f"{size} bytes, sha256 {sha256(content)} (verified)" in got.stdout.decode()


def test_file_values_keep_name_and_mime_type(service, tmp_path):
    case_id = service.new_case()
    report = tmp_path / "my report.txt"
    report.write_text("hello\n")
    assert casevars(service, "put", case_id, "report", str(report), "--as-file").returncode == 0
    pdf = tmp_path / "scan.bin"
    pdf.write_bytes(b"%PDF-1.7 fake")
    named = casevars(
        service,
        "put",
        case_id,
        "scan",
        str(pdf),
        "--file-type",
        "application/pdf",
        "--name",
        'résumé "final".pdf',
    )
    assert named.returncode == 0, named.stderr

    headers = service.headers(f"/case-instance/{case_id}/variables/report/data")
    assert headers["Content-Type"] == "text/plain"
    assert 'filename="my report.txt"' in headers["Content-Disposition"]
    headers = service.headers(f"/case-instance/{case_id}/variables/scan/data")
    assert headers["Content-Type"] == "application/pdf"
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.pdf" in headers["Content-Disposition"]

    listing = casevars(service, "ls", case_id)
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.decode().splitlines() == [
        "NAME    TYPE  SIZE  FILE NAME",
        "report  File     6  my report.txt",
        'scan    File    13  résumé "final".pdf',
    ]


def test_ls_shows_every_kind_of_variable(service, tmp_path):
    case_id = service.new_case()
    large = tmp_path / "large"
    large.write_bytes(b"x" * (INLINE_LIMIT + 1))  # above the inline limit: no content in JSON
    assert casevars(service, "put", case_id, "large", str(large)).returncode == 0
    assert casevars(service, "put", case_id, "small", "-", stdin=b"abcd").returncode == 0
    status = service.request(
        "PUT", f"/case-instance/{case_id}/variables/title", {"value": "x", "type": "String"}
    )
    assert status == 204
    listing = casevars(service, "ls", case_id)
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.decode().splitlines() == [
        "NAME   TYPE     SIZE  FILE NAME",
        "large  Bytes   65537",
        "small  Bytes       4",
        "title  String      -",
    ]


def test_stdin_and_stdout(service):
    case_id = service.new_case()
    content = os.urandom(3 * MIB)
    put = casevars(service, "put", case_id, "piped", "-", stdin=content)
    assert put.returncode == 0, put.stderr
    assert f"sha256 {sha256(content)} (verified)" in put.stdout.decode()
    got = casevars(service, "get", case_id, "piped", "-")
    assert got.returncode == 0, got.stderr
    assert got.stdout == content
    assert f"sha256 {sha256(content)} (verified)" in got.stderr.decode()
    # OUT left out means stdout too.
    assert casevars(service, "get", case_id, "piped").stdout == content

    # A File from stdin needs a name.
    refused = casevars(service, "put", case_id, "f", "-", "--as-file", stdin=b"x")
    assert "needs a name: add --name FILENAME" in one_line_error(refused)
    named = casevars(service, "put", case_id, "f", "-", "--name", "notes.md", stdin=b"# hi")
    assert named.returncode == 0, named.stderr
    headers = service.headers(f"/case-instance/{case_id}/variables/f/data")
    assert headers["Content-Type"] == "text/markdown"


# --- resume --------------------------------------------------------------------


class CuttingProxy:
    """A loopback TCP proxy that cuts each connection once `limit` bytes of the
    service's answer have passed through it."""

    def __init__(self, target_port: int, limit: int) -> None:
        self._target_port, self._limit = target_port, limit
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                upstream = socket.create_connection(("127.0.0.1", self._target_port))
                threading.Thread(target=self._pump, args=(client, upstream, None)).start()
                threading.Thread(target=self._pump, args=(upstream, client, self._limit)).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, limit: int | None) -> None:
        passed = 0
        with contextlib.suppress(OSError):
            while data := source.recv(64 * 1024):
                if limit is not None and passed + len(data) >= limit:
                    sink.sendall(data[: limit - passed])
                    break
                sink.sendall(data)
                passed += len(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()


def test_a_cut_download_resumes_with_a_range_request(service, tmp_path):
    case_id = service.new_case()
    content = os.urandom(12 * MIB)
    source = tmp_path / "source.bin"
    source.write_bytes(content)
    assert casevars(service, "put", case_id, "big", str(source)).returncode == 0

    out = tmp_path / "out.bin"
    proxy = CuttingProxy(int(service.url.rsplit(":", 1)[1]), limit=6 * MIB)
    try:
        cut = casevars(
            service, "get", case_id, "big", str(out), "--url", f"http://127.0.0.1:{proxy.port}"
        )
    finally:
        proxy.close()
    line = one_line_error(cut)
    assert "the download was cut after" in line
    assert "--resume" in line
    assert not out.exists()  # only a complete, checked download gets the name
    kept = (tmp_path / "out.bin.part").stat().st_size
    assert 0 < kept < len(content)

    ranges_before = service.access_log_statuses().count(206)
    resumed = casevars(service, "get", case_id, "big", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from {kept} bytes" in resumed.stderr.decode()
    assert f"downloaded {len(content) - kept} bytes" in resumed.stderr.decode()
    assert out.read_bytes() == content
    assert not (tmp_path / "out.bin.part").exists()
    deadline = time.monotonic() + 5
    while service.access_log_statuses().count(206) == ranges_before:
        assert time.monotonic() < deadline, "the service saw no range request"
        time.sleep(0.1)


def test_resume_continues_a_prefix_in_out_and_checks_it(service, tmp_path):
    case_id = service.new_case()
    content = os.urandom(2 * MIB)
    assert casevars(service, "put", case_id, "v", "-", stdin=content).returncode == 0
    out = tmp_path / "out"
    out.write_bytes(content[: MIB + 7])
    resumed = casevars(service, "get", case_id, "v", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from {MIB + 7} bytes" in resumed.stderr.decode()
    assert out.read_bytes() == content

    # Complete already: nothing to fetch, still checked.
    again = casevars(service, "get", case_id, "v", str(out), "--resume")
    assert again.returncode == 0, again.stderr
    assert out.read_bytes() == content

    # A refusal leaves OUT as it was.
    missing = casevars(service, "get", case_id, "other", str(out), "--resume")
    assert "does not exist" in one_line_error(missing)
    assert out.read_bytes() == content

    # Not a prefix of the value: the check at the end says so.
    out.write_bytes(b"not the start" + content[13:MIB])
    wrong = one_line_error(casevars(service, "get", case_id, "v", str(out), "--resume"))
    assert "does not match the service's SHA-256" in wrong
    assert "run again without --resume" in wrong

    # Longer than the value.
    (tmp_path / "out.part").write_bytes(content + b"more")
    longer = one_line_error(casevars(service, "get", case_id, "v", str(out), "--resume"))
    assert "more than the" in longer


# --- refusals --------------------------------------------------------------------


def test_refusals_are_one_line_with_the_service_message(service, tmp_path):
    source = tmp_path / "small"
    source.write_bytes(b"abc")
    unknown = one_line_error(casevars(service, "put", "no-such-case", "v", str(source)))
    assert unknown == (
        "casevars: HTTP 404 Not Found: Cannot put case execution variable v: There does not "
        "exist any case execution with id: 'no-such-case': caseExecution is null"
    )
    listing = one_line_error(casevars(service, "ls", "no-such-case"))
    assert "case execution no-such-case doesn't exist" in listing
    case_id = service.new_case()
    missing = one_line_error(casevars(service, "get", case_id, "nothing", str(tmp_path / "o")))
    assert "case execution variable with name nothing does not exist" in missing
    absent = one_line_error(casevars(service, "put", case_id, "v", str(tmp_path / "absent")))
    assert "No such file or directory" in absent


def test_too_large_values_are_refused_early(service):
    case_id = service.new_case()
    too_large = b"\0" * (MAX_UPLOAD + MIB)
    line = one_line_error(casevars(service, "put", case_id, "huge", "-", stdin=too_large))
    assert line == (
        "casevars: HTTP 413 Request Entity Too Large: "
        f"The value is larger than the limit of {MAX_UPLOAD} bytes"
    )


def test_bad_credentials(service, tmp_path):
    if not service.auth_enforced:
        pytest.skip("the service does not check credentials yet (CASEVARS_AUTH_TOKENS_FILE)")
    case_id = service.new_case()
    source = tmp_path / "small"
    source.write_bytes(b"abc")
    bad_token = casevars(service, "put", case_id, "v", str(source), CASEVARS_TOKEN="wrong")
    assert one_line_error(bad_token).startswith("casevars: authentication failed: ")
    no_token = casevars(service, "ls", case_id, CASEVARS_TOKEN="")
    assert "set CASEVARS_TOKEN or use --user" in one_line_error(no_token)
    bad_password = casevars(service, "ls", case_id, "--user", f"{USER}:wrong")
    assert one_line_error(bad_password).startswith("casevars: authentication failed: ")
    good_password = casevars(service, "ls", case_id, "--user", f"{USER}:{PASSWORD}")
    assert good_password.returncode == 0, good_password.stderr


def test_unreachable_service(service):
    line = one_line_error(casevars(service, "ls", "c", "--url", f"http://127.0.0.1:{free_port()}"))
    assert line.startswith("casevars: cannot reach http://127.0.0.1:")


# --- progress on a terminal ------------------------------------------------------


def _on_terminal(service: Service, *args: str) -> tuple[int, str]:
    """Run the command with stdin, stdout and stderr on a pseudo-terminal."""
    leader, follower = os.openpty()
    env = {"PATH": os.environ.get("PATH", ""), "CASEVARS_URL": service.url, "CASEVARS_TOKEN": TOKEN}
    process = subprocess.Popen(
        [sys.executable, "-m", "service", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        cwd=ROOT,
    )
    os.close(follower)
    output = b""
    with contextlib.suppress(OSError):  # EIO once the command has exited
        while data := os.read(leader, 65536):
            output += data
    os.close(leader)
    return process.wait(CLI_TIMEOUT_SECONDS), output.decode()


def test_progress_bar_on_a_terminal(service, tmp_path):
    case_id = service.new_case()
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(12 * MIB))
    status, output = _on_terminal(service, "put", case_id, "big", str(source))
    assert status == 0, output
    assert "\ruploaded  [####################]  12.0 MiB / 12.0 MiB  100%  " in output
    assert "MiB/s  in 0:0" in output
    assert "stored" in output

    status, output = _on_terminal(service, "get", case_id, "big", str(tmp_path / "out"))
    assert status == 0, output
    assert "\rdownloaded  [####################]  12.0 MiB / 12.0 MiB  100%  " in output
    assert "/s  in 0:0" in output

    status, output = _on_terminal(service, "get", case_id, "big", "-")
    assert status == 1
    assert "refusing to write binary content to a terminal" in output
