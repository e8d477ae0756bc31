"""The puller: one task that drains finished chunks from the server, hands each result to the
engine, and asks for a re-push of chunks whose result was lost.

A result is lost when a pull's answer never arrived (the server handed the chunks over all the
same) or a push's answer was lost before the server queued it. The server's counters tell when
it holds nothing more for us; counters that are missing or unusable fall back on a quiet
period instead, so recovery never depends on them. Re-pushes go through the pushers' queue;
the chunk ids make them safe, and a result that then arrives twice is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from .._exceptions import (
    InvalidResponseError,
    NotFoundError,
    SparkApiError,
    SparkConnectionError,
    SparkSdkError,
    SparkTimeoutError,
)
from .._policy import RetryPolicy
from ._adapter import PipelineAdapter
from ._counters import Counters
from ._pushers import is_throttle, transient
from ._results import StreamResult

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["Puller"]

_POLL_MIN_S: Final = 0.002
_POLL_MAX_S: Final = 0.1
# Counters may lag behind: idle in two answers in a row, this far apart, before re-pushing.
_IDLE_BEFORE_REPUSH_S: Final = 0.05
# Without usable counters: re-push after this much silence, or 4x the slowest chunk seen.
_QUIET_MIN_S: Final = 2.0


class Puller:
    def __init__(
        self,
        engine: Engine,
        adapter: PipelineAdapter,
        policy: RetryPolicy,
        pull_max_chunks: int,
    ) -> None:
        self._engine = engine
        self._adapter = adapter
        self._policy = policy
        self._max = pull_max_chunks
        self._idle_pulls = 0
        self._idle_since: float | None = None

    async def run(self, send: MemoryObjectSendStream[StreamResult]) -> None:
        """Pull until every chunk read has been delivered."""
        engine, policy = self._engine, self._policy
        delay = _POLL_MIN_S
        failures = throttles = 0
        while not engine.finished:
            if not engine.outstanding:
                await engine.wait_for_change()
                continue
            try:
                results, status = await self._adapter.pull(self._max)
            except SparkSdkError as exc:  # refused locally: the owner cancelled the pipeline
                raise engine.ended_locally(exc) from exc
            except (SparkApiError, SparkConnectionError) as exc:
                if isinstance(exc, SparkApiError) and is_throttle(exc):
                    # Flow control, not a failure: the stall watchdog bounds it.
                    throttles += 1
                    pause = policy.delay(min(throttles, 16), exc.retry_after)
                    await policy.sleep(max(policy.retry_after_floor, pause))
                    continue
                failures += 1
                if isinstance(exc, NotFoundError):
                    await engine.confirm_vanished(exc)
                elif not (transient(exc) or isinstance(exc, InvalidResponseError)):
                    raise  # (an unreadable 200 is a lost answer: its results may be gone)
                if failures > policy.max_retries:
                    raise engine.pull_failed(exc, failures) from exc
                if isinstance(exc, SparkTimeoutError):
                    engine.check_silence(exc)  # a server silent for a whole timeout: give up
                # The server may have handed results over before the answer was lost.
                engine.pull_lost(exc)
                if not isinstance(exc, SparkTimeoutError):  # that one has waited enough
                    retry_after = exc.retry_after if isinstance(exc, SparkApiError) else None
                    await policy.sleep(policy.delay(failures - 1, retry_after))
                continue
            failures = throttles = 0
            engine.pulled(status, len(results))
            for raw in results:
                await engine.deliver(raw, send)
            if results:
                self._idle_pulls = 0
                self._idle_since = None
                delay = _POLL_MIN_S
                if Counters.read(status).chunks_available:
                    continue  # more is ready: no pause
            else:
                engine.check_batch(status)
                if self._recover(status):
                    continue
            if engine.outstanding:
                with anyio.move_on_after(delay) as waited:
                    await engine.wait_for_change()
                if waited.cancelled_caught:  # nothing happened meanwhile: back off
                    delay = min(_POLL_MAX_S, delay * 2)

    def _recover(self, status: Mapping[str, Any]) -> bool:
        """Ask for a re-push of every outstanding chunk once the server plainly has nothing
        left for us; True when it did."""
        engine = self._engine
        now = self._policy.clock()
        if engine.pushing:
            self._idle_pulls, self._idle_since = 0, None
            return False
        counters = Counters.read(status)
        if counters.known:
            if not counters.idle:
                self._idle_pulls, self._idle_since = 0, None
                return False
            if self._idle_since is None:
                self._idle_since = now
            self._idle_pulls += 1
            if self._idle_pulls < 2 or now - self._idle_since < _IDLE_BEFORE_REPUSH_S:
                return False
            evidence = "the server reports nothing queued, running or ready"
        else:
            # Never so long that the stall watchdog fires first.
            quiet = max(_QUIET_MIN_S, min(4 * engine.slowest_round_trip, engine.stall_timeout / 4))
            if now - engine.last_activity < quiet:
                return False
            evidence = f"nothing came back for {quiet:.1f}s and the server's counters are unusable"
        self._idle_pulls, self._idle_since = 0, None
        engine.repush_outstanding(evidence, limited=counters.known)
        return True
