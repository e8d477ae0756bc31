"""Cancellation at seeded random moments: while the one-call form creates its batch, while
chunks are pushed and pulled, while the stream cleans up. Four ways to cancel: `Task.cancel()`,
`asyncio.timeout()`, `anyio.move_on_after()` and `CancelScope.cancel()` from another task.

After every one: the caller regains control promptly, an anyio scope absorbs its own
cancellation (nothing escapes to cancel the caller's task), no stream task is left running,
the client's session is closed, and no batch is left `created` or `in_progress`.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
from typing import Any

import anyio
import pytest
from aiohttp import web

from cspark_async import AsyncClient
from cspark_async.emulator import Emulator

from ._proxy import Exchange, proxy, timeout_at

POINTS = int(os.environ.get("CSPARK_CANCEL_POINTS", "200"))
RECORDS = 3000
SERVICE = "t/n"
WAYS = ("task.cancel", "asyncio.timeout", "move_on_after", "scope.cancel")


def tagged(record: dict[str, Any]) -> dict[str, Any]:
    return {"n": record["n"]}


def stream_tasks() -> list[asyncio.Task[Any]]:
    return [
        t for t in asyncio.all_tasks() if t.get_name().startswith("cspark-async") and not t.done()
    ]


async def consume(spark: AsyncClient, one_call: bool, batch_id: str | None) -> int:
    records = ({"n": n} for n in range(RECORDS))
    seen = 0
    if one_call:
        async for result in spark.batches.stream_outputs(SERVICE, records, chunk_size=10):
            seen += result.records
        return seen
    assert batch_id is not None
    # The owner of a pipeline closes it when done; the stream cancels it when stopped early.
    async with spark.batches.of(batch_id) as pipeline:
        async for result in pipeline.stream_outputs(records, chunk_size=10):
            seen += result.records
    return seen


async def cancel_once(
    spark: AsyncClient, way: str, delay: float, one_call: bool, batch_id: str | None
) -> float:
    """Run a stream, cancel it after `delay` seconds in the given way; the seconds from the
    cancellation to the caller having control again."""
    loop = asyncio.get_running_loop()
    if way == "task.cancel":
        task = loop.create_task(consume(spark, one_call, batch_id))
        await asyncio.sleep(delay)
        fired = loop.time()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            if not task.cancelled():
                raise
        return loop.time() - fired
    if way == "asyncio.timeout":
        deadline = loop.time() + delay
        try:
            async with timeout_at(deadline):
                await consume(spark, one_call, batch_id)
        except asyncio.TimeoutError:  # TimeoutError itself on 3.11+
            pass
        return max(0.0, loop.time() - deadline)
    if way == "move_on_after":
        with anyio.move_on_after(delay) as scope:
            await consume(spark, one_call, batch_id)
        # Reaching here at all means the scope absorbed the cancellation.
        return max(0.0, loop.time() - scope.deadline) if scope.cancel_called else 0.0
    fired_at: list[float] = []
    async with anyio.create_task_group() as tg:
        scope = anyio.CancelScope()

        async def guarded() -> None:
            with scope:
                await consume(spark, one_call, batch_id)

        tg.start_soon(guarded)
        await asyncio.sleep(delay)
        fired_at.append(loop.time())
        scope.cancel()
    return loop.time() - fired_at[0]


@pytest.mark.slow
async def test_cancellation_at_random_points_leaves_nothing_behind() -> None:
    rng = random.Random(20261129)
    jitter = random.Random(7)

    async def slow_a_little(exchange: Exchange) -> web.StreamResponse | None:
        # Spread the requests out a little so cancellations land inside them too.
        await asyncio.sleep(jitter.uniform(0, 0.004))
        return None

    latencies: list[float] = []
    async with (
        Emulator(workers=4, record_latency=0.0002, services={SERVICE: tagged}) as emu,
        proxy(emu.base_url.rsplit("/", 1)[0], slow_a_little) as server,
    ):
        for point in range(POINTS):
            way = WAYS[point % len(WAYS)]
            one_call = rng.random() < 0.5
            delay = rng.uniform(0, 0.08)
            async with AsyncClient(server.base_url(), api_key="open", logger=False) as spark:
                batch_id = None
                if not one_call:
                    batch_id = (await spark.batches.create(SERVICE)).data["id"]
                latencies.append(await cancel_once(spark, way, delay, one_call, batch_id))
            assert spark._http.session is None  # closed, and nothing reopened it
            assert stream_tasks() == [], (point, way)
        left_open = [
            (b.id, b.status) for b in emu.engine.batches() if b.status in ("created", "in_progress")
        ]
    assert left_open == []
    median, worst = statistics.median(latencies), max(latencies)
    print(f"\ncancel latency, {POINTS} points: median {median:.4f} s, max {worst:.4f} s")
    assert worst < 1.0  # promptly: the client finishes what the server must be told
