#!/usr/bin/env python
"""The official documentation's "Workflow Example" (`create_and_run`), ported to cspark-async.

    python examples/seed_workflow.py [inputs.json [outputs.json]]

inputs.json holds records in JSON-array form (a header row, then value rows) or a list of
objects; without it a small built-in dataset is used. With CSPARK_BASE_URL set (and a
credential in CSPARK_API_KEY, CSPARK_BEARER_TOKEN or CSPARK_CLIENT_ID/SECRET) it runs against
Spark; otherwise against an in-process emulator, whose `my-folder/my-service` echoes its inputs.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import anyio

import cspark_async as Spark
from cspark_async.emulator import Emulator

SAMPLE: list[Any] = [["value"], *([i] for i in range(1, 501))]


async def create_and_run(
    batches: Spark.AsyncBatches,
    inputs_path: str | None,
    outputs_path: str | None,
    poll_s: float,
) -> list[Any]:
    def print_status(status: dict[str, Any], msg: str) -> None:
        """Convenience function to print the status of the batch pipeline."""
        a, b = status["records_available"], status["record_submitted"]
        c = status["records_completed"]
        print(f"{msg} :: {a} of {b} records submitted ({c} processed)")

    data = json.loads(await anyio.Path(inputs_path).read_text()) if inputs_path else SAMPLE
    chunks = Spark.create_chunks(data, chunk_size=150)

    if len(chunks) == 0:
        print("no data to process")
        return []

    results: list[Any] = []
    batch = await batches.create("my-folder/my-service")
    print("batch created", batch.data)

    if not isinstance(batch.data, dict):
        print("failed to create a batch pipeline")
        return []

    pipeline = batches.of(batch.data["id"])
    try:
        submission = await pipeline.push(chunks=chunks)
        print("assessed data", pipeline.stats)
        print("submitted data", submission.data)
        await asyncio.sleep(poll_s)

        status = (await pipeline.get_status()).data
        print_status(status, "first status check")

        # The seed stops once every record is computed, which can leave computed outputs in
        # the buffer; this loop also runs until they have all been pulled.
        while (
            status["records_completed"] < status["record_submitted"]
            or status["records_available"] > 0
        ):
            status = (await pipeline.get_status()).data
            print_status(status, "subsequent status check")

            if status["records_available"] > 0:
                result = await pipeline.pull()
                print_status(result.data["status"], "data retrieval status")
                for r in result.parsed.data:
                    results.extend(r.records())  # one dict per record, whatever the form
                print(f"consumed {len(results)} outputs so far")

            await asyncio.sleep(poll_s)
    except Spark.SparkError as e:
        print(e)
    finally:
        state = await pipeline.dispose()
        print(state.data)
        print(f"consumed a total of {len(results)} outputs \nDone! 🎉")
        if outputs_path:
            await anyio.Path(outputs_path).write_text(json.dumps(results, indent=2))
    return results


async def main(argv: list[str]) -> None:
    inputs_path = argv[1] if len(argv) > 1 else None
    outputs_path = argv[2] if len(argv) > 2 else None
    if os.environ.get("CSPARK_BASE_URL"):
        spark = Spark.AsyncClient()  # base URL and credentials from the environment
        async with spark.batches as b:  # closes the client on exit, as in the documented example
            await create_and_run(b, inputs_path, outputs_path, poll_s=2.0)
        return
    async with Emulator(workers=4) as emu:
        spark = Spark.AsyncClient(emu.base_url, api_key="open")
        async with spark.batches as b:
            await create_and_run(b, inputs_path, outputs_path, poll_s=0.05)


if __name__ == "__main__":
    asyncio.run(main(sys.argv))
