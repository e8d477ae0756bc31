"""The stall watchdog: a stream with records outstanding that hears nothing back for
`stall_timeout` seconds fails with a `StreamError` that says what it was waiting for, instead
of hanging. Time spent waiting for the consumer to take a result does not count."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._policy import RetryPolicy

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["watch"]


async def watch(engine: Engine, policy: RetryPolicy, stall_timeout: float) -> None:
    """Check the engine's progress every little while; raises `StreamError` on a stall."""
    # Often enough to end within ~10% of the limit; rarely enough to cost nothing.
    period = min(1.0, stall_timeout / 10)
    while True:
        await policy.sleep(period)
        engine.check_stall(stall_timeout)
