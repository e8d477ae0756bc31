"""The emulator's backend: batches, their buffers, workers and lifecycle. No HTTP here.

Where the Batch API's documentation is silent, the engine follows the assumptions listed in the
emulator's docstring (`cspark_async.emulator`), the one list of them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, Final

from attrs import define, field, frozen

from ._chunks import ChunkOutcome, InputChunk, failed_outcome, run_chunk
from ._errors import EmulatorError
from ._options import (
    OutputShape,
    buffer_mb,
    check_version_timestamp,
    output_shape,
    subservices,
)
from ._services import Service, ServiceRegistry

__all__ = ["BatchState", "Engine", "EngineOptions"]

log = logging.getLogger("cspark_async.emulator")

OPEN: Final = frozenset({"created", "in_progress"})
RUNNING: Final = frozenset({"created", "in_progress", "closed"})  # workers may still run
TERMINAL: Final = frozenset(
    {"completed", "completed_by_timeout", "closed_by_timeout", "failed", "cancelled"}
)
PULLABLE: Final = frozenset(
    {"in_progress", "closed", "completed", "completed_by_timeout", "failed"}
)
HISTORY_S: Final = 3600.0  # describe lists batches finished within the last hour


@frozen(kw_only=True)
class EngineOptions:
    """Tenant-wide defaults; `create` may override the per-pipeline ones."""

    tenant: str = "emulator"
    workers: int = 16
    record_latency: float = 0.0
    input_buffer_bytes: int = 70_000_000
    output_buffer_bytes: int = 80_000_000
    idle_timeout: float = 1800.0
    max_pull_chunks: int = 1000
    user: str = "emulator.user@example.com"
    compiler_version: str = "Neuron_v1.13.0"
    # Monotonic seconds; a test passes a fake one and calls `expire_idle()` itself.
    clock: Callable[[], float] = time.monotonic


@frozen
class PipelineConfig:
    workers: int
    initial_workers: int
    chunks_per_request: int
    runner_thread_count: int
    acceptable_error_percentage: int
    input_buffer_bytes: int
    output_buffer_bytes: int


@define(eq=False)
class BatchState:
    """One batch pipeline. Counters are exact at every await point."""

    id: str
    service: Service
    config: PipelineConfig
    request: dict[str, Any]  # the create body's descriptive fields, echoed back
    shape: OutputShape  # selected outputs and the unique record key, applied to each record
    created_at: datetime
    updated_at: datetime
    last_activity: float
    status: str = "created"
    input: deque[InputChunk] = field(factory=deque)
    input_bytes: int = 0
    output: deque[ChunkOutcome] = field(factory=deque)
    output_bytes: int = 0
    processing: int = 0  # workers running a chunk or holding its result for a full output buffer
    holding: int = 0  # of those, the ones waiting for output space
    workers: int = 0  # worker tasks alive
    tasks: set[asyncio.Task[None]] = field(factory=set)
    output_freed: asyncio.Event = field(factory=asyncio.Event)
    chunks_submitted: int = 0
    records_submitted: int = 0
    chunks_completed: int = 0
    records_completed: int = 0
    chunks_failed: int = 0
    records_failed: int = 0
    records_available: int = 0
    compute_ms: float = 0.0
    input_size_bytes: int = 0
    output_size_bytes: int = 0
    started: float | None = None
    finished: float | None = None

    @property
    def pipeline_status(self) -> str:
        if self.status in TERMINAL:
            return "closed"
        if self.holding:
            return "paused"  # invented: output buffer full
        return "processing" if self.processing else "idle"  # "processing" is invented too

    def wake_holders(self) -> None:
        self.output_freed.set()
        self.output_freed = asyncio.Event()


class Engine:
    """Batch pipelines for one tenant. Owns its worker tasks; `aclose()` stops them all."""

    def __init__(self, services: ServiceRegistry, options: EngineOptions) -> None:
        self.services = services
        self.options = options
        self._batches: dict[str, BatchState] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the idle-timeout reaper (needs a running loop)."""
        if self._reaper is None:
            self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def aclose(self) -> None:
        """Cancel every worker and the reaper, and wait for them to finish."""
        self._closed = True
        tasks = set(self._tasks)
        if self._reaper is not None:
            tasks.add(self._reaper)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    def reset(self) -> None:
        """Forget every batch (the emulator restarted): workers are cancelled, state is lost."""
        for batch in self._batches.values():
            self._stop_workers(batch)
        self._batches.clear()

    # ---- verbs -------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        now = self.options.clock()
        self._forget_old(now)
        in_progress: list[dict[str, Any]] = []
        recent: list[dict[str, Any]] = []
        for batch in self._batches.values():
            entry = {"object": "batch", "id": batch.id, "data": self._describe_data(batch)}
            (recent if batch.status in TERMINAL else in_progress).append(entry)
        running = [b for b in self._batches.values() if b.status in RUNNING]
        # The tenant's buffers are its running pipelines' buffers: none running, 0 allocated
        # (as the documented sample shows).
        in_alloc = sum(b.config.input_buffer_bytes for b in running)
        out_alloc = sum(b.config.output_buffer_bytes for b in running)
        in_used = sum(b.input_bytes for b in running)
        out_used = sum(b.output_bytes for b in running)
        return {
            "in_progress_batches": in_progress,
            "recent_batches": recent,
            "tenant": {
                "configuration": {
                    "input_buffer_allocated_bytes": in_alloc,
                    "output_buffer_allocated_bytes": out_alloc,
                    "max_workers": self.options.workers,
                },
                "status": {
                    "input_buffer_used_bytes": in_used,
                    "input_buffer_remaining_bytes": max(0, in_alloc - in_used),
                    "output_buffer_used_bytes": out_used,
                    "output_buffer_remaining_bytes": max(0, out_alloc - out_used),
                    "workers_in_use": sum(b.processing for b in running),
                },
            },
            "environment": {"update": 1},
        }

    def create(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise EmulatorError.bad_request("body must be a JSON object")
        locator = _opt_str(body, "service")
        version_id = _opt_str(body, "version_id")
        if not locator and not version_id:
            raise EmulatorError.bad_request(
                "name a service: 'service' (folder/service[version] or a UUID) or 'version_id'",
                code="SERVICE_REQUIRED",
            )
        service = self.services.resolve(locator, version_id)
        if service is None:
            what = f"service {locator!r}" if locator else f"version_id {version_id!r}"
            known = ", ".join(s.uri for s in self.services) or "none"
            raise EmulatorError.not_found(f"{what} not found (known: {known})", "SERVICE_NOT_FOUND")
        pinned = bool(version_id) or bool(locator and locator.rstrip().endswith("]"))
        check_version_timestamp(body, service, pinned)
        subservices(body)  # validated; emulated services have none to select
        shape = output_shape(body)
        config = self._pipeline_config(body)
        now_wall = _now()
        batch = BatchState(
            id=str(uuid.uuid4()),
            service=service,
            config=config,
            request={
                "correlation_id": _opt_str(body, "correlation_id"),
                "source_system": _opt_str(body, "source_system"),
                "unique_record_key": _opt_str_or_list(body, "unique_record_key"),
                "call_purpose": _opt_str(body, "call_purpose"),
            },
            shape=shape,
            created_at=now_wall,
            updated_at=now_wall,
            last_activity=self.options.clock(),
        )
        self._batches[batch.id] = batch
        return self._envelope(batch)

    def get_info(self, batch_id: str) -> dict[str, Any]:
        batch = self._touch(batch_id)
        env = self._envelope(batch)
        env["data"] = self._info_data(batch)
        return env

    def get_status(self, batch_id: str, request_time: datetime | None = None) -> dict[str, Any]:
        return self._status(self._touch(batch_id), request_time)

    def push(
        self, batch_id: str, chunks: list[InputChunk], request_time: datetime | None = None
    ) -> dict[str, Any]:
        batch = self._touch(batch_id)
        if batch.status not in OPEN:
            raise EmulatorError.conflict(
                f"batch {batch_id} is {batch.status}; chunks can only be added while it is "
                "created or in_progress",
                "BATCH_NOT_OPEN",
            )
        incoming = sum(c.nbytes for c in chunks)
        room = batch.config.input_buffer_bytes - batch.input_bytes
        if incoming > room:
            if incoming > batch.config.input_buffer_bytes:
                # Never fits, however long the client waits: a retry would loop forever.
                raise EmulatorError(
                    413,
                    "CHUNKS_TOO_LARGE",
                    f"the pushed chunks take {incoming} bytes but the input buffer holds "
                    f"{batch.config.input_buffer_bytes}; push smaller chunks",
                )
            wait = self._drain_estimate(batch, incoming - room)
            raise EmulatorError(
                429,
                "INPUT_BUFFER_FULL",
                f"input buffer full: {incoming} bytes pushed, {room} of "
                f"{batch.config.input_buffer_bytes} free; retry after {wait:.3f}s",
                headers={
                    "Retry-After": str(max(1, math.ceil(wait))),
                    "x-retry-after": f"{wait:.3f}",
                },
            )
        if chunks:
            if batch.status == "created":
                batch.status = "in_progress"
                batch.started = self.options.clock()
            for chunk in chunks:
                batch.input.append(chunk)
                batch.input_bytes += chunk.nbytes
                batch.input_size_bytes += chunk.nbytes
                batch.chunks_submitted += 1
                batch.records_submitted += chunk.records
            batch.updated_at = _now()
            self._spawn_workers(batch)
        return self._status(batch, request_time)

    def pull(
        self, batch_id: str, max_chunks: int, request_time: datetime | None = None
    ) -> tuple[list[bytes], dict[str, Any]]:
        """Remove up to `max_chunks` results from the output buffer, in completion order."""
        batch = self._touch(batch_id)
        taken: list[bytes] = []
        if batch.status in PULLABLE:
            count = min(max(1, max_chunks), self.options.max_pull_chunks, len(batch.output))
            for _ in range(count):
                outcome = batch.output.popleft()
                batch.output_bytes -= outcome.nbytes
                batch.records_available -= outcome.records
                taken.append(outcome.payload)
            if taken:
                batch.wake_holders()
        return taken, self._status(batch, request_time)

    def patch(self, batch_id: str, body: Any) -> dict[str, Any]:
        batch = self._touch(batch_id)
        target = body.get("batch_status") if isinstance(body, dict) else None
        if target not in ("closed", "cancelled"):
            raise EmulatorError.bad_request(
                f"'batch_status' must be 'closed' or 'cancelled', got {target!r}"
            )
        if target == "closed":
            if batch.status in OPEN:
                batch.status = "closed"
                batch.updated_at = _now()
                envelope = self._envelope(batch)  # answers "closed" as documented ...
                self._maybe_finish(batch)  # ... then completes at once if nothing is pending
                return envelope
            if batch.status in ("closed", "completed", "failed"):
                return self._envelope(batch)  # idempotent: a retried close must not fail
        else:
            if batch.status in RUNNING or batch.status in ("completed", "failed"):
                self._discard(batch, "cancelled")
                return self._envelope(batch)
            if batch.status == "cancelled":
                return self._envelope(batch)
        raise EmulatorError.conflict(
            f"batch {batch_id} is {batch.status}; it cannot be {target}", "BATCH_STATE_CONFLICT"
        )

    # ---- workers -----------------------------------------------------------------------------

    def _spawn_workers(self, batch: BatchState) -> None:
        loop = asyncio.get_running_loop()
        wanted = min(batch.config.workers - batch.workers, len(batch.input))
        for _ in range(max(0, wanted)):
            batch.workers += 1
            task = loop.create_task(self._work(batch))
            self._tasks.add(task)
            batch.tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            task.add_done_callback(batch.tasks.discard)

    async def _work(self, batch: BatchState) -> None:
        try:
            while batch.input and batch.status in RUNNING:
                chunk = batch.input.popleft()
                batch.input_bytes -= chunk.nbytes
                batch.processing += 1
                try:
                    try:
                        outcome = await run_chunk(
                            batch.service, chunk, self.options.record_latency, batch.shape
                        )
                    except Exception as exc:  # an emulator bug must not lose the chunk
                        log.exception("emulator failed on chunk %s", chunk.id)
                        outcome = failed_outcome(chunk, exc)
                    await self._wait_for_output_space(batch, outcome.nbytes)
                finally:
                    batch.processing -= 1
                if batch.status not in RUNNING:
                    return
                batch.output.append(outcome)
                batch.output_bytes += outcome.nbytes
                batch.output_size_bytes += outcome.nbytes
                batch.chunks_completed += 1
                batch.records_completed += outcome.records
                batch.records_available += outcome.records
                batch.records_failed += outcome.records_failed
                batch.chunks_failed += outcome.chunk_failed
                batch.compute_ms += outcome.compute_ms
                batch.updated_at = _now()
                self._maybe_finish(batch)
        finally:
            batch.workers -= 1

    async def _wait_for_output_space(self, batch: BatchState, nbytes: int) -> None:
        cap = batch.config.output_buffer_bytes
        # A result larger than the whole buffer still goes in once the buffer is empty.
        while batch.output_bytes and batch.output_bytes + nbytes > cap and batch.status in RUNNING:
            batch.holding += 1
            try:
                await batch.output_freed.wait()
            finally:
                batch.holding -= 1

    def _maybe_finish(self, batch: BatchState) -> None:
        if batch.status != "closed" or batch.input or batch.processing:
            return
        failed_pct = 100.0 * batch.records_failed / max(1, batch.records_submitted)
        allowed = batch.config.acceptable_error_percentage
        batch.status = "failed" if failed_pct > allowed else "completed"
        batch.finished = self.options.clock()
        batch.updated_at = _now()

    def _discard(self, batch: BatchState, status: str) -> None:
        """Cancel or time out: buffers are discarded and processing stops at once."""
        batch.status = status
        batch.finished = self.options.clock()
        batch.updated_at = _now()
        batch.input.clear()
        batch.input_bytes = 0
        batch.output.clear()
        batch.output_bytes = 0
        batch.records_available = 0
        self._stop_workers(batch)

    def _stop_workers(self, batch: BatchState) -> None:
        batch.wake_holders()
        for task in batch.tasks:
            task.cancel()

    def _drain_estimate(self, batch: BatchState, nbytes: int) -> float:
        """Seconds until `nbytes` of the input buffer are likely free: a Retry-After hint."""
        queued_records = sum(c.records for c in batch.input)
        if not batch.input_bytes or not queued_records:
            return 0.05
        share = min(1.0, nbytes / batch.input_bytes)
        seconds = queued_records * share * self.options.record_latency / batch.config.workers
        return min(5.0, max(0.05, seconds))

    # ---- idle timeout ------------------------------------------------------------------------

    async def _reap(self) -> None:
        tick = min(1.0, max(0.01, self.options.idle_timeout / 10))
        while True:
            await asyncio.sleep(tick)
            self.expire_idle()

    def expire_idle(self) -> None:
        """One pass of the idle-timeout reaper: time out every running batch that has seen no
        request for `idle_timeout` seconds, and forget batches finished over an hour ago."""
        now = self.options.clock()
        for batch in list(self._batches.values()):
            if batch.status in RUNNING and now - batch.last_activity > self.options.idle_timeout:
                self._time_out(batch)
        self._forget_old(now)

    def _time_out(self, batch: BatchState) -> None:
        # Inferred: work all done -> completed_by_timeout, results stay pullable;
        # work still pending -> closed_by_timeout, workers and buffers disposed of.
        if not batch.input and not batch.processing and batch.status != "created":
            batch.status = "completed_by_timeout"
            batch.finished = self.options.clock()
            batch.updated_at = _now()
        else:
            self._discard(batch, "closed_by_timeout")

    def _forget_old(self, now: float) -> None:
        stale = [
            b.id
            for b in self._batches.values()
            if b.status in TERMINAL and b.finished is not None and now - b.finished > HISTORY_S
        ]
        for batch_id in stale:
            del self._batches[batch_id]

    # ---- rendering ---------------------------------------------------------------------------

    def _touch(self, batch_id: str) -> BatchState:
        if self._closed:
            raise EmulatorError(503, "EMULATOR_STOPPING", "the emulator is shutting down")
        batch = self.batch(batch_id)
        batch.last_activity = self.options.clock()
        return batch

    def _pipeline_config(self, body: Mapping[str, Any]) -> PipelineConfig:
        opts = self.options
        max_workers = _opt_int(body, "max_workers", minimum=1)
        in_mb = buffer_mb(body, "input")
        out_mb = buffer_mb(body, "output")
        aep = _opt_int(body, "acceptable_error_percentage", minimum=0)
        if aep is not None and aep > 100:
            raise EmulatorError.bad_request(
                f"'acceptable_error_percentage' must be between 0 and 100, got {aep}"
            )
        return PipelineConfig(
            workers=min(opts.workers, max_workers) if max_workers else opts.workers,
            initial_workers=_opt_int(body, "initial_workers", minimum=1) or min(10, opts.workers),
            chunks_per_request=_opt_int(body, "chunks_per_request", minimum=1) or 2,
            runner_thread_count=_opt_int(body, "runner_thread_count", minimum=1) or 2,
            acceptable_error_percentage=aep or 0,
            input_buffer_bytes=int(in_mb * 1_000_000) if in_mb else opts.input_buffer_bytes,
            output_buffer_bytes=int(out_mb * 1_000_000) if out_mb else opts.output_buffer_bytes,
        )

    def _envelope(self, batch: BatchState) -> dict[str, Any]:
        data = {
            "service_id": batch.service.service_id,
            "version_id": batch.service.version_id,
            "compiler_version": self.options.compiler_version,
            "correlation_id": batch.request["correlation_id"],
            "source_system": batch.request["source_system"],
            "unique_record_key": batch.request["unique_record_key"],
            "response_timestamp": _iso(_now()),
            "batch_status": batch.status,
            "created_by": self.options.user,
            "created_timestamp": _iso(batch.created_at),
            "updated_timestamp": _iso(batch.updated_at),
            "service_uri": batch.service.uri,
        }
        # The docs say `data`; the official SDKs' test servers and TS types read `meta`.
        return {"object": "batch", "id": batch.id, "data": data, "meta": data}

    def _info_data(self, batch: BatchState) -> dict[str, Any]:
        env = self._envelope(batch)["data"]
        data = {k: v for k, v in env.items() if k not in ("response_timestamp",)}
        completed = batch.records_completed
        data["summary"] = {
            "chunks_submitted": batch.chunks_submitted,
            "chunks_retried": 0,
            "chunks_completed": batch.chunks_completed,
            "chunks_failed": batch.chunks_failed,
            "records_retried": 0,
            "input_size_bytes": batch.input_size_bytes,
            "output_size_bytes": batch.output_size_bytes,
            "avg_compute_time_ms": round(batch.compute_ms / completed, 3) if completed else 0,
            "records_submitted": batch.records_submitted,
            "records_failed": batch.records_failed,
            "records_completed": completed,
            "compute_time_ms": round(batch.compute_ms),
            "batch_time_ms": self._batch_time_ms(batch),
        }
        cfg = batch.config
        data["configuration"] = {
            "initial_workers": cfg.initial_workers,
            "chunks_per_request": cfg.chunks_per_request,
            "runner_thread_count": cfg.runner_thread_count,
            "acceptable_error_percentage": cfg.acceptable_error_percentage,
            "input_buffer_allocated_bytes": cfg.input_buffer_bytes,
            "output_buffer_allocated_bytes": cfg.output_buffer_bytes,
            "max_workers": cfg.workers,
        }
        data["response_timestamp"] = env["response_timestamp"]
        data["batch_status"] = batch.status
        return data

    def _describe_data(self, batch: BatchState) -> dict[str, Any]:
        return {
            "pipeline_status": batch.pipeline_status,
            "summary": {
                "records_submitted": batch.records_submitted,
                "records_failed": batch.records_failed,
                "records_completed": batch.records_completed,
                "compute_time_ms": round(batch.compute_ms),
                "batch_time_ms": self._batch_time_ms(batch),
            },
            "response_timestamp": _iso(_now()),
            "batch_status": batch.status,
            "created_by": self.options.user,
            "created_timestamp": _iso(batch.created_at),
            "updated_timestamp": _iso(batch.updated_at),
            "service_uri": batch.service.uri,
        }

    def _status(self, batch: BatchState, request_time: datetime | None) -> dict[str, Any]:
        cfg = batch.config
        now = _now()
        return {
            "response_timestamp": _iso(now),
            "request_timestamp": _iso(request_time or now),
            "batch_status": batch.status,
            "pipeline_status": batch.pipeline_status,
            "chunks_available": len(batch.output),
            "chunks_submitted": batch.chunks_submitted,
            "record_submitted": batch.records_submitted,  # singular on the wire, as documented
            "chunks_completed": batch.chunks_completed,
            "records_completed": batch.records_completed,
            "compute_time_ms": round(batch.compute_ms),
            "input_buffer_used_bytes": batch.input_bytes,
            "input_buffer_remaining_bytes": max(0, cfg.input_buffer_bytes - batch.input_bytes),
            "output_buffer_used_bytes": batch.output_bytes,
            "output_buffer_remaining_bytes": max(0, cfg.output_buffer_bytes - batch.output_bytes),
            "workers_in_use": batch.processing,
            "records_available": batch.records_available,
        }

    def _batch_time_ms(self, batch: BatchState) -> int:
        if batch.started is None:
            return 0
        end = batch.finished if batch.finished is not None else self.options.clock()
        return round((end - batch.started) * 1000)

    def batches(self) -> Iterable[BatchState]:
        """Every batch the engine remembers (for tests and the control plane)."""
        return self._batches.values()

    def batch(self, batch_id: str) -> BatchState:
        """One batch, without counting as client activity."""
        try:
            return self._batches[batch_id]
        except KeyError:
            raise EmulatorError.not_found(
                f"batch {batch_id!r} not found", "BATCH_NOT_FOUND"
            ) from None


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _opt_str(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value
    raise EmulatorError.bad_request(f"{key!r} must be a string, got {type(value).__name__}")


def _opt_str_or_list(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    return _opt_str(body, key)


def _opt_int(body: Mapping[str, Any], key: str, *, minimum: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise EmulatorError.bad_request(f"{key!r} must be an integer >= {minimum}, got {value!r}")
    return value
