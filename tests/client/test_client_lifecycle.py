"""The client's session lifecycle: lazy, pooled, closed once, never leaked."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import anyio
import pytest

import cspark_async as sdk
from cspark_async import AsyncClient
from cspark_async.emulator import Emulator


async def test_session_is_lazy_and_closed_once(emulator: Emulator) -> None:
    spark = AsyncClient(emulator.base_url, api_key="open")
    assert spark._http.session is None
    assert not spark.is_closed
    assert spark.batches is spark.batches  # cached
    await spark.batches.describe()
    session = spark._http.session
    assert session is not None
    assert not session.closed
    await spark.batches.describe()
    assert spark._http.session is session  # one pooled session for every call
    await spark.close()
    await spark.close()  # idempotent
    assert session.closed
    assert spark.is_closed
    with pytest.raises(sdk.SparkSdkError, match="closed"):
        await spark.batches.describe()
    with pytest.raises(sdk.SparkSdkError, match="reopen"):
        async with spark:
            pass


async def test_a_caller_provided_session_is_not_closed(emulator: Emulator) -> None:
    async with aiohttp.ClientSession() as session:
        async with AsyncClient(emulator.base_url, api_key="open", session=session) as spark:
            await spark.batches.describe()
        assert spark.is_closed
        assert not session.closed
        async with session.get(f"{emulator.url}/_emulator/health") as response:
            assert response.status == 200  # still usable by its owner
        async with AsyncClient(emulator.base_url, api_key="open", session=session) as spark:
            await session.close()
            with pytest.raises(sdk.SparkSdkError, match="session"):
                await spark.batches.describe()


async def test_async_with_batches_closes_the_client(emulator: Emulator) -> None:
    spark = AsyncClient(emulator.base_url, api_key="open")
    async with spark.batches as batches:  # the documented `with spark.batches as b:` shape
        await batches.describe()
    assert spark.is_closed


async def test_no_unclosed_session_warning(emulator: Emulator) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with AsyncClient(emulator.base_url, api_key="open") as spark:
            await spark.batches.describe()
        del spark
        gc.collect()
    assert not [w for w in caught if "Unclosed" in str(w.message)]


def _build_at_import_time(url: str) -> AsyncClient:
    """What a FastAPI module does: build the client with no running event loop."""
    return AsyncClient(url, api_key="open")


async def test_lifespan_singleton(emulator: Emulator) -> None:
    spark = _build_at_import_time(emulator.base_url)

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        async with spark:
            yield

    async def handle_request(n: int) -> None:
        batch = await spark.batches.create("my-folder/my-service")
        await spark.batches.of(batch.data["id"]).push(inputs=[{"value": n}])

    async with lifespan():
        async with anyio.create_task_group() as tg:
            for n in range(10):
                tg.start_soon(handle_request, n)
        described = await spark.batches.describe()
        assert len(described.parsed.in_progress_batches) == 10
    assert spark.is_closed


def test_construction_needs_no_event_loop() -> None:
    client = _build_at_import_time("http://127.0.0.1:1/t")
    assert client._http.session is None
    assert "auth=open" in repr(client)
    assert "open>" in repr(client)


def test_a_client_used_in_a_second_event_loop_says_so() -> None:
    # One client, two loops (a module-level client and asyncio.run() per call or per test):
    # a clear error, not aiohttp's closed-loop RuntimeError or a corrupted connection pool.
    from cspark_async.emulator import ThreadedEmulator

    with ThreadedEmulator() as emu:
        spark = AsyncClient(emu.base_url, api_key="open")
        first = asyncio.new_event_loop()
        try:
            first.run_until_complete(spark.batches.describe())
            with pytest.raises(sdk.SparkSdkError, match=r"another event loop \(still open\)"):
                asyncio.run(spark.batches.describe())
            first.run_until_complete(spark.batches.describe())  # its own loop still works
        finally:
            first.run_until_complete(spark.close())
            first.close()

        leaky = AsyncClient(emu.base_url, api_key="open")
        asyncio.run(leaky.batches.describe())  # its loop ends without closing the client
        with pytest.raises(sdk.SparkSdkError, match=r"another event loop \(since closed\)"):
            asyncio.run(leaky.batches.describe())
        del leaky
        with pytest.warns(ResourceWarning):  # what that loop left open, reported at collection
            gc.collect()
