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

from typing import TYPE_CHECKING

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from .._exceptions import RateLimitError, SparkApiError, SparkConnectionError, SparkTimeoutError
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

    async def run(self, queue: MemoryObjectReceiveStream[Chunk]) -> None:
        """One pusher: push queued chunks until the queue closes; chunks already waiting in
        the queue go along in the same POST while the body stays under `max_post_bytes`
        (small chunks: fewer requests). A chunk that would not fit waits for the next POST."""
        engine, limit = self._engine, self._max_post_bytes
        carried: Chunk | None = None
        async with queue:
            while True:
                if carried is None:
                    try:
                        chunk = await queue.receive()
                    except anyio.EndOfStream:
                        return
                else:
                    chunk, carried = carried, None
                if not engine.wants_push(chunk):
                    continue
                group, size = [chunk], chunk.nbytes
                while size < limit:
                    try:
                        more = queue.receive_nowait()
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                    if not engine.wants_push(more):
                        continue
                    if size + 1 + more.nbytes > limit:
                        carried = more
                        break
                    group.append(more)
                    size += 1 + more.nbytes
                await self._push(group)

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
            except (SparkApiError, SparkConnectionError) as exc:
                if is_throttle(exc):
                    retry_after = exc.retry_after if isinstance(exc, SparkApiError) else None
                    engine.throttled(policy.delay(0, retry_after), exc, len(group))
                    continue
                if len(group) > 1 and isinstance(exc, SparkApiError) and exc.status == 413:
                    for chunk in group:  # too large together: each alone may fit
                        await self._push([chunk])
                    return
                if not transient(exc) or retries >= policy.max_retries:
                    raise engine.push_failed(group[0], exc, retries + 1) from exc
                retry_after = exc.retry_after if isinstance(exc, SparkApiError) else None
                for chunk in group:
                    engine.push_retried(chunk, exc)
                await policy.sleep(policy.delay(retries, retry_after))
                retries += 1
                continue
            engine.pushed(group, len(body))
            return
