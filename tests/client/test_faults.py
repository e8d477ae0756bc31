"""Retries, timeouts and cancellation over real HTTP, with the emulator's seeded faults."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

import cspark_async as sdk
from cspark_async import AsyncClient, create_chunks
from cspark_async.emulator import Emulator, Faults

from .conftest import RequestLog


def _client(emu: Emulator, **kwargs: object) -> AsyncClient:
    kwargs.setdefault("retry_interval", 0.001)
    return AsyncClient(emu.base_url, api_key="open", **kwargs)  # type: ignore[arg-type]


async def test_transient_faults_are_retried_away() -> None:
    faults = Faults(
        seed=11,
        server_error=0.2,
        rate_limit=0.1,
        reset_before=0.1,
        retry_after=0.01,
        endpoints={"status"},
    )
    async with Emulator(faults=faults) as emu, _client(emu, max_retries=8) as spark:
        batch = await spark.batches.create("my-folder/my-service")
        pipeline = spark.batches.of(batch.data["id"])
        for _ in range(30):
            assert (await pipeline.get_status()).parsed.batch_status == "created"
        injected = dict(emu.faults.injected)
    assert injected.get("server_error", 0) > 0
    assert injected.get("rate_limit", 0) > 0
    assert injected.get("reset_before", 0) > 0


async def test_connection_resets_exhaust_retries() -> None:
    faults = Faults(reset_before=1.0, endpoints={"describe"})
    async with Emulator(faults=faults) as emu, _client(emu) as spark:
        with pytest.raises(sdk.SparkConnectionError) as info:
            await spark.batches.describe()
        injected = emu.faults.injected["reset_before"]
    assert info.value.attempts == 3
    # aiohttp itself re-sends an idempotent request once when a pooled connection drops.
    assert injected >= 3


async def test_server_errors_keep_their_status_after_retries() -> None:
    faults = Faults(server_error=1.0, server_error_statuses=(502,), endpoints={"describe"})
    async with Emulator(faults=faults) as emu, _client(emu) as spark:
        with pytest.raises(sdk.BadGatewayError) as info:
            await spark.batches.describe()
    assert info.value.status == 502
    assert info.value.attempts == 3
    assert info.value.error_code == "INJECTED_FAULT"


async def test_full_input_buffer_is_retried_after_the_servers_hint() -> None:
    log = RequestLog()
    async with (
        Emulator(workers=1, record_latency=0.005, input_buffer_bytes=700) as emu,
        aiohttp.ClientSession(trace_configs=[log.trace_config()]) as session,
        _client(emu, session=session, max_retries=10, retry_interval=1.0) as spark,
    ):
        batch = await spark.batches.create("my-folder/my-service")
        pipeline = spark.batches.of(batch.data["id"])
        records = [{"value": i} for i in range(10)]
        await pipeline.push(chunks=create_chunks(records * 3, chunk_size=10))
        await pipeline.push(chunks=create_chunks(records * 3, chunk_size=10))
        assert pipeline.stats.records == 60
    pushes = [h["x-request-id"] for _, url, h in log.requests if url.endswith("/chunks")]
    assert len(pushes) > 2  # the second push met a full buffer (429) at least once
    assert len(set(pushes)) == 2  # ... and its retries reused one request id


async def test_a_push_that_can_never_fit_is_not_retried() -> None:
    async with Emulator(input_buffer_bytes=200) as emu, _client(emu) as spark:
        batch = await spark.batches.create("my-folder/my-service")
        pipeline = spark.batches.of(batch.data["id"])
        with pytest.raises(sdk.PayloadTooLargeError) as info:
            await pipeline.push(inputs=[{"value": "x" * 50} for _ in range(10)])
    assert info.value.status == 413
    assert info.value.attempts == 1
    assert info.value.error_code == "CHUNKS_TOO_LARGE"


async def test_timeouts_are_retried_then_raised() -> None:
    faults = Faults(latency=1.0, latency_s=0.2, endpoints={"describe"})
    async with Emulator(faults=faults) as emu, _client(emu, timeout=0.05, max_retries=1) as spark:
        with pytest.raises(sdk.SparkTimeoutError) as info:
            await spark.batches.describe()
    assert info.value.attempts == 2
    assert "timed out" in str(info.value)


async def test_a_cancelled_call_leaves_no_connection_behind() -> None:
    log = RequestLog()
    faults = Faults(latency=1.0, latency_s=0.3, endpoints={"describe"})
    async with (
        Emulator(faults=faults) as emu,
        aiohttp.ClientSession(trace_configs=[log.trace_config()]) as session,
        _client(emu, session=session) as spark,
    ):
        task = asyncio.create_task(spark.batches.describe())
        await log.started.wait()
        await asyncio.sleep(0.05)  # the request is on the wire, the server is "computing"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert session.connector is not None
        assert len(session.connector._acquired) == 0  # released, not leaked
        emu.set_faults(None)
        assert (await spark.batches.describe()).status == 200  # the client still works
    assert log.count("GET", "/batch/status") == 2  # the cancelled call was not retried


async def test_a_post_whose_answer_was_lost_is_not_sent_again() -> None:
    # The emulator applies the request, then drops the connection: a retry would apply it twice.
    faults = Faults(reset_after=1.0, endpoints={"create", "push"})
    async with (
        Emulator(faults=faults) as emu,
        emu.client(max_retries=3, retry_interval=0.01) as spark,
    ):
        with pytest.raises(sdk.SparkConnectionError, match="not retried: the server may have"):
            await spark.batches.create("my-folder/my-service")
        assert len(list(emu.engine.batches())) == 1  # one batch, not four
        emu.set_faults(None)
        batch = await spark.batches.create("my-folder/my-service")
        emu.set_faults(Faults(reset_after=1.0, endpoints={"push"}))
        pipeline = spark.batches.of(batch.data["id"])
        with pytest.raises(sdk.SparkConnectionError):
            await pipeline.push(inputs=[{"value": 1}])
        assert emu.engine.batch(pipeline.batch_id).chunks_submitted == 1


async def test_a_get_whose_answer_was_lost_is_retried() -> None:
    faults = Faults(reset_after=0.5, seed=4, endpoints={"status"})
    async with (
        Emulator(faults=faults) as emu,
        emu.client(max_retries=6, retry_interval=0.01) as spark,
    ):
        batch = await spark.batches.create("my-folder/my-service")
        for _ in range(10):
            status = await spark.batches.of(batch.data["id"]).get_status()
            assert status.data["batch_status"] == "created"
        assert emu.faults.injected["reset_after"] > 0
