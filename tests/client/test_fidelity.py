"""The client against behaviours the public record shows Spark has: gzip request bodies, the
unique record key in outputs, and 502/504 answers to requests that were applied."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

import cspark_async as sdk
from cspark_async import AsyncClient, create_chunks
from cspark_async.emulator import Emulator, Faults

from .helpers import pull_all


class BodyLog:
    """What each request put on the wire: its headers and how many body bytes it sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, str], int]] = []

    def trace_config(self) -> aiohttp.TraceConfig:
        config = aiohttp.TraceConfig()

        async def on_start(_s: Any, ctx: Any, params: aiohttp.TraceRequestStartParams) -> None:
            ctx.entry = [str(params.url), dict(params.headers), 0]

        async def on_chunk(_s: Any, ctx: Any, params: aiohttp.TraceRequestChunkSentParams) -> None:
            ctx.entry[2] += len(params.chunk)

        async def on_end(_s: Any, ctx: Any, _params: Any) -> None:
            self.sent.append(tuple(ctx.entry))  # type: ignore[arg-type]

        config.on_request_start.append(on_start)
        config.on_request_chunk_sent.append(on_chunk)
        config.on_request_end.append(on_end)
        return config

    def pushes(self) -> list[tuple[str, dict[str, str], int]]:
        return [entry for entry in self.sent if entry[0].endswith("/chunks")]


def records(count: int) -> list[dict[str, Any]]:
    return [{"policy": f"P{i:06d}", "age": 30 + i % 40, "plan": "silver"} for i in range(count)]


@pytest.mark.parametrize("compress", [None, "gzip"])
async def test_push_bodies_are_gzipped_when_asked(compress: str | None) -> None:
    log = BodyLog()
    async with (
        Emulator() as emu,
        aiohttp.ClientSession(trace_configs=[log.trace_config()]) as session,
        AsyncClient(emu.base_url, api_key="open", session=session, compress=compress) as spark,
    ):
        batch = await spark.batches.create("my-folder/my-service")
        pipeline = spark.batches.of(batch.data["id"])
        big = records(500)
        await pipeline.push(chunks=create_chunks(big, chunk_size=500))
        await pipeline.push(inputs=records(2))  # under the threshold: sent as it is
        results = await pull_all(pipeline, 2)
        info = (await pipeline.get_info()).data["data"]
    outputs = [out for r in results for out in r["outputs"]]
    assert sorted(o["policy"] for o in outputs) == sorted(r["policy"] for r in big + records(2))
    (large, _, large_bytes), (small, _, small_bytes) = log.pushes()
    (_, large_headers, _), (_, small_headers, _) = log.pushes()
    assert "Content-Encoding" not in small_headers
    # The server's input accounting is the JSON it decoded, whatever went over the wire.
    json_bytes = info["summary"]["input_size_bytes"]
    if compress is None:
        assert "Content-Encoding" not in large_headers
        assert large_bytes > 0.9 * json_bytes
    else:
        assert large_headers["Content-Encoding"] == "gzip"
        assert large_bytes < json_bytes / 5


async def test_stream_outputs_works_with_gzip_and_gzipped_answers() -> None:
    async with Emulator(workers=4) as emu, emu.client(compress="gzip") as spark:
        got = []
        async for result in spark.batches.stream_outputs(
            "my-folder/my-service", records(3000), chunk_size=300
        ):
            got.extend(out["policy"] for out in result.outputs if out is not None)
    assert got == [r["policy"] for r in records(3000)]


def test_compress_accepts_only_gzip() -> None:
    with pytest.raises(sdk.SparkSdkError, match="compress must be None or 'gzip'"):
        AsyncClient("http://127.0.0.1:9/t", api_key="k", compress="br")  # type: ignore[arg-type]


async def test_pulled_outputs_carry_the_unique_record_key() -> None:
    async with Emulator() as emu, emu.client() as spark:
        batch = await spark.batches.create("demo/term-life", unique_record_key=["policy", "age"])
        assert batch.parsed.data is not None
        assert batch.parsed.data.unique_record_key == "policy,age"
        pipeline = spark.batches.of(batch.data["id"])
        rows = [
            ["policy", "age", "cover", "term"],
            ["A-1", 40, 100_000, 20],
            ["A-2", 99, 100_000, 20],  # out of range: this record fails
            ["A-3", 30, 50_000, 10],
        ]
        await pipeline.push(inputs=rows)
        (result,) = (await pipeline.pull()).parsed.data or [None]
        while result is None:
            (result,) = (await pipeline.pull()).parsed.data or [None]
    assert result.keys("policy") == ["A-1", None, "A-3"]
    assert result.keys(["policy", "age"]) == [("A-1", 40), None, ("A-3", 30)]
    assert result.keys("policy, age") == result.keys(["policy", "age"])
    assert result.records()[0]["annual_premium"] > 0
    with pytest.raises(sdk.SparkSdkError, match="names no column"):
        result.keys(" , ")


@pytest.mark.parametrize("status", [502, 504])
async def test_create_answered_with_a_gateway_error_makes_one_batch(status: int) -> None:
    faults = Faults(error_after=1.0, error_after_statuses=(status,), endpoints={"create"})
    async with Emulator(faults=faults) as emu, emu.client(retry_interval=0.001) as spark:
        with pytest.raises(sdk.SparkApiError) as info:
            await spark.batches.create("my-folder/my-service")
        assert info.value.status == status
        assert info.value.attempts == 1  # not retried: it may have been applied
        batches = list(emu.engine.batches())
    assert len(batches) == 1  # ... and it was: one batch, not two


async def test_push_answered_with_a_gateway_error_is_not_sent_twice() -> None:
    async with Emulator() as emu, emu.client(retry_interval=0.001) as spark:
        batch = await spark.batches.create("my-folder/my-service")
        pipeline = spark.batches.of(batch.data["id"])
        emu.set_faults(Faults(error_after=1.0, endpoints={"push"}))
        with pytest.raises(sdk.SparkApiError) as info:
            await pipeline.push(inputs=[{"value": 1}, {"value": 2}])
        assert info.value.status in (502, 504)
        assert info.value.attempts == 1
        emu.set_faults(None)
        results = await pull_all(pipeline, 1)
        status = (await pipeline.get_status()).data
    assert [out for r in results for out in r["outputs"]] == [{"value": 1}, {"value": 2}]
    assert status["chunks_submitted"] == 1
    assert status["record_submitted"] == 2


async def test_get_requests_are_still_retried_after_a_gateway_error() -> None:
    faults = Faults(seed=3, error_after=0.5, endpoints={"status"})
    async with (
        Emulator(faults=faults) as emu,
        emu.client(retry_interval=0.001, max_retries=10) as spark,
    ):
        batch = await spark.batches.create("my-folder/my-service")
        pipeline = spark.batches.of(batch.data["id"])
        for _ in range(10):
            assert (await pipeline.get_status()).status == 200
        assert emu.faults.injected["error_after"] > 0


@pytest.mark.parametrize(
    ("max_in_flight", "chunk_size"),
    [
        pytest.param(2, 100, id="one-chunk-per-post"),
        pytest.param(None, 25, id="several-chunks-per-post"),
    ],
)
async def test_stream_under_applied_gateway_errors_yields_each_record_once(
    max_in_flight: int | None, chunk_size: int
) -> None:
    """A push answered 502/504 after it was applied is pushed again by the stream (its own
    retry policy): the server runs those chunks twice and the stream drops the second result
    of each, whether the POST carried one chunk or several."""
    faults = Faults(seed=5, error_after=0.3, endpoints={"push"})
    # Some compute time, so that a faulted push is usually retried before its result is in.
    async with (
        Emulator(workers=4, record_latency=0.0005, faults=faults) as emu,
        emu.client() as spark,
    ):
        seen: list[str] = []
        stream = spark.batches.stream_outputs(
            "my-folder/my-service",
            records(2000),
            chunk_size=chunk_size,
            max_in_flight=max_in_flight,
        )
        async with stream as results:
            async for result in results:
                seen.extend(out["policy"] for out in result.outputs if out is not None)
        state = stream.state
        injected = emu.faults.injected["error_after"]
        (batch,) = list(emu.engine.batches())
    assert seen == [r["policy"] for r in records(2000)]
    assert injected > 0
    # A faulted push is pushed again unless its result came back first: the server ran those
    # chunks twice, and the stream dropped every second result it pulled.
    chunks = 2000 // chunk_size
    repeated = batch.chunks_submitted - chunks
    if max_in_flight is None:
        assert state.chunks_pushed > state.pushes  # several chunks went in one POST
    # Each faulted POST carried at most the chunks it could: the window's half, or one.
    assert 0 <= repeated <= injected * max(1, (max_in_flight or 10) // 2)
    assert state.duplicates_dropped <= repeated


@pytest.mark.parametrize("ended_as", ["failed", "error"])
async def test_stream_treats_an_undocumented_error_status_like_failed(ended_as: str) -> None:
    """`error` is not a documented batch_status, but a client may meet it: the stream stops
    with a StreamError, as for `failed` (a push refused, or a pull that finds the batch ended)."""
    async with Emulator(workers=1, record_latency=0.002) as emu, emu.client() as spark:
        stream = spark.batches.stream_outputs("my-folder/my-service", records(400), chunk_size=50)
        delivered = 0
        with pytest.raises(sdk.StreamError, match=f"is {ended_as}"):
            async with stream as results:
                async for result in results:
                    delivered += result.records
                    (batch,) = list(emu.engine.batches())
                    batch.status = ended_as  # the server ends the batch on its own
    assert 50 <= delivered < 400
