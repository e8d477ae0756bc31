"""The pushers: a fixed pool of tasks that take chunks from one bounded queue and push each
until the server accepts it. The producer queues new chunks; the puller queues chunks whose
result was lost. A pusher touches nothing but the adapter and the window: what happened is
reported to the engine, which keeps the books.

Retries follow the client's policy: 5xx, 408 and connection errors are retried up to
`max_retries` times with backoff; throttles (429, a full input buffer) pause every pusher
behind one shared deadline and are not counted (the stall watchdog bounds them); a push that
timed out is not sent again here, since it may have been applied: if its result never comes,
lost-result recovery pushes it again.

Small chunks travel together: a pusher takes what is already waiting in the queue into the
same POST (the API takes a list), up to a byte cap, so requests per chunk fall below one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import anyio
import anyio.lowlevel
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
from ._options import STALL_CAP_BYTES
from ._window import Window

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["Pushers", "is_throttle", "post_bytes", "transient"]


def post_bytes(max_chunk_bytes: int) -> int:
    """The byte cap of a POST carrying several chunks: what one chunk may take (the server
    takes or refuses a POST as a whole), and no more than the stall cap."""
    return min(max_chunk_bytes, STALL_CAP_BYTES)


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


# Event-loop passes a gathering pusher waits for the producer's next chunk before it posts.
_GATHER_PASSES: Final = 3


class Pushers:
    def __init__(
        self,
        engine: Engine,
        adapter: PipelineAdapter,
        window: Window,
        policy: RetryPolicy,
        max_post_bytes: int = 0,
    ) -> None:
        self._engine = engine
        self._adapter = adapter
        self._window = window
        self._policy = policy
        self._max_post_bytes = max_post_bytes  # 0: one chunk per POST
        self._gathering = anyio.Lock()
        # Half the window per POST at most: the server computes one half while the other
        # travels, instead of client and server taking turns with all of it.
        self._max_post_chunks = max(1, window.maximum // 2)

    async def run(self, queue: MemoryObjectReceiveStream[Chunk]) -> None:
        """One pusher: push queued chunks until the queue closes. Chunks that are waiting in
        the queue go along in the same POST while the body stays under `max_post_bytes`; one
        pusher at a time gathers, so that a chunk queued meanwhile joins its POST instead of
        waking another pusher for a POST of its own."""
        carried: Chunk | None = None
        async with queue:
            while True:
                if carried is None:
                    async with self._gathering:
                        try:
                            chunk = await queue.receive()
                        except anyio.EndOfStream:
                            return
                        group, carried = await self._gather(chunk, queue)
                else:
                    group, carried = await self._gather(carried, queue)
                if group:
                    await self._push(group)

    async def _gather(
        self, first: Chunk, queue: MemoryObjectReceiveStream[Chunk]
    ) -> tuple[list[Chunk], Chunk | None]:
        """`first` and what is queued behind it, up to the byte cap; a chunk that would not
        fit is handed back for the next POST. Waits one event-loop pass at a time while the
        producer keeps queueing chunks."""
        engine, limit = self._engine, self._max_post_bytes
        group: list[Chunk] = []
        size = -1
        if engine.wants_push(first):
            group, size = [first], first.nbytes
        waited = 0
        while 0 <= size < limit and len(group) < self._max_post_chunks:
            try:
                more = queue.receive_nowait()
            except anyio.WouldBlock:
                if waited >= _GATHER_PASSES:
                    break
                waited += 1
                await anyio.lowlevel.checkpoint()  # the producer may be queueing more
                continue
            except anyio.EndOfStream:
                break
            waited = 0
            if not engine.wants_push(more):
                continue
            if size + 1 + more.nbytes > limit:
                return group, more
            group.append(more)
            size += 1 + more.nbytes
        return group, None

    async def _push(self, group: list[Chunk]) -> None:
        """Push chunks in one POST until the server accepts it. The server takes or refuses
        a POST as a whole; the books are kept per chunk."""
        engine, window, policy = self._engine, self._window, self._policy
        retries = 0
        while True:
            await window.wait_until_open()
            group = [c for c in group if engine.wants_push(c)]
            if not group:
                return  # their results arrived while we waited
            body = b'{"chunks":[' + b",".join([c.body for c in group]) + b"]}"
            try:
                await self._adapter.push(body)
            except SparkTimeoutError:
                for chunk in group:
                    engine.push_unanswered(chunk)
                return
            except SparkSdkError as exc:  # refused locally: the owner ended the pipeline
                raise engine.ended_locally(exc) from exc
            except (SparkApiError, SparkConnectionError) as exc:
                if isinstance(exc, SparkApiError) and is_throttle(exc):
                    pause = engine.throttle_pause(exc.retry_after)
                    engine.throttled(pause, exc, len(group))
                    continue
                if len(group) > 1 and isinstance(exc, SparkApiError) and exc.status == 413:
                    for chunk in group:  # too large together: each alone may fit
                        await self._push([chunk])
                    return
                gone = isinstance(exc, NotFoundError)
                if isinstance(exc, NotFoundError):
                    await engine.confirm_vanished(exc)  # raises when the status is a 404 too
                if not (transient(exc) or gone) or retries >= policy.max_retries:
                    raise engine.push_failed(group[0], exc, retries + 1) from exc
                retry_after = exc.retry_after if isinstance(exc, SparkApiError) else None
                for chunk in group:
                    engine.push_retried(chunk, exc)
                await policy.sleep(policy.delay(retries, retry_after))
                retries += 1
                continue
            engine.pushed(group, len(body))
            return
