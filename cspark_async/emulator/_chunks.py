"""Chunks in and out of the emulator: validate a push body, run a chunk's records, build its result.

Pure except for calling the service function; no HTTP, no buffers, no clocks beyond measuring
the service's own compute time.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Iterable, Sequence
from itertools import repeat
from operator import add, floordiv, itemgetter, sub, truediv
from typing import Any

import orjson
from attrs import define, frozen

from ._errors import EmulatorError
from ._options import OutputShape
from ._services import Record, Service

__all__ = [
    "AGGREGATE_OPERATORS",
    "ChunkOutcome",
    "InputChunk",
    "Summary",
    "failed_outcome",
    "parse_push_body",
    "run_chunk",
]

AGGREGATE_OPERATORS = frozenset({"SUM", "AVG", "MIN", "MAX", "COUNT"})


@frozen
class Aggregation:
    output_name: str
    operator: str


@frozen
class Summary:
    ignore_error: bool
    aggregation: tuple[Aggregation, ...]
    return_all_records: bool = True  # False: the chunk result carries only summary_output


@define(slots=True, eq=False)
class InputChunk:
    """One validated chunk as it sits in a pipeline's input buffer."""

    id: str
    header: list[str] | None  # JSON-array form; None for a list of objects
    rows: list[Any]
    parameters: dict[str, Any]
    summary: Summary | None
    nbytes: int  # UTF-8 size of the chunk's JSON, what it occupies in the input buffer

    @property
    def records(self) -> int:
        return len(self.rows)


@define(slots=True, eq=False)
class ChunkOutcome:
    """A processed chunk as it sits in the output buffer, serialised once."""

    id: str
    payload: bytes  # the chunk result object exactly as `chunkresults` returns it
    records: int
    records_failed: int
    chunk_failed: bool
    compute_ms: float

    @property
    def nbytes(self) -> int:
        return len(self.payload)


def parse_push_body(body: Any) -> list[InputChunk]:
    """Validate a `POST batch/{id}/chunks` body: `{"chunks": [...]}` or a bare list of chunks."""
    chunks = body.get("chunks") if isinstance(body, dict) else body
    if isinstance(body, dict) and "chunks" not in body:
        raise EmulatorError.bad_request("body must have a 'chunks' array")
    if not isinstance(chunks, list):
        raise EmulatorError.bad_request(f"'chunks' must be an array, got {_kind(chunks)}")
    return [_parse_chunk(raw, f"chunks[{i}]") for i, raw in enumerate(chunks)]


def _parse_chunk(raw: Any, path: str) -> InputChunk:
    if not isinstance(raw, dict):
        raise EmulatorError.bad_request(f"{path} must be an object, got {_kind(raw)}")
    chunk_id = raw.get("id")
    if not isinstance(chunk_id, str):
        raise EmulatorError.bad_request(f"{path}.id must be a string, got {_kind(chunk_id)}")
    size = raw.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise EmulatorError.bad_request(f"{path}.size must be a non-negative integer, got {size!r}")
    data = raw.get("data")
    if not isinstance(data, dict):
        raise EmulatorError.bad_request(f"{path}.data must be an object, got {_kind(data)}")
    inputs = data.get("inputs")
    if not isinstance(inputs, list):
        raise EmulatorError.bad_request(f"{path}.data.inputs must be an array, got {_kind(inputs)}")
    parameters = data.get("parameters")
    if parameters is None:
        parameters = {}
    elif not isinstance(parameters, dict):
        raise EmulatorError.bad_request(
            f"{path}.data.parameters must be an object, got {_kind(parameters)}"
        )
    header, rows = _parse_inputs(inputs, f"{path}.data.inputs")
    return InputChunk(
        id=chunk_id,
        header=header,
        rows=rows,
        parameters=parameters,
        summary=_parse_summary(data.get("summary"), f"{path}.data.summary"),
        nbytes=len(orjson.dumps(raw)),
    )


def _parse_inputs(inputs: list[Any], path: str) -> tuple[list[str] | None, list[Any]]:
    if not inputs:
        return None, []
    if isinstance(inputs[0], list):
        header = inputs[0]
        if not all(isinstance(name, str) for name in header):
            raise EmulatorError.bad_request(f"{path}[0] (the header row) must hold only strings")
        width = len(header)
        rows = inputs[1:]
        if set(map(type, rows)) <= {list} and set(map(len, rows)) <= {width}:
            return header, rows  # the usual case, checked in bulk
        for i, row in enumerate(rows, start=1):
            if not isinstance(row, list):
                raise EmulatorError.bad_request(
                    f"{path}[{i}] must be an array like the header row, got {_kind(row)}"
                )
            if len(row) != width:
                raise EmulatorError.bad_request(
                    f"{path}[{i}] has {len(row)} values but the header row names {width}"
                )
        return header, rows
    for i, row in enumerate(inputs):
        if not isinstance(row, dict):
            raise EmulatorError.bad_request(
                f"{path}[{i}] must be an object (or use the JSON-array form), got {_kind(row)}"
            )
    return None, inputs


def _parse_summary(raw: Any, path: str) -> Summary | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise EmulatorError.bad_request(f"{path} must be an object, got {_kind(raw)}")
    ignore_error = raw.get("ignore_error", False)
    if not isinstance(ignore_error, bool):
        raise EmulatorError.bad_request(f"{path}.ignore_error must be a boolean")
    aggregation = raw.get("aggregation") or []
    if not isinstance(aggregation, list):
        raise EmulatorError.bad_request(f"{path}.aggregation must be an array")
    aggs = []
    for i, agg in enumerate(aggregation):
        name = agg.get("output_name") if isinstance(agg, dict) else None
        op = agg.get("operator") if isinstance(agg, dict) else None
        if not isinstance(name, str) or not isinstance(op, str):
            raise EmulatorError.bad_request(
                f"{path}.aggregation[{i}] must be an object with string output_name and operator"
            )
        if op.upper() not in AGGREGATE_OPERATORS:
            raise EmulatorError.bad_request(
                f"{path}.aggregation[{i}].operator {op!r} is not one of "
                f"{', '.join(sorted(AGGREGATE_OPERATORS))}"
            )
        aggs.append(Aggregation(output_name=name, operator=op.upper()))
    return_all = raw.get("return_all_records", True)
    if not isinstance(return_all, bool):
        raise EmulatorError.bad_request(f"{path}.return_all_records must be a boolean")
    return Summary(
        ignore_error=ignore_error, aggregation=tuple(aggs), return_all_records=return_all
    )


async def run_chunk(
    service: Service,
    chunk: InputChunk,
    record_latency_s: float,
    shape: OutputShape | None = None,
) -> ChunkOutcome:
    """Run every record of a chunk through the service and build its `chunkresults` entry.

    `shape` selects outputs and copies the unique record key into each successful output
    (aggregations see the service's full outputs).

    Simulated compute (`record_latency_s` per record) is one sleep per chunk, not one per record:
    a worker is busy for the same time, without timer overhead per record.
    """
    if service.rows_fn is not None and _bulk_ready(chunk, shape):
        bulk = _run_rows(service, chunk, record_latency_s)
        if bulk is not None:
            outcome, busy_s = bulk
            if busy_s > 0:
                await asyncio.sleep(busy_s)
            return outcome
    records = _records(chunk)
    n = len(records)
    errors: list[Any] = [None] * n
    outputs: list[Record | None] = []  # as the service answered: what aggregations read
    answer = outputs.append
    fn = service.fn
    clock = time.perf_counter_ns
    stamps = [clock()]  # a record's compute time is the gap between two stamps
    stamp = stamps.append
    for record in records:
        try:
            result = fn(record)
            if type(result) is not dict:  # the common case costs one check
                result = await _as_output(result)
        except Exception as exc:  # a failing record never fails the chunk
            errors[len(outputs)] = {"error_type": type(exc).__name__, "message": str(exc)}
            result = None
        answer(result)
        stamp(clock())
    latency_ns = round(record_latency_s * 1e9)
    gaps: Iterable[int] = map(sub, stamps[1:], stamps)
    if latency_ns:
        gaps = map(add, gaps, repeat(latency_ns))
    # Milliseconds to the microsecond, computed in bulk: `round()` per record cost more than
    # the echo service itself.
    process_time = list(map(truediv, map(floordiv, gaps, repeat(1000)), repeat(1000)))
    compute_ms = ((stamps[-1] - stamps[0]) + latency_ns * n) / 1e6
    if latency_ns and n:
        await asyncio.sleep(record_latency_s * n)
    shaped = outputs
    if shape is not None and not shape.identity:
        shaped = _shaped(shape, records, outputs, errors)

    try:
        return _outcome(chunk, outputs, errors, process_time, compute_ms, shaped)
    except TypeError:
        # An output JSON cannot carry (a set, bytes...): that record's error, not a lost chunk.
        for i, out in enumerate(shaped):
            try:
                orjson.dumps(out)
            except TypeError as exc:
                outputs[i] = shaped[i] = None
                errors[i] = {"error_type": "TypeError", "message": f"output is not JSON: {exc}"}
        return _outcome(chunk, outputs, errors, process_time, compute_ms, shaped)


def _shaped(
    shape: OutputShape, records: list[Record], outputs: list[Record | None], errors: list[Any]
) -> list[Record | None]:
    """Each output as `shape` returns it; one it cannot shape (a name that is not a string)
    fails that record alone, like a service error."""
    shaped: list[Record | None] = []
    for i, (record, out) in enumerate(zip(records, outputs, strict=True)):
        try:
            shaped.append(None if out is None else shape.apply(record, out))
        except Exception as exc:
            outputs[i] = None
            errors[i] = {"error_type": type(exc).__name__, "message": str(exc)}
            shaped.append(None)
    return shaped


def _bulk_ready(chunk: InputChunk, shape: OutputShape | None) -> bool:
    """Whether a service's `rows_fn` gives this chunk what `fn` would, record by record."""
    header = chunk.header
    return (
        header is not None
        and bool(chunk.rows)
        and not chunk.parameters
        and chunk.summary is None
        and (shape is None or shape.identity)
        and len(set(header)) == len(header)  # a repeated name collapses in a record's dict
    )


def _run_rows(
    service: Service, chunk: InputChunk, record_latency_s: float
) -> tuple[ChunkOutcome, float] | None:
    """A chunk through `service.rows_fn`, and the simulated compute still to wait for; None when
    it must run record by record instead (`rows_fn` raised, or an output JSON cannot carry).
    An answer of the wrong shape fails every record of the chunk with a TypeError naming it."""
    assert service.rows_fn is not None
    assert chunk.header is not None
    n = len(chunk.rows)
    start = time.perf_counter_ns()
    try:
        answer = service.rows_fn(list(chunk.header), chunk.rows)
    except Exception:
        return None
    elapsed_ns = time.perf_counter_ns() - start
    latency_ns = round(record_latency_s * 1e9)
    busy_ns = elapsed_ns + latency_ns * n
    process_time = [busy_ns // n // 1000 / 1000] * n  # an equal share each
    checked = _checked_rows(answer, chunk)
    if isinstance(checked, str):
        error = {
            "error_type": "TypeError",
            "message": f"the rows_fn of service {service.name!r} returned {checked}",
        }
        outcome = _outcome(chunk, [None] * n, [error] * n, process_time, busy_ns / 1e6)
        return outcome, record_latency_s * n
    names, rows = checked
    none = [None] * n
    result_doc = {
        "id": chunk.id,
        "summary_output": [[]],
        "outputs": [names, *rows],
        "warnings": none,
        "errors": none,
        "process_time": process_time,
    }
    try:
        payload = orjson.dumps(result_doc)
    except TypeError:
        return None  # record by record: each record that cannot be sent gets its own error
    outcome = ChunkOutcome(
        id=chunk.id,
        payload=payload,
        records=n,
        records_failed=0,
        chunk_failed=False,
        compute_ms=busy_ns / 1e6,
    )
    return outcome, record_latency_s * n


def _checked_rows(answer: Any, chunk: InputChunk) -> tuple[list[str], Sequence[Any]] | str:
    """`(names, rows)` from a `rows_fn` answer for `chunk`, or what is wrong with it."""
    if inspect.iscoroutine(answer):
        answer.close()  # never awaited: say so here, not in a "never awaited" warning
        return "a coroutine: rows_fn must be a plain function"
    if not (isinstance(answer, (tuple, list)) and len(answer) == 2):
        return f"{_kind(answer)} instead of a (header, rows) pair"
    names, rows = answer
    if not isinstance(names, (list, tuple)) or not all(isinstance(k, str) for k in names):
        return "a header that is not a list of names"
    if len(set(names)) != len(names):
        return "a header that repeats a name"
    n = len(chunk.rows)
    if not isinstance(rows, Sequence) or len(rows) != n:
        return f"{len(rows) if isinstance(rows, Sequence) else _kind(rows)} rows for {n} records"
    if rows is chunk.rows and len(names) == len(chunk.header or ()):
        return list(names), rows  # the chunk's own rows (an echo), checked on the way in
    # Checked in bulk (this is the hot path); a tuple subclass (a namedtuple) the slow way.
    if not set(map(type, rows)) <= {list, tuple} and not all(
        isinstance(row, (list, tuple)) for row in rows
    ):
        return "a row that is not a list"
    if not set(map(len, rows)) <= {len(names)}:
        return f"a row whose length is not the header's ({len(names)})"
    return list(names), rows


async def _as_output(result: Any) -> Record:
    """A service answer that is not a plain dict: awaited when it is awaitable, then checked."""
    if inspect.isawaitable(result):
        result = await result
    if not isinstance(result, dict):
        raise TypeError(f"service returned {_kind(result)}, expected an object")
    return result


def _records(chunk: InputChunk) -> list[Record]:
    """Each row as the record the service gets: the chunk's parameters, then the row's values
    (a row's value wins), built in bulk. Rows were checked against the header on the way in."""
    params, header = chunk.parameters, chunk.header
    if header is not None:
        records: list[Record] = list(map(dict, map(zip, repeat(header), chunk.rows)))
        return [{**params, **r} for r in records] if params else records
    return [{**params, **row} for row in chunk.rows] if params else list(map(dict, chunk.rows))


def failed_outcome(chunk: InputChunk, exc: Exception) -> ChunkOutcome:
    """Every record of the chunk failed with `exc` (the emulator itself broke)."""
    error = {"error_type": type(exc).__name__, "message": f"the emulator failed: {exc}"}
    n = chunk.records
    return _outcome(chunk, [None] * n, [error] * n, [0.0] * n, 0.0)


def _outcome(
    chunk: InputChunk,
    outputs: list[Record | None],
    errors: list[Any],
    process_time: list[float],
    compute_ms: float,
    shaped: list[Record | None] | None = None,
) -> ChunkOutcome:
    failed = len(errors) - errors.count(None)
    summary = chunk.summary
    summary_output, chunk_failed = _aggregate(summary, outputs, failed)
    result_doc: dict[str, Any] = {"id": chunk.id, "summary_output": summary_output}
    if summary is None or summary.return_all_records:
        result_doc["outputs"] = _shape_outputs(
            chunk.header is not None, outputs if shaped is None else shaped
        )
        result_doc["warnings"] = [None] * len(outputs)
        result_doc["errors"] = errors
        result_doc["process_time"] = process_time
    else:  # the aggregates only: the per-record lists are empty
        result_doc.update(outputs=[], warnings=[], errors=[], process_time=[])
    return ChunkOutcome(
        id=chunk.id,
        payload=orjson.dumps(result_doc),
        records=len(outputs),
        records_failed=failed,
        chunk_failed=chunk_failed,
        compute_ms=compute_ms,
    )


def _shape_outputs(array_form: bool, outputs: list[Record | None]) -> list[Any]:
    """Outputs mirror the input form: a header row plus value rows for JSON-array input."""
    if not array_form:
        return outputs
    if outputs and None not in outputs:
        # The usual case: every output has the first one's names (in any order); rows in bulk.
        # Equal sizes plus every name found means equal name sets.
        names = list(outputs[0])  # type: ignore[arg-type]
        if (
            len(names) > 1
            and set(map(type, outputs)) == {dict}  # a subclass may answer a missing name
            and all(map(len(names).__eq__, map(len, outputs)))  # type: ignore[arg-type]
        ):
            try:
                return [names, *map(itemgetter(*names), outputs)]  # type: ignore[arg-type]
            except KeyError:
                pass
    header: dict[str, None] = {}
    for out in outputs:
        if out is not None:
            header.update(dict.fromkeys(out))
    names = list(header)
    rows: list[Any] = [
        None if out is None else [out.get(name) for name in names] for out in outputs
    ]
    return [names, *rows]


def _aggregate(
    summary: Summary | None, outputs: list[Record | None], failed: int
) -> tuple[list[list[dict[str, Any]]], bool]:
    """`summary_output`: one list holding one entry per aggregation (`[[]]` when none).

    With `ignore_error` false, a chunk with a failed record has no meaningful aggregate: its
    values are null and the chunk counts as failed. With it true, failed records are skipped.
    """
    if summary is None:
        return [[]], False
    chunk_failed = failed > 0 and not summary.ignore_error
    entries = []
    for agg in summary.aggregation:
        value: Any = None
        if not chunk_failed:
            values = [
                out[agg.output_name]
                for out in outputs
                if out is not None
                and isinstance(out.get(agg.output_name), (int, float))
                and not isinstance(out.get(agg.output_name), bool)
            ]
            value = _apply(agg.operator, values)
        entries.append({"output_name": agg.output_name, "operator": agg.operator, "value": value})
    return [entries], chunk_failed


def _apply(operator: str, values: list[float]) -> float | int | None:
    if operator == "COUNT":
        return len(values)
    if operator == "SUM":
        return sum(values)
    if not values:
        return None
    if operator == "AVG":
        return sum(values) / len(values)
    return min(values) if operator == "MIN" else max(values)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )
