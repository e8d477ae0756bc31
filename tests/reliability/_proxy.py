"""A lying proxy: a real aiohttp.web server on loopback in front of an emulator, whose answers a
test scripts request by request. It forwards what the test lets through and can change it on
the way back (malformed 200s, odd counters), drop it (a lost answer), answer without forwarding
(a swallowed chunk), throttle forever, or never answer at all.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from attrs import define, field

from ._loopback import loopback

__all__ = ["Exchange", "FakeClock", "Proxy", "kind_of", "proxy", "timeout", "timeout_at"]

if sys.version_info >= (3, 11):
    from asyncio import timeout, timeout_at
else:  # the backport asyncio.timeout() came from (aiohttp installs it there)
    from async_timeout import timeout, timeout_at

# What a rule returns: a response for the client, or None to forward the request as it is.
Rule = Callable[["Exchange"], Awaitable[web.StreamResponse | None]]


def kind_of(request: web.Request) -> str:
    """'create', 'push', 'pull', 'status', 'info', 'patch', 'describe', 'token' or 'other'."""
    path, method = request.path, request.method
    if "openid-connect/token" in path:
        return "token"
    if path.endswith("/batch/status"):
        return "describe"
    if path.endswith("/batch") and method == "POST":
        return "create"
    if path.endswith("/chunks"):
        return "push"
    if path.endswith("/chunkresults"):
        return "pull"
    if path.endswith("/status"):
        return "status"
    if method == "PATCH":
        return "patch"
    if method == "GET" and "/batch/" in path:
        return "info"
    return "other"


@define
class Exchange:
    """One request as the proxy saw it, and how to forward it."""

    request: web.Request
    body: bytes
    proxy: Proxy

    @property
    def kind(self) -> str:
        return kind_of(self.request)

    async def forward(self) -> tuple[int, dict[str, str], bytes]:
        """Send the request to the emulator; (status, headers, body) of its answer."""
        return await self.proxy.forward(self.request, self.body)

    async def forward_json(self) -> tuple[int, Any]:
        status, _headers, body = await self.forward()
        return status, orjson.loads(body)

    def drop(self) -> web.StreamResponse:
        """Lose the answer: close the connection without replying."""
        transport = self.request.transport
        if transport is not None:
            transport.close()
        raise ConnectionResetError("answer dropped by the proxy")


@define
class Proxy:
    upstream: str
    rule: Rule
    port: int = 0
    seen: list[str] = field(factory=list)  # kinds of request received, in order
    session: aiohttp.ClientSession | None = None

    def base_url(self, tenant: str = "emulator") -> str:
        return f"http://127.0.0.1:{self.port}/{tenant}"

    def count(self, kind: str) -> int:
        return self.seen.count(kind)

    async def forward(self, request: web.Request, body: bytes) -> tuple[int, dict[str, str], bytes]:
        assert self.session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with self.session.request(
            request.method,
            self.upstream + request.path_qs,
            data=body or None,
            headers=headers,
            allow_redirects=False,
        ) as resp:
            payload = await resp.read()
            answer = {k: v for k, v in resp.headers.items() if k.lower() not in _HOP}
            return resp.status, answer, payload

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(kind_of(request))
        exchange = Exchange(request, body, self)
        scripted = await self.rule(exchange)
        if scripted is not None:
            return scripted
        status, headers, payload = await exchange.forward()
        return web.Response(status=status, body=payload, headers=headers)


_HOP = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "content-encoding", "keep-alive"}
)


async def passthrough(_exchange: Exchange) -> web.StreamResponse | None:
    return None


@asynccontextmanager
async def proxy(upstream: str, rule: Rule = passthrough) -> AsyncIterator[Proxy]:
    """Serve a proxy to `upstream` (an origin, e.g. `http://127.0.0.1:PORT`) on loopback."""
    server = Proxy(upstream.rstrip("/"), rule)
    # Rules that never answer are left hanging at the end: they get 0.1 s, not a minute.
    async with (
        aiohttp.ClientSession() as session,
        loopback(server._dispatch, shutdown_timeout=0.1) as front,
    ):
        server.session = session
        server.port = front.port
        yield server


class FakeClock:
    """A policy's clock and sleep in one: sleeping advances the clock, instantly."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.delays: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.delays.append(delay)
        self.now += max(0.0, delay)
        await asyncio.sleep(0)


def json_response(payload: Any, status: int = 200, **headers: str) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(payload), content_type="application/json", headers=headers
    )
