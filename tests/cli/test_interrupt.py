"""Ctrl-C in the CLI: the job's task is cancelled and cleans up, then KeyboardInterrupt, on
every Python (3.10's asyncio raised it wherever the signal landed, skipping the clean-up)."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from cspark_async.cli._interrupt import run_interruptibly


def test_ctrl_c_cancels_the_job_which_cleans_up_before_the_interrupt() -> None:
    seen: list[str] = []

    async def job() -> None:
        try:
            asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGINT)
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            await asyncio.sleep(0)  # a clean-up that awaits still runs to its end
            seen.append("cleaned up")
            raise

    with pytest.raises(KeyboardInterrupt):
        run_interruptibly(job())
    assert seen == ["cancelled", "cleaned up"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handed back


def test_a_job_that_ends_by_itself_returns_its_value() -> None:
    async def job() -> int:
        return 42

    assert run_interruptibly(job()) == 42
