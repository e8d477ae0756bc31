"""Every verb and lifecycle transition over real loopback HTTP against the emulator."""

from __future__ import annotations

import asyncio
import uuid

import anyio
import pytest

import cspark_async as sdk
from cspark_async import AsyncClient, BatchChunk, ChunkData, UriParams, create_chunks
from cspark_async.emulator import Emulator

from .conftest import RequestLog
from .helpers import pull_all, wait_processed


async def test_every_verb_round_trip(spark: AsyncClient) -> None:
    described = await spark.batches.describe()
    assert described.status == 200
    assert described.parsed.in_progress_batches == []

    batch = await spark.batches.create(
        "my-folder/my-service", min_runners=2, accuracy=0.95, correlation_id="corr-7"
    )
    assert batch.data["data"]["batch_status"] == "created"
    assert batch.parsed.data is not None
    assert batch.parsed.data.correlation_id == "corr-7"
    pipeline = spark.batches.of(batch.data["id"])
    assert pipeline.batch_id == batch.parsed.id
    assert pipeline.state == "open"

    pushed = await pipeline.push(inputs=[{"value": 42}, {"value": 43}])
    assert pushed.data["record_submitted"] == 2
    assert pushed.parsed.batch_status == "in_progress"
    await pipeline.push(data=ChunkData(inputs=[["value"], [44]], parameters={"common": 40}))
    await pipeline.push(chunks=create_chunks([["value"], [45], [46], [47]], chunk_size=2))
    await pipeline.push(raw='{"chunks": [{"id": "raw", "data": {"inputs": [{"value": 48}]}}]}')
    assert pipeline.stats.chunks == 5
    assert pipeline.stats.records == 7
    assert pipeline.stats["raw"] == 1

    await wait_processed(pipeline, 7)
    status = await pipeline.get_status()
    assert status.parsed.records_submitted == 7
    assert status.parsed.records_available == 7

    results = await pull_all(pipeline, 5)
    by_id = {r["id"]: r for r in results}
    assert set(by_id) == set(pipeline.stats)  # outputs come back under the ids we sent
    assert by_id["raw"]["outputs"] == [{"value": 48}]
    echoed = sorted(rec["value"] for r in results for rec in sdk.ChunkResult(**r).records())
    assert echoed == [42, 43, 44, 45, 46, 47, 48]

    info = await pipeline.get_info()
    assert info.parsed.data is not None
    assert info.parsed.data.summary is not None
    assert info.parsed.data.summary.records_completed == 7
    assert info.parsed.data.configuration is not None
    assert info.parsed.data.configuration.acceptable_error_percentage == 5
    assert info.parsed.data.configuration.initial_workers == 2

    disposed = await pipeline.dispose()
    assert disposed.parsed.batch_status == "closed"
    assert pipeline.state == "closed"
    described = await spark.batches.describe()
    ids = [b.id for b in described.parsed.in_progress_batches + described.parsed.recent_batches]
    assert pipeline.batch_id in ids


async def test_pull_honours_max(spark: AsyncClient) -> None:
    batch = await spark.batches.create("my-folder/my-service")
    pipeline = spark.batches.of(batch.data["id"])
    await pipeline.push(chunks=create_chunks([{"v": i} for i in range(3)], chunk_size=1))
    await wait_processed(pipeline, 3)
    first = await pipeline.pull(max_chunks=1)
    assert len(first.parsed.data) == 1
    assert first.parsed.status is not None
    assert first.parsed.status.chunks_available == 2
    rest = await pipeline.pull(max_chunks=5)
    assert len(rest.parsed.data) == 2
    empty = await pipeline.pull()
    assert empty.parsed.data == []
    assert empty.data["status"]["records_available"] == 0


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("my-folder/my-service[0.4.2]", id="versioned"),
        pytest.param("/folders/my-folder/services/my-service", id="long-form"),
        pytest.param(UriParams(folder="my-folder", service="my-service"), id="uri-params"),
    ],
)
async def test_create_with_every_locator_form(spark: AsyncClient, uri: str | UriParams) -> None:
    batch = await spark.batches.create(uri)
    assert batch.parsed.data is not None
    assert batch.parsed.data.service_uri == "my-folder/my-service[0.4.2]"


async def test_create_by_service_and_version_id(spark: AsyncClient) -> None:
    first = (await spark.batches.create("demo/term-life")).parsed.data
    assert first is not None
    assert first.service_id
    assert first.version_id
    for uri in (
        first.service_id,
        f"service/{first.service_id}",
        f"version/{first.version_id}",
        UriParams(version_id=first.version_id),
    ):
        again = (await spark.batches.create(uri)).parsed.data
        assert again is not None
        assert again.service_uri == first.service_uri


async def test_lifecycle_rules_send_nothing_when_refused(
    traced: tuple[AsyncClient, RequestLog],
) -> None:
    spark, log = traced
    batch = await spark.batches.create("my-folder/my-service")
    pipeline = spark.batches.of(batch.data["id"])
    await pipeline.push(inputs=[{"value": 1}])
    await pipeline.dispose()
    assert pipeline.state == "closed"
    assert pipeline.is_disposed

    before = len(log.requests)
    with pytest.raises(sdk.SparkSdkError, match="already closed"):
        await pipeline.push(inputs=[{"value": 2}])
    with pytest.raises(sdk.SparkSdkError, match="already closed"):
        await pipeline.dispose()
    assert len(log.requests) == before  # refused locally: nothing sent

    await wait_processed(pipeline, 1)
    pulled = await pipeline.pull()  # pulling after close is allowed
    assert len(pulled.parsed.data) == 1

    cancelled = await pipeline.cancel()  # cancel after close is allowed
    assert pipeline.state == "cancelled"
    assert cancelled.parsed.batch_status == "cancelled"

    before = len(log.requests)
    for call in (
        pipeline.pull(),
        pipeline.cancel(),
        pipeline.dispose(),
        pipeline.push(inputs=[{"value": 3}]),
    ):
        with pytest.raises(sdk.SparkSdkError):
            await call
    assert len(log.requests) == before
    status = await pipeline.get_status()  # reads are always allowed
    assert status.parsed.batch_status == "cancelled"


async def test_cancel_an_open_pipeline_discards_outputs(spark: AsyncClient) -> None:
    batch = await spark.batches.create("my-folder/my-service")
    pipeline = spark.batches.of(batch.data["id"])
    await pipeline.push(inputs=[{"value": 1}])
    await pipeline.cancel()
    other = spark.batches.of(pipeline.batch_id)  # a fresh handle: its local state is open
    pulled = await other.pull()
    assert pulled.parsed.data == []
    assert pulled.parsed.status is not None
    assert pulled.parsed.status.batch_status == "cancelled"


async def test_unknown_batch_is_a_404(traced: tuple[AsyncClient, RequestLog]) -> None:
    spark, log = traced
    pipeline = spark.batches.of("no-such-batch")
    for verb in (pipeline.get_info, pipeline.get_status, pipeline.pull, pipeline.dispose):
        with pytest.raises(sdk.NotFoundError) as info:
            await verb()
        error = info.value
        assert error.status == 404
        assert error.error_code == "BATCH_NOT_FOUND"
        assert error.attempts == 1
        assert error.request_id == log.requests[-1][2]["x-request-id"]
        assert "no-such-batch" in error.url
        assert error.method in ("GET", "PATCH")
    assert pipeline.state == "open"  # a failed dispose changes nothing locally


async def test_push_to_a_batch_closed_elsewhere_is_a_409(spark: AsyncClient) -> None:
    batch = await spark.batches.create("my-folder/my-service")
    first = spark.batches.of(batch.data["id"])
    await first.dispose()
    second = spark.batches.of(batch.data["id"])  # knows nothing of the close
    with pytest.raises(sdk.ConflictError) as info:
        await second.push(chunks=[BatchChunk(id="c1", data=ChunkData(inputs=[{"v": 1}]))])
    assert info.value.status == 409
    assert info.value.error_code == "BATCH_NOT_OPEN"
    assert second.stats.chunks == 0  # a refused push is not counted


async def test_unknown_service_and_tenant(spark: AsyncClient, emulator: Emulator) -> None:
    with pytest.raises(sdk.NotFoundError) as info:
        await spark.batches.create("nope/missing")
    assert info.value.error_code == "SERVICE_NOT_FOUND"
    async with AsyncClient(f"{emulator.url}/other-tenant", api_key="open") as other:
        with pytest.raises(sdk.NotFoundError) as info:
            await other.batches.describe()
    assert info.value.error_code == "TENANT_NOT_FOUND"


async def test_bug1_each_pipeline_keeps_its_own_bookkeeping(spark: AsyncClient) -> None:
    one = spark.batches.of((await spark.batches.create("my-folder/my-service")).data["id"])
    two = spark.batches.of((await spark.batches.create("my-folder/my-service")).data["id"])
    chunk = BatchChunk(id="same", data=ChunkData(inputs=[{"v": 1}]))
    await one.push(chunks=[chunk], if_chunk_id_duplicated="throw")
    await two.push(chunks=[chunk], if_chunk_id_duplicated="throw")  # not a duplicate here
    assert dict(one.stats) == {"same": 1}
    assert dict(two.stats) == {"same": 1}
    with pytest.raises(sdk.SparkSdkError, match="already used"):
        await one.push(chunks=[chunk], if_chunk_id_duplicated="throw")


async def test_blank_ids_and_replace_over_the_wire(spark: AsyncClient) -> None:
    batch = await spark.batches.create("my-folder/my-service")
    pipeline = spark.batches.of(batch.data["id"])
    blank = BatchChunk(id="", data=ChunkData(inputs=[{"v": 1}]))
    named = BatchChunk(id="named", data=ChunkData(inputs=[{"v": 2}]))
    await pipeline.push(chunks=[blank, named])
    await pipeline.push(chunks=[named])  # 'replace' by default
    assert blank.id == ""
    assert named.id == "named"
    ids = set(pipeline.stats)
    assert "" not in ids
    assert "named" in ids
    assert len(ids) == 3
    results = await pull_all(pipeline, 3)
    assert {r["id"] for r in results} == ids
    for chunk_id in ids - {"named"}:
        uuid.UUID(chunk_id)


async def test_async_with_disposes_on_normal_exit(spark: AsyncClient) -> None:
    batch = await spark.batches.create("my-folder/my-service")
    async with spark.batches.of(batch.data["id"]) as pipeline:
        await pipeline.push(inputs=[{"value": 1}])
    assert pipeline.state == "closed"
    status = (await spark.batches.of(pipeline.batch_id).get_status()).parsed
    assert status.batch_status in ("closed", "completed")


async def test_async_with_cancels_on_an_exception(spark: AsyncClient) -> None:
    batch = await spark.batches.create("my-folder/my-service")
    pipeline = spark.batches.of(batch.data["id"])

    async def fail_inside() -> None:
        async with pipeline:
            await pipeline.push(inputs=[{"value": 1}])
            _ = 1 / 0

    with pytest.raises(ZeroDivisionError):
        await fail_inside()
    assert pipeline.state == "cancelled"
    status = (await spark.batches.of(pipeline.batch_id).get_status()).parsed
    assert status.batch_status == "cancelled"


async def test_async_with_cancels_when_the_task_is_cancelled(spark: AsyncClient) -> None:
    batch = await spark.batches.create("my-folder/my-service")
    pipeline = spark.batches.of(batch.data["id"])
    entered = asyncio.Event()

    async def work() -> None:
        async with pipeline:
            await pipeline.push(inputs=[{"value": 1}])
            entered.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(work())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pipeline.state == "cancelled"  # the shielded cleanup still reached the server
    status = (await spark.batches.of(pipeline.batch_id).get_status()).parsed
    assert status.batch_status == "cancelled"


async def test_async_with_cleanup_never_masks_the_error(spark: AsyncClient) -> None:
    with pytest.raises(KeyError, match="original"):
        async with spark.batches.of("no-such-batch"):
            raise KeyError("original")  # the failed cancel (404) is only logged


async def test_async_with_after_explicit_dispose(spark: AsyncClient) -> None:
    batch = await spark.batches.create("my-folder/my-service")
    async with spark.batches.of(batch.data["id"]) as pipeline:
        await pipeline.push(inputs=[{"value": 1}])
        await pipeline.dispose()  # the documented pattern; the exit does not dispose twice
    assert pipeline.state == "closed"


async def test_many_concurrent_calls_share_one_session(spark: AsyncClient) -> None:
    batch = await spark.batches.create("my-folder/my-service")
    pipeline = spark.batches.of(batch.data["id"])
    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(lambda i=i: pipeline.push(inputs=[{"value": i}]))
    assert pipeline.stats.chunks == 20
    assert pipeline.stats.records == 20
    status = (await pipeline.get_status()).parsed
    assert status.records_submitted == 20


async def test_a_push_over_one_mebibyte_sends_without_warnings(emulator: Emulator) -> None:
    # aiohttp warns about raw bytes bodies over 1 MiB; the client streams them instead.
    async with AsyncClient(emulator.base_url, api_key="k", logger=False) as spark:
        batch = await spark.batches.create("my-folder/my-service")
        pipeline = spark.batches.of(batch.data["id"])
        records = [{"text": "x" * 1000, "n": n} for n in range(1500)]  # ~1.5 MB
        status = await pipeline.push(inputs=records)
        assert status.data["record_submitted"] == 1500
