"""Emulator tests speak raw HTTP with aiohttp, so they pin the wire surface itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import anyio
import pytest

from cspark_async.emulator import Emulator


class Api:
    """A thin raw-HTTP helper bound to one emulator."""

    def __init__(self, session: aiohttp.ClientSession, emulator: Emulator) -> None:
        self.session = session
        self.emulator = emulator
        self.root = emulator.base_url + "/api/v4/batch"

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        url = self.root + path if path.startswith(("/", "?")) or not path else path
        async with self.session.request(method, url, **kwargs) as resp:
            assert resp.content_type == "application/json", await resp.text()
            return resp.status, await resp.json()

    async def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        status, body = await self.call(method, path, **kwargs)
        assert status == 200, body
        return body

    async def create(self, service: str = "my-folder/my-service", **body: Any) -> str:
        created = await self.ok("POST", "", json={"service": service, **body})
        return str(created["id"])

    async def push(self, batch_id: str, *chunks: dict[str, Any]) -> Any:
        return await self.ok("POST", f"/{batch_id}/chunks", json={"chunks": list(chunks)})

    async def status(self, batch_id: str) -> Any:
        return await self.ok("GET", f"/{batch_id}/status")

    async def pull(self, batch_id: str, max_chunks: int = 100) -> Any:
        return await self.ok("GET", f"/{batch_id}/chunkresults?max={max_chunks}")

    async def drain(self, batch_id: str, chunks: int, within_s: float = 10.0) -> list[Any]:
        """Pull until `chunks` results arrived."""
        results: list[Any] = []
        with anyio.fail_after(within_s):
            while len(results) < chunks:
                body = await self.pull(batch_id)
                results.extend(body["data"])
                if not body["data"]:
                    await asyncio.sleep(0.005)
        return results

    async def wait_for(
        self, batch_id: str, predicate: Callable[[Any], bool], within_s: float = 10.0
    ) -> Any:
        with anyio.fail_after(within_s):
            while True:
                status = await self.status(batch_id)
                if predicate(status):
                    return status
                await asyncio.sleep(0.005)


def chunk(chunk_id: str, inputs: list[Any], **data: Any) -> dict[str, Any]:
    return {"id": chunk_id, "size": len(inputs), "data": {"inputs": inputs, **data}}


def values(start: int, count: int) -> list[dict[str, int]]:
    return [{"value": v} for v in range(start, start + count)]


@pytest.fixture
async def api(emulator: Emulator) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, emulator)


@pytest.fixture
def make_api() -> Callable[..., Any]:
    """Start an emulator with custom options: `async with make_api(workers=1) as api`."""
    import contextlib

    @contextlib.asynccontextmanager
    async def factory(**options: Any) -> AsyncIterator[Api]:
        async with Emulator(**options) as emu, aiohttp.ClientSession() as session:
            yield Api(session, emu)

    return factory
