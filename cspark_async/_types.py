"""Public type aliases used in the SDK's signatures, and the typed options of `create()`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, TypeAlias

from typing_extensions import TypedDict

from ._config import OAuthInput
from ._ledger import DuplicatePolicy
from ._models import BatchStatusValue, PipelineState
from ._streaming._adapter import OnExit
from ._streaming._chunker import Records
from ._streaming._state import StreamState

__all__ = [
    "BatchStatusValue",
    "CreateOptions",
    "DuplicatePolicy",
    "OAuthInput",
    "OnExit",
    "PipelineState",
    "Progress",
    "Records",
    "StrList",
]

StrList: TypeAlias = str | Sequence[str] | None
"""One string or a list of them (sent joined with commas)."""

Progress: TypeAlias = Callable[[StreamState], None]
"""A stream's progress callback: called with the stream's `state` after each chunk."""


class CreateOptions(TypedDict, total=False):
    """The keyword arguments of `AsyncBatches.create()`, as one dict: the `create=` of
    `spark.batches.stream_outputs(uri, records, create={...})`. See `create()` for each."""

    active_since: str | datetime | date | None
    source_system: str | None
    correlation_id: str | None
    call_purpose: str | None
    subservices: StrList
    selected_outputs: StrList
    unique_record_key: StrList
    min_runners: int | None
    max_runners: int | None
    chunks_per_vm: int | None
    runners_per_vm: int | None
    max_input_size: float | None
    max_output_size: float | None
    accuracy: float | None
    extras: Mapping[str, Any] | None
