"""stream_outputs() against the emulator over loopback: order, exactly once, bounded memory,
backpressure, and cleanup on every exit path."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from cspark_async import NotFoundError, SparkSdkError, StreamError, StreamState
from cspark_async.emulator import Faults

from .conftest import records, without_waits


async def open_pipeline(spark: Any, **create: Any) -> Any:
    batch = await spark.batches.create("t/tagged", **create)
    return spark.batches.of(batch.data["id"])


async def test_ordered_outputs_line_up_with_inputs(stack: Callable[..., Any]) -> None:
    async with stack(workers=4) as (emu, spark):
        pipeline = await open_pipeline(spark)
        seen = []
        async for result in pipeline.stream_outputs(records(1000), chunk_size=37):
            assert result.offset == len(seen)
            assert [o["n"] for o in result.outputs] == [i["n"] for i in result.inputs]
            assert result.errors == [None] * result.records
            seen.extend(o["double"] for o in result.outputs)
        assert seen == [2 * n for n in range(1000)]
        status = await pipeline.get_status()
        assert status.data["record_submitted"] == 1000
        assert pipeline.state == "open"  # a completed stream leaves the pipeline to its owner


async def test_unordered_yields_each_chunk_exactly_once(stack: Callable[..., Any]) -> None:
    async with stack(workers=8, record_latency=0.0005) as (emu, spark):
        pipeline = await open_pipeline(spark)
        offsets = []
        async for result in pipeline.stream_outputs(records(2000), chunk_size=50, ordered=False):
            offsets.append(result.offset)
            assert result.outputs[0]["n"] == result.offset
        assert sorted(offsets) == list(range(0, 2000, 50))


async def test_generators_are_consumed_lazily(stack: Callable[..., Any]) -> None:
    produced = 0

    def source() -> Iterator[dict[str, int]]:
        nonlocal produced
        for n in range(100_000):
            produced += 1
            yield {"n": n}

    async with stack(workers=2) as (emu, spark):
        pipeline = await open_pipeline(spark)
        async with pipeline.stream_outputs(source(), chunk_size=10, max_in_flight=4) as results:
            async for result in results:
                if result.offset >= 200:
                    break
        # Yielded (up to offset 209) + max_in_flight x chunk_size out + the chunk being cut,
        # + the record that closed it.
        assert produced <= 210 + 4 * 10 + 10 + 1


async def test_async_iterables_and_header_rows(stack: Callable[..., Any]) -> None:
    async def rows() -> AsyncIterator[list[Any]]:
        yield ["n"]
        for n in range(300):
            yield [n]

    async with stack() as (emu, spark):
        pipeline = await open_pipeline(spark)
        got = [
            o["double"]
            async for r in pipeline.stream_outputs(rows(), chunk_size=64)
            for o in r.outputs
        ]
        assert got == [2 * n for n in range(300)]
        got = [
            o["n"]
            async for r in pipeline.stream_outputs(
                [[n] for n in range(5)], headers=["n"], chunk_size=2
            )
            for o in r.outputs
        ]
        assert got == list(range(5))


async def test_dataset_ten_times_the_input_buffer(stack: Callable[..., Any]) -> None:
    # ~12 bytes a record: 20,000 records are ~240 kB through a 20 kB input buffer.
    async with stack(workers=4, input_buffer_bytes=20_000, record_latency=0.0001) as (emu, spark):
        pipeline = await open_pipeline(spark)
        stream = pipeline.stream_outputs(records(20_000), chunk_size=100)
        total = 0
        async for result in stream:
            assert result.offset == total
            total += result.records
        assert total == 20_000
        assert stream.state.records_completed == 20_000
        assert stream.state.bytes_out > 10 * 20_000


async def test_output_buffer_smaller_than_one_pull(stack: Callable[..., Any]) -> None:
    async with stack(workers=4, output_buffer_bytes=600) as (emu, spark):
        pipeline = await open_pipeline(spark)
        total = 0
        async for result in pipeline.stream_outputs(records(3000), chunk_size=20):
            total += result.records
        assert total == 3000


async def test_per_record_errors_are_reported_in_place(stack: Callable[..., Any]) -> None:
    data = [{"n": n, "fail": n % 7 == 3} for n in range(100)]
    async with stack() as (emu, spark):
        pipeline = await open_pipeline(spark, accuracy=0.5)
        stream = pipeline.stream_outputs(data, chunk_size=16)
        failures = []
        async for result in stream:
            for offset, record, output, error in result.items():
                if error is None:
                    assert output is not None
                    assert output["n"] == record["n"] == offset
                else:
                    assert output is None
                    failures.append(offset)
                    assert f"record {offset} asked to fail" in error["message"]
        assert failures == [n for n in range(100) if n % 7 == 3]
        assert stream.state.records_failed == len(failures)


async def wait_for_status(pipeline: Any, wanted: set[str]) -> str:
    with anyio.fail_after(5):
        while True:
            status = (await pipeline.get_status()).data["batch_status"]
            if status in wanted:
                return str(status)
            await anyio.sleep(0.01)


@pytest.mark.parametrize(
    ("on_exit", "final"), [("cancel", {"cancelled"}), ("close", {"closed", "completed"})]
)
async def test_break_cleans_up_promptly_without_aclose(
    stack: Callable[..., Any], on_exit: str, final: set[str]
) -> None:
    async with stack(workers=2, record_latency=0.001) as (emu, spark):
        pipeline = await open_pipeline(spark)
        with anyio.fail_after(1):
            async for result in pipeline.stream_outputs(
                records(10_000), chunk_size=10, on_exit=on_exit
            ):
                if result.offset >= 50:
                    break
            gc.collect()
            status = await wait_for_status(spark.batches.of(pipeline.batch_id), final)
        assert status in final
        await anyio.lowlevel.checkpoint()
        assert stream_tasks() == []


def stream_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "cspark-async stream engine"]


async def test_consumer_exception_cancels_the_batch(stack: Callable[..., Any]) -> None:
    async with stack(workers=2) as (emu, spark):
        pipeline = await open_pipeline(spark)
        with pytest.raises(RuntimeError, match="consumer broke"):
            async with pipeline.stream_outputs(records(5000), chunk_size=10) as results:
                async for result in results:
                    if result.offset >= 100:
                        raise RuntimeError("consumer broke")
        assert emu.engine.batch(pipeline.batch_id).status == "cancelled"
        assert pipeline.state == "cancelled"
        assert stream_tasks() == []


async def test_task_cancellation_cancels_the_batch(stack: Callable[..., Any]) -> None:
    async with stack(workers=2, record_latency=0.001) as (emu, spark):
        pipeline = await open_pipeline(spark)
        seen = 0

        async def consume() -> None:
            nonlocal seen
            async for result in pipeline.stream_outputs(records(100_000), chunk_size=10):
                seen += result.records

        with anyio.move_on_after(0.3):
            await consume()
        assert 0 < seen < 100_000
        assert emu.engine.batch(pipeline.batch_id).status == "cancelled"
        assert stream_tasks() == []


async def test_bad_records_fail_before_their_chunk_is_sent(stack: Callable[..., Any]) -> None:
    async with stack() as (emu, spark):
        pipeline = await open_pipeline(spark)
        data = [{"n": 1}, {"n": 2}, {"n": float("nan")}]
        with pytest.raises(SparkSdkError, match="record at offset 2"):
            async for _ in pipeline.stream_outputs(data, chunk_size=10):
                pass
        assert emu.engine.batch(pipeline.batch_id).chunks_submitted == 0
        assert emu.engine.batch(pipeline.batch_id).status == "cancelled"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"chunk_size": 0}, "chunk_size"),
        ({"max_in_flight": -1}, "max_in_flight"),
        ({"on_exit": "explode"}, "on_exit"),
        ({"ordered": "yes"}, "ordered"),
    ],
)
async def test_bad_options_are_refused_at_the_call(
    stack: Callable[..., Any], options: dict[str, Any], message: str
) -> None:
    async with stack() as (emu, spark):
        pipeline = await open_pipeline(spark)
        with pytest.raises(SparkSdkError, match=message):
            pipeline.stream_outputs(records(3), **options)


async def test_state_and_progress_callback(stack: Callable[..., Any]) -> None:
    snapshots: list[tuple[int, int]] = []

    def progress(state: StreamState) -> None:
        snapshots.append((state.records_completed, state.chunks_completed))

    async with stack() as (emu, spark):
        pipeline = await open_pipeline(spark)
        stream = pipeline.stream_outputs(records(500), chunk_size=100, progress=progress)
        async for _ in stream:
            pass
        state = stream.state
        assert state.total_records == 500
        assert (state.records_read, state.records_completed, state.chunks_completed) == (
            500,
            500,
            5,
        )
        assert state.in_flight == 0
        assert state.done
        assert state.records_per_s > 0
        assert snapshots == [(100, 1), (200, 2), (300, 3), (400, 4), (500, 5)]


async def test_exactly_once_with_lost_push_answers(stack: Callable[..., Any]) -> None:
    faults = Faults(seed=3, reset_after=0.3, endpoints={"push"})
    async with stack(workers=4, faults=faults) as (emu, spark):
        pipeline = await open_pipeline(spark)
        stream = pipeline.stream_outputs(records(3000), chunk_size=50)
        got = [o["n"] async for r in stream for o in r.outputs]
        assert got == list(range(3000))
        assert emu.faults.injected["reset_after"] > 0
        # Each lost answer is retried, unless the chunk's result arrived first (then the retry
        # is called off); a retry the server applied twice is yielded once.
        assert stream.state.chunks_retried > 0


async def test_exactly_once_with_lost_pull_answers(stack: Callable[..., Any]) -> None:
    faults = Faults(seed=11, reset_after=0.3, endpoints={"pull"})
    # A third of the pull answers lost: a chunk's result may be lost several times over.
    options = {"workers": 4, "faults": faults, "record_latency": 0.0005}
    async with stack(client={"max_retries": 8}, **options) as (emu, spark):
        spark, _ = without_waits(spark)
        pipeline = await open_pipeline(spark)
        stream = pipeline.stream_outputs(records(2000), chunk_size=10)
        got = [o["n"] async for r in stream for o in r.outputs]
        assert got == list(range(2000))
        assert emu.faults.injected["reset_after"] > 0
        assert stream.state.chunks_retried > 0  # lost results were pushed again


async def test_batch_cancelled_elsewhere_raises_after_correct_results(
    stack: Callable[..., Any],
) -> None:
    async with stack(workers=2, record_latency=0.002) as (emu, spark):
        pipeline = await open_pipeline(spark)
        other = spark.batches.of(pipeline.batch_id)
        seen = []
        with pytest.raises(StreamError, match="cancelled"):
            async for result in pipeline.stream_outputs(records(5000), chunk_size=20):
                seen.extend(o["n"] for o in result.outputs)
                if len(seen) == 200:
                    await other.cancel()
        assert seen == list(range(len(seen)))


async def test_one_call_form_creates_streams_and_closes(stack: Callable[..., Any]) -> None:
    async with stack() as (emu, spark):
        stream = spark.batches.stream_outputs("t/tagged", records(400), chunk_size=100)
        got = [o["n"] async for r in stream for o in r.outputs]
        assert got == list(range(400))
        (batch,) = list(emu.engine.batches())
        assert batch.status == "completed"


async def test_one_call_form_cancels_on_error(stack: Callable[..., Any]) -> None:
    async with stack() as (emu, spark):
        with pytest.raises(KeyError):
            async for _ in spark.batches.stream_outputs("t/tagged", records(400), chunk_size=10):
                raise KeyError("boom")
        await spark.close()  # ends the broken-off stream now, its clean-up included
        (batch,) = list(emu.engine.batches())
        assert batch.status == "cancelled"


async def test_entering_the_one_call_form_creates_the_pipeline(stack: Callable[..., Any]) -> None:
    async with stack() as (emu, spark):
        stream = spark.batches.stream_outputs("nope/missing", records(10))
        with pytest.raises(NotFoundError, match="SERVICE_NOT_FOUND"):
            await stream.__aenter__()  # before any result is asked for
        async with spark.batches.stream_outputs("t/tagged", records(10)) as results:
            assert results.batch_id is not None
            assert emu.engine.batch(results.batch_id).status == "created"
            assert sum([r.records async for r in results]) == 10
        assert emu.engine.batch(results.batch_id).status == "completed"


async def test_an_unused_stream_leaves_nothing_behind(stack: Callable[..., Any]) -> None:
    async with stack() as (emu, spark):
        pipeline = await open_pipeline(spark)
        pipeline.stream_outputs(records(10))  # never iterated
        spark.batches.stream_outputs("t/tagged", records(10))
        gc.collect()  # an unclosed memory stream would warn here, and warnings are errors
        assert stream_tasks() == []
        assert len(list(emu.engine.batches())) == 1  # the one-call form created nothing


async def test_a_server_that_never_answers_pulls_ends_the_stream(stack: Callable[..., Any]) -> None:
    async with stack(faults=Faults(server_error=1.0, endpoints={"pull"})) as (emu, spark):
        spark, _ = without_waits(spark)
        pipeline = await open_pipeline(spark)
        stream = pipeline.stream_outputs(records(100), chunk_size=10)
        # The client's policy: 1 + max_retries (2) attempts, with its backoff (not waited).
        with anyio.fail_after(20), pytest.raises(StreamError, match="could not be pulled after 3"):
            async for _ in stream:
                pass


async def test_closing_from_another_task_is_a_clear_error_not_a_cancellation(
    stack: Callable[..., Any],
) -> None:
    async with stack(workers=1, record_latency=0.01) as (emu, spark):
        pipeline = await open_pipeline(spark)
        stream = pipeline.stream_outputs(records(10_000), chunk_size=10)
        failure: list[BaseException] = []

        async def consume() -> None:
            try:
                async for _ in stream:
                    pass
            except BaseException as exc:  # what the consumer sees, cancellation included
                failure.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await anyio.sleep(0.2)
            await stream.aclose()  # from another task, while the consumer waits for a result
        (error,) = failure
        assert isinstance(error, SparkSdkError), repr(error)
        assert "closed before it finished" in str(error)
        assert emu.engine.batch(pipeline.batch_id).status == "cancelled"


async def test_cancelled_twice_while_cleaning_up_still_cancels_the_batch(
    stack: Callable[..., Any],
) -> None:
    async with stack(workers=1, record_latency=0.01) as (emu, spark):
        pipeline = await open_pipeline(spark)

        async def consume() -> None:
            async for _ in pipeline.stream_outputs(records(10_000), chunk_size=10):
                pass

        task = asyncio.get_running_loop().create_task(consume())
        await anyio.sleep(0.2)
        task.cancel()
        await asyncio.sleep(0)  # the cancellation lands, cleanup starts
        task.cancel()  # and is cancelled again, natively
        with pytest.raises(asyncio.CancelledError):
            await task
        assert emu.engine.batch(pipeline.batch_id).status == "cancelled"


async def test_open_creates_the_pipeline_and_the_client_ends_it_if_never_read(
    stack: Callable[..., Any],
) -> None:
    async with stack() as (emu, spark):
        with pytest.raises(NotFoundError):
            await spark.batches.stream_outputs("nope/missing", records(3)).open()
        stream = await spark.batches.stream_outputs("t/tagged", records(3)).open()
        assert stream.batch_id is not None
        assert emu.engine.batch(stream.batch_id).status == "created"
        await spark.close()  # never iterated: the client ends it (on_exit: cancel)
        assert emu.engine.batch(stream.batch_id).status == "cancelled"
