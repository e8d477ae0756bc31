"""Small helpers shared by the emulator-backed client tests."""

from __future__ import annotations

from typing import Any

import anyio

from cspark_async import AsyncPipeline


async def wait_processed(pipeline: AsyncPipeline, records: int, timeout_s: float = 5.0) -> None:
    """Poll until the server has processed `records` records."""
    with anyio.fail_after(timeout_s):
        while True:
            status = (await pipeline.get_status()).data
            if status["records_completed"] >= records:
                return
            await anyio.sleep(0.005)


async def pull_all(pipeline: AsyncPipeline, chunks: int, timeout_s: float = 5.0) -> list[Any]:
    """Pull until `chunks` chunk results have arrived; returns the raw chunk results."""
    results: list[Any] = []
    with anyio.fail_after(timeout_s):
        while len(results) < chunks:
            pulled = await pipeline.pull()
            results.extend(pulled.data["data"])
            if len(results) < chunks:
                await anyio.sleep(0.005)
    return results
