"""The engine of one stream: a producer that chunks and pushes, a puller that drains results,
and the hand-over to the consumer. Everything runs in one task group; the engine yields nothing
itself (see `_stream.py` for why), it sends results into a zero-buffer memory stream.

Exactly once: each chunk keeps its id across retries, results are matched by id, and a result
for a chunk already delivered (a push the server applied twice) is dropped. When the server
has nothing left for us but chunks are still missing (a pull whose answer was lost, a restart
that kept the batch), those chunks are pushed again.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, Literal, Protocol

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream
from attrs import frozen

from .._exceptions import (
    ConflictError,
    NotFoundError,
    RateLimitError,
    SparkApiError,
    SparkConnectionError,
    SparkError,
    SparkSdkError,
)
from .._retry import backoff_delay, should_retry
from ._chunker import Chunk, Chunker, Records
from ._ordering import ReorderBuffer
from ._results import StreamError, StreamResult, to_result
from ._state import StreamState
from ._window import Window

__all__ = ["DEFAULT_CHUNK_SIZE", "Engine", "StreamOptions", "Transport"]

log = logging.getLogger("cspark_async.stream")

OnExit = Literal["cancel", "close"]
DEFAULT_CHUNK_SIZE: Final = 200
_POLL_MIN_S: Final = 0.002
_IDLE_BEFORE_REPUSH_S: Final = 0.05
_POLL_MAX_S: Final = 0.1
_OPEN: Final = frozenset({"created", "in_progress"})


class Transport(Protocol):
    """What the engine needs from a pipeline. Calls make one attempt each: retries are the
    engine's, so that throttles are shared and lost answers are reasoned about."""

    async def push(self, body: bytes) -> Mapping[str, Any]: ...

    async def pull(self, max_chunks: int) -> tuple[list[Mapping[str, Any]], Mapping[str, Any]]: ...

    async def info(self) -> Mapping[str, Any]: ...


@frozen(kw_only=True)
class StreamOptions:
    """Validated options of one stream; `None` means "adapt to the pipeline"."""

    chunk_size: int | None = None
    max_in_flight: int | None = None
    max_chunk_bytes: int | None = None
    ordered: bool = True
    headers: Sequence[str] | None = None
    parameters: Mapping[str, Any] | None = None
    summary: Mapping[str, Any] | None = None
    on_exit: OnExit = "cancel"
    pull_max_chunks: int = 100
    max_attempts: int = 8  # per push or pull, for transient failures (throttles not counted)
    retry_interval_s: float = 0.1
    progress: Callable[[StreamState], None] | None = None

    def __attrs_post_init__(self) -> None:
        for name in (
            "chunk_size",
            "max_in_flight",
            "max_chunk_bytes",
            "pull_max_chunks",
            "max_attempts",
        ):
            value = getattr(self, name)
            if value is None and name in ("chunk_size", "max_in_flight", "max_chunk_bytes"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SparkSdkError(f"{name} must be a positive integer, got {value!r}")
        if self.on_exit not in ("cancel", "close"):
            raise SparkSdkError(f"on_exit must be 'cancel' or 'close', got {self.on_exit!r}")
        if not isinstance(self.ordered, bool):
            raise SparkSdkError(f"ordered must be True or False, got {self.ordered!r}")
        if self.progress is not None and not callable(self.progress):
            raise SparkSdkError("progress must be a callable taking the stream's state")
        # Headers, parameters and summary are checked now, not when the first record is read.
        Chunker(
            chunk_size=self.chunk_size or DEFAULT_CHUNK_SIZE,
            max_chunk_bytes=self.max_chunk_bytes or 2**31,
            headers=self.headers,
            parameters=self.parameters,
            summary=self.summary,
        )


class Engine:
    def __init__(
        self,
        transport: Transport,
        records: Records,
        options: StreamOptions,
        state: StreamState,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._transport = transport
        self._records = records
        self._options = options
        self._state = state
        self._rng = rng or random.Random()
        self._pending: dict[str, Chunk] = {}  # pushed or being pushed, result not yet received
        self._pushing = 0
        self._source_done = False
        self._wake = anyio.Event()  # something changed for the puller
        self._reorder: ReorderBuffer[StreamResult] = ReorderBuffer()
        self._tg: TaskGroup | None = None
        self._pushes: anyio.CapacityLimiter | None = None
        self._idle_pulls = 0
        self._idle_since: float | None = None
        self._repushes: dict[str, int] = {}
        self._push_scopes: dict[str, anyio.CancelScope] = {}
        self._suspect_loss = False

    async def run(self, send: MemoryObjectSendStream[StreamResult]) -> None:
        """Stream every record; results go to `send` (the caller owns and closes it)."""
        chunker, window = await self._prepare()
        async with anyio.create_task_group() as tg:
            self._tg = tg
            # At most 8 POSTs at once: enough to keep the input buffer full, few enough not to
            # queue on the connection pool behind the pulls.
            self._pushes = anyio.CapacityLimiter(min(8, window.maximum))
            tg.start_soon(self._produce, chunker, window)
            await self._pull_loop(send, window)

    async def _prepare(self) -> tuple[Chunker, Window]:
        """Options the caller left to us, from the pipeline's workers and input buffer."""
        opts = self._options
        chunk_size, max_in_flight = opts.chunk_size, opts.max_in_flight
        max_chunk_bytes = opts.max_chunk_bytes
        workers = 1
        max_record_bytes = None
        if chunk_size is None or max_in_flight is None or max_chunk_bytes is None:
            info = await self._with_retries(
                "read the pipeline's configuration", self._transport.info
            )
            config = info.get("configuration") if isinstance(info, Mapping) else None
            config = config if isinstance(config, Mapping) else {}
            workers = _positive(config.get("max_workers"), 16)
            buffer = _positive(config.get("input_buffer_allocated_bytes"), 70_000_000)
            chunk_size = chunk_size or _balanced_chunk_size(self._state.total_records, workers)
            # Enough chunks to keep every worker busy with one more queued behind each.
            max_in_flight = max_in_flight or min(256, 2 * workers + 2)
            # A quarter of the buffer per chunk lets several chunks queue without a 429.
            if max_chunk_bytes is None:
                max_chunk_bytes = max(1024, buffer // 4)
                max_record_bytes = buffer  # one big record may still take a chunk to itself
        chunker = Chunker(
            chunk_size=chunk_size,
            max_chunk_bytes=max_chunk_bytes,
            max_record_bytes=max_record_bytes,
            headers=opts.headers,
            parameters=opts.parameters,
            summary=opts.summary,
        )
        # Throttling never starves the workers: the window shrinks no lower than their number.
        window = Window(max_in_flight, floor=min(workers, max_in_flight))
        self._state.in_flight_limit = window.limit
        return chunker, window

    # ---- producer ------------------------------------------------------------------------

    async def _produce(self, chunker: Chunker, window: Window) -> None:
        state = self._state
        # aclosing: on cancellation the caller's async generator is closed here and now, in
        # this task, not later by the garbage collector in another.
        async with contextlib.aclosing(chunker.chunks(self._records)) as chunks:
            async for chunk in chunks:
                await window.acquire(chunk.id)
                state.chunks_read += 1
                state.records_read += chunk.records
                state.in_flight = window.used
                self._pending[chunk.id] = chunk
                self._start_push(chunk, window)
        self._source_done = True
        self._wake.set()

    def _start_push(self, chunk: Chunk, window: Window) -> None:
        assert self._tg is not None
        self._pushing += 1  # counted from now: the puller must not think the server idle
        self._tg.start_soon(self._push, chunk, window)

    async def _push(self, chunk: Chunk, window: Window) -> None:
        with anyio.CancelScope() as scope:
            self._push_scopes[chunk.id] = scope  # cancelled once the chunk's result is in
            try:
                await self._push_until_accepted(chunk, window)
            except SparkError:
                if chunk.id in self._pending:
                    raise
                # A re-push whose original result arrived meanwhile: nothing is missing.
            finally:
                if self._push_scopes.get(chunk.id) is scope:
                    del self._push_scopes[chunk.id]

    async def _push_until_accepted(self, chunk: Chunk, window: Window) -> None:
        assert self._pushes is not None
        pushes = self._pushes
        body = b'{"chunks":[' + chunk.body + b"]}"
        attempt = 0
        try:
            while True:
                await window.wait_until_open()
                try:
                    async with pushes:
                        await self._transport.push(body)
                except (SparkApiError, SparkConnectionError) as exc:
                    if self._is_throttle(exc):
                        self._state.throttled += 1
                        delay = getattr(exc, "retry_after", None)
                        window.throttle(delay if delay is not None else self._backoff(0))
                        self._state.in_flight_limit = window.limit
                        self._state.chunks_retried += 1
                        continue
                    attempt += 1
                    if not _transient(exc) or attempt >= self._options.max_attempts:
                        raise self._push_failed(chunk, exc) from exc
                    self._state.chunks_retried += 1
                    log.debug("push of chunk %s failed (%s); retrying", chunk.id, exc)
                    await anyio.sleep(self._backoff(attempt - 1))
                    continue
                break
        finally:
            self._pushing -= 1
        window.grow()
        state = self._state
        state.in_flight_limit = window.limit
        state.chunks_pushed += 1
        state.records_pushed += chunk.records
        state.bytes_out += len(body)
        self._wake.set()

    @staticmethod
    def _is_throttle(exc: SparkError) -> bool:
        return isinstance(exc, RateLimitError) or (
            isinstance(exc, SparkApiError) and exc.error_code == "INPUT_BUFFER_FULL"
        )

    def _push_failed(self, chunk: Chunk, exc: SparkError) -> SparkError:
        last = chunk.offset + chunk.records - 1
        where = f"chunk {chunk.id} (records {chunk.offset}-{last})"
        if isinstance(exc, SparkApiError) and exc.status == 413:
            return StreamError(
                f"{where} is larger than the pipeline accepts: lower chunk_size or "
                f"max_chunk_bytes ({exc})",
                chunk_id=chunk.id,
                offset=chunk.offset,
            )
        if isinstance(exc, ConflictError):
            return StreamError(
                f"{where} could not be pushed: the batch no longer accepts chunks: "
                f"{exc.error_message or exc}",
                chunk_id=chunk.id,
                offset=chunk.offset,
            )
        if isinstance(exc, NotFoundError):
            return self._vanished(exc)
        return exc

    # ---- puller --------------------------------------------------------------------------

    async def _pull_loop(self, send: MemoryObjectSendStream[StreamResult], window: Window) -> None:
        delay = _POLL_MIN_S
        failures = 0
        while not (self._source_done and not self._pending):
            if not self._pending:
                await self._wait_for_change()
                continue
            try:
                results, status = await self._transport.pull(self._options.pull_max_chunks)
            except (SparkApiError, SparkConnectionError) as exc:
                failures += 1
                if not _transient(exc) or failures >= self._options.max_attempts:
                    raise self._pull_failed(exc, failures) from exc
                # The server may have handed results over before the answer was lost.
                self._suspect_loss = True
                log.debug("pull failed (%s); retrying", exc)
                retry_after = getattr(exc, "retry_after", None)
                await anyio.sleep(
                    retry_after if retry_after is not None else self._backoff(failures - 1)
                )
                continue
            failures = 0
            state = self._state
            state.pulls += 1
            for raw in results:
                await self._deliver(raw, send, window)
            if results:
                self._idle_pulls = 0
                delay = _POLL_MIN_S
                if _int(status.get("chunks_available")) > 0:
                    continue
            else:
                state.empty_pulls += 1
                self._check_batch(status)
                if self._lost(status, window):
                    continue
            if self._pending:
                with anyio.move_on_after(delay) as waited:
                    await self._wait_for_change()
                if waited.cancelled_caught:  # nothing happened meanwhile: back off
                    delay = min(_POLL_MAX_S, delay * 2)

    async def _wait_for_change(self) -> None:
        await self._wake.wait()
        self._wake = anyio.Event()

    async def _deliver(
        self,
        raw: Mapping[str, Any],
        send: MemoryObjectSendStream[StreamResult],
        window: Window,
    ) -> None:
        chunk = self._pending.pop(str(raw.get("id")), None)
        if chunk is None:
            self._state.duplicates_dropped += 1  # a retried push ran twice: first copy won
            return
        scope = self._push_scopes.pop(chunk.id, None)
        if scope is not None:
            scope.cancel()  # a re-push still retrying is no longer needed
        result = to_result(chunk, raw)
        ready = self._reorder.add(chunk.seq, result) if self._options.ordered else [result]
        for item in ready:
            await send.send(item)  # zero buffer: returns once the consumer has it
            window.release(item.id)  # a chunk's id is its window slot's borrower
            state = self._state
            state.in_flight = window.used
            state.chunks_completed += 1
            state.records_completed += item.records
            state.records_failed += item.failed
            if self._options.progress is not None:
                self._options.progress(state)

    def _check_batch(self, status: Mapping[str, Any]) -> None:
        batch_status = status.get("batch_status")
        if batch_status in (None, "closed", "completed") or batch_status in _OPEN:
            return
        missing = sorted(self._pending.values(), key=lambda c: c.seq)
        first = missing[0]
        raise StreamError(
            f"the batch is {batch_status} on the server; {len(missing)} chunk(s) from record "
            f"{first.offset} on will not come back",
            chunk_id=first.id,
            offset=first.offset,
        )

    def _lost(self, status: Mapping[str, Any], window: Window) -> bool:
        """Re-push pending chunks once the server plainly has nothing left for us."""
        # A counter the server did not send is not evidence of idleness.
        idle = self._pushing == 0 and all(
            status.get(key) == 0
            for key in ("chunks_available", "workers_in_use", "input_buffer_used_bytes")
        )
        now = time.monotonic()
        if not idle:
            self._idle_since = None
            return False
        if self._idle_since is None:
            self._idle_since = now
        # Counters may lag: idle for two answers in a row and for a little while.
        self._idle_pulls += 1
        if self._idle_pulls < 2 or now - self._idle_since < _IDLE_BEFORE_REPUSH_S:
            return False
        self._idle_pulls = 0
        self._idle_since = None
        chunks = sorted(self._pending.values(), key=lambda c: c.seq)
        log.warning(
            "%d chunk(s) pushed but never returned (lost answers%s); pushing them again",
            len(chunks),
            " after a failed pull" if self._suspect_loss else "",
        )
        self._suspect_loss = False
        for chunk in chunks:
            repushes = self._repushes[chunk.id] = self._repushes.get(chunk.id, 0) + 1
            if repushes > self._options.max_attempts:
                raise StreamError(
                    f"chunk {chunk.id} (records {chunk.offset}-{chunk.offset + chunk.records - 1})"
                    f" was pushed {repushes} times and its result never came back",
                    chunk_id=chunk.id,
                    offset=chunk.offset,
                )
            self._state.chunks_retried += 1
            self._start_push(chunk, window)
        return True

    def _pull_failed(self, exc: SparkError, attempts: int) -> SparkError:
        if isinstance(exc, NotFoundError):
            return self._vanished(exc)
        if _transient(exc):
            return StreamError(
                f"results could not be pulled after {attempts} attempts, with "
                f"{len(self._pending)} chunk(s) outstanding: {exc}"
            )
        return exc

    def _vanished(self, exc: SparkError) -> SparkError:
        if not self._state.pulls and not self._state.chunks_pushed:
            return exc  # never seen: an unknown id, not a batch that disappeared
        return StreamError(
            f"the batch vanished from the server while {len(self._pending)} chunk(s) were "
            f"outstanding (was the server restarted?): {exc}"
        )

    async def _with_retries(
        self, what: str, call: Callable[[], Awaitable[Mapping[str, Any]]]
    ) -> Mapping[str, Any]:
        attempt = 0
        while True:
            try:
                return await call()
            except (SparkApiError, SparkConnectionError) as exc:
                attempt += 1
                if not _transient(exc) or attempt >= self._options.max_attempts:
                    raise
                log.debug("could not %s (%s); retrying", what, exc)
                await anyio.sleep(self._backoff(attempt - 1))

    def _backoff(self, attempt: int) -> float:
        return backoff_delay(
            attempt, interval=self._options.retry_interval_s, rng=self._rng, cap=2.0
        )


def _transient(exc: SparkError) -> bool:
    if isinstance(exc, SparkConnectionError):
        return True
    return isinstance(exc, SparkApiError) and should_retry(exc.status)


def _balanced_chunk_size(total: int | None, workers: int) -> int:
    """About DEFAULT_CHUNK_SIZE records a chunk, evened out when the total is known so that the
    last wave of chunks keeps every worker busy instead of a few (the makespan of a
    latency-bound batch is its number of waves times one chunk's compute)."""
    if not total:
        return DEFAULT_CHUNK_SIZE
    waves = math.ceil(total / (DEFAULT_CHUNK_SIZE * workers))
    return max(1, math.ceil(total / (workers * waves)))


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _positive(value: Any, default: int) -> int:
    return (
        value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default
    )
