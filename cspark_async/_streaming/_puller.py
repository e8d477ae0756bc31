"""The puller: one task that drains finished chunks from the server, hands each result to the
engine, and asks for a re-push of chunks whose result was lost.

A result is lost when a pull's answer never arrived (the server handed the chunks over all the
same) or a push's answer was lost before the server queued it. The server's counters tell when
it holds nothing more for us; counters that are missing or unusable fall back on a quiet
period instead, so recovery never depends on them. Re-pushes go through the pushers' queue;
the chunk ids make them safe, and a result that then arrives twice is dropped.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.lowlevel
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
from ._options import STALL_CAP_BYTES
from ._pushers import is_throttle, transient
from ._results import StreamResult

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["Puller", "deliver_sliced"]

_POLL_MIN_S: Final = 0.002
_POLL_MAX_S: Final = 0.1
# Counters may lag behind: idle in two answers in a row, this far apart, before re-pushing.
_IDLE_BEFORE_REPUSH_S: Final = 0.05
# Without usable counters: re-push after this much silence, or 4x the slowest chunk seen.
_QUIET_MIN_S: Final = 2.0
# Delivering a pull's results without a pause holds the event loop; a pause at least this often.
_SLICE_S: Final = 0.002


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
        self._result_bytes = 0.0  # the size of one chunk's result, as last seen

    async def run(self, send: MemoryObjectSendStream[StreamResult]) -> None:
        """Pull until every chunk read has been delivered."""
        engine, policy = self._engine, self._policy
        delay = _POLL_MIN_S
        failures = throttles = 0
        while not engine.finished:
            for raw in engine.take_backlog():
                await engine.deliver(raw, send)
            if not engine.outstanding:
                await engine.wait_for_change()
                continue
            try:
                results, status, nbytes = await self._adapter.pull(self._next_max())
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
                # The server may have handed results over before the answer was lost.
                engine.pull_lost(exc)
                if not isinstance(exc, SparkTimeoutError):  # that one has waited enough
                    retry_after = exc.retry_after if isinstance(exc, SparkApiError) else None
                    await policy.sleep(policy.delay(failures - 1, retry_after))
                continue
            failures = throttles = 0
            engine.pulled(status, len(results), nbytes)
            if results:
                self._learn(nbytes, len(results))
            got = len(results)
            await deliver_sliced(engine, results, send)
            del results  # the decoded pull is not held while we wait for the next one
            if got:
                self._idle_pulls = 0
                self._idle_since = None
                delay = _POLL_MIN_S
                if Counters.read(status).chunks_available:
                    continue  # more is ready: no pause
                if engine.outstanding:
                    # Not woken by each accepted push: results come in waves, and one short
                    # pause lets a pull take several (fewer requests per chunk).
                    await anyio.sleep(delay)
                continue
            engine.check_batch(status)
            if self._recover(status):
                continue
            if engine.outstanding:
                with anyio.move_on_after(delay) as waited:
                    await engine.wait_for_change()
                if waited.cancelled_caught:  # nothing happened meanwhile: back off
                    delay = min(_POLL_MAX_S, delay * 2)

    def _next_max(self) -> int:
        """How many chunks to ask for: the API caps a pull by count only, so the count is
        sized from the results seen so far to keep a pull near `STALL_CAP_BYTES` (decoding it
        holds the event loop). Before any result, a result is taken to be as large as its
        chunk."""
        per_result = self._result_bytes
        if not per_result:
            state = self._engine.state
            per_result = state.bytes_out / state.chunks_pushed if state.chunks_pushed else 0
        if per_result <= 0:
            return self._max
        return max(1, min(self._max, int(STALL_CAP_BYTES // per_result)))

    def _learn(self, nbytes: int, results: int) -> None:
        """Up at once when results grow; down halfway when they shrink."""
        seen = nbytes / results
        previous = self._result_bytes
        self._result_bytes = seen if seen >= previous else (seen + previous) / 2

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


async def deliver_sliced(
    engine: Engine, results: list[Mapping[str, Any]], send: MemoryObjectSendStream[StreamResult]
) -> None:
    """Hand a pull's results to the engine, letting other tasks run every `_SLICE_S` (a result
    held back for ordering is built without awaiting anything).

    Each decoded result is let go of as soon as it is built: held across the consumer's
    turns, the decoded rows would survive into the collector's oldest generation and make
    every full collection longer."""
    clock = time.perf_counter
    since = clock()
    results.reverse()  # popped from the end: in order, and no reference kept here
    while results:
        await engine.deliver(results.pop(), send)
        if clock() - since > _SLICE_S:
            await anyio.lowlevel.checkpoint()
            since = clock()
