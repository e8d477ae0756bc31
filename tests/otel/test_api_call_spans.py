"""A span per API call, over real loopback HTTP: its name, kind and attributes, its error, and
how the aiohttp client instrumentation's HTTP spans land under it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from cspark_async import NotFoundError, ServiceUnavailableError
from cspark_async.emulator import Emulator, Faults

from .conftest import Telemetry


async def test_create_makes_one_internal_span_with_the_http_conventions(
    telemetry: Telemetry,
) -> None:
    async with Emulator() as emu, emu.client() as spark:
        batch = await spark.batches.create("my-folder/my-service")
    (span,) = telemetry.spans("spark.batches.create")
    assert span.kind is SpanKind.INTERNAL
    assert span.status.status_code is StatusCode.UNSET
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "cspark_async"
    assert dict(span.attributes or {}) == {
        "spark.operation": "batches.create",
        "http.request.method": "POST",
        "url.template": "/{tenant}/api/v4/batch",
        "server.address": "127.0.0.1",
        "server.port": emu.port,
        "spark.service": "my-folder/my-service",
        "http.response.status_code": batch.status,
        "spark.request_id": batch.request_id,
        "spark.batch.id": batch.data["id"],
    }


async def test_an_api_error_marks_the_span_and_is_raised_unchanged(telemetry: Telemetry) -> None:
    async with Emulator() as emu, emu.client() as spark:
        with pytest.raises(NotFoundError) as caught:
            await spark.batches.create("no-such/service")
    (span,) = telemetry.spans("spark.batches.create")
    assert span.status.status_code is StatusCode.ERROR
    attributes = dict(span.attributes or {})
    assert attributes["http.response.status_code"] == 404
    assert attributes["error.type"] == "404"
    assert attributes["spark.request_id"] == caught.value.request_id
    assert [e.name for e in span.events] == ["exception"]
    assert (span.events[0].attributes or {})["exception.type"].endswith("NotFoundError")


@pytest.fixture
def aiohttp_instrumented() -> Iterator[None]:
    instrumentation = pytest.importorskip("opentelemetry.instrumentation.aiohttp_client")
    instrumentor = instrumentation.AioHttpClientInstrumentor()
    instrumentor.instrument()
    try:
        yield
    finally:
        instrumentor.uninstrument()


async def test_the_aiohttp_instrumentations_spans_nest_one_per_attempt(
    telemetry: Telemetry, aiohttp_instrumented: None
) -> None:
    faults = Faults(server_error=1.0, server_error_statuses=(503,), endpoints={"describe"})
    async with (
        Emulator(faults=faults) as emu,
        emu.client(max_retries=2, retry_interval=0.001) as spark,
    ):
        with pytest.raises(ServiceUnavailableError):
            await spark.batches.describe()
        await spark.batches.create("my-folder/my-service")
    (describe,) = telemetry.spans("spark.batches.describe")
    (create,) = telemetry.spans("spark.batches.create")
    http = [s for s in telemetry.spans() if s.kind is SpanKind.CLIENT]
    assert describe.context is not None
    assert create.context is not None
    under_describe = [s for s in http if s.parent and s.parent.span_id == describe.context.span_id]
    under_create = [s for s in http if s.parent and s.parent.span_id == create.context.span_id]
    assert len(under_describe) == 3  # the first attempt and two retries, each its own span
    assert len(under_create) == 1
    assert len(http) == 4  # no HTTP span of ours besides the instrumentation's
    assert describe.status.status_code is StatusCode.ERROR
    assert dict(describe.attributes or {})["error.type"] == "503"


async def test_every_pipeline_verb_has_its_span_on_the_batch(telemetry: Telemetry) -> None:
    async with Emulator() as emu, emu.client() as spark:
        batch = await spark.batches.create("my-folder/my-service")
        pipeline = spark.batches.of(batch.data["id"])
        await pipeline.push(inputs=[{"value": 1}])
        await pipeline.get_status()
        await pipeline.pull()
        await pipeline.get_info()
        await pipeline.dispose()
        await pipeline.cancel()
    spans = [s for s in telemetry.spans() if s.name != "spark.batches.create"]
    root = "/{tenant}/api/v4/batch/{batch_id}"
    assert [
        (s.name, (s.attributes or {})["http.request.method"], (s.attributes or {})["url.template"])
        for s in spans
    ] == [
        ("spark.batches.push", "POST", root + "/chunks"),
        ("spark.batches.get_status", "GET", root + "/status"),
        ("spark.batches.pull", "GET", root + "/chunkresults"),
        ("spark.batches.get_info", "GET", root),
        ("spark.batches.dispose", "PATCH", root),
        ("spark.batches.cancel", "PATCH", root),
    ]
    for span in spans:
        attributes = dict(span.attributes or {})
        assert attributes["spark.batch.id"] == batch.data["id"]
        assert attributes["http.response.status_code"] == 200
        assert span.kind is SpanKind.INTERNAL
