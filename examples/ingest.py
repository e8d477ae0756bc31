#!/usr/bin/env python
"""Ingestion job: push a large CSV through a Spark service and write JSON Lines, in flat memory.

    python examples/ingest.py [INPUT.csv [OUTPUT.jsonl]]

INPUT defaults to the shipped 5,000-policy sample, OUTPUT to INPUT's name with `.jsonl` here.
Rows are read one at a time and results written as each chunk drains, so memory does not grow
with the file. One `{"offset", "input", "output", "error"}` line per record; progress on stderr.
On Spark if CSPARK_BASE_URL is set (with CSPARK_API_KEY etc.), else on an in-process emulator;
CSPARK_SERVICE names the service (default `demo/term-life`). Ctrl-C cancels the pipeline.
"""

from __future__ import annotations

import asyncio
import csv
import os
import sys
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import IO

import orjson

from cspark_async import AsyncClient, StreamState
from cspark_async.emulator import Emulator, sample_dataset

SERVICE = os.environ.get("CSPARK_SERVICE", "demo/term-life")


def every(n: int) -> Callable[[StreamState], None]:
    """A `progress=` callback that prints a line each time another `n` records are done."""
    next_at = n

    def report(state: StreamState) -> None:
        nonlocal next_at
        if state.records_completed >= next_at:
            next_at = (state.records_completed // n + 1) * n
            print(
                f"{state.records_completed:>10,} records  {state.records_failed:,} failed  "
                f"{state.records_per_s:,.0f} records/s",
                file=sys.stderr,
            )

    return report


async def ingest(source: IO[str], sink: IO[bytes]) -> StreamState:
    async with AsyncExitStack() as stack:  # closes the client, then stops the emulator
        if os.environ.get("CSPARK_BASE_URL"):
            spark = AsyncClient()  # base URL and credentials from the CSPARK_* variables
        else:
            emu = await stack.enter_async_context(Emulator(workers=8))
            print(
                f"no CSPARK_BASE_URL: using an in-process emulator at {emu.base_url}",
                file=sys.stderr,
            )
            spark = AsyncClient(emu.base_url, api_key="open")
        await stack.enter_async_context(spark)
        rows = csv.DictReader(source)  # lazy: one row per next()
        stream = spark.batches.stream_outputs(SERVICE, rows, progress=every(1_000))
        async with stream as results:
            async for result in results:
                sink.write(
                    b"".join(
                        orjson.dumps({"offset": offset, "input": row, "output": out, "error": err})
                        + b"\n"
                        for offset, row, out, err in result.items()
                    )
                )
        return stream.state


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    source = Path(args[0]) if args else sample_dataset()
    target = Path(args[1]) if len(args) > 1 else Path(source.stem + ".jsonl")
    with source.open(newline="", encoding="utf-8") as src, target.open("wb") as sink:
        try:
            state = asyncio.run(ingest(src, sink))
        except KeyboardInterrupt:  # the pipeline was cancelled; the file holds whole lines
            print(f"interrupted; {target} holds the records done so far", file=sys.stderr)
            return 130
    print(
        f"{state.records_completed:,} records ({state.records_failed:,} failed) "
        f"written to {target} in {state.elapsed_s:.1f}s ({state.records_per_s:,.0f}/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
