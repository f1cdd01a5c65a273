"""GET /metrics: requests by canonical route, bytes, S3 and Postgres operations, refused
uploads, the collector; one registry per app."""

from __future__ import annotations

import asyncio
import dataclasses

from prometheus_client.parser import text_string_to_metric_families

from service.http.metrics import UPLOAD_REFUSALS
from tests.conftest import TEST_PART_SIZE, new_id, proxied_postgres, proxied_s3
from tests.forms import FORM, body, create_case, data_url, part, pattern, upload, upload_bytes

DATA_ROUTE = "/case-instance/{id}/variables/{name}/data"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client, headers=None) -> Samples:
    """Every sample of GET /metrics, parsed as Prometheus parses it."""
    response = await client.get("/metrics", headers=headers)
    assert response.status == 200, await response.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples called name whose labels include the given ones."""
    wanted = set(labels.items())
    return sum(value for (n, have), value in samples.items() if n == name and wanted <= have)


async def wait_for_metric(client, name, minimum=1.0, timeout=20.0, **labels):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        samples = await scrape(client)
        if total(samples, name, **labels) >= minimum:
            return samples
        assert asyncio.get_running_loop().time() < deadline, f"{name} {labels} < {minimum}"
        await asyncio.sleep(0.1)


async def test_metrics_are_prometheus_text(client):
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = await response.text()
    for name in (
        "casevars_http_requests_total",
        "casevars_http_request_duration_seconds",
        "casevars_uploads_in_flight",
        "casevars_uploads_refused_total",
        "casevars_upload_bytes_total",
        "casevars_download_bytes_total",
        "casevars_collector_garbage_deleted_total",
        "process_resident_memory_bytes",
    ):
        assert name in text
    # OpenMetrics for scrapers that ask for it.
    negotiated = await client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert negotiated.headers["Content-Type"].startswith("application/openmetrics-text")
    assert (await negotiated.text()).endswith("# EOF\n")


async def test_requests_are_counted_by_canonical_route_and_status(client):
    case_ids = [new_id(), new_id()]
    for case_id in case_ids:
        await create_case(client, case_id)
        assert (await upload_bytes(client, case_id, "v", b"abc")).status == 204
        assert (await client.get(data_url(case_id, "v"))).status == 200
    assert (await client.get(data_url(case_ids[0], "missing"))).status == 404
    assert (await client.get("/no/such/route")).status == 404
    assert (await client.request("PROPFIND", "/health/live")).status == 405

    samples = await scrape(client)
    requests = "casevars_http_requests_total"
    assert total(samples, requests, method="GET", route=DATA_ROUTE, status="200") == 2
    assert total(samples, requests, method="POST", route=DATA_ROUTE, status="204") == 2
    assert total(samples, requests, method="GET", route=DATA_ROUTE, status="404") == 1
    assert total(samples, requests, method="GET", route="unmatched", status="404") == 1
    assert total(samples, requests, method="other", route="unmatched", status="405") == 1
    assert total(samples, "casevars_http_request_duration_seconds_count", route=DATA_ROUTE) == 5
    # Raw paths never become label values.
    labels = {value for (_, have) in samples for _, value in have}
    assert not any(case_id in label for case_id in case_ids for label in labels)
    assert samples[("casevars_http_requests_in_flight", frozenset())] == 1  # this scrape


async def test_bytes_and_s3_and_postgres_operations(client):
    case_id = new_id()
    await create_case(client, case_id)
    small, large = pattern(1000), pattern(TEST_PART_SIZE + 12345, seed=1)
    assert (await upload_bytes(client, case_id, "small", small)).status == 204
    assert (await upload_bytes(client, case_id, "large", large)).status == 204
    assert await (await client.get(data_url(case_id, "large"))).read() == large
    ranged = await client.get(data_url(case_id, "small"), headers={"Range": "bytes=0-99"})
    assert ranged.status == 206

    samples = await scrape(client)
    assert total(samples, "casevars_upload_bytes_total") == len(small) + len(large)
    assert total(samples, "casevars_download_bytes_total") == len(large) + 100
    s3 = "casevars_s3_operation_duration_seconds_count"
    assert total(samples, s3, operation="PutObject") == 1  # the small value: one part
    assert total(samples, s3, operation="CreateMultipartUpload") == 1
    assert total(samples, s3, operation="UploadPart") == 2
    assert total(samples, s3, operation="CompleteMultipartUpload") == 1
    assert total(samples, s3, operation="GetObject") == 2
    assert total(samples, "casevars_s3_operation_errors_total") == 0
    postgres = "casevars_postgres_operation_duration_seconds_count"
    assert total(samples, postgres, operation="put_case_instance") == 1
    assert total(samples, postgres, operation="add_pending_blob") == 2
    assert total(samples, postgres, operation="write_variables") == 2
    assert total(samples, postgres, operation="get_variable") == 2
    assert total(samples, "casevars_postgres_operation_errors_total") == 0
    assert total(samples, "casevars_uploads_in_flight") == 0
    assert total(samples, "casevars_uploads_refused_total") == 0


async def test_a_missing_case_instance_is_no_postgres_error(client):
    # write_variables meets a foreign-key violation, which is a 404, not a failure.
    response = await client.put(
        f"/case-instance/{new_id()}/variables/v", json={"value": 1, "type": "Integer"}
    )
    assert response.status == 404
    samples = await scrape(client)
    assert total(samples, "casevars_postgres_operation_errors_total") == 0


async def test_refused_uploads_by_reason(make_client):
    client = await make_client(max_upload_bytes=1000, client_read_timeout_seconds=0.5)
    case_id = new_id()
    await create_case(client, case_id)
    url = data_url(case_id, "v")

    too_large = await upload_bytes(client, case_id, "v", pattern(2000))
    assert too_large.status == 413
    not_multipart = await client.post(url, data=b"x", headers={"Content-Type": "text/plain"})
    assert not_multipart.status == 415
    no_data_part = await upload(client, case_id, "v", part("other", b"x"))
    assert no_data_part.status == 400
    assert (await upload_bytes(client, new_id(), "v", b"abc")).status == 404
    assert (await upload_bytes(client, case_id, "v", b"abc")).status == 204

    # A client that stalls mid-upload. (One that goes away is a disconnect too when
    # served by `casevars serve`; the test server cancels its handler instead.)
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        f"POST {url} HTTP/1.1\r\nHost: x\r\nContent-Type: {FORM}\r\n"
        f"Content-Length: 100000\r\n\r\n".encode()
        + body(part("data", b"", "application/octet-stream"), close=False)[:-2]
        + b"abc"
    )
    await writer.drain()
    assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"HTTP/1.1 408")
    writer.transport.abort()

    samples = await scrape(client)
    refused = "casevars_uploads_refused_total"
    assert {reason: total(samples, refused, reason=reason) for reason in UPLOAD_REFUSALS} == {
        "too_large": 1,
        "bad_form": 2,
        "digest_mismatch": 0,
        "not_found": 1,
        "disconnect": 1,
        "unavailable": 0,
        "cancelled": 0,
        "error": 0,
    }
    assert total(samples, "casevars_uploads_in_flight") == 0


async def test_s3_failures_count_by_operation_and_refuse_uploads(make_client, endpoints):
    async with proxied_s3(endpoints) as (proxy, proxied):
        client = await make_client(proxied, s3_timeout_seconds=1)
        case_id = new_id()
        await create_case(client, case_id)
        await proxy.cut()
        assert (await upload_bytes(client, case_id, "v", b"abc")).status == 503
        samples = await scrape(client)
        assert total(samples, "casevars_s3_operation_errors_total", operation="PutObject") == 1
        assert total(samples, "casevars_uploads_refused_total", reason="unavailable") == 1


async def test_postgres_failures_count_by_repository_method(make_client, endpoints):
    async with proxied_postgres(endpoints) as (proxy, proxied):
        client = await make_client(proxied, db_timeout_seconds=1)
        await proxy.cut()
        assert (await client.get(f"/case-instance/{new_id()}")).status == 503
        samples = await scrape(client)
        errors = "casevars_postgres_operation_errors_total"
        assert total(samples, errors, operation="get_case_instance") == 1
        assert (
            total(
                samples,
                "casevars_postgres_operation_duration_seconds_count",
                operation="get_case_instance",
            )
            == 1
        )


async def test_collector_counts(make_client, endpoints, fresh_database_dsn):
    fresh = dataclasses.replace(endpoints, dsn=fresh_database_dsn)
    client = await make_client(fresh, collector_interval_seconds=0.1, gc_grace_seconds=0)
    case_id = new_id()
    await create_case(client, case_id)
    for content in (b"first", b"second"):  # the first value becomes garbage, due at once
        assert (await upload_bytes(client, case_id, "v", content)).status == 204
    samples = await wait_for_metric(client, "casevars_collector_garbage_deleted_total")
    assert total(samples, "casevars_collector_garbage_deleted_total") == 1
    assert total(samples, "casevars_collector_passes_total") >= 1
    assert total(samples, "casevars_collector_errors_total") == 0
    assert total(samples, "casevars_s3_operation_duration_seconds_count", operation="DeleteObjects")


async def test_collector_errors_count(make_client, endpoints, fresh_database_dsn):
    fresh = dataclasses.replace(endpoints, dsn=fresh_database_dsn)
    async with proxied_s3(fresh) as (proxy, broken):
        await proxy.cut()
        client = await make_client(broken, collector_interval_seconds=0.1, s3_timeout_seconds=1)
        samples = await wait_for_metric(client, "casevars_collector_errors_total")
        errors = "casevars_s3_operation_errors_total"
        assert total(samples, errors, operation="ListMultipartUploads") >= 1


async def test_each_app_counts_on_its_own_registry(make_client):
    first, second = await make_client(), await make_client()
    for _ in range(3):
        assert (await first.get("/health/live")).status == 200
    live = {"route": "/health/live", "status": "200"}
    assert total(await scrape(first), "casevars_http_requests_total", **live) == 3
    assert total(await scrape(second), "casevars_http_requests_total", **live) == 0


def test_refusal_reasons_of_exceptions():
    from service import errors
    from service.http.digests import DigestMismatch
    from service.http.metrics import refusal_reason

    assert refusal_reason(errors.TooLarge("x")) == "too_large"
    assert refusal_reason(errors.InvalidInput("x")) == "bad_form"
    assert refusal_reason(errors.UnsupportedMediaType("x")) == "bad_form"
    assert refusal_reason(DigestMismatch("Repr-Digest")) == "digest_mismatch"
    assert refusal_reason(errors.NotFound("x")) == "not_found"
    assert refusal_reason(errors.UploadAborted("x")) == "disconnect"
    assert refusal_reason(ConnectionResetError()) == "disconnect"
    assert refusal_reason(errors.Unavailable("x")) == "unavailable"
    assert refusal_reason(asyncio.CancelledError()) == "cancelled"
    assert refusal_reason(RuntimeError()) == "error"
