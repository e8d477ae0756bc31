"""Bound (b), the client floor: the JSON work no client can skip, in a tight loop.

A client must encode every push body and decode every pull body. Here the same payloads (the
wire shapes cspark_async and the emulator exchange for the same records and chunk size) are
built up front, then encoded and decoded with nothing else around them, once with orjson and
once with the stdlib `json`. Best of `rounds`, in CPU seconds of this process.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import orjson
from workload import HEADER, row

__all__ = ["measure_floor"]

_PULL_CHUNKS = 8  # chunks per pull body; the cost is per byte, so this barely matters


def _payloads(n: int, chunk_size: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    pushes: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for seq, start in enumerate(range(0, n, chunk_size)):
        rows = [row(i) for i in range(start, min(n, start + chunk_size))]
        chunk_id = f"0123abcd-{seq}"
        pushes.append({"chunks": [{
            "id": chunk_id,
            "size": len(rows),
            "data": {"inputs": [HEADER, *rows], "parameters": {}, "summary": None},
        }]})
        results.append({  # what the emulator's echo service sends back for that chunk
            "id": chunk_id,
            "summary_output": [[]],
            "outputs": [HEADER, *rows],
            "warnings": [None] * len(rows),
            "errors": [None] * len(rows),
            "process_time": [0.001] * len(rows),
        })
    status = {
        "response_timestamp": "2026-01-01T00:00:00.000Z",
        "request_timestamp": "2026-01-01T00:00:00.000Z",
        "batch_status": "in_progress",
        "pipeline_status": "processing",
        "chunks_available": 3, "chunks_submitted": 40, "record_submitted": 8000,
        "chunks_completed": 20, "records_completed": 4000, "compute_time_ms": 12,
        "input_buffer_used_bytes": 1000, "input_buffer_remaining_bytes": 69_999_000,
        "output_buffer_used_bytes": 1000, "output_buffer_remaining_bytes": 79_999_000,
        "workers_in_use": 16, "records_available": 600,
    }
    pulls = [
        {"data": results[i : i + _PULL_CHUNKS], "status": status}
        for i in range(0, len(results), _PULL_CHUNKS)
    ]
    return pushes, pulls


def _time(
    dumps: Callable[[Any], Any], loads: Callable[[Any], Any], pushes: list[Any], pulls: list[bytes],
    rounds: int,
) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for body in pushes:
            dumps(body)
        for raw in pulls:
            loads(raw)
        best = min(best, time.process_time() - started)
    return best


def measure_floor(n: int, chunk_size: int = 200, rounds: int = 3) -> dict[str, Any]:
    """CPU seconds to encode every push and decode every pull of `n` records, per library."""
    pushes, pulls = _payloads(n, chunk_size)
    pull_bytes = [orjson.dumps(p) for p in pulls]
    push_bytes = sum(len(orjson.dumps(p)) for p in pushes)
    orjson_s = _time(orjson.dumps, orjson.loads, pushes, pull_bytes, rounds)
    stdlib_s = _time(
        lambda o: json.dumps(o, separators=(",", ":")).encode(), json.loads, pushes, pull_bytes,
        rounds,
    )
    return {
        "records": n,
        "chunk_size": chunk_size,
        "request_bytes": push_bytes,
        "response_bytes": sum(len(b) for b in pull_bytes),
        "orjson_cpu_s": orjson_s,
        "stdlib_cpu_s": stdlib_s,
        "orjson_cpu_s_per_100k": orjson_s * 100_000 / n,
        "stdlib_cpu_s_per_100k": stdlib_s * 100_000 / n,
    }
