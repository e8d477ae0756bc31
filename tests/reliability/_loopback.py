"""Test helpers for the bad-input and security suites: a scripted HTTP server on loopback, and a
client session that records every request the SDK starts.

`Loopback` is a real aiohttp.web server on 127.0.0.1:0 whose answers a test scripts with one
handler; it records what it receives (method, path, headers, body). Use it for replies the
emulator never gives: HTML pages from a proxy, truncated bodies, redirects, echoes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp import web
from attrs import define, field

from cspark_async import AsyncClient

__all__ = ["Loopback", "Received", "RequestLog", "loopback", "traced_client"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@define
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@define
class Loopback:
    """A server on 127.0.0.1 answering every request with `handler`."""

    handler: Handler
    port: int = 0
    received: list[Received] = field(factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def base_url(self, tenant: str = "tenant") -> str:
        return f"{self.url}/{tenant}"

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.received.append(Received(request.method, request.path_qs, dict(request.headers), body))
        return await self.handler(request)


@asynccontextmanager
async def loopback(handler: Handler, *, shutdown_timeout: float = 60.0) -> AsyncIterator[Loopback]:
    """Serve `handler` on a free loopback port for the duration of the block (handlers still
    running at the end get `shutdown_timeout` seconds)."""
    server = Loopback(handler)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server._dispatch)
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server.port = runner.addresses[0][1]
        yield server
    finally:
        await runner.cleanup()


class RequestLog:
    """Every request a session starts (method, URL, headers), seen through aiohttp tracing:
    what the SDK *sent*, whatever the server did with it."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    def trace_config(self) -> aiohttp.TraceConfig:
        config = aiohttp.TraceConfig()

        async def on_start(
            _session: aiohttp.ClientSession, _ctx: Any, params: aiohttp.TraceRequestStartParams
        ) -> None:
            self.requests.append((params.method, str(params.url), dict(params.headers)))

        config.on_request_start.append(on_start)
        return config

    def count(self, method: str | None = None, contains: str = "") -> int:
        return sum(
            1 for m, url, _ in self.requests if (method is None or m == method) and contains in url
        )

    def clear(self) -> None:
        self.requests.clear()


@asynccontextmanager
async def traced_client(
    base_url: str, **options: Any
) -> AsyncIterator[tuple[AsyncClient, RequestLog]]:
    """An `AsyncClient` on `base_url` whose every request is recorded in a `RequestLog`."""
    log = RequestLog()
    if not {"api_key", "token", "oauth"} & options.keys():
        options["api_key"] = "open"
    options.setdefault("logger", False)
    options.setdefault("retry_interval", 0.001)
    async with (
        aiohttp.ClientSession(trace_configs=[log.trace_config()]) as session,
        AsyncClient(base_url, session=session, **options) as client,
    ):
        yield client, log


async def settle() -> None:
    """Let callbacks scheduled by a just-finished block run (connection close, task exits)."""
    for _ in range(3):
        await asyncio.sleep(0)
