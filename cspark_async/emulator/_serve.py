"""Serving an emulator as its own process, until SIGINT or SIGTERM: what
`python -m cspark_async.emulator` and `cspark-async emulator` share."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Callable
from typing import Any

from ._server import Emulator

__all__ = ["serve_forever"]

# Young-generation collections every 50,000 allocations instead of 700 while serving: what
# the emulator holds is decoded JSON, which has no reference cycles, and under load the default
# passes took about a quarter of its CPU. Undone when serving ends: a CLI run in-process (a
# test's CliRunner) leaves its host's collector as it found it.
_GC_THRESHOLDS = (50_000, 20, 10)


async def serve_forever(emulator: Emulator, on_ready: Callable[[str], Any]) -> None:
    """Start `emulator`, call `on_ready(base_url)`, serve until SIGINT or SIGTERM, then stop
    it cleanly. Tunes the garbage collector for serving meanwhile."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with emulator:
        thresholds = gc.get_threshold()
        # What was imported at start-up is never garbage: full passes skip it once frozen.
        # Not when the host froze objects itself: unfreezing would thaw those too.
        freeze = gc.get_freeze_count() == 0
        if freeze:
            gc.freeze()
        gc.set_threshold(*_GC_THRESHOLDS)
        try:
            on_ready(emulator.base_url)
            await stop.wait()
        finally:
            gc.set_threshold(*thresholds)
            if freeze:
                gc.unfreeze()
