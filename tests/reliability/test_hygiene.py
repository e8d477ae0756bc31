"""Resource hygiene: the suite runs with warnings as errors, and a client flow
plus streams stopped early leave no task, session, connector or coroutine behind.

pytest's `filterwarnings = ["error"]` turns a warning raised *inside* a test into a failure, but
several leaks surface outside any test: a ResourceWarning from a finaliser, "Task was destroyed
but it is pending!" and "Unclosed client session" through the loop's exception handler. The
test below records both channels around a real flow and asserts they stay empty.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

import cspark_async as sdk
from cspark_async import AsyncClient
from cspark_async.emulator import Emulator

from ._loopback import settle

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = None

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_pytest_runs_with_warnings_as_errors() -> None:
    if tomllib is None:  # pragma: no cover
        pytest.skip("tomllib needs Python 3.11")
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["pytest"]["ini_options"]
    assert config["filterwarnings"][0] == "error"  # first: later entries may only add ignores
    assert all(entry.startswith("ignore") for entry in config["filterwarnings"][1:])


@attrs.define
class Leaks:
    tasks: list[str]
    warnings: list[str]
    loop_errors: list[str]


async def leaks_of(flow: Callable[[], Awaitable[None]]) -> Leaks:
    """Run `flow`, then collect garbage: what it left behind, on every channel."""
    loop = asyncio.get_running_loop()
    loop_errors: list[dict[str, Any]] = []
    previous_handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: loop_errors.append(context))
    me = asyncio.current_task()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            await flow()
            for _ in range(2):
                await settle()
                gc.collect()
        left = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
    finally:
        loop.set_exception_handler(previous_handler)
    return Leaks(
        tasks=[t.get_name() for t in left],
        warnings=[f"{w.category.__name__}: {w.message}" for w in caught],
        loop_errors=[str(c.get("message")) for c in loop_errors],
    )


async def test_flows_and_broken_streams_leave_nothing_behind() -> None:
    assert await leaks_of(_run_flows) == Leaks([], [], [])


async def _run_flows() -> None:
    async with Emulator(workers=2, record_latency=0.0005) as emu:
        # Every verb.
        async with AsyncClient(emu.base_url, api_key="open", logger=False) as spark:
            batch = await spark.batches.create("my-folder/my-service")
            pipeline = spark.batches.of(batch.data["id"])
            await pipeline.push(inputs=[{"n": n} for n in range(20)])
            await pipeline.get_status()
            await pipeline.pull()
            await pipeline.dispose()

            # A stream on a pipeline, left by `break` without aclose(): the async generator's
            # finaliser has to clean up.
            batch = await spark.batches.create("my-folder/my-service")
            pipeline = spark.batches.of(batch.data["id"])
            async for result in pipeline.stream_outputs(
                [{"n": n} for n in range(5000)], chunk_size=10
            ):
                if result.offset >= 30:
                    break

            # The one-call form, left by an exception from the consumer.
            with pytest.raises(RuntimeError, match="consumer gave up"):
                async for result in spark.batches.stream_outputs(
                    "my-folder/my-service", ({"n": n} for n in range(5000)), chunk_size=10
                ):
                    if result.offset >= 30:
                        raise RuntimeError("consumer gave up")

            # A stream failed by a bad record, after three chunks went out.
            with pytest.raises(sdk.StreamError, match="record at offset 15"):
                async with spark.batches.stream_outputs(
                    "my-folder/my-service",
                    [{"n": n} for n in range(15)] + [{"n": float("nan")}],
                    chunk_size=5,
                ) as results:
                    async for _ in results:
                        pass

        # A client that never sent anything, and one whose every attempt failed.
        async with AsyncClient(emu.base_url, api_key="open"):
            pass
        port = emu.port
    async with AsyncClient(
        f"http://127.0.0.1:{port}/emulator", api_key="open", max_retries=1, retry_interval=0.001
    ) as gone:
        with pytest.raises(sdk.SparkConnectionError):
            await gone.batches.describe()


# ---- what the flow above leaves out, because it leaks ------------------------------------------


def bug(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=f"BUG: {reason}")


# A stream whose engine never ran (entered but not iterated, closed before it started, made and
# dropped) used to leak its memory streams (ResourceWarning: Unclosed <MemoryObjectSendStream>);
# fixed in _streaming/_stream.py, which now makes them when the engine starts.


async def test_a_stream_entered_but_never_iterated_leaves_nothing_behind() -> None:
    async def flow() -> None:
        async with Emulator() as emu, AsyncClient(emu.base_url, api_key="open") as spark:
            batch = await spark.batches.create("my-folder/my-service")
            async with spark.batches.of(batch.data["id"]).stream_outputs([{"n": 1}]):
                pass  # e.g. the caller's code raised before its `async for`

    assert await leaks_of(flow) == Leaks([], [], [])


async def test_a_stream_closed_before_it_started_leaves_nothing_behind() -> None:
    async def flow() -> None:
        async with Emulator() as emu, AsyncClient(emu.base_url, api_key="open") as spark:
            batch = await spark.batches.create("my-folder/my-service")
            await spark.batches.of(batch.data["id"]).stream_outputs([{"n": 1}]).aclose()

    assert await leaks_of(flow) == Leaks([], [], [])


async def test_a_stream_made_but_never_used_leaves_nothing_behind() -> None:
    async def flow() -> None:
        async with Emulator() as emu, AsyncClient(emu.base_url, api_key="open") as spark:
            batch = await spark.batches.create("my-folder/my-service")
            spark.batches.of(batch.data["id"]).stream_outputs([{"n": 1}])

    assert await leaks_of(flow) == Leaks([], [], [])


async def test_break_at_the_end_of_the_client_block_still_cancels_the_batch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with Emulator(workers=2, record_latency=0.001) as emu:
        async with AsyncClient(emu.base_url, api_key="open", logger=False) as spark:
            batch = await spark.batches.create("my-folder/my-service")
            pipeline = spark.batches.of(batch.data["id"])
            async for result in pipeline.stream_outputs(
                [{"n": n} for n in range(5000)], chunk_size=10
            ):
                if result.offset >= 30:
                    break
        for _ in range(3):
            await settle()
            gc.collect()
        assert "could not cancel" not in caplog.text
        assert emu.engine.batch(pipeline.batch_id).status == "cancelled"
