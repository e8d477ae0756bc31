"""Run the emulator: `Emulator` in the caller's event loop, `ThreadedEmulator` for sync callers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from aiohttp import web

from .._client import AsyncClient
from .._constants import (
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_BEARER_TOKEN,
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    OPEN_AUTH,
)
from ._app import Auth, build_app
from ._engine import Engine, EngineOptions
from ._faults import FaultInjector, Faults
from ._services import Service, ServiceFn, ServiceRegistry, default_services

__all__ = ["Emulator", "ThreadedEmulator"]


class Emulator:
    """A local Spark Batch API on loopback, as an async context manager.

    ```python
    async with Emulator(workers=8, record_latency=0.001) as emu:
        async with AsyncClient(emu.base_url, api_key="any") as spark: ...
    ```

    Args:
        tenant: the tenant in the base URL (`http://127.0.0.1:PORT/<tenant>`).
        host, port: where to listen; 127.0.0.1 and a free port by default.
        api_key, token, oauth_clients: credentials to enforce. With none, any credential or
            none at all is accepted (the official SDKs' 'open' mode works).
        services: `{'folder/service': fn}` with `fn(record: dict) -> dict`, sync or async, or
            `Service` objects; defaults to `demo/term-life` and `my-folder/my-service` (echo).
        workers: concurrent chunks per pipeline (a create's `max_workers` can lower it).
        record_latency: simulated compute seconds per record.
        input_buffer_bytes, output_buffer_bytes: per-pipeline buffers (create's
            `max_input_size_in_mb` / `max_output_size_in_mb` override them).
        idle_timeout: seconds without a request before the system closes a pipeline.
        clock: monotonic seconds for idle timeouts and batch times; with a fake one, a test
            advances it and calls `emu.engine.expire_idle()` instead of waiting.
        faults: seeded fault injection (see `Faults`); `set_faults()` changes it live.
        compress_responses: gzip answers of 1 KiB or more when the request's
            `Accept-Encoding` allows it, as Spark documents (False: never compress).
    """

    def __init__(
        self,
        *,
        tenant: str = "emulator",
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        token: str | None = None,
        oauth_clients: Mapping[str, str] | None = None,
        services: Mapping[str, ServiceFn | Service] | None = None,
        workers: int = 16,
        record_latency: float = 0.0,
        input_buffer_bytes: int = 70_000_000,
        output_buffer_bytes: int = 80_000_000,
        idle_timeout: float = 1800.0,
        max_pull_chunks: int = 1000,
        faults: Faults | None = None,
        compress_responses: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not tenant or "/" in tenant:
            raise ValueError(f"tenant must be a non-empty path segment, got {tenant!r}")
        for name, value in (
            ("workers", workers),
            ("input_buffer_bytes", input_buffer_bytes),
            ("output_buffer_bytes", output_buffer_bytes),
            ("max_pull_chunks", max_pull_chunks),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if record_latency < 0 or idle_timeout <= 0:
            raise ValueError("record_latency must be >= 0 and idle_timeout > 0")
        self.host = host
        self.port = port
        self._options = EngineOptions(
            tenant=tenant,
            workers=workers,
            record_latency=record_latency,
            input_buffer_bytes=input_buffer_bytes,
            output_buffer_bytes=output_buffer_bytes,
            idle_timeout=idle_timeout,
            max_pull_chunks=max_pull_chunks,
            clock=clock,
        )
        self._registry = ServiceRegistry(default_services() if services is None else services)
        self._auth = Auth(api_key=api_key, token=token, oauth_clients=oauth_clients)
        self.faults = FaultInjector(faults)
        self._compress_min_bytes = 1024 if compress_responses else 0
        self._engine: Engine | None = None
        self._runner: web.AppRunner | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("the emulator is not running: use `async with Emulator() as emu`")
        return self._engine

    @property
    def url(self) -> str:
        """The host root, e.g. `http://127.0.0.1:54321`."""
        if self._runner is None:
            raise RuntimeError("the emulator is not running: use `async with Emulator() as emu`")
        return f"http://{_host_for_url(self.host)}:{self.port}"

    @property
    def base_url(self) -> str:
        """What a client takes as its base URL: `http://127.0.0.1:PORT/<tenant>`."""
        return f"{self.url}/{self._options.tenant}"

    @property
    def tenant(self) -> str:
        return self._options.tenant

    def client(self, **options: Any) -> AsyncClient:
        """An `AsyncClient` for this emulator, with whatever credential it enforces.

        ```python
        async with Emulator() as emu, emu.client() as spark: ...
        ```
        `options` go to `AsyncClient` (e.g. `max_retries=0`, `timeout=5`).
        """
        for name, value in self._credential().items():
            options.setdefault(name, value)
        options.setdefault("logger", False)
        return AsyncClient(self.base_url, **options)

    def env(self) -> dict[str, str]:
        """The `CSPARK_*` variables that point `AsyncClient()` (or the CLI, or a subprocess) at
        this emulator: the base URL and the one credential it enforces.

        ```python
        subprocess.run([...], env={**os.environ, **emu.env()})
        ```
        """
        env = {ENV_BASE_URL: self.base_url}
        credential = self._credential()
        if "oauth" in credential:
            env[ENV_CLIENT_ID] = credential["oauth"]["client_id"]
            env[ENV_CLIENT_SECRET] = credential["oauth"]["client_secret"]
        elif "token" in credential:
            env[ENV_BEARER_TOKEN] = credential["token"]
        else:
            env[ENV_API_KEY] = credential["api_key"]
        return env

    def _credential(self) -> dict[str, Any]:
        """`AsyncClient` keyword arguments for the credential this emulator enforces."""
        auth = self._auth
        if auth.oauth_clients:
            client_id, secret = next(iter(auth.oauth_clients.items()))
            return {"oauth": {"client_id": client_id, "client_secret": secret}}
        if auth.api_key:
            return {"api_key": auth.api_key}
        if auth.token:
            return {"token": auth.token}
        return {"api_key": OPEN_AUTH}  # nothing enforced: send no credential

    def set_faults(self, faults: Faults | None) -> None:
        """Change fault injection while running (None turns it off); the RNG is reseeded."""
        self.faults.configure(faults or Faults())

    async def restart(self) -> None:
        """Lose every batch, as a restarted server would; the port stays the same."""
        self.engine.reset()

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        engine = Engine(self._registry, self._options)
        app = build_app(
            engine,
            auth=self._auth,
            faults=self.faults,
            compress_min_bytes=self._compress_min_bytes,
        )
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self.port = runner.addresses[0][1]
        engine.start()
        self._engine, self._runner = engine, runner

    async def stop(self) -> None:
        runner, engine = self._runner, self._engine
        self._runner = self._engine = None
        try:
            if runner is not None:
                await runner.cleanup()
        finally:
            if engine is not None:
                await engine.aclose()

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self._runner is not None else "not running"
        return f"<Emulator {where} workers={self._options.workers}>"


class ThreadedEmulator:
    """The emulator in a background thread with its own event loop, for synchronous callers
    (the official sync `cspark.sdk.Client`, scripts). A context manager:

    ```python
    with ThreadedEmulator(workers=4) as emu:
        requests.get(emu.base_url + "/api/v4/batch/status")
    ```
    """

    def __init__(self, **options: Any) -> None:
        self.emulator = Emulator(**options)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        return self.emulator.base_url

    @property
    def url(self) -> str:
        return self.emulator.url

    def env(self) -> dict[str, str]:
        """The `CSPARK_*` variables that point a client at this emulator (see `Emulator.env`)."""
        return self.emulator.env()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cspark-emulator", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join()
        self._thread = None

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            try:
                await self.emulator.start()
            except BaseException as exc:
                self._error = exc
                self._ready.set()
                return
            self._ready.set()
            try:
                await self._stop.wait()
            finally:
                await self.emulator.stop()

        asyncio.run(main())

    def __enter__(self) -> ThreadedEmulator:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _host_for_url(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
