"""Chunks: `ChunkData`, `BatchChunk` and `create_chunks()`, which partitions a dataset. Pure.

`create_chunks` never mutates the caller's data, never emits an empty chunk, gives every chunk
a fresh id, and sets `size` to the number of records (the header row is not a record).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from attrs import Factory, field, frozen

from ._constants import DEFAULT_CHUNK_SIZE
from ._exceptions import SparkSdkError
from ._records import RecordReader, by_index

__all__ = ["BatchChunk", "ChunkData", "count_records", "create_chunks", "new_chunk_id"]


def new_chunk_id() -> str:
    return str(uuid.uuid4())


def count_records(inputs: Sequence[Any]) -> int:
    """Records in `inputs`: rows after the header row in JSON-array form, else every item."""
    if inputs and isinstance(inputs[0], (list, tuple)):
        return len(inputs) - 1
    return len(inputs)


def _params(value: Mapping[str, Any] | None) -> dict[str, Any]:
    return {} if value is None else dict(value)


@frozen
class ChunkData:
    """A chunk's payload: `inputs` (JSON-array form with a header row, or a list of objects),
    `parameters` shared by every record (never null on the wire), and an optional `summary`
    (`{"ignore_error": bool, "aggregation": [{"output_name", "operator"}]}`)."""

    inputs: list[Any]
    parameters: dict[str, Any] = field(factory=dict, converter=_params)
    summary: dict[str, Any] | None = None

    @property
    def record_count(self) -> int:
        return count_records(self.inputs)


@frozen
class BatchChunk:
    """One chunk to push: an `id` (echoed back by `pull()`), its `data`, and `size`, the
    number of records, computed from `data` when omitted."""

    id: str
    data: ChunkData
    size: int = field(default=Factory(lambda self: self.data.record_count, takes_self=True))


def create_chunks(
    dataset: Iterable[Any] | None = None,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    headers: Sequence[str] | None = None,
    parameters: Mapping[str, Any] | None = None,
    summary: Mapping[str, Any] | None = None,
    inputs: Iterable[Any] | None = None,
) -> list[BatchChunk]:
    """Partition a dataset into chunks of at most `chunk_size` records.

    ```python
    create_chunks([["value"], [42], [43], [44]], chunk_size=2)   # JSON-array form
    create_chunks([[42], [43]], headers=["value"])               # rows, header given apart
    create_chunks(inputs=[{"value": 42}, {"value": 43}])         # list of objects
    ```

    Args:
        dataset: JSON-array form (header row first, unless `headers=` is given) or a list of
            objects. `inputs=` is the same argument under the name the official docs use.
        chunk_size: records per chunk (>= 1); the last chunk may hold fewer.
        headers: the header row, when `dataset` holds value rows only.
        parameters, summary: copied into every chunk (each chunk gets its own copy).

    Returns:
        The chunks, in dataset order; `[]` for a dataset with no records.

    Raises:
        SparkSdkError: both or neither of `dataset` / `inputs`, a bad `chunk_size`, a bad
            header row, rows whose width differs from the header, or mixed record forms.
    """
    if dataset is not None and inputs is not None:
        raise SparkSdkError("pass the dataset once: positionally or as inputs=, not both")
    source = dataset if dataset is not None else inputs
    if source is None:
        raise SparkSdkError("create_chunks() needs a dataset (positionally or as inputs=)")
    if isinstance(source, (str, bytes, Mapping)) or not isinstance(source, Iterable):
        raise SparkSdkError(
            f"the dataset must be a list of rows or of objects, got {type(source).__name__}"
        )
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise SparkSdkError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    # The stream's rules (and push()'s): a new list, so the caller's is never touched.
    reader = RecordReader(headers, source="dataset", label=by_index)
    rows = [item for item in source if reader.check(item)]
    header = reader.header

    chunks = []
    for start in range(0, len(rows), chunk_size):
        part = rows[start : start + chunk_size]
        chunk_inputs: list[Any] = [list(header), *part] if header is not None else part
        chunks.append(
            BatchChunk(
                id=new_chunk_id(),
                data=ChunkData(
                    inputs=chunk_inputs,
                    parameters=copy.deepcopy(dict(parameters or {})),
                    summary=copy.deepcopy(dict(summary)) if summary is not None else None,
                ),
                size=len(part),
            )
        )
    return chunks
