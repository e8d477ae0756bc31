"""Chunks in and out of the emulator: validate a push body, run a chunk's records, build its result.

Pure except for calling the service function; no HTTP, no buffers, no clocks beyond measuring
the service's own compute time.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from itertools import pairwise, repeat
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
    records = _records(chunk)
    n = len(records)
    outputs: list[Record | None] = [None] * n  # as the service answered: what aggregations read
    errors: list[Any] = [None] * n
    shaping = shape is not None and not shape.identity
    shaped: list[Record | None] = [None] * n if shaping else outputs  # as returned
    fn = service.fn
    clock = time.perf_counter
    stamps = [clock()]  # a record's compute time is the gap between two stamps
    for i, record in enumerate(records):
        try:
            result = fn(record)
            if type(result) is not dict:  # the common case costs one check
                if inspect.isawaitable(result):
                    result = await result
                if not isinstance(result, dict):
                    raise TypeError(f"service returned {_kind(result)}, expected an object")
            if shaping:
                assert shape is not None
                shaped[i] = shape.apply(record, result)
            outputs[i] = result
        except Exception as exc:  # a failing record never fails the chunk
            outputs[i] = shaped[i] = None
            errors[i] = {"error_type": type(exc).__name__, "message": str(exc)}
        stamps.append(clock())
    latency_ms = record_latency_s * 1000.0
    process_time = [
        round((after - before) * 1000.0 + latency_ms, 3)
        for before, after in pairwise(stamps)
    ]
    compute_ms = (stamps[-1] - stamps[0]) * 1000.0 + latency_ms * n
    if record_latency_s > 0 and n:
        await asyncio.sleep(record_latency_s * n)

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
        # The usual case: every output has the first one's keys in its order; values in bulk.
        names = list(outputs[0])  # type: ignore[arg-type]
        if all(map(names.__eq__, map(list, outputs))):  # type: ignore[arg-type]
            return [names, *map(list, map(dict.values, outputs))]  # type: ignore[arg-type]
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
