"""Three `casevars serve` replicas on one Postgres and one S3 (SeaweedFS), as behind one
Kubernetes Service: a bounded mixed load goes through all three, one replica is
SIGKILLed while uploads run on it, and then every write answered 2xx reads back
identically from each survivor, the collectors of all replicas never deleted a blob a
variable points at nor one blob twice, and `casevars check` is clean after
`casevars collect`."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import json
import random
import signal
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest

from tests.conftest import casevars_env, new_id, run_casevars
from tests.forms import FORM, body, part
from tests.serving import Serve

REPLICAS = 3
WORKERS = 9
ROUNDS = 5
# One upload of tens of MiB per worker; the one on the replica that is killed is cut.
LARGE_MIB = (12, 30)
# Collectors on every replica, often, deleting garbage at once: as much contention
# between them as can be had.
COLLECTOR = {
    "CASEVARS_COLLECTOR_INTERVAL_SECONDS": "0.2",
    "CASEVARS_GC_GRACE_SECONDS": "0",
    "CASEVARS_PENDING_TIMEOUT_SECONDS": "3600",
}
# Test instrumentation in the test's own database: every blob row deleted, once each
# (the primary key refuses a second).
AUDIT = """
    CREATE TABLE deleted_blob (key text PRIMARY KEY);
    CREATE FUNCTION audit_blob_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO deleted_blob VALUES (OLD.key); RETURN NULL; END; $$;
    CREATE TRIGGER audit_blob_delete AFTER DELETE ON blob
        FOR EACH ROW EXECUTE FUNCTION audit_blob_delete();
"""


@dataclasses.dataclass
class Expected:
    """What each variable may hold once the load is over: a write answered 2xx leaves
    exactly its value; a write that got no answer (its replica was killed) leaves the
    value before it or its own. None stands for "absent"."""

    values: dict[tuple[str, str], set[object]] = dataclasses.field(default_factory=dict)

    def answered(self, case_id: str, name: str, value: object) -> None:
        self.values[(case_id, name)] = {value}

    def unanswered(self, case_id: str, name: str, value: object) -> None:
        self.values.setdefault((case_id, name), {None}).add(value)

    def case_deleted(self, case_id: str, *, answered: bool) -> None:
        for key in [key for key in self.values if key[0] == case_id]:
            if answered:
                self.values[key] = {None}
            else:
                self.values[key].add(None)


def _content(worker: int, size: int) -> bytes:
    block = random.Random(worker).randbytes(1 << 20)
    return (block * (size // len(block) + 1))[:size]


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


class Worker:
    """One client's sequence of requests, each to the next replica in turn (the load
    balancer), on case instances of its own so that the expected outcome is exact."""

    def __init__(
        self, number: int, replicas: list[Serve], session: aiohttp.ClientSession, expected: Expected
    ) -> None:
        self.number = number
        self.replicas = replicas
        self.session = session
        self.expected = expected
        self.case_id = new_id(f"replica-w{number}")
        self._turn = number
        size = random.Random(number).randint(*LARGE_MIB) << 20
        self.large = _content(number, size)

    def _base(self) -> str:
        self._turn += 1
        return f"http://127.0.0.1:{self.replicas[self._turn % REPLICAS].port}"

    async def _send(self, method: str, path: str, **options: Any) -> int | None:
        """The status, or None when the replica gave no answer (killed)."""
        try:
            async with self.session.request(method, self._base() + path, **options) as response:
                await response.read()
                assert response.status < 500 or response.status == 503, response.status
                return response.status
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError):
            return None

    def _record(self, status: int | None, name: str, value: object) -> None:
        if status is None:
            self.expected.unanswered(self.case_id, name, value)
        else:
            assert 200 <= status < 300, (status, name)
            self.expected.answered(self.case_id, name, value)

    async def run(self, large_started: asyncio.Event) -> None:
        case = f"/case-instance/{self.case_id}"
        while await self._send("PUT", case) is None:
            pass  # the instance must exist for what follows
        for round_number in range(ROUNDS):
            text = f"w{self.number}-r{round_number}"
            status = await self._send(
                "PUT", f"{case}/variables/s", json={"type": "String", "value": text}
            )
            self._record(status, "s", text)
            modification = {
                "modifications": {"m": {"type": "Integer", "value": round_number}},
                "deletions": ["gone"] if round_number else [],
            }
            status = await self._send("POST", f"{case}/variables", json=modification)
            self._record(status, "m", round_number)
            if round_number == 0:
                status = await self._send(
                    "PUT", f"{case}/variables/gone", json={"type": "String", "value": "x"}
                )
                self._record(status, "gone", "x")
            elif status is not None:
                self.expected.answered(self.case_id, "gone", None)
            else:
                self.expected.unanswered(self.case_id, "gone", None)
            small = _content(self.number + 100 * round_number, 3000 + round_number)
            await self._upload("small", small)
            if round_number == 1:
                large_started.set()
                await self._upload("large", self.large)
            if round_number >= 2:
                await self._check_range()
        if self.number % 3 == 0:
            status = await self._send("DELETE", case)
            self.expected.case_deleted(self.case_id, answered=status is not None)

    async def _upload(self, name: str, content: bytes) -> None:
        form = body(part("data", content, "application/octet-stream", filename=f"{name}.bin"))
        status = await self._send(
            "POST",
            f"/case-instance/{self.case_id}/variables/{name}/data",
            data=io.BytesIO(form),
            headers={"Content-Type": FORM},
        )
        self._record(status, name, _digest(content))

    async def _check_range(self) -> None:
        """A Range read of the large value from whichever replica is next: when the
        value is certain, the slice is the right one."""
        allowed = self.expected.values.get((self.case_id, "large"), {None})
        if len(allowed) != 1 or None in allowed:
            return
        url = self._base() + f"/case-instance/{self.case_id}/variables/large/data"
        try:
            async with self.session.get(url, headers={"Range": "bytes=1000-1999"}) as response:
                got = await response.read()
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError):
            return
        assert response.status == 206
        assert got == self.large[1000:2000]


async def _read_back(base: str, session: aiohttp.ClientSession, key: tuple[str, str]) -> object:
    case_id, name = key
    url = f"{base}/case-instance/{case_id}/variables/{name}"
    if name in {"small", "large"}:
        async with session.get(url + "/data") as response:
            if response.status == 404:
                return None
            assert response.status == 200, (key, response.status)
            return _digest(await response.read())
    async with session.get(url) as response:
        if response.status == 404:
            return None
        assert response.status == 200, (key, response.status)
        return (await response.json())["value"]


def _collector_deletions(serve: Serve) -> int:
    deleted = 0
    for line in serve.log.read_text().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == "collector.done":
                deleted += record["garbage_deleted"] + record["pending_deleted"]
    return deleted


@pytest.mark.parametrize("s3_backend", ["seaweedfs"])
async def test_three_replicas_under_load_with_one_killed(
    s3_backend, s3_endpoints, fresh_database_dsn, tmp_path
):
    endpoints = dataclasses.replace(s3_endpoints, dsn=fresh_database_dsn)
    audit = await asyncpg.connect(fresh_database_dsn)
    try:
        await audit.execute(AUDIT)
    finally:
        await audit.close()
    replicas = [Serve(endpoints, tmp_path, **COLLECTOR) for _ in range(REPLICAS)]
    try:
        await asyncio.gather(*(replica.ready() for replica in replicas))
        expected = Expected()
        large_started = asyncio.Event()
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            workers = [Worker(n, replicas, session, expected) for n in range(WORKERS)]

            async def kill_one() -> None:
                await large_started.wait()
                await asyncio.sleep(0.5)  # uploads of tens of MiB are in flight
                replicas[0].process.send_signal(signal.SIGKILL)

            await asyncio.gather(kill_one(), *(worker.run(large_started) for worker in workers))
            assert replicas[0].process.wait(10) == -signal.SIGKILL
            survivors = replicas[1:]
            uncertain = sum(len(allowed) > 1 for allowed in expected.values.values())
            assert 0 < uncertain < len(expected.values), "the kill cut writes, not all"
            for survivor in survivors:
                base = f"http://127.0.0.1:{survivor.port}"
                for key, allowed in expected.values.items():
                    got = await _read_back(base, session, key)
                    assert got in allowed, (survivor.port, key, got, allowed)
        await asyncio.sleep(1)  # a last collector pass on the survivors
        env = casevars_env(endpoints)
        collected = await run_casevars(env, "collect", "--grace", "0", "--pending-timeout", "0")
        assert collected.returncode == 0, collected.stderr
        checked = await run_casevars(env, "check", "--json")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        report = orjson.loads(checked.stdout)
        assert report["live"] > 0
    finally:
        for replica in replicas:
            replica.stop()
    database = await asyncpg.connect(fresh_database_dsn)
    try:
        # The collectors deleted no row a variable points at...
        assert not await database.fetchval(
            "SELECT count(*) FROM deleted_blob d JOIN variable v ON v.blob_key = d.key"
        )
        deleted_rows = await database.fetchval("SELECT count(*) FROM deleted_blob")
    finally:
        await database.close()
    # ... and every deletion a collector reports is a row of its own (none twice).
    logged = sum(_collector_deletions(replica) for replica in replicas)
    assert 0 < logged <= deleted_rows
