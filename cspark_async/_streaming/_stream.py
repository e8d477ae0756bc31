"""`ResultStream`: what `stream_outputs()` returns. Iterate it with `async for`, or hold it with
`async with` for a deterministic cleanup point.

Why the engine runs in its own task: an async generator must not yield from inside a task group
(the consumer may suspend it forever, or close it from another task: anyio's "cancel scope
stack corruption", PEP 789). So the engine's task group lives in one task owned by this object,
results cross over through a zero-buffer memory stream, and every exit path (normal end,
`break`, an exception in the consumer or the engine, cancellation) ends in `_shutdown()`, which
cancels that task, waits for it, and applies `on_exit` to the server pipeline.

A cancelled caller is never made to wait for the server: when cancellation (an anyio scope,
`asyncio.timeout()`, `Task.cancel()`) lands while the pipeline is being created or ended, the
rest of that work is handed to the client (`finish_later`), which cancels a batch created too
late and waits for it on `close()`. The caller's own CancelledError is re-raised as it came, so
the scope that cancelled it absorbs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable, Coroutine, Sized
from types import TracebackType
from typing import Any, Final, Protocol

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._exceptions import ConflictError, SparkError, SparkSdkError
from .._otel import stream_telemetry
from .._policy import RetryPolicy
from ._adapter import OnExit, PipelineAdapter
from ._checkpoint import Checkpointer
from ._chunker import Records, check_records, close_async_iterator
from ._engine import Engine
from ._options import DEFAULT_CHUNK_SIZE, StreamOptions
from ._results import StreamResult
from ._state import StreamState

if sys.version_info < (3, 11):  # pragma: no cover - anyio brings the backport there
    from exceptiongroup import BaseExceptionGroup

__all__ = ["ResultStream"]

_CLEANUP_TIMEOUT_S: Final = 15.0
# How long a cancelled caller still waits for the server to be told (then the client does).
_CANCEL_GRACE_S: Final = 0.25


class Tracker(Protocol):
    """The client: running streams register with it, so that it ends them before closing its
    session, and it finishes the clean-ups that cancelled callers could not wait for."""

    def track(self, stream: ResultStream) -> None: ...

    def untrack(self, stream: ResultStream) -> None: ...

    def finish_later(self, work: Coroutine[Any, Any, None], name: str) -> None: ...


class ResultStream:
    """Results of one streaming run, in input order unless `ordered=False`.

    ```python
    async for result in pipeline.stream_outputs(records):
        ...
    # or, for a deterministic cleanup point:
    async with pipeline.stream_outputs(records) as results:
        async for result in results:
            ...
    ```
    `state` shows progress while it runs. Iterate it once.
    """

    def __init__(
        self,
        target: PipelineAdapter | Callable[[], Coroutine[Any, Any, PipelineAdapter]],
        records: Records,
        options: StreamOptions,
        *,
        policy: RetryPolicy,
        tracker: Tracker,
        close_when_done: bool = False,
        service: str | None = None,
        checkpoint: Checkpointer | None = None,
    ) -> None:
        check_records(records)
        self._checkpoint = checkpoint
        if checkpoint is not None:
            checkpoint.watch(records)
        self._policy = policy
        self._telemetry = stream_telemetry(service, clock=policy.clock)
        self.state = StreamState(total_records=len(records) if isinstance(records, Sized) else None)
        # An existing pipeline, or how to create one (the one-call form) once records are seen.
        self._target: PipelineAdapter | None = (
            target if isinstance(target, PipelineAdapter) else None
        )
        self._open_target = None if isinstance(target, PipelineAdapter) else target
        self._records = records
        self._options = options
        self._close_when_done = close_when_done
        self._tracker = tracker
        # Created when the engine starts: an unopened memory stream warns when collected.
        self._send: MemoryObjectSendStream[StreamResult] | None = None
        self._recv: MemoryObjectReceiveStream[StreamResult] | None = None
        self._has_data: bool | None = None  # known once the first records have been checked
        self._task: asyncio.Task[None] | None = None
        self._iterated = False
        self._completed = False
        self._closing = False
        self._cleanup: asyncio.Task[None] | None = None

    @property
    def batch_id(self) -> str | None:
        """The server pipeline's id; None until it exists (the one-call form creates it)."""
        return self._target.batch_id if self._target is not None else None

    # ---- consumer side -------------------------------------------------------------------

    def __aiter__(self) -> AsyncGenerator[StreamResult, None]:
        if self._iterated:
            raise SparkSdkError("a ResultStream can be iterated once; call stream_outputs() again")
        self._iterated = True
        return self._iterate()

    async def _iterate(self) -> AsyncGenerator[StreamResult, None]:
        receive = self._start()
        cancelled = False
        try:
            try:
                async with receive:
                    async for result in receive:
                        if self._checkpoint is None:
                            yield result
                            continue
                        self._checkpoint.handed(result.seq, result.records)
                        yield result
                        self._checkpoint.commit()  # asked for the next: finished with
            except anyio.ClosedResourceError:
                if not self._closing:
                    raise
                raise self._closed_early() from None
            await self._join()
            if self._checkpoint is not None:
                await self._checkpoint.finish()
            self._completed = True
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            await self._shutdown(cancelled=cancelled)

    def _closed_early(self) -> SparkSdkError:
        # Said plainly: a truncated stream must not look complete, nor like cancellation.
        return SparkSdkError(
            "the stream was closed before it finished (aclose(), or its AsyncClient closed); "
            f"{self.state.records_completed} records were delivered"
        )

    def commit(self, meta: Any = None) -> None:
        """With `checkpoint=`: every result handed over so far is finished with, and `meta`
        (JSON-able, e.g. your output's length; None keeps the last) is saved beside that
        position. Asking for the next result commits too, keeping the last `meta`."""
        if self._checkpoint is None:
            raise SparkSdkError("commit() needs a stream started with checkpoint=")
        self._checkpoint.commit(meta)

    @property
    def checkpoint_meta(self) -> Any:
        """The `meta` of the checkpoint this stream resumes from (None for a new job); known
        once the stream is open (`open()`, `async with`, or the first result)."""
        return self._checkpoint.meta if self._checkpoint is not None else None

    @property
    def records_committed(self) -> int:
        """Records finished with, by earlier runs of the job too (0 without a checkpoint)."""
        return self._checkpoint.records_committed if self._checkpoint is not None else 0

    async def open(self) -> ResultStream:
        """Check the first records and open the pipeline now (the one-call form creates it
        here), before any result is asked for: a wrong service or credential raises here, e.g.
        while a web handler can still answer an error status. Iterating (or `async with`)
        then streams as usual; `AsyncClient.close()` ends a stream opened and never read."""
        if self._checkpoint is not None:
            await self._checkpoint.load()
        if self._task is None and self._target is None:
            try:
                await self._open()
            except BaseException as exc:
                if self._target is not None:  # created, then cancelled: end it
                    await self._shutdown(cancelled=isinstance(exc, asyncio.CancelledError))
                self._closing = True
                raise
            self._tracker.track(self)
        return self

    async def __aenter__(self) -> ResultStream:
        """`open()`, then start streaming."""
        await self.open()
        self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._shutdown(cancelled=isinstance(exc, asyncio.CancelledError))

    async def aclose(self) -> None:
        """Stop now: cancel the engine and apply `on_exit` unless every result was consumed."""
        await self._shutdown()

    # ---- engine side ---------------------------------------------------------------------

    def _start(self) -> MemoryObjectReceiveStream[StreamResult]:
        if self._closing:
            raise SparkSdkError("this stream is closed; call stream_outputs() again")
        if self._recv is None:
            self._send, self._recv = anyio.create_memory_object_stream[StreamResult](0)
            self._task = asyncio.get_running_loop().create_task(
                self._main(self._send), name="cspark-async stream engine"
            )
            self._tracker.track(self)
        return self._recv

    async def _main(self, send: MemoryObjectSendStream[StreamResult]) -> None:
        telemetry = self._telemetry
        telemetry.start(batch_id=self.batch_id)
        async with send:  # closing it ends the consumer's loop, whatever the engine did
            with telemetry.activate():  # the engine's calls (and tasks) nest under its span
                if await self._open():
                    assert self._target is not None
                    telemetry.batch(self._target.batch_id)
                    engine = Engine(
                        self._target,
                        self._records,
                        self._options,
                        self.state,
                        self._policy,
                        telemetry,
                        self._checkpoint,
                    )
                    async with anyio.create_task_group() as tg:
                        if self._checkpoint is not None:
                            tg.start_soon(self._checkpoint.run_writer)
                        await engine.run(send)
                        tg.cancel_scope.cancel()
            self.state.done = True

    async def _open(self) -> bool:
        """Check the first records, then open the target; False when there is nothing to do.

        The one-call form creates its pipeline here, so an empty dataset or a bad first record
        must be found first: a client-side problem sends nothing.
        """
        checkpoint = self._checkpoint
        if checkpoint is not None:
            await checkpoint.load()
            if checkpoint.complete:
                return False  # every result was finished with in an earlier run
        if self._target is not None:
            return True
        if self._has_data is None and checkpoint is not None and checkpoint.resumed:
            self._has_data = True  # records were sent before; a seekable source stays one
        if self._has_data is None:
            head, self._records = await _split_head(self._records, 2)
            probe = self._options.chunker(self._options.chunk_size or DEFAULT_CHUNK_SIZE, 2**31)
            self._has_data = bool([chunk async for chunk in probe.chunks(head)])
        if not self._has_data:
            return False
        assert self._open_target is not None
        # The create runs in a task of its own: if we are cancelled meanwhile, it may already
        # have been applied on the server, so it is left to finish and then undone.
        create = asyncio.get_running_loop().create_task(self._open_target())
        try:
            self._target = await asyncio.shield(create)
        except asyncio.CancelledError:
            await _grace(create)
            if create.done() and not create.cancelled() and create.exception() is None:
                self._target = create.result()  # ended by `_shutdown()` as usual
            else:
                self._tracker.finish_later(
                    _undo_create(create, self._policy.logger), "cspark-async undo create"
                )
            raise
        return True

    async def _join(self) -> None:
        task = self._task
        assert task is not None
        if self._closing and task.done() and task.cancelled():
            raise self._closed_early()  # another task closed us; nobody cancelled the consumer
        try:
            await task
        except BaseException as exc:  # the engine's failure, unwrapped for `except SparkError`
            raise _unwrap(exc) from None

    async def _shutdown(self, *, cancelled: bool = False) -> None:
        """Stop the engine and apply `on_exit`: once, whoever asks first. The work runs in its
        own task; a caller that is being cancelled (`cancelled`, or cancelled meanwhile)
        waits for it only briefly, then leaves it to the client."""
        if self._cleanup is None:
            self._closing = True
            self._cleanup = asyncio.get_running_loop().create_task(
                self._clean_up(), name="cspark-async stream cleanup"
            )
        cleanup = self._cleanup
        try:
            if cancelled:
                await _grace(cleanup)
            else:
                await asyncio.shield(cleanup)
        except asyncio.CancelledError:
            await _grace(cleanup)
            raise
        finally:
            if not cleanup.done():
                self._tracker.finish_later(_wait(cleanup), "cspark-async stream cleanup")

    async def _clean_up(self) -> None:
        try:
            await self._stop_engine()
            if self._checkpoint is not None and not self._completed:
                await self._save_last_commit(self._checkpoint)
            for stream in (self._send, self._recv):
                if stream is not None:
                    stream.close()  # idempotent; covers an engine cancelled before it ran
            await self._end_target()
        finally:
            self.state.finished_at = self.state.finished_at or time.monotonic()
            self._telemetry.end(*self._outcome())
            self._tracker.untrack(self)

    def _outcome(self) -> tuple[str, BaseException | None]:
        """How the stream ended, for its span: completed, failed, cancelled or closed."""
        task = self._task
        error = (
            task.exception() if task is not None and task.done() and not task.cancelled() else None
        )
        if self._completed:
            return "completed", None
        if error is not None:
            return "failed", error
        return ("cancelled" if self._options.on_exit == "cancel" else "closed"), None

    async def _stop_engine(self) -> None:
        task = self._task
        if task is None:
            return
        if not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=_CLEANUP_TIMEOUT_S)
            if not task.done():  # e.g. a records iterable that swallows cancellation
                self._policy.logger.warning(
                    "the stream engine did not stop within %ss", _CLEANUP_TIMEOUT_S
                )
                return
        if not task.cancelled() and task.exception() is not None and not self._completed:
            self._policy.logger.debug("stream engine ended with %r", task.exception())

    async def _end_target(self) -> None:
        target = self._target
        if target is None:
            return
        how: OnExit | None
        if self._completed:
            how = "close" if self._close_when_done else None
        elif self._checkpoint is not None:
            # Kept open for a resume: the server keeps an idle batch for a while.
            self._policy.logger.info("batch pipeline %s left open to resume", target.batch_id)
            how = None
        else:
            how = self._options.on_exit
        if how is None:
            return
        await _end(target, how, self._policy.logger)

    async def _save_last_commit(self, checkpoint: Checkpointer) -> None:
        try:
            with anyio.fail_after(_CLEANUP_TIMEOUT_S):
                await checkpoint.flush()
        except Exception as exc:  # the stream's own outcome matters more
            self._policy.logger.warning("could not save the last checkpoint: %s", exc)

    def __repr__(self) -> str:
        s = self.state
        return (
            f"<ResultStream records {s.records_completed}/{s.records_read} "
            f"in_flight={s.in_flight} done={s.done}>"
        )


def _unwrap(exc: BaseException) -> BaseException:
    """A lone error out of the task group, not an ExceptionGroup (`except SparkError` works)."""
    leaves = list(_leaves(exc))
    meaningful = [e for e in leaves if not isinstance(e, asyncio.CancelledError)]
    if not meaningful:
        return exc
    first = next((e for e in meaningful if isinstance(e, SparkError)), meaningful[0])
    if len(meaningful) > 1 and hasattr(first, "add_note"):
        first.add_note(f"({len(meaningful) - 1} more error(s) in the same stream)")
    return first


def _leaves(exc: BaseException) -> Any:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


async def _split_head(records: Records, count: int) -> tuple[list[Any], Records]:
    """The first `count` records, and an iterable that yields every record, those included."""
    head: list[Any] = []
    if isinstance(records, AsyncIterable):
        iterator = aiter(records)
        with contextlib.suppress(StopAsyncIteration):
            for _ in range(count):
                head.append(await anext(iterator))

        async def rest_async() -> AsyncIterator[Any]:
            try:
                for record in head:
                    yield record
                async for record in iterator:
                    yield record
            finally:
                await close_async_iterator(iterator)

        return head, rest_async()
    if type(records) is list or type(records) is tuple:
        return list(records[:count]), records  # read again from the start: nothing consumed
    sync_iterator = iter(records)
    head.extend(itertools.islice(sync_iterator, count))
    return head, itertools.chain(head, sync_iterator)


async def _end(target: PipelineAdapter, how: OnExit, logger: logging.Logger) -> None:
    """Cancel or close the pipeline; failures are logged (with why), never raised."""
    try:
        with anyio.fail_after(_CLEANUP_TIMEOUT_S):
            await target.end(how)
    except ConflictError as exc:  # it had already ended on the server: nothing to undo
        logger.debug("batch pipeline %s had already ended: %s", target.batch_id, exc)
    except TimeoutError:
        logger.warning(
            "could not %s batch pipeline %s: the server did not answer within %ss",
            how,
            target.batch_id,
            _CLEANUP_TIMEOUT_S,
        )
    except Exception as exc:  # the original error, if any, matters more than this one
        logger.warning("could not %s batch pipeline %s: %s", how, target.batch_id, exc)


async def _undo_create(create: asyncio.Task[PipelineAdapter], logger: logging.Logger) -> None:
    """Wait for a create whose caller was cancelled; cancel the batch it made, if any."""
    try:
        target = await create
    except Exception as exc:  # nothing was created, or we cannot know: it was logged there
        logger.debug("the create that was cancelled failed: %s", exc)
        return
    await _end(target, "cancel", logger)


async def _wait(task: asyncio.Task[None]) -> None:
    await asyncio.wait([task])


async def _grace(task: asyncio.Task[Any]) -> None:
    """After a cancellation: give `task` a moment to finish (on a live server it does, so the
    server is told before the caller moves on), without letting a dead one hold the caller."""
    # Shielded from anyio, which would otherwise re-deliver the cancellation at every turn of
    # the loop; a second native cancel still ends the wait.
    with anyio.CancelScope(shield=True):
        await asyncio.wait([task], timeout=_CANCEL_GRACE_S)
