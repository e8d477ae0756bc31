from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import pytest

from cspark_async import AsyncClient
from cspark_async.emulator import Emulator


def tagged(record: dict[str, Any]) -> dict[str, Any]:
    """Echoes the input's `n` so tests can line outputs up with inputs."""
    if record.get("fail"):
        raise ValueError(f"record {record['n']} asked to fail")
    return {"n": record["n"], "double": record["n"] * 2}


@pytest.fixture
def stack() -> Callable[..., Any]:
    """`async with stack(**emulator_options) as (emu, spark)`: emulator plus a client on it."""

    @contextlib.asynccontextmanager
    async def factory(
        client: dict[str, Any] | None = None, **options: Any
    ) -> AsyncIterator[tuple[Emulator, AsyncClient]]:
        options.setdefault("services", {"t/tagged": tagged})
        async with (
            Emulator(**options) as emu,
            AsyncClient(emu.base_url, api_key="test-key", logger=False, **(client or {})) as spark,
        ):
            yield emu, spark

    return factory


class InstantSleep:
    """A policy's `sleep` that records each delay and only yields: backoff without the wait."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


def without_waits(spark: AsyncClient) -> tuple[AsyncClient, InstantSleep]:
    """`spark` on the same session, sleeping no real time between retries."""
    sleep = InstantSleep()
    return spark.with_options(policy=attrs.evolve(spark.policy, sleep=sleep)), sleep


def records(count: int, start: int = 0) -> list[dict[str, int]]:
    return [{"n": n} for n in range(start, start + count)]
