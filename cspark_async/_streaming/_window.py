"""The in-flight window: how many chunks may be out (pushed, not yet handed to the consumer).

Sized by AIMD: a throttle (429, full input buffer) halves it and pauses every pusher behind one
shared deadline; each accepted push grows it back by one, up to its maximum.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import anyio

__all__ = ["Window"]


class Window:
    def __init__(
        self,
        maximum: int,
        *,
        initial: int | None = None,
        floor: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if maximum < 1:
            raise ValueError(f"the in-flight window needs at least 1 slot, got {maximum}")
        self.maximum = maximum
        self.floor = max(1, min(floor, maximum))
        self._limiter = anyio.CapacityLimiter(min(maximum, initial or maximum))
        self._clock = clock
        self._sleep = sleep
        self._resume_at = -float("inf")

    @property
    def limit(self) -> int:
        return int(self._limiter.total_tokens)

    @property
    def used(self) -> int:
        return self._limiter.borrowed_tokens

    async def acquire(self, owner: object) -> None:
        await self._limiter.acquire_on_behalf_of(owner)

    def release(self, owner: object) -> None:
        self._limiter.release_on_behalf_of(owner)

    def grow(self) -> None:
        """Additive increase, after an accepted push."""
        if self.limit < self.maximum:
            self._limiter.total_tokens = self.limit + 1

    def throttle(self, retry_after_s: float) -> None:
        """Multiplicative decrease, and one shared pause for every pusher.

        Concurrent pushes rejected together are one event: the window halves once per pause,
        not once per rejected push."""
        now = self._clock()
        if now >= self._resume_at:
            self._limiter.total_tokens = max(self.floor, self.limit // 2)
        self._resume_at = max(self._resume_at, now + retry_after_s)

    async def wait_until_open(self) -> None:
        """Sleep out the shared pause, if any (re-checked: it may be extended meanwhile)."""
        # A loop, not an Event: another throttle may push the deadline out while we sleep.
        while (delay := self._resume_at - self._clock()) > 0:
            await self._sleep(delay)
