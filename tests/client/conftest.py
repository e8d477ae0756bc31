"""Fixtures for client tests: clients wired to the emulator, request tracing, fake sleeps."""

from __future__ import annotations

import asyncio
import inspect
import random
import types
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import aioresponses.core
import pytest
from aioresponses import aioresponses as Aioresponses

from cspark_async import AsyncClient
from cspark_async.emulator import Emulator


class RequestLog:
    """Every request a session starts (method, URL, headers), seen by aiohttp's tracing."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.started = asyncio.Event()  # set by the first request

    def trace_config(self) -> aiohttp.TraceConfig:
        config = aiohttp.TraceConfig()

        async def on_start(
            _session: aiohttp.ClientSession, _ctx: Any, params: aiohttp.TraceRequestStartParams
        ) -> None:
            self.requests.append((params.method, str(params.url), dict(params.headers)))
            self.started.set()

        config.on_request_start.append(on_start)
        return config

    def count(self, method: str | None = None, contains: str = "") -> int:
        return sum(
            1 for m, url, _ in self.requests if (method is None or m == method) and contains in url
        )


class Sleeps:
    """Replaces the client's sleep: records each delay and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class TopOfRange(random.Random):
    """`uniform(a, b)` returns `b`: backoff delays become their (deterministic) ceilings."""

    def uniform(self, a: float, b: float) -> float:
        return b


class _CompatResponse(aiohttp.ClientResponse):
    """aioresponses 0.7.9 builds responses without aiohttp 3.14's `stream_writer` argument."""

    def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", types.SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


_NEEDS_SHIM = "stream_writer" in inspect.signature(aiohttp.ClientResponse.__init__).parameters


@pytest.fixture
def mocked(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aioresponses]:
    """aioresponses, patched to work with the installed aiohttp."""
    if _NEEDS_SHIM:
        monkeypatch.setattr(aioresponses.core, "ClientResponse", _CompatResponse)
    with Aioresponses() as m:
        yield m


@pytest.fixture
async def spark(emulator: Emulator) -> AsyncIterator[AsyncClient]:
    """A client on the emulator with its own session."""
    async with AsyncClient(emulator.base_url, api_key="open", retry_interval=0.01) as client:
        yield client


@pytest.fixture
async def traced(emulator: Emulator) -> AsyncIterator[tuple[AsyncClient, RequestLog]]:
    """A client on the emulator using a caller-provided, traced session."""
    log = RequestLog()
    async with (
        aiohttp.ClientSession(trace_configs=[log.trace_config()]) as session,
        AsyncClient(
            emulator.base_url, api_key="open", retry_interval=0.01, session=session
        ) as client,
    ):
        yield client, log


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()
