"""What the consumer receives: one chunk's outputs lined up with its inputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import repeat
from typing import Any, Final

from attrs import frozen

from .._exceptions import StreamError
from ._chunker import Chunk

__all__ = ["NO_ANSWER", "StreamResult", "to_result"]


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
    key_names: tuple[str, ...] = ()  # the batch's unique record key, when it has one
    header: tuple[str, ...] | None = None  # the inputs' column names, for rows

    @property
    def records(self) -> int:
        return len(self.outputs)

    @property
    def failed(self) -> int:
        """How many of the chunk's records failed."""
        return len(self.errors) - self.errors.count(None)

    @property
    def keys(self) -> list[Any] | None:
        """Each record's unique key (the batch's `unique_record_key`), read from its input, so
        a failed record has one too: a value per record, a tuple for a composite key; None
        when the batch has no key."""
        names = self.key_names
        if not names:
            return None
        if self.header is not None:
            where = [self.header.index(n) if n in self.header else None for n in names]
            values = [[row[i] if i is not None else None for i in where] for row in self.inputs]
        else:
            values = [[record.get(n) for n in names] for record in self.inputs]
        return [v[0] if len(names) == 1 else tuple(v) for v in values]

    def items(self) -> list[tuple[int, Any, dict[str, Any] | None, Any]]:
        """(offset, input, output, error) for each record."""
        return [
            (self.offset + i, record, self.outputs[i], self.errors[i])
            for i, record in enumerate(self.inputs)
        ]


_LIST: Final = frozenset({list})
_OBJECT_OR_NULL: Final = frozenset({dict, type(None)})

# The error given to a record for which the server sent neither an output nor an error.
NO_ANSWER: Final = {
    "error": "NO_RESULT",
    "message": "the server returned neither an output nor an error for this record",
}


def to_result(
    chunk: Chunk, raw: Mapping[str, Any], key_names: tuple[str, ...] = ()
) -> StreamResult:
    """Line a pulled chunk result up with the chunk that produced it.

    Raises:
        StreamError: the result does not line up with the chunk (a count, a header or a row
            that does not fit): the server answered for something else than what was sent.
    """
    outputs = raw.get("outputs")
    if not isinstance(outputs, list):
        raise _mangled(chunk, "has no outputs list")
    rows: list[dict[str, Any] | None]
    if outputs and isinstance(outputs[0], list):  # JSON-array form: a header row, then rows
        names = outputs[0]
        if not all(isinstance(name, str) for name in names):
            raise _mangled(chunk, f"has a header row that is not all names: {names!r:.200}")
        width = len(names)
        body = outputs[1:]
        if set(map(type, body)) <= _LIST and set(map(len, body)) <= {width}:
            # The usual case, checked and built in bulk: every row a list of `width` values.
            rows = list(map(dict, map(zip, repeat(names), body)))
        else:
            for i, row in enumerate(body):
                if row is not None and (not isinstance(row, list) or len(row) != width):
                    what = f"{len(row)} values" if isinstance(row, list) else type(row).__name__
                    raise _mangled(chunk, f"has {what} in output row {i} for {width} columns")
            rows = [None if row is None else dict(zip(names, row, strict=True)) for row in body]
    else:
        if not set(map(type, outputs)) <= _OBJECT_OR_NULL and not all(
            row is None or isinstance(row, dict) for row in outputs
        ):
            raise _mangled(chunk, "has outputs that are neither objects nor null")
        rows = outputs
    if len(rows) != chunk.records:
        raise _mangled(chunk, f"has {len(rows)} outputs for {chunk.records} records")
    errors = raw.get("errors")
    if errors is None:
        errors = [None] * chunk.records
    elif not isinstance(errors, list) or len(errors) != chunk.records:
        count = len(errors) if isinstance(errors, list) else type(errors).__name__
        raise _mangled(chunk, f"has {count} errors for {chunk.records} records")
    if None in rows:
        errors = [
            NO_ANSWER if row is None and error is None else error
            for row, error in zip(rows, errors, strict=True)
        ]
    return StreamResult(
        id=chunk.id,
        seq=chunk.seq,
        offset=chunk.offset,
        inputs=list(map(list, chunk.inputs)) if chunk.rows_as_tuples else chunk.inputs,
        outputs=rows,
        errors=errors,
        warnings=_per_record(raw.get("warnings"), chunk.records),
        process_time=_per_record(raw.get("process_time"), chunk.records),
        summary_output=raw.get("summary_output"),
        key_names=key_names,
        header=chunk.header,
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
        outstanding=((chunk.offset, last),),
    )
