"""The stream's lean hot path against the emulator: small chunks share a POST (the books stay
per chunk), pulls are sized by bytes, chunks are capped by bytes by default."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cspark_async.emulator import Faults

from .conftest import records

STALL_CAP = 1 << 20  # bytes per chunk by default, and per pull, that the stream aims at


async def test_small_chunks_travel_several_to_a_post(stack: Callable[..., Any]) -> None:
    async with stack() as (emu, spark):
        stream = spark.batches.stream_outputs(
            "t/tagged", records(2000), chunk_size=10, max_in_flight=8
        )
        seen = [o["n"] async for r in stream for o in r.outputs]
        (batch,) = list(emu.engine.batches())
    state = stream.state
    assert seen == list(range(2000))
    assert batch.chunks_submitted == 200  # each chunk reached the server once
    assert state.chunks_pushed == 200
    assert state.pushes < 100  # fewer requests than chunks...
    assert state.pushes >= 200 // 4  # ...and never more than half the window in one POST


async def test_a_throttled_post_is_refused_as_a_whole_and_counted_per_chunk(
    stack: Callable[..., Any],
) -> None:
    faults = Faults(seed=4, rate_limit=0.4, retry_after=0.001, endpoints={"push"})
    async with stack(faults=faults) as (emu, spark):
        stream = spark.batches.stream_outputs(
            "t/tagged", records(2000), chunk_size=10, max_in_flight=8
        )
        seen = [o["n"] async for r in stream for o in r.outputs]
        (batch,) = list(emu.engine.batches())
        throttles = emu.faults.injected["rate_limit"]
    state = stream.state
    assert seen == list(range(2000))
    assert batch.chunks_submitted == 200  # a 429 applied nothing; the retry applied it all
    assert state.throttled == throttles
    assert state.pushes < state.chunks_pushed
    # Every chunk of a throttled POST is pushed again: at least one per throttle.
    assert state.chunks_retried >= throttles > 0


def wide(n: int) -> list[dict[str, Any]]:
    return [{"n": i, "note": "x" * 4000} for i in range(n)]


def echo(record: dict[str, Any]) -> dict[str, Any]:
    return dict(record)


async def test_pulls_are_sized_by_bytes(stack: Callable[..., Any]) -> None:
    async with stack(workers=16, services={"t/echo": echo}) as (_emu, spark):
        stream = spark.batches.stream_outputs("t/echo", wide(3000), chunk_size=50)
        seen = [o["n"] async for r in stream for o in r.outputs]
    state = stream.state
    assert seen == list(range(3000))
    # Each result is about 200 KB: at the API's 100 chunks a pull, pulls would carry megabytes.
    assert state.bytes_in > 3000 * 4000
    assert state.bytes_in / (state.pulls - state.empty_pulls) <= STALL_CAP


async def test_chunks_are_capped_by_bytes_by_default(stack: Callable[..., Any]) -> None:
    async with stack() as (_emu, spark):
        stream = spark.batches.stream_outputs("t/tagged", wide(2000), chunk_size=1000)
        seen = [o["n"] async for r in stream for o in r.outputs]
    state = stream.state
    assert seen == list(range(2000))
    assert state.chunks_read >= 8  # 2000 records of 4 KB: 8 MB in chunks of at most 1 MiB
    assert state.bytes_out <= state.pushes * STALL_CAP


async def test_a_list_of_rows_comes_back_as_the_callers_own_objects(
    stack: Callable[..., Any],
) -> None:
    rows: list[list[Any]] = [["n"], *([i] for i in range(50))]
    before = [list(row) for row in rows]
    async with stack() as (_emu, spark):
        stream = spark.batches.stream_outputs("t/tagged", rows, chunk_size=10)
        results = [r async for r in stream]
    inputs = [row for r in results for row in r.inputs]
    assert [o["n"] for r in results for o in r.outputs] == list(range(50))
    assert len(inputs) == 50
    assert all(got is row for got, row in zip(inputs, rows[1:], strict=True))  # not copied
    assert rows == before  # and never modified
