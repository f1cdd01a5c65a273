"""The process's memory budget: its accounting on real objects, and through the live
app (uploads and listings under a budget of a few buffers). Nothing here is timed:
waits are seen through the budget's own state."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io

import aiohttp
import helm_python as helm
import orjson
import pytest

from service.config import KIB, MIB, ConfigError, Settings, inline_cost, upload_capacity
from service.http import keys
from service.http.listing import LISTING_HEAD_BYTES, listing_memory
from service.storage.blobstore import _Buffers
from service.storage.budget import MemoryBudget, MemoryBusy
from tests.conftest import ROOT, TEST_PART_SIZE, new_id
from tests.forms import (
    BOUNDARY,
    FORM,
    blob_states,
    body,
    create_case,
    data_url,
    part,
    pattern,
    upload_bytes,
)

CHART = ROOT / "helm" / "casevars"


async def _wait_for(predicate, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def _settle():
    """Let every task that can run, run."""
    for _ in range(5):
        await asyncio.sleep(0)


# --- accounting ---------------------------------------------------------------------


async def test_acquire_and_release_account_exactly():
    budget = MemoryBudget(100)
    await budget.acquire(60)
    assert (budget.available, budget.in_use) == (40, 60)
    assert budget.try_acquire(40)
    assert not budget.try_acquire(1)
    budget.release(60)
    budget.release(40)
    assert budget.available == 100
    with pytest.raises(RuntimeError):
        budget.release(1)


async def test_an_amount_larger_than_the_budget_is_refused_not_waited_for():
    budget = MemoryBudget(100)
    with pytest.raises(ValueError):
        await budget.acquire(101)
    with pytest.raises(ValueError):
        budget.try_acquire(0)


async def test_waiters_are_woken_in_arrival_order_and_none_jumps_the_queue():
    budget = MemoryBudget(10)
    await budget.acquire(10)
    woken: list[str] = []

    async def wait(name, amount):
        await budget.acquire(amount)
        woken.append(name)

    tasks = [asyncio.create_task(wait(n, a)) for n, a in (("big", 8), ("small", 1), ("tiny", 1))]
    await _settle()
    assert budget.waiting == 3
    budget.release(2)  # enough for "small" and "tiny", not for "big" at the head
    await _settle()
    assert woken == []
    assert not budget.try_acquire(1), "try_acquire does not pass the waiters either"
    budget.release(8)
    await asyncio.gather(*tasks)
    assert woken == ["big", "small", "tiny"]
    assert budget.available == 0


async def test_a_cancelled_waiter_leaves_the_queue_and_lets_the_next_in():
    budget = MemoryBudget(10)
    await budget.acquire(6)
    head = asyncio.create_task(budget.acquire(8))
    behind = asyncio.create_task(budget.acquire(4))
    await _settle()
    assert budget.waiting == 2
    head.cancel()
    await asyncio.gather(head, return_exceptions=True)
    await behind  # 4 were free all along; the head no longer blocks it
    assert (budget.waiting, budget.available) == (0, 0)


async def test_a_waiter_cancelled_after_its_grant_gives_it_back():
    budget = MemoryBudget(10)
    await budget.acquire(10)
    waiter = asyncio.create_task(budget.acquire(5))
    await _settle()
    budget.release(10)  # granted now, but the task has not run since
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert waiter.cancelled()
    assert (budget.available, budget.waiting) == (10, 0)


async def test_a_wait_past_its_timeout_is_memory_busy_and_takes_nothing():
    budget = MemoryBudget(10)
    await budget.acquire(10)
    with pytest.raises(MemoryBusy):
        await budget.acquire(1, timeout=0.01)
    assert (budget.available, budget.waiting) == (0, 0)


async def test_a_reservation_shrinks_and_comes_back_on_error():
    budget = MemoryBudget(100)

    async def failing():
        async with budget.reserved(80) as hold:
            hold.shrink(30)
            assert budget.available == 70
            raise KeyError

    with pytest.raises(KeyError):
        await failing()
    assert budget.available == 100


# --- an upload's part buffers -------------------------------------------------------


async def test_an_upload_holds_one_buffer_and_takes_more_only_if_free_at_once():
    budget = MemoryBudget(3 * MIB)
    buffers = _Buffers(budget, wait_seconds=None)
    first = await buffers.take(MIB)
    second = await buffers.take(MIB)  # free at once: a second part in flight
    assert budget.available == MIB
    other = asyncio.create_task(budget.acquire(2 * MIB))  # another upload waits
    await _settle()
    assert budget.waiting == 1
    third = asyncio.create_task(buffers.take(MIB))
    await _settle()
    assert not third.done(), "with others waiting it waits for one of its own"
    buffers.give(first)  # back from S3 while another waits: to the budget, not kept
    await _settle()
    assert not third.done()
    buffers.give(second)  # its last one: kept, and reused
    assert await third is second
    await other
    buffers.close()
    budget.release(2 * MIB)
    assert budget.available == 3 * MIB


async def test_buffers_of_a_grown_part_size_replace_the_old_ones():
    budget = MemoryBudget(4 * MIB)
    buffers = _Buffers(budget, wait_seconds=None)
    small = await buffers.take(MIB)
    buffers.give(small)
    big = await buffers.take(2 * MIB)
    assert len(big) == 2 * MIB
    assert budget.in_use == 2 * MIB
    buffers.close()
    assert budget.available == 4 * MIB


# --- settings -----------------------------------------------------------------------


def test_the_budget_setting_is_read_and_must_hold_one_buffer_of_each_kind():
    env = {"CASEVARS_MEMORY_BUDGET_BYTES": "96MiB"}
    assert Settings.from_env(env).memory_budget_bytes == 96 * MIB
    assert Settings().memory_budget_bytes == 512 * MIB
    with pytest.raises(ConfigError, match="CASEVARS_MEMORY_BUDGET_BYTES"):
        Settings.from_env({"CASEVARS_MEMORY_BUDGET_BYTES": "4MiB"})
    with pytest.raises(ConfigError, match="inlined Bytes"):
        Settings.from_env(
            {"CASEVARS_MEMORY_BUDGET_BYTES": "16MiB", "CASEVARS_INLINE_BYTES_LIMIT": "8MiB"}
        )


def test_no_part_may_be_larger_than_the_budget():
    # 8 MiB parts doubling every 1,000 parts: within 512 MiB the last size is 512 MiB.
    assert upload_capacity(8 * MIB, 512 * MIB) == 1000 * (8 + 16 + 32 + 64 + 128 + 256 + 512) * MIB
    assert upload_capacity(8 * MIB) > upload_capacity(8 * MIB, 512 * MIB)


def _size(text: str) -> int:
    units = {"Ki": KIB, "Mi": MIB, "Gi": 1024 * MIB}
    return int(text[:-2]) * units[text[-2:]]


def test_the_charts_budget_fits_its_memory_limit():
    """The chart's budget leaves the process (idle ~80 MiB) and its connections (~1.5 MiB
    each beyond the budget, benchmarks/memory.py) room under the pod's limit."""
    values = helm.values_from_yaml((CHART / "values.yaml").read_text())
    budget = Settings.from_env(
        {"CASEVARS_MEMORY_BUDGET_BYTES": str(values["config"]["CASEVARS_MEMORY_BUDGET_BYTES"])}
    ).memory_budget_bytes
    limit = _size(values["resources"]["limits"]["memory"])
    assert budget + 384 * MIB <= limit


# --- through the live app -----------------------------------------------------------


async def test_concurrent_uploads_under_a_budget_of_few_buffers_all_complete_intact(make_client):
    client = await make_client(memory_budget_bytes=3 * TEST_PART_SIZE)
    budget = client.app[keys.BUDGET]
    contents = [pattern(TEST_PART_SIZE + 300 * KIB * n, seed=n) for n in range(10)]
    cases = [new_id() for _ in contents]
    for case_id in cases:
        await create_case(client, case_id)

    async def chunked(content):  # no Content-Length: each upload takes full part buffers
        yield body(part("data", b"", "application/octet-stream"), close=False)[:-2]
        for start in range(0, len(content), 256 * KIB):
            yield content[start : start + 256 * KIB]
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    responses = await asyncio.gather(
        *(
            client.post(data_url(c, "v"), data=chunked(content), headers={"Content-Type": FORM})
            for c, content in zip(cases, contents, strict=True)
        )
    )
    assert [r.status for r in responses] == [204] * len(contents)
    for case_id, content in zip(cases, contents, strict=True):
        got = await (await client.get(data_url(case_id, "v"))).read()
        assert hashlib.sha256(got).digest() == hashlib.sha256(content).digest()
    assert budget.available == budget.capacity, "every buffer went back"


async def test_a_waiting_upload_reads_nothing_until_a_buffer_is_free(make_client):
    client = await make_client(memory_budget_bytes=TEST_PART_SIZE)
    budget = client.app[keys.BUDGET]
    holding, waiting = new_id(), new_id()
    await create_case(client, holding)
    await create_case(client, waiting)
    gate = asyncio.Event()
    sent = {"waiting": 0}

    async def slow():
        yield body(part("data", b"", "application/octet-stream"), close=False)[:-2]
        yield pattern(MIB)
        await gate.wait()
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    async def counted():
        yield body(part("data", b"", "application/octet-stream"), close=False)[:-2]
        for _ in range(32):
            sent["waiting"] += 1
            yield pattern(MIB, seed=1)
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    first = asyncio.create_task(
        client.post(data_url(holding, "v"), data=slow(), headers={"Content-Type": FORM})
    )
    await _wait_for(lambda: budget.available == 0)
    second = asyncio.create_task(
        client.post(data_url(waiting, "v"), data=counted(), headers={"Content-Type": FORM})
    )
    await _wait_for(lambda: budget.waiting == 1)
    await asyncio.sleep(0.5)  # time for the socket buffers to fill, if anything read them
    assert sent["waiting"] < 32, "the waiting upload's body is held back by TCP"
    assert budget.waiting == 1
    gate.set()
    assert (await first).status == 204
    assert (await second).status == 204
    got = await (await client.get(data_url(waiting, "v"))).read()
    assert got == pattern(MIB, seed=1) * 32
    assert budget.available == budget.capacity


async def test_small_uploads_take_only_what_they_need(make_client):
    """With a Content-Length the value is known to be small: its buffer is too, so small
    uploads go on while a large one holds most of the budget."""
    client = await make_client(memory_budget_bytes=TEST_PART_SIZE + 64 * KIB)
    budget = client.app[keys.BUDGET]
    large, small = new_id(), new_id()
    await create_case(client, large)
    await create_case(client, small)
    gate = asyncio.Event()

    async def slow():
        yield body(part("data", b"", "application/octet-stream"), close=False)[:-2]
        yield pattern(MIB)
        await gate.wait()
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    holding = asyncio.create_task(
        client.post(data_url(large, "v"), data=slow(), headers={"Content-Type": FORM})
    )
    await _wait_for(lambda: budget.in_use >= TEST_PART_SIZE)
    responses = await asyncio.gather(
        *(upload_bytes(client, small, f"s{n}", pattern(KIB, seed=n)) for n in range(8))
    )
    assert [r.status for r in responses] == [204] * 8
    assert not holding.done()
    gate.set()
    assert (await holding).status == 204
    assert budget.available == budget.capacity


@pytest.mark.parametrize("size", [1000, TEST_PART_SIZE, 2 * TEST_PART_SIZE + 5])
async def test_a_size_hint_that_is_too_small_only_costs_a_copy(make_client, endpoints, size):
    """A value longer than its hint (not possible through HTTP, whose Content-Length is
    longer than the value) swaps its small first buffer for a full one."""
    client = await make_client(memory_budget_bytes=2 * TEST_PART_SIZE)
    store = client.app[keys.BLOBS]
    content = pattern(size, seed=size)

    async def chunks():
        for start in range(0, size, 100 * KIB):
            yield content[start : start + 100 * KIB]

    key = f"{endpoints.s3_prefix}hinted-{size}"
    blob = await store.put_stream(key, chunks(), max_bytes=size, size_hint=500)
    assert (blob.size, blob.sha256) == (size, hashlib.sha256(content).digest())
    assert await store.read_all(key) == content
    assert store.budget.available == store.budget.capacity
    await store.delete_many([key])


async def test_a_budget_of_one_odd_sized_part_still_uploads_in_many_parts(make_client):
    """The budget holds exactly one part (of a size that is no multiple of pages): the
    upload reuses its one buffer part after part, and its largest value is what parts
    of at most that size hold."""
    part_size = TEST_PART_SIZE + 1
    client = await make_client(s3_part_size=part_size, memory_budget_bytes=part_size)
    store = client.app[keys.BLOBS]
    assert store.largest_value == upload_capacity(part_size, largest_part=part_size)
    case_id = new_id()
    await create_case(client, case_id)
    content = pattern(2 * part_size + 7, seed=7)
    assert (await upload_bytes(client, case_id, "v", content)).status == 204
    assert await (await client.get(data_url(case_id, "v"))).read() == content
    assert store.budget.available == store.budget.capacity


async def test_an_upload_that_waits_too_long_for_memory_is_503(make_client):
    client = await make_client(memory_budget_bytes=TEST_PART_SIZE, client_read_timeout_seconds=0.5)
    budget = client.app[keys.BUDGET]
    await budget.acquire(budget.capacity)  # as if other uploads held it all
    case_id = new_id()
    await create_case(client, case_id)
    response = await upload_bytes(client, case_id, "v", b"x" * 100)
    assert response.status == 503
    error = await response.json()
    assert error["type"] == "RestException"
    assert "no memory free" in error["message"]
    assert budget.waiting == 0
    budget.release(budget.capacity)


async def test_an_upload_whose_client_left_while_waiting_gives_its_turn_back(
    make_client, db, endpoints
):
    """A client gone while its upload waits (its socket not read, so the loss is not
    seen yet) is found out when the upload's turn comes: it reads, fails and gives the
    buffer back; its blob becomes garbage."""
    client = await make_client(memory_budget_bytes=TEST_PART_SIZE)
    budget = client.app[keys.BUDGET]
    await budget.acquire(budget.capacity)
    case_id = new_id()
    await create_case(client, case_id)
    head = (
        f"POST {data_url(case_id, 'v')} HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: {FORM}\r\nContent-Length: {10 * MIB}\r\n\r\n"
    ).encode()
    _, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(head + body(part("data", b"", "application/octet-stream"), close=False)[:-2])
    writer.write(pattern(MIB))
    await writer.drain()
    await _wait_for(lambda: budget.waiting == 1)
    writer.transport.abort()
    budget.release(budget.capacity)
    await _wait_for(lambda: budget.available == budget.capacity and not budget.waiting)
    states = {}
    for _ in range(200):
        states = await blob_states(db, endpoints.s3_prefix)
        if list(states.values()) == ["garbage"]:
            break
        await asyncio.sleep(0.05)
    assert list(states.values()) == ["garbage"]


# --- listings -----------------------------------------------------------------------


async def _case_of_bytes(client, count, size):
    case_id = new_id()
    await create_case(client, case_id)
    contents = {f"v{n:03d}": pattern(size, seed=n) for n in range(count)}
    for name, content in contents.items():
        assert (await upload_bytes(client, case_id, name, content)).status == 204
    return case_id, contents


def _decoded(listing):
    return {name: base64.b64decode(shown["value"]) for name, shown in listing.items()}


async def test_a_listing_beyond_the_head_streams_and_answers_correctly(make_client):
    # 48 x 128 KiB inline: about 8 MiB of JSON, more than the head, under a small budget.
    client = await make_client(memory_budget_bytes=TEST_PART_SIZE, inline_bytes_limit=128 * KIB)
    budget = client.app[keys.BUDGET]
    case_id, contents = await _case_of_bytes(client, 48, 128 * KIB)
    window, head = listing_memory(budget.capacity, inline_cost(128 * KIB), 48)
    assert window * inline_cost(128 * KIB) + head <= budget.capacity

    async def listing():
        response = await client.get(f"/case-instance/{case_id}/variables")
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("application/json")
        assert "Content-Length" not in response.headers, "streamed"
        return await response.json()

    for listed in await asyncio.gather(*(listing() for _ in range(4))):
        assert list(listed) == sorted(contents)
        assert _decoded(listed) == contents
        assert all(shown["type"] == "Bytes" for shown in listed.values())
    assert budget.available == budget.capacity


async def test_a_small_listing_is_sent_whole_with_its_length(make_client):
    client = await make_client(memory_budget_bytes=TEST_PART_SIZE)
    case_id, contents = await _case_of_bytes(client, 3, 10 * KIB)
    assert (
        await client.put(
            f"/case-instance/{case_id}/variables/s", json={"value": "text", "type": "String"}
        )
    ).status == 204
    response = await client.get(f"/case-instance/{case_id}/variables")
    assert response.status == 200
    raw = await response.read()
    assert int(response.headers["Content-Length"]) == len(raw) < LISTING_HEAD_BYTES
    listing = await response.json()
    assert listing.pop("s") == {"type": "String", "value": "text", "valueInfo": {}}
    assert _decoded(listing) == contents


async def test_a_listing_waits_for_memory_held_by_others_then_answers(make_client):
    client = await make_client(memory_budget_bytes=TEST_PART_SIZE)
    budget = client.app[keys.BUDGET]
    case_id, contents = await _case_of_bytes(client, 4, 100 * KIB)
    await budget.acquire(budget.capacity)
    listing = asyncio.create_task(client.get(f"/case-instance/{case_id}/variables"))
    await _wait_for(lambda: budget.waiting == 1)
    assert not listing.done()
    budget.release(budget.capacity)
    response = await listing
    assert response.status == 200
    assert _decoded(await response.json()) == contents
    assert budget.available == budget.capacity


async def test_a_blob_lost_after_the_stream_started_cuts_the_connection(
    make_client, db, s3, endpoints
):
    client = await make_client(memory_budget_bytes=TEST_PART_SIZE, inline_bytes_limit=128 * KIB)
    case_id, contents = await _case_of_bytes(client, 48, 128 * KIB)
    last = max(contents)
    key = await db.fetchval(
        "SELECT blob_key FROM variable WHERE case_instance_id = $1 AND name = $2", case_id, last
    )
    await s3.delete_object(Bucket=endpoints.s3_bucket, Key=key)
    response = await client.get(f"/case-instance/{case_id}/variables")
    assert response.status == 200  # the head was sent before the loss showed
    with pytest.raises(aiohttp.ClientPayloadError):
        await response.read()
    budget = client.app[keys.BUDGET]
    await _wait_for(lambda: budget.available == budget.capacity)


async def test_a_client_that_reads_nothing_of_a_streamed_listing_is_dropped(make_client):
    client = await make_client(
        memory_budget_bytes=TEST_PART_SIZE,
        inline_bytes_limit=128 * KIB,
        client_read_timeout_seconds=0.5,
    )
    budget = client.app[keys.BUDGET]
    case_id, _ = await _case_of_bytes(client, 128, 128 * KIB)  # 22 MiB of JSON
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(f"GET /case-instance/{case_id}/variables HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    await _wait_for(lambda: budget.in_use > 0)
    # Nothing is read: the socket buffers fill, the listing stalls and is dropped.
    await _wait_for(lambda: budget.available == budget.capacity, timeout=30)
    received = bytearray()
    with contextlib.suppress(ConnectionResetError):
        while chunk := await reader.read(MIB):
            received += chunk
    assert received.startswith(b"HTTP/1.1 200")
    assert not received.endswith(b"\r\n0\r\n\r\n"), "cut before its last chunk"
    writer.close()


async def test_a_single_inline_get_takes_from_the_budget_and_gives_back(make_client):
    client = await make_client(memory_budget_bytes=TEST_PART_SIZE)
    budget = client.app[keys.BUDGET]
    case_id, contents = await _case_of_bytes(client, 1, 10 * KIB)
    await budget.acquire(budget.capacity)
    reading = asyncio.create_task(client.get(f"/case-instance/{case_id}/variables/v000"))
    await _wait_for(lambda: budget.waiting == 1)
    budget.release(budget.capacity)
    response = await reading
    assert base64.b64decode((await response.json())["value"]) == contents["v000"]
    assert budget.available == budget.capacity


# --- JSON bodies and serialized objects -------------------------------------------


def _modification(case_id: str, name: str, value: object) -> tuple[str, bytes]:
    url = f"/case-instance/{case_id}/variables"
    return url, orjson.dumps({"modifications": {name: {"type": "Json", "value": value}}})


async def test_a_json_body_waits_for_memory_held_by_others_then_is_applied(make_client):
    client = await make_client(memory_budget_bytes=TEST_PART_SIZE)
    budget = client.app[keys.BUDGET]
    case_id = new_id()
    await create_case(client, case_id)
    value = orjson.dumps(list(range(1000))).decode()
    url, sent = _modification(case_id, "j", value)
    await budget.acquire(budget.capacity)
    posting = asyncio.create_task(
        client.post(url, data=io.BytesIO(sent), headers={"Content-Type": "application/json"})
    )
    await _wait_for(lambda: budget.waiting == 1)
    assert not posting.done()
    budget.release(budget.capacity)
    assert (await posting).status == 204
    assert budget.available == budget.capacity
    got = await (await client.get(f"/case-instance/{case_id}/variables/j")).json()
    assert got["value"] == value


async def test_a_json_body_whose_parse_needs_more_than_the_budget_is_413_and_writes_nothing(
    make_client,
):
    """A megabyte of empty objects takes ~50 MiB to parse: more than a 5 MiB budget can
    ever give, so it is refused rather than waited for."""
    client = await make_client(memory_budget_bytes=TEST_PART_SIZE)
    budget = client.app[keys.BUDGET]
    case_id = new_id()
    await create_case(client, case_id)
    url = f"/case-instance/{case_id}/variables"
    sent = b'{"modifications": {"j": {"type": "Json", "value": [' + b",".join([b"{}"] * 350_000)
    sent += b"]}}}"
    response = await client.post(
        url, data=io.BytesIO(sent), headers={"Content-Type": "application/json"}
    )
    assert response.status == 413
    error = await response.json()
    assert error["type"] == "InvalidRequestException"
    assert "memory budget" in error["message"]
    assert budget.available == budget.capacity
    assert await (await client.get(url)).json() == {}


async def test_a_chunked_json_body_takes_memory_as_it_grows_and_gives_it_back(make_client):
    client = await make_client(memory_budget_bytes=TEST_PART_SIZE)
    budget = client.app[keys.BUDGET]
    case_id = new_id()
    await create_case(client, case_id)
    value = "x" * (100 * KIB)
    url, sent = _modification(case_id, "s", value)
    seen: list[int] = []

    async def chunks():
        for start in range(0, len(sent), 16 * KIB):
            yield sent[start : start + 16 * KIB]
            await asyncio.sleep(0.01)
            seen.append(budget.in_use)

    response = await client.post(url, data=chunks(), headers={"Content-Type": "application/json"})
    assert response.status == 204
    assert max(seen) >= 32 * KIB, "the growing body was taken from the budget"
    assert budget.available == budget.capacity


async def test_a_serialized_object_part_takes_from_the_budget_and_gives_back(make_client):
    client = await make_client(memory_budget_bytes=TEST_PART_SIZE)
    budget = client.app[keys.BUDGET]
    case_id = new_id()
    await create_case(client, case_id)
    serialized = orjson.dumps({"items": list(range(10_000))})
    form = body(part("type", b"java.util.HashMap"), part("data", serialized, "application/json"))
    await budget.acquire(budget.capacity)
    posting = asyncio.create_task(
        client.post(data_url(case_id, "o"), data=io.BytesIO(form), headers={"Content-Type": FORM})
    )
    await _wait_for(lambda: budget.waiting == 1)
    budget.release(budget.capacity)
    assert (await posting).status == 204
    assert budget.available == budget.capacity
    url = f"/case-instance/{case_id}/variables/o?deserializeValue=false"
    got = await (await client.get(url)).json()
    assert orjson.loads(got["value"]) == orjson.loads(serialized)


async def test_a_serialized_object_too_costly_to_parse_is_413_and_keeps_the_old_value(
    make_client,
):
    client = await make_client(memory_budget_bytes=TEST_PART_SIZE)
    budget = client.app[keys.BUDGET]
    case_id = new_id()
    await create_case(client, case_id)
    assert (await upload_bytes(client, case_id, "o", b"old")).status == 204
    serialized = b"[" + b",".join([b"{}"] * 350_000) + b"]"
    form = body(part("type", b"java.util.ArrayList"), part("data", serialized, "application/json"))
    response = await client.post(
        data_url(case_id, "o"), data=io.BytesIO(form), headers={"Content-Type": FORM}
    )
    assert response.status == 413
    assert "memory budget" in (await response.json())["message"]
    assert budget.available == budget.capacity
    assert await (await client.get(data_url(case_id, "o"))).read() == b"old"
