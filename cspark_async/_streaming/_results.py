"""What the consumer receives: one chunk's outputs lined up with its inputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from attrs import frozen

from .._exceptions import SparkError
from ._chunker import Chunk

__all__ = ["StreamError", "StreamResult", "to_result"]


class StreamError(SparkError):
    """The stream could not deliver every record: the server lost, failed or mangled a chunk,
    or the batch ended on the server (cancelled, timed out) while records were outstanding.

    Results yielded before it was raised are correct and were yielded exactly once.
    """

    def __init__(self, message: str, *, chunk_id: str | None = None, offset: int | None = None):
        super().__init__(message)
        self.chunk_id = chunk_id
        self.offset = offset


@frozen(slots=True)
class StreamResult:
    """One chunk's results. `outputs`, `errors`, `warnings` and `process_time` have one entry per
    input record, in input order; `outputs[i]` is None where `errors[i]` says why."""

    id: str
    seq: int
    offset: int  # index, in the input stream, of the chunk's first record
    inputs: Sequence[Any]
    outputs: list[dict[str, Any] | None]
    errors: list[Any]
    warnings: list[Any]
    process_time: list[Any]
    summary_output: Any

    @property
    def records(self) -> int:
        return len(self.outputs)

    @property
    def failed(self) -> int:
        """How many of the chunk's records failed."""
        return len(self.errors) - self.errors.count(None)

    def items(self) -> list[tuple[int, Any, dict[str, Any] | None, Any]]:
        """(offset, input, output, error) for each record."""
        return [
            (self.offset + i, record, self.outputs[i], self.errors[i])
            for i, record in enumerate(self.inputs)
        ]


def to_result(chunk: Chunk, raw: Mapping[str, Any]) -> StreamResult:
    """Line a pulled chunk result up with the chunk that produced it."""
    outputs = raw.get("outputs")
    if not isinstance(outputs, list):
        raise _mangled(chunk, "has no outputs list")
    if outputs and isinstance(outputs[0], list):  # JSON-array form: a header row, then rows
        names = outputs[0]
        rows: list[dict[str, Any] | None] = [
            None if row is None else dict(zip(names, row, strict=False)) for row in outputs[1:]
        ]
    else:
        rows = outputs
    if len(rows) != chunk.records:
        raise _mangled(chunk, f"has {len(rows)} outputs for {chunk.records} records")
    return StreamResult(
        id=chunk.id,
        seq=chunk.seq,
        offset=chunk.offset,
        inputs=chunk.inputs,
        outputs=rows,
        errors=_per_record(raw.get("errors"), chunk.records),
        warnings=_per_record(raw.get("warnings"), chunk.records),
        process_time=_per_record(raw.get("process_time"), chunk.records),
        summary_output=raw.get("summary_output"),
    )


def _per_record(values: Any, count: int) -> list[Any]:
    if isinstance(values, list) and len(values) == count:
        return values
    return [None] * count  # absent or malformed: nothing to report per record


def _mangled(chunk: Chunk, what: str) -> StreamError:
    last = chunk.offset + chunk.records - 1
    return StreamError(
        f"the result of chunk {chunk.id} (records {chunk.offset}-{last}) {what}",
        chunk_id=chunk.id,
        offset=chunk.offset,
    )
