"""The pushers: a fixed pool of tasks that take chunks from one bounded queue and push each
until the server accepts it. The producer queues new chunks; the puller queues chunks whose
result was lost. A pusher touches nothing but the adapter and the window: what happened is
reported to the engine, which keeps the books.

Retries follow the client's policy: 5xx, 408 and connection errors are retried up to
`max_retries` times with backoff; throttles (429, a full input buffer) pause every pusher
behind one shared deadline and are not counted (the stall watchdog bounds them); a push that
timed out is not sent again here, since it may have been applied: if its result never comes,
lost-result recovery pushes it again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from anyio.streams.memory import MemoryObjectReceiveStream

from .._exceptions import (
    NotFoundError,
    RateLimitError,
    SparkApiError,
    SparkConnectionError,
    SparkSdkError,
    SparkTimeoutError,
)
from .._policy import RetryPolicy
from .._retry import should_retry
from ._adapter import PipelineAdapter
from ._chunker import Chunk
from ._window import Window

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["Pushers", "is_throttle", "transient"]


def is_throttle(exc: Exception) -> bool:
    """A 429, or the input buffer full: the server wants fewer pushes for a while."""
    return isinstance(exc, RateLimitError) or (
        isinstance(exc, SparkApiError) and exc.error_code == "INPUT_BUFFER_FULL"
    )


def transient(exc: Exception) -> bool:
    """Worth another attempt: no answer, or 408 / 5xx (except 501)."""
    if isinstance(exc, SparkConnectionError):
        return True
    return isinstance(exc, SparkApiError) and should_retry(exc.status)


class Pushers:
    def __init__(
        self, engine: Engine, adapter: PipelineAdapter, window: Window, policy: RetryPolicy
    ) -> None:
        self._engine = engine
        self._adapter = adapter
        self._window = window
        self._policy = policy

    async def run(self, queue: MemoryObjectReceiveStream[Chunk]) -> None:
        """One pusher: push queued chunks, one at a time, until the queue closes."""
        async with queue:
            async for chunk in queue:
                if self._engine.wants_push(chunk):
                    await self._push(chunk)

    async def _push(self, chunk: Chunk) -> None:
        engine, window, policy = self._engine, self._window, self._policy
        body = b'{"chunks":[' + chunk.body + b"]}"
        retries = 0
        while True:
            await window.wait_until_open()
            if not engine.wants_push(chunk):
                return  # its result arrived while we waited
            try:
                await self._adapter.push(body)
            except SparkTimeoutError:
                engine.push_unanswered(chunk)
                return
            except SparkSdkError as exc:  # refused locally: the owner ended the pipeline
                raise engine.ended_locally(exc) from exc
            except (SparkApiError, SparkConnectionError) as exc:
                if isinstance(exc, SparkApiError) and is_throttle(exc):
                    engine.throttled(engine.throttle_pause(exc.retry_after), exc)
                    continue
                if isinstance(exc, NotFoundError):
                    await engine.confirm_vanished(exc)
                if not transient(exc) or retries >= policy.max_retries:
                    raise engine.push_failed(chunk, exc, retries + 1) from exc
                retry_after = exc.retry_after if isinstance(exc, SparkApiError) else None
                engine.push_retried(chunk, exc)
                await policy.sleep(policy.delay(retries, retry_after))
                retries += 1
                continue
            engine.pushed(chunk, len(body))
            return
