from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cspark_async.emulator import Emulator


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """A fresh emulator on a free loopback port, stopped after the test."""
    async with Emulator(workers=4) as emu:
        yield emu
