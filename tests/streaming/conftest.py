from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

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
    async def factory(**options: Any) -> AsyncIterator[tuple[Emulator, AsyncClient]]:
        options.setdefault("services", {"t/tagged": tagged})
        async with (
            Emulator(**options) as emu,
            AsyncClient(emu.base_url, api_key="test-key", logger=False) as spark,
        ):
            yield emu, spark

    return factory


def records(count: int, start: int = 0) -> list[dict[str, int]]:
    return [{"n": n} for n in range(start, start + count)]
