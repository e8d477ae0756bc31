"""The benchmark scenarios: emulator settings, dataset size and the contenders of each, in a
full and a `--quick` size. Pure data plus the bounds; running them is `run.py`'s job."""

from __future__ import annotations

import math
from typing import Any

from attrs import field, frozen
from workload import dataset_bytes

__all__ = ["Entry", "Scenario", "scenarios"]

WORKERS = 16


@frozen
class Entry:
    """One contender as a scenario runs it: a key in the results, what runs, with what."""

    key: str
    contender: str  # a key of contenders.CONTENDERS, or "floor"
    label: str
    options: dict[str, Any] = field(factory=dict)
    n: int | None = None  # records, when not the scenario's
    source: str = "list"  # "list" (built before the clock) or "generator" (lazy)


@frozen
class Scenario:
    key: str
    title: str
    measures: str
    n: int
    workers: int
    latency_ms: float
    entries: tuple[Entry, ...]
    input_buffer_mb: float = 70.0
    output_buffer_mb: float = 80.0
    timeout_s: float = 180.0  # per child run; a hung contender is recorded as failed

    @property
    def emulator(self) -> dict[str, Any]:
        return {
            "workers": self.workers,
            "latency_ms": self.latency_ms,
            "input_buffer_mb": self.input_buffer_mb,
            "output_buffer_mb": self.output_buffer_mb,
        }

    def compute_bound_s(self, n: int | None = None) -> float:
        """N·L/W: the makespan if W workers computed every record back to back."""
        return (n or self.n) * self.latency_ms / 1000 / self.workers

    def chunked_bound_s(self, chunk_size: int, n: int | None = None) -> float:
        """The same with whole chunks: ceil(chunks / W) waves of chunk_size·L each."""
        n = n or self.n
        chunks = math.ceil(n / chunk_size)
        waves = math.ceil(chunks / self.workers)
        return waves * min(chunk_size, n) * self.latency_ms / 1000


def _rivals(seed: bool = True) -> tuple[Entry, ...]:
    entries = [
        Entry(
            "official_async_gather",
            "official_async_gather",
            "official AsyncClient, gather pushes (chunk 200, poll 0.1 s)",
        )
    ]
    if seed:
        entries.insert(
            0,
            Entry(
                "official_sync_seed",
                "official_sync_seed",
                "official sync Client, seed workflow (chunk 150, poll 2 s)",
            ),
        )
    return tuple(entries)


def _ours(tuned: dict[str, Any], why: str) -> tuple[Entry, ...]:
    return (
        Entry("ours_default", "ours", "cspark_async stream_outputs, defaults"),
        Entry("ours_tuned", "ours", f"cspark_async stream_outputs, tuned: {why}", tuned),
    )


def scenarios(quick: bool) -> list[Scenario]:
    """Every scenario, sized for the full run (< 10 min on 2 cores) or `--quick` (< 1 min)."""
    lat_n = 2_000 if quick else 20_000
    tp_n = 10_000 if quick else 200_000
    buf_n = 2_000 if quick else 20_000
    mem_small, mem_large = (10_000, 100_000) if quick else (100_000, 1_000_000)
    small_n = 4_000 if quick else 40_000
    stall_n = 5_000 if quick else 50_000
    # 10x: the whole dataset's JSON is ten times the input buffer.
    buf_mb = round(dataset_bytes(buf_n) / 10 / 1_000_000, 4)
    # Tuned for latency: chunks a multiple of W (so the last wave is full) and small enough
    # that the tail wave is short.
    lat_chunk = max(1, lat_n // (WORKERS * 10))
    return [
        Scenario(
            key="latency_bound",
            title=f"Latency-bound: {lat_n:,} records, W = {WORKERS}, L = 2 ms",
            measures="makespan / compute bound N·L/W (1.00 is perfect)",
            n=lat_n,
            workers=WORKERS,
            latency_ms=2.0,
            entries=(
                *_ours(
                    {"chunk_size": lat_chunk, "ordered": False},
                    f"chunk {lat_chunk} (a multiple of W chunks), unordered",
                ),
                *_rivals(),
            ),
        ),
        Scenario(
            key="throughput_bound",
            title=f"Throughput-bound: {tp_n:,} records, W = {WORKERS}, L = 0",
            measures="records/s, and client CPU s per 100k records vs the JSON floor",
            n=tp_n,
            workers=WORKERS,
            latency_ms=0.0,
            entries=(
                *_ours({"chunk_size": 1000, "ordered": False}, "chunk 1000, unordered"),
                *_rivals(),
                Entry("hand_loop", "hand_loop",
                      "hand-written aiohttp + orjson loop (chunk 200, 34 out, ordered)"),
                Entry("floor", "floor", "JSON encode+decode floor (orjson; stdlib)",
                      {"chunk_size": 200}),
            ),
        ),
        Scenario(
            key="buffer_10x",
            title=f"Dataset 10x the input buffer: {buf_n:,} records, {buf_mb} MB buffer, "
            f"W = {WORKERS}, L = 1 ms",
            measures="completes or not (failures keep their error), and makespan",
            n=buf_n,
            workers=WORKERS,
            latency_ms=1.0,
            input_buffer_mb=buf_mb,
            entries=(
                *_ours({"chunk_size": 100, "ordered": False}, "chunk 100, unordered"),
                *_rivals(),
            ),
        ),
        Scenario(
            key="memory",
            title=f"Memory: {mem_small:,} vs {mem_large:,} records from a generator, L = 0",
            measures="client peak RSS (MiB) at each size; outputs are consumed, not kept",
            n=mem_large,
            workers=WORKERS,
            latency_ms=0.0,
            entries=(
                Entry("ours_small", "ours", f"cspark_async, {mem_small:,} records",
                      {"keep_outputs": False}, n=mem_small, source="generator"),
                Entry("ours_large", "ours", f"cspark_async, {mem_large:,} records",
                      {"keep_outputs": False}, n=mem_large, source="generator"),
            ),
        ),
        Scenario(
            key="loop_stall",
            title=f"Event-loop stalls: {stall_n:,} records of about 2 KB, W = {WORKERS}, L = 0",
            measures="how late a 1 ms ticker in the client's event loop wakes (worst, p99), "
            "and what ran during the worst stall",
            n=stall_n,
            workers=WORKERS,
            latency_ms=0.0,
            entries=(
                Entry("ours_default", "ours", "cspark_async stream_outputs, defaults",
                      {"stall": True, "keep_outputs": False}, source="wide"),
                Entry("ours_chunk2000", "ours", "cspark_async stream_outputs, chunk 2000",
                      {"stall": True, "keep_outputs": False, "chunk_size": 2000},
                      source="wide"),
            ),
        ),
        Scenario(
            key="small_chunks",
            title=f"Small-chunk overhead: {small_n:,} records, W = {WORKERS}, L = 0",
            measures="records/s and client CPU per 100k records by chunk size",
            n=small_n,
            workers=WORKERS,
            latency_ms=0.0,
            entries=tuple(
                Entry(f"{who}_chunk{size}", contender, f"{name}, chunk {size}",
                      {"chunk_size": size})
                for size in (10, 200, 1000)
                for who, contender, name in (
                    ("ours", "ours", "cspark_async"),
                    ("official_async", "official_async_gather", "official AsyncClient gather"),
                )
            ),
        ),
    ]
