"""The Batch API's response bodies as documented, as TypedDicts: the static type of
`ApiResponse.data`, so `batch.data["id"]` type-checks and a misspelt key does not.

Types only: nothing is checked at run time (`.parsed` is the validated view). The inner objects
whose keys differ from one endpoint to another (a batch's `data`, its `summary` and
`configuration`) have every key optional; the status object, a chunk result, a pull and a
describe have the keys the API documents for every answer.
"""

# No `from __future__ import annotations`: TypedDict must see NotRequired[...] evaluated to
# tell required keys from optional ones at run time.
from typing import Any

from typing_extensions import NotRequired, TypedDict

__all__ = [
    "BatchConfigurationJSON",
    "BatchDescriptionJSON",
    "BatchInfoJSON",
    "BatchJSON",
    "BatchStatusJSON",
    "BatchSummaryJSON",
    "ChunkResultJSON",
    "PullResultJSON",
    "TenantConfigurationJSON",
    "TenantJSON",
    "TenantStatusJSON",
]


class BatchSummaryJSON(TypedDict, total=False):
    """A batch's `summary` (`get_info()`; `describe()` gives the records and times only)."""

    chunks_submitted: int
    chunks_retried: int
    chunks_completed: int
    chunks_failed: int
    records_retried: int
    input_size_bytes: int
    output_size_bytes: int
    avg_compute_time_ms: float
    records_submitted: int
    records_failed: int
    records_completed: int
    compute_time_ms: float
    batch_time_ms: float


class BatchConfigurationJSON(TypedDict, total=False):
    """A batch's effective settings (`get_info()`)."""

    initial_workers: int
    chunks_per_request: int
    runner_thread_count: int
    acceptable_error_percentage: int
    input_buffer_allocated_bytes: int
    output_buffer_allocated_bytes: int
    max_workers: int


class BatchInfoJSON(TypedDict, total=False):
    """The `data` of a batch envelope. Timestamps are ISO 8601 strings."""

    service_id: str
    version_id: str
    service_uri: str
    compiler_version: str
    correlation_id: str | None
    source_system: str
    unique_record_key: str | None
    created_by: str
    batch_status: str
    pipeline_status: str
    response_timestamp: str
    created_timestamp: str
    updated_timestamp: str
    summary: BatchSummaryJSON
    configuration: BatchConfigurationJSON


class BatchJSON(TypedDict):
    """A batch envelope: `create()`, `get_info()`, `dispose()`, `cancel()`, and each batch in
    `describe()`."""

    object: str
    id: str
    data: BatchInfoJSON
    meta: NotRequired[BatchInfoJSON]  # where some servers put a dispose/cancel answer


class BatchStatusJSON(TypedDict):
    """A pipeline's status: `get_status()`, `push()`, and a pull's `status`. The submitted
    records count is singular on the wire (`record_submitted`)."""

    response_timestamp: str
    request_timestamp: str
    batch_status: str
    pipeline_status: str
    chunks_available: int
    chunks_submitted: int
    record_submitted: int
    chunks_completed: int
    records_completed: int
    records_available: int
    compute_time_ms: float
    input_buffer_used_bytes: int
    input_buffer_remaining_bytes: int
    output_buffer_used_bytes: int
    output_buffer_remaining_bytes: int
    workers_in_use: int


class ChunkResultJSON(TypedDict):
    """One chunk of a pull: one entry per record in each list (`null` for no warning or
    error)."""

    id: str
    outputs: list[Any]
    warnings: list[Any]
    errors: list[Any]
    process_time: list[float]
    summary_output: list[Any]


class PullResultJSON(TypedDict):
    """`pull()`: the chunks taken (maybe none) and the status after."""

    data: list[ChunkResultJSON]
    status: BatchStatusJSON


class TenantConfigurationJSON(TypedDict):
    input_buffer_allocated_bytes: int
    output_buffer_allocated_bytes: int
    max_workers: int


class TenantStatusJSON(TypedDict):
    input_buffer_used_bytes: int
    input_buffer_remaining_bytes: int
    output_buffer_used_bytes: int
    output_buffer_remaining_bytes: int
    workers_in_use: int


class TenantJSON(TypedDict):
    configuration: TenantConfigurationJSON
    status: TenantStatusJSON


class BatchDescriptionJSON(TypedDict):
    """`describe()`: batches in progress or finished in the last hour, and the tenant."""

    in_progress_batches: list[BatchJSON]
    recent_batches: list[BatchJSON]
    tenant: TenantJSON
    environment: dict[str, Any]
