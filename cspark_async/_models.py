"""Typed views of the Batch API's documented responses. Data only: `_serde.py`
turns JSON into these. Every field is optional: unknown fields are ignored and missing ones are
None (or empty), so a server that adds or drops a field never breaks a call.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from attrs import field, frozen

from ._exceptions import SparkSdkError

__all__ = [
    "Batch",
    "BatchConfiguration",
    "BatchDescription",
    "BatchInfo",
    "BatchStatus",
    "BatchStatusValue",
    "BatchSummary",
    "ChunkResult",
    "PipelineState",
    "PipelineStats",
    "PullResult",
    "TenantConfiguration",
    "TenantInfo",
    "TenantStatus",
]

BatchStatusValue = Literal[
    "created",
    "in_progress",
    "closed",
    "closed_by_timeout",
    "completed",
    "completed_by_timeout",
    "failed",
    "cancelled",
]
"""The documented `batch_status` values. The models keep any other string the server sends; a
stream meets an undocumented end state such as `error` exactly as it meets `failed`."""

PipelineState = Literal["open", "closed", "cancelled"]
"""The client-side state of an `AsyncPipeline`."""


@frozen
class BatchStatus:
    """`get_status()`, `push()` and `pull().status`. The wire's singular `record_submitted`
    is `records_submitted` here (the plural is accepted too)."""

    batch_status: str | None = None
    pipeline_status: str | None = None
    response_timestamp: datetime | None = None
    request_timestamp: datetime | None = None
    chunks_available: int | None = None
    chunks_submitted: int | None = None
    records_submitted: int | None = None
    chunks_completed: int | None = None
    records_completed: int | None = None
    records_available: int | None = None
    compute_time_ms: float | None = None
    input_buffer_used_bytes: int | None = None
    input_buffer_remaining_bytes: int | None = None
    output_buffer_used_bytes: int | None = None
    output_buffer_remaining_bytes: int | None = None
    workers_in_use: int | None = None


@frozen
class BatchSummary:
    """`get_info().data.summary` (and the shorter one in `describe()`)."""

    chunks_submitted: int | None = None
    chunks_retried: int | None = None
    chunks_completed: int | None = None
    chunks_failed: int | None = None
    records_retried: int | None = None
    input_size_bytes: int | None = None
    output_size_bytes: int | None = None
    avg_compute_time_ms: float | None = None
    records_submitted: int | None = None
    records_failed: int | None = None
    records_completed: int | None = None
    compute_time_ms: float | None = None
    batch_time_ms: float | None = None


@frozen
class BatchConfiguration:
    """`get_info().data.configuration`: the pipeline's effective settings."""

    initial_workers: int | None = None
    chunks_per_request: int | None = None
    runner_thread_count: int | None = None
    acceptable_error_percentage: int | None = None
    input_buffer_allocated_bytes: int | None = None
    output_buffer_allocated_bytes: int | None = None
    max_workers: int | None = None


@frozen
class BatchInfo:
    """The `data` of a batch envelope (create, get_info, dispose, cancel, describe)."""

    batch_status: str | None = None
    pipeline_status: str | None = None
    service_id: str | None = None
    version_id: str | None = None
    service_uri: str | None = None
    compiler_version: str | None = None
    correlation_id: str | None = None
    source_system: str | None = None
    unique_record_key: str | None = None
    created_by: str | None = None
    response_timestamp: datetime | None = None
    created_timestamp: datetime | None = None
    updated_timestamp: datetime | None = None
    summary: BatchSummary | None = None
    configuration: BatchConfiguration | None = None


@frozen
class Batch:
    """A batch envelope: `{"object": "batch", "id", "data"}`. dispose/cancel bodies that carry
    the batch under `meta` (as the official SDKs' test servers do) are read the same way."""

    id: str | None = None
    object: str | None = None
    data: BatchInfo | None = None

    @property
    def batch_status(self) -> str | None:
        return self.data.batch_status if self.data is not None else None


@frozen
class ChunkResult:
    """One chunk of `pull()` output. `outputs`, `warnings`, `errors` and `process_time` have
    one entry per record (after a header row in `outputs` for JSON-array input)."""

    id: str | None = None
    outputs: list[Any] = field(factory=list)
    warnings: list[Any] = field(factory=list)
    errors: list[Any] = field(factory=list)
    process_time: list[Any] = field(factory=list)
    summary_output: list[Any] = field(factory=list)

    def records(self) -> list[Any]:
        """Outputs as one entry per record, whichever form the service answered in.

        JSON-array outputs (a header row, then value rows) are zipped into dicts; a failed
        record (a null row) stays None. Object outputs are returned as they are.
        """
        outputs = self.outputs
        if outputs and isinstance(outputs[0], list) and all(isinstance(n, str) for n in outputs[0]):
            names = outputs[0]
            return [
                None if row is None else dict(zip(names, row, strict=False)) for row in outputs[1:]
            ]
        return list(outputs)

    def keys(self, unique_record_key: str | Sequence[str]) -> list[Any]:
        """Each record's unique key, read from its outputs: a batch created with
        `unique_record_key=` gets the key's input columns back in every output.

        `unique_record_key` is what was given to `create()` (a name, comma-joined names, or a
        list). A composite key gives a tuple per record; a record without an output (it
        failed) gives None, and a name missing from an output gives None in its place.
        """
        names = (
            unique_record_key.split(",")
            if isinstance(unique_record_key, str)
            else list(unique_record_key)
        )
        names = [n.strip() for n in names if n.strip()]
        if not names:
            raise SparkSdkError(f"unique_record_key names no column: {unique_record_key!r}")
        keys: list[Any] = []
        for out in self.records():
            if not isinstance(out, Mapping):
                keys.append(None)
            elif len(names) == 1:
                keys.append(out.get(names[0]))
            else:
                keys.append(tuple(out.get(n) for n in names))
        return keys


@frozen
class PullResult:
    """`pull()`: the chunks taken from the output buffer (maybe none) and the status after."""

    data: list[ChunkResult] = field(factory=list)
    status: BatchStatus | None = None


@frozen
class TenantConfiguration:
    input_buffer_allocated_bytes: int | None = None
    output_buffer_allocated_bytes: int | None = None
    max_workers: int | None = None


@frozen
class TenantStatus:
    input_buffer_used_bytes: int | None = None
    input_buffer_remaining_bytes: int | None = None
    output_buffer_used_bytes: int | None = None
    output_buffer_remaining_bytes: int | None = None
    workers_in_use: int | None = None


@frozen
class TenantInfo:
    configuration: TenantConfiguration | None = None
    status: TenantStatus | None = None


@frozen
class BatchDescription:
    """`describe()`: the tenant's batches in progress and those finished in the last hour."""

    in_progress_batches: list[Batch] = field(factory=list)
    recent_batches: list[Batch] = field(factory=list)
    tenant: TenantInfo | None = None
    environment: dict[str, Any] = field(factory=dict)


class PipelineStats(Mapping[str, int]):
    """What a pipeline has pushed: chunk id -> record count (as the official documentation
    describes it), plus the totals `chunks` and `records`. A snapshot: later pushes do not
    change it."""

    __slots__ = ("_sizes",)

    def __init__(self, sizes: Mapping[str, int] | None = None) -> None:
        self._sizes = dict(sizes or {})

    @property
    def chunks(self) -> int:
        return len(self._sizes)

    @property
    def records(self) -> int:
        return sum(self._sizes.values())

    def __getitem__(self, chunk_id: str) -> int:
        return self._sizes[chunk_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sizes)

    def __len__(self) -> int:
        return len(self._sizes)

    def __repr__(self) -> str:
        return f"PipelineStats(chunks={self.chunks}, records={self.records}, sizes={self._sizes!r})"
