"""The engine of one stream: it wires the stages and keeps the books.

    records -> producer (`_chunker`) -> queue -> pushers (`_pushers`, paced by `_window`)
            -> server -> puller (`_puller`) -> reorder (`_ordering`) -> consumer (`_stream`)

Every stage runs in one task group; the stall watchdog (`_watchdog`) runs beside them. The
stages report what happened through the engine's methods, and the engine alone writes the
books: the outstanding chunks, the counters in `StreamState`, the clock of the last progress.

Exactly once: each chunk keeps its id across pushes, results are matched by id, and a result
for a chunk already delivered (a push the server applied twice) is dropped.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from .._exceptions import (
    ConflictError,
    InvalidResponseError,
    NotFoundError,
    RateLimitError,
    SparkApiError,
    SparkConnectionError,
    SparkError,
    SparkSdkError,
    SparkTimeoutError,
    StreamError,
)
from .._otel import NO_STREAM, Telemetry
from .._policy import RetryPolicy
from ._adapter import PipelineAdapter
from ._checkpoint import Checkpointer, Chunking
from ._chunker import Chunk, Chunker, RecordError, Records
from ._counters import count
from ._options import DEFAULT_CHUNK_SIZE, STALL_CAP_BYTES, StreamOptions
from ._ordering import ReorderBuffer
from ._puller import Puller
from ._pushers import Pushers, post_bytes, transient
from ._results import StreamResult, to_result
from ._state import StreamState
from ._watchdog import watch
from ._window import Window

__all__ = ["Engine"]

_OPEN: Final = frozenset({"created", "in_progress"})
_ENDED_FINE: Final = frozenset({"closed", "completed"})
# At most this many POSTs at once: enough to keep the input buffer full, few enough not to
# queue on the connection pool behind the pulls.
_MAX_PUSHERS: Final = 8


class Engine:
    """Runs one stream; `run()` sends results into a stream the caller owns."""

    def __init__(
        self,
        adapter: PipelineAdapter,
        records: Records,
        options: StreamOptions,
        state: StreamState,
        policy: RetryPolicy,
        telemetry: Telemetry = NO_STREAM,
        checkpoint: Checkpointer | None = None,
    ) -> None:
        self._adapter = adapter
        self._checkpoint = checkpoint
        self._telemetry = telemetry
        self._records = records
        self._options = options
        self._policy = policy
        self._clock = policy.clock
        self._log = policy.logger
        self.state = state
        self._pending: dict[str, Chunk] = {}  # read, result not received yet (in input order)
        self._pushed_at: dict[str, float] = {}
        self._queued: set[str] = set()  # in the pushers' queue or being pushed
        self._repushes: dict[str, int] = {}
        self._source_done = False
        self._wake = anyio.Event()
        self._reorder: ReorderBuffer[StreamResult] = ReorderBuffer()
        self._window: Window | None = None
        self._queue: MemoryObjectSendStream[Chunk] | None = None
        self._counters: Mapping[str, Any] = {}
        self._suspect_loss = False
        self._with_consumer = False
        self._throttles_since_progress = 0
        # A resume: results pulled for chunks pushed before the restart but not read again yet
        # (kept until the producer reads them: bounded by that window), and those now due.
        self._early: dict[str, Mapping[str, Any]] = {}
        self._backlog: list[Mapping[str, Any]] = []
        self._next_seq = 0
        self._key_names: tuple[str, ...] = ()
        self._last_progress = self._clock()
        self.last_activity = self._clock()
        self.slowest_round_trip = 0.0

    # ---- what the stages read ----------------------------------------------------------

    @property
    def stall_timeout(self) -> float:
        return self._options.stall_timeout or self._policy.stall_timeout

    @property
    def finished(self) -> bool:
        return self._source_done and not self._pending

    @property
    def outstanding(self) -> bool:
        return bool(self._pending)

    def take_backlog(self) -> list[Mapping[str, Any]]:
        """Results kept for chunks that are now read (a resume's early pulls), to deliver."""
        backlog, self._backlog = self._backlog, []
        return backlog

    @property
    def pushing(self) -> int:
        """Chunks queued for a push or being pushed."""
        return len(self._queued)

    def wants_push(self, chunk: Chunk) -> bool:
        """Whether a queued chunk still needs pushing (its result may have arrived); a chunk
        that does not is taken off the queue's books here."""
        if chunk.id in self._pending:
            return True
        self._queued.discard(chunk.id)
        return False

    async def wait_for_change(self) -> None:
        await self._wake.wait()
        self._wake = anyio.Event()

    # ---- running -----------------------------------------------------------------------

    async def run(self, send: MemoryObjectSendStream[StreamResult]) -> None:
        """Stream every record; results go to `send` (the caller owns and closes it)."""
        chunker, window = await self._prepare()
        self._window = window
        pushers = Pushers(
            self, self._adapter, window, self._policy, post_bytes(chunker.max_chunk_bytes)
        )
        puller = Puller(self, self._adapter, self._policy, self._options.pull_max_chunks)
        stall = self.stall_timeout
        # Room for every chunk the window lets out: queueing a re-push never blocks.
        queue, jobs = anyio.create_memory_object_stream[Chunk](window.maximum)
        async with anyio.create_task_group() as tg, queue, jobs:
            self._queue = queue
            for _ in range(min(_MAX_PUSHERS, window.maximum)):
                tg.start_soon(pushers.run, jobs.clone())
            tg.start_soon(self._produce, chunker, window)
            tg.start_soon(watch, self, self._policy, stall)
            await puller.run(send)
            tg.cancel_scope.cancel()  # pushers idle on the queue, the watchdog: done

    async def _prepare(self) -> tuple[Chunker, Window]:
        """Options the caller left to us, from the pipeline's workers and input buffer."""
        opts = self._options
        chunk_size, max_in_flight = opts.chunk_size, opts.max_in_flight
        max_chunk_bytes = opts.max_chunk_bytes
        workers = 1
        max_record_bytes = None
        # Read once: the configuration sizes what the caller left to us, and the batch's unique
        # record key (if any) lets every result name each record's key.
        info = await self._with_retries("read the pipeline's configuration", self._adapter.info)
        key = info.get("unique_record_key")
        if isinstance(key, str):
            self._key_names = tuple(n.strip() for n in key.split(",") if n.strip())
        if chunk_size is None or max_in_flight is None or max_chunk_bytes is None:
            config = info.get("configuration")
            config = config if isinstance(config, Mapping) else {}
            workers = count(config.get("max_workers")) or 16
            buffer = count(config.get("input_buffer_allocated_bytes")) or 70_000_000
            chunk_size = chunk_size or _balanced_chunk_size(self.state.total_records, workers)
            # Enough chunks to keep every worker busy with one more queued behind each.
            max_in_flight = max_in_flight or min(256, 2 * workers + 2)
            # A quarter of the buffer per chunk lets several chunks queue without a 429; the
            # stall cap keeps encoding and decoding one chunk short on the event loop.
            if max_chunk_bytes is None:
                max_chunk_bytes = max(1024, min(buffer // 4, STALL_CAP_BYTES))
                max_record_bytes = buffer  # one big record may still take a chunk to itself
        chunking = Chunking(chunk_size, max_chunk_bytes, max_record_bytes)
        if self._checkpoint is not None:  # a resume cuts the chunks its first run cut
            chunking = await self._checkpoint.begin(self._adapter.batch_id, chunking)
            self._reorder = ReorderBuffer(self._checkpoint.first_unfinished)
        chunker = opts.chunker(
            chunking.chunk_size,
            chunking.max_chunk_bytes,
            chunking.max_record_bytes,
            chunking.id_prefix or None,
        )
        # Throttling never starves the workers: the window shrinks no lower than their number.
        window = Window(
            max_in_flight,
            floor=min(workers, max_in_flight),
            clock=self._clock,
            sleep=self._policy.sleep,
        )
        self.state.in_flight_limit = window.limit
        return chunker, window

    async def _produce(self, chunker: Chunker, window: Window) -> None:
        assert self._queue is not None
        state = self.state
        # aclosing: on cancellation the caller's async generator is closed here and now, in
        # this task, not later by the garbage collector in another.
        checkpoint, records = self._checkpoint, self._records
        start: dict[str, int] = {}
        if checkpoint is not None:  # a resume reads from where its committed results end
            records, start = checkpoint.resume(records)
        async with contextlib.aclosing(chunker.chunks(records, **start)) as chunks:
            try:
                async for chunk in chunks:
                    if checkpoint is not None and not checkpoint.read(chunk):
                        continue  # finished with before a restart
                    await window.acquire(chunk.id)
                    self._next_seq = chunk.seq + 1
                    if not self._pending:
                        self._last_progress = self._clock()  # the stall clock starts now
                    self._pending[chunk.id] = chunk
                    state.chunks_read += 1
                    state.records_read += chunk.records
                    state.in_flight = window.used
                    if checkpoint is not None and checkpoint.maybe_pushed(chunk):
                        # Pushed before a restart: its result is pulled first; if it never
                        # comes, lost-result recovery pushes it again.
                        self._pushed_at[chunk.id] = self._clock()
                        early = self._early.pop(chunk.id, None)
                        if early is not None:  # pulled before it was read: deliver it now
                            self._backlog.append(early)
                        self._wake.set()
                        continue
                    self._queued.add(chunk.id)
                    await self._queue.send(chunk)
            except RecordError as exc:
                if not state.chunks_read:
                    raise  # nothing was sent: a client-side problem, SparkSdkError
                raise self._error(
                    f"{exc.message}; the stream stopped there, after {state.records_read} "
                    f"record(s) had been given to batch {self._adapter.batch_id} "
                    f"({state.records_pushed} accepted so far)",
                    offset=exc.offset,
                ) from exc
        self._source_done = True
        self._wake.set()

    # ---- what the pushers report -------------------------------------------------------

    def pushed(self, chunks: Sequence[Chunk], nbytes: int) -> None:
        """One POST of `nbytes` carrying `chunks` was accepted."""
        assert self._window is not None
        now = self.last_activity = self._clock()
        state = self.state
        state.pushes += 1
        state.bytes_out += nbytes
        for chunk in chunks:
            self._queued.discard(chunk.id)
            if chunk.id not in self._pending:
                continue  # a re-push whose original result came meanwhile: nothing new out
            # The latest accepted push: a round trip never includes a recovery's wait.
            self._pushed_at[chunk.id] = now
            self._window.grow()
            state.chunks_pushed += 1
            state.records_pushed += chunk.records
            self._telemetry.chunk_pushed(chunk.id, chunk.records)
        state.in_flight_limit = self._window.limit
        self._wake.set()

    def push_unanswered(self, chunk: Chunk) -> None:
        """The push timed out: it may or may not have been applied; recovery decides."""
        self._queued.discard(chunk.id)
        if chunk.id in self._pending:
            self._pushed_at[chunk.id] = self._clock()
            self._suspect_loss = True
            self._wake.set()

    def throttle_pause(self, retry_after: float | None) -> float:
        """How long every pusher pauses after a throttle: the server's wait when it gave one,
        else a backoff that grows with the throttles since the last result; never below the
        policy's floor, so a throttling server never meets a tight loop."""
        policy = self._policy
        backoff = policy.delay(min(self._throttles_since_progress, 16), retry_after)
        return max(policy.retry_after_floor, backoff)

    def push_retried(self, chunk: Chunk, exc: SparkError) -> None:
        self.state.chunks_retried += 1
        self._telemetry.retried(_reason(exc))
        self._log.debug("push of chunk %s failed (%s); retrying", chunk.id, exc)

    def throttled(self, pause: float, exc: SparkError, chunks: int = 1) -> None:
        """A POST of `chunks` chunks was throttled (refused as a whole)."""
        assert self._window is not None
        state = self.state
        state.throttled += 1
        self._throttles_since_progress += 1
        self._telemetry.throttled(
            "rate_limit" if isinstance(exc, RateLimitError) else "input_buffer_full", pause
        )
        state.chunks_retried += chunks
        self._window.throttle(pause)
        state.in_flight_limit = self._window.limit

    def push_failed(self, chunk: Chunk, exc: SparkError, attempts: int) -> SparkError:
        """The error that ends the stream after a push the server refused for good."""
        last = chunk.offset + chunk.records - 1
        where = f"chunk {chunk.id} (records {chunk.offset}-{last})"
        if isinstance(exc, SparkApiError) and exc.status == 413:
            why = (
                f"is larger than the pipeline accepts: lower chunk_size or max_chunk_bytes ({exc})"
            )
        elif isinstance(exc, ConflictError):
            reason = exc.error_message or exc
            why = f"could not be pushed: the batch no longer accepts chunks: {reason}"
        elif transient(exc) or isinstance(exc, NotFoundError):  # (a 404 its status denied)
            why = f"could not be pushed after {attempts} attempt(s): {exc}"
        else:
            return exc  # a credential or request problem: its own error says it best
        return self._error(f"{where} {why}", chunk)

    # ---- what the puller reports -------------------------------------------------------

    def pulled(self, status: Mapping[str, Any], results: int, nbytes: int = 0) -> None:
        self._counters = status
        state = self.state
        state.pulls += 1
        state.bytes_in += nbytes
        if not results:
            state.empty_pulls += 1

    def pull_lost(self, exc: SparkError) -> None:
        self._suspect_loss = True
        self._telemetry.retried(_reason(exc))
        self._log.debug("pull failed (%s); retrying", exc)

    async def deliver(
        self, raw: Mapping[str, Any], send: MemoryObjectSendStream[StreamResult]
    ) -> None:
        """Match a pulled result with its chunk, and hand results over in order."""
        assert self._window is not None
        chunk_id = str(raw.get("id"))
        chunk = self._pending.pop(chunk_id, None)
        state = self.state
        checkpoint = self._checkpoint
        if (
            chunk is None
            and checkpoint is not None
            and checkpoint.not_yet_read(chunk_id, self._next_seq)
        ):
            self._early[chunk_id] = raw
            return
        if chunk is None:
            state.duplicates_dropped += 1  # a retried push ran twice: first copy won
            return
        now = self._clock()
        self._last_progress = self.last_activity = now
        self._throttles_since_progress = 0
        pushed_at = self._pushed_at.pop(chunk.id, None)
        if pushed_at is not None:
            self.slowest_round_trip = max(self.slowest_round_trip, now - pushed_at)
        self._repushes.pop(chunk.id, None)
        try:
            result = to_result(chunk, raw, self._key_names)
        except StreamError as exc:
            self._pending[chunk.id] = chunk  # still without a result: in the error's books
            raise self._error(exc.message, chunk) from None
        del raw  # the decoded result is not held while the consumer takes its turn
        ready = self._reorder.add(chunk.seq, result) if self._options.ordered else [result]
        for item in ready:
            self._with_consumer = True
            try:
                await send.send(item)  # zero buffer: returns once the consumer has it
            finally:
                self._with_consumer = False
                self._last_progress = self._clock()
            self._window.release(item.id)  # a chunk's id is its window slot's borrower
            state.in_flight = self._window.used
            state.chunks_completed += 1
            state.records_completed += item.records
            state.records_failed += item.failed
            self._telemetry.chunk_completed(item.id, item.records, item.failed)
            if self._options.progress is not None:
                self._options.progress(state)
                self._last_progress = self._clock()  # the caller's time, not a stall

    def check_batch(self, status: Mapping[str, Any]) -> None:
        """Fail when the server says the batch ended while results are still missing."""
        batch_status = status.get("batch_status")
        if (
            not isinstance(batch_status, str)
            or batch_status in _OPEN | _ENDED_FINE
            or not self._pending
        ):
            return
        first = next(iter(self._pending.values()))
        raise self._error(
            f"the batch is {batch_status} on the server; {len(self._pending)} chunk(s) from "
            f"record {first.offset} on will not come back",
            first,
        )

    def repush_outstanding(self, evidence: str, *, limited: bool) -> None:
        """Queue every outstanding chunk not already queued for another push."""
        assert self._queue is not None
        chunks = [c for c in self._pending.values() if c.id not in self._queued]
        if not chunks:
            return
        self._log.warning(
            "%d chunk(s) pushed but never returned (%s%s); pushing them again",
            len(chunks),
            evidence,
            ", after a lost answer" if self._suspect_loss else "",
        )
        self._suspect_loss = False
        for chunk in chunks:
            repushes = self._repushes[chunk.id] = self._repushes.get(chunk.id, 0) + 1
            if limited and repushes > self._policy.max_retries:
                raise self._error(
                    f"chunk {chunk.id} (records {chunk.offset}-{chunk.offset + chunk.records - 1})"
                    f" was pushed {repushes} time(s) and its result never came back ({evidence})",
                    chunk,
                )
            self.state.chunks_retried += 1
            self._telemetry.repushed(chunk.id)
            self._queued.add(chunk.id)
            self._queue.send_nowait(chunk)
        self.last_activity = self._clock()

    def pull_failed(self, exc: SparkError, attempts: int) -> SparkError:
        if transient(exc) or isinstance(exc, InvalidResponseError):
            return self._error(
                f"results could not be pulled after {attempts} attempt(s), with "
                f"{len(self._pending)} chunk(s) outstanding: {exc}"
            )
        return exc

    async def confirm_vanished(self, exc: NotFoundError) -> None:
        """One 404 is not proof: ask for the batch's status; raise when that is a 404 too."""
        try:
            await self._adapter.status()
        except NotFoundError:
            raise self.vanished(exc) from exc
        except (SparkApiError, SparkConnectionError):
            pass  # no proof either way: counted as a failure by the caller

    def ended_locally(self, exc: SparkSdkError) -> StreamError:
        """The pipeline's owner cancelled or closed it (through another handle's verbs) while
        the stream was running."""
        return self._error(f"the stream stopped: {exc.message}")

    def vanished(self, exc: SparkError) -> SparkError:
        state = self.state
        if not state.pulls and not state.chunks_pushed:
            return exc  # never seen: an unknown id, not a batch that disappeared
        return self._error(
            f"the batch vanished from the server while {len(self._pending)} chunk(s) were "
            f"outstanding (confirmed by its status; was the server restarted?): {exc}"
        )

    # ---- the watchdog ------------------------------------------------------------------

    def check_stall(self, stall_timeout: float) -> None:
        now = self._clock()
        if self._with_consumer or not self._pending:
            self._last_progress = now
            return
        silent = now - self._last_progress
        if silent < stall_timeout:
            return
        assert self._window is not None
        pending = len(self._pending)
        if self._throttles_since_progress:
            waiting = (
                "the server to accept pushes (throttled "
                f"{self._throttles_since_progress} time(s) since the last result)"
            )
        elif self.pushing:
            waiting = f"the server to accept {self.pushing} push(es)"
        else:
            waiting = f"results of {pending} chunk(s) the server accepted"
        raise self._error(
            f"the stream stalled: no result for {silent:.0f}s (stall_timeout={stall_timeout:g}s)"
            f" with {pending} chunk(s) outstanding; waiting for {waiting}; the server's last "
            f"counters: {_counters_text(self._counters)}"
        )

    # ---- helpers -----------------------------------------------------------------------

    def _ranges(self) -> tuple[tuple[int, int], ...]:
        """Outstanding record ranges (first, last), adjacent chunks merged."""
        ranges: list[tuple[int, int]] = []
        for chunk in sorted(self._pending.values(), key=lambda c: c.seq):
            first, last = chunk.offset, chunk.offset + chunk.records - 1
            if ranges and ranges[-1][1] + 1 == first:
                ranges[-1] = (ranges[-1][0], last)
            else:
                ranges.append((first, last))
        return tuple(ranges)

    def _error(
        self, message: str, chunk: Chunk | None = None, *, offset: int | None = None
    ) -> StreamError:
        """A `StreamError` carrying the books: what is outstanding, what was submitted, the
        server's last counters."""
        ranges = self._ranges()
        if ranges:
            shown = ", ".join(f"{a}-{b}" for a, b in ranges[:5])
            more = f" and {len(ranges) - 5} more" if len(ranges) > 5 else ""
            message += f" [records without a result: {shown}{more}]"
        return StreamError(
            message,
            chunk_id=chunk.id if chunk else None,
            offset=offset if offset is not None else chunk.offset if chunk else None,
            records_submitted=self.state.records_pushed,
            outstanding=ranges,
            counters=self._counters,
        )

    async def _with_retries(
        self, what: str, call: Callable[[], Awaitable[Mapping[str, Any]]]
    ) -> Mapping[str, Any]:
        policy = self._policy
        retries = 0
        while True:
            try:
                return await call()
            except (SparkApiError, SparkConnectionError) as exc:
                if not transient(exc) or retries >= policy.max_retries:
                    raise
                self._log.debug("could not %s (%s); retrying", what, exc)
                if not isinstance(exc, SparkTimeoutError):
                    retry_after = exc.retry_after if isinstance(exc, SparkApiError) else None
                    await policy.sleep(policy.delay(retries, retry_after))
                retries += 1


def _reason(exc: SparkError) -> str:
    """A low-cardinality retry reason: the status, or the error's class."""
    return str(exc.status) if isinstance(exc, SparkApiError) else type(exc).__name__


def _counters_text(status: Mapping[str, Any]) -> str:
    keys = (
        "batch_status",
        "chunks_available",
        "workers_in_use",
        "input_buffer_used_bytes",
        "records_completed",
        "record_submitted",
    )
    shown = {k: status[k] for k in keys if k in status}
    return repr(shown) if shown else "none seen"


def _balanced_chunk_size(total: int | None, workers: int) -> int:
    """About DEFAULT_CHUNK_SIZE records a chunk, evened out when the total is known so that the
    last wave of chunks keeps every worker busy instead of a few (the makespan of a
    latency-bound batch is its number of waves times one chunk's compute)."""
    if not total:
        return DEFAULT_CHUNK_SIZE
    waves = math.ceil(total / (DEFAULT_CHUNK_SIZE * workers))
    return max(1, math.ceil(total / (workers * waves)))
