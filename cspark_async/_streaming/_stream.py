"""`ResultStream`: what `stream_outputs()` returns. Iterate it with `async for`, or hold it with
`async with` for a deterministic cleanup point.

Why the engine runs in its own task: an async generator must not yield from inside a task group
(the consumer may suspend it forever, or close it from another task: anyio's "cancel scope
stack corruption", PEP 789). So the engine's task group lives in one task owned by this object,
results cross over through a zero-buffer memory stream, and every exit path (normal end,
`break`, an exception in the consumer or the engine, cancellation) ends in `_shutdown()`, which
cancels that task, waits for it, and applies `on_exit` to the server pipeline, shielded.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sized
from types import TracebackType
from typing import Any, Final, Protocol

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._exceptions import ConflictError, SparkError, SparkSdkError
from ._chunker import Records
from ._engine import Engine, OnExit, StreamOptions, Transport
from ._results import StreamResult
from ._state import StreamState

if sys.version_info < (3, 11):  # pragma: no cover - anyio brings the backport there
    from exceptiongroup import BaseExceptionGroup

__all__ = ["ResultStream", "StreamTarget"]

log = logging.getLogger("cspark_async.stream")

_CLEANUP_TIMEOUT_S: Final = 15.0


class StreamTarget(Transport, Protocol):
    """A pipeline to stream through, and how to end it."""

    @property
    def batch_id(self) -> str: ...

    async def end(self, how: OnExit) -> None: ...


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
        open_target: Callable[[], Awaitable[StreamTarget]],
        records: Records,
        options: StreamOptions,
        *,
        close_when_done: bool = False,
    ) -> None:
        self.state = StreamState(total_records=len(records) if isinstance(records, Sized) else None)
        self._open_target = open_target
        self._records = records
        self._options = options
        self._close_when_done = close_when_done
        # Created when the engine starts: an unopened memory stream warns when collected.
        self._send: MemoryObjectSendStream[StreamResult] | None = None
        self._recv: MemoryObjectReceiveStream[StreamResult] | None = None
        self._target: StreamTarget | None = None
        self._task: asyncio.Task[None] | None = None
        self._iterated = False
        self._completed = False
        self._closing = False
        self._closed = anyio.Event()

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
        try:
            async with receive:
                async for result in receive:
                    yield result
            await self._join()
            self._completed = True
        finally:
            await self._shutdown()

    async def __aenter__(self) -> ResultStream:
        """Open the pipeline (the one-call form creates it here), then start streaming, so a
        wrong service or credential raises now rather than at the first result."""
        if self._target is None and self._task is None:
            try:
                self._target = await self._open_target()
            except BaseException:
                self._closing = True
                self._closed.set()
                raise
        self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._shutdown()

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
        return self._recv

    async def _main(self, send: MemoryObjectSendStream[StreamResult]) -> None:
        async with send:  # closing it ends the consumer's loop, whatever the engine did
            if self._target is None:
                self._target = await self._open_target()
            engine = Engine(self._target, self._records, self._options, self.state)
            await engine.run(send)

    async def _join(self) -> None:
        assert self._task is not None
        try:
            await self._task
        except BaseException as exc:  # the engine's failure, unwrapped for `except SparkError`
            raise _unwrap(exc) from None

    async def _shutdown(self) -> None:
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        try:
            with anyio.CancelScope(shield=True):
                await self._stop_engine()
                for stream in (self._send, self._recv):
                    if stream is not None:
                        stream.close()  # idempotent; covers an engine cancelled before it ran
                await self._end_target()
        finally:
            self.state.finished_at = self.state.finished_at or time.monotonic()
            self._closed.set()

    async def _stop_engine(self) -> None:
        task = self._task
        if task is None:
            return
        if not task.done():
            task.cancel()
            await asyncio.wait([task])
        if not task.cancelled() and task.exception() is not None and not self._completed:
            log.debug("stream engine ended with %r", task.exception())

    async def _end_target(self) -> None:
        target = self._target
        if target is None:
            return
        how: OnExit | None
        if self._completed:
            how = "close" if self._close_when_done else None
        else:
            how = self._options.on_exit
        if how is None:
            return
        try:
            with anyio.fail_after(_CLEANUP_TIMEOUT_S):
                await target.end(how)
        except ConflictError as exc:  # it had already ended on the server: nothing to undo
            log.debug("the batch pipeline had already ended: %s", exc)
        except Exception as exc:  # the original error, if any, matters more than this one
            log.warning("could not %s the batch pipeline after the stream ended: %s", how, exc)

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
