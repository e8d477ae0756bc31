"""`asyncio.run` where Ctrl-C cancels the job's task, then raises KeyboardInterrupt.

That is what Python 3.11+ does on its own. Python 3.10 raises KeyboardInterrupt wherever the
signal lands, often inside a library's callback (an aiohttp write): the job's own clean-up
(stop the stream, keep the output resumable, report where it stopped) is skipped, the task that
got it prints "Task exception was never retrieved", and a run could hang on its way out. One
behaviour on every version: the first Ctrl-C cancels; a second is Python's own interrupt.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run_interruptibly"]

T = TypeVar("T")


def run_interruptibly(job: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(job)`; Ctrl-C cancels `job` and, once it has cleaned up, raises
    KeyboardInterrupt (a second Ctrl-C raises it wherever it lands, without waiting)."""
    return asyncio.run(_main(job))


async def _main(job: Coroutine[Any, Any, T]) -> T:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    interrupted = False

    def on_sigint() -> None:
        nonlocal interrupted
        interrupted = True
        task.cancel()
        # A second Ctrl-C is Python's own again: KeyboardInterrupt, without waiting.
        loop.remove_signal_handler(signal.SIGINT)

    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
        return await job
    try:
        return await job
    except asyncio.CancelledError:
        if interrupted:
            raise KeyboardInterrupt from None
        raise
    finally:
        if not interrupted:
            loop.remove_signal_handler(signal.SIGINT)
