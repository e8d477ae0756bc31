"""FastAPI: price uploaded records through a Spark service, streaming NDJSON results back.

    uvicorn examples.fastapi_app:app            # or: python examples/fastapi_app.py
    curl --data-binary @records.jsonl http://127.0.0.1:8000/price

POST a JSON array or JSON Lines of records; each record gets an `{"offset", "output", "error"}`
line, in input order, as its chunk drains. Hanging up cancels the server pipeline. One
AsyncClient, built in the lifespan, serves the app: on Spark if CSPARK_BASE_URL is set (with
CSPARK_API_KEY etc.), else on an in-process emulator; CSPARK_SERVICE names the service.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import StreamingResponse

from cspark_async import AsyncClient, SparkApiError
from cspark_async.emulator import Emulator

SERVICE = os.environ.get("CSPARK_SERVICE", "demo/term-life")
log = logging.getLogger("examples.fastapi_app")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:  # closes the client, then stops the emulator
        if os.environ.get("CSPARK_BASE_URL"):
            spark = AsyncClient()  # base URL and credentials from the CSPARK_* variables
        else:
            emu = await stack.enter_async_context(Emulator(workers=8))
            log.warning("no CSPARK_BASE_URL: using an in-process emulator at %s", emu.base_url)
            spark = AsyncClient(emu.base_url, api_key="open")
        app.state.spark = await stack.enter_async_context(spark)
        yield


app = FastAPI(title="cspark-async example", lifespan=lifespan)


def parse_records(body: bytes) -> list[dict[str, Any]]:
    """A JSON array of objects, or JSON Lines (one object per line); 400 otherwise."""
    where, records = "", []
    try:
        if body.lstrip().startswith(b"["):
            records = orjson.loads(body)
        else:
            for n, line in enumerate(body.splitlines(), 1):
                where = f"line {n}: "
                if line.strip():
                    records.append(orjson.loads(line))
    except orjson.JSONDecodeError as exc:
        raise HTTPException(400, f"{where}invalid JSON ({exc})") from None
    if not records or not all(isinstance(record, dict) for record in records):
        raise HTTPException(400, "expected a JSON array or JSON Lines of objects, one per record")
    return records


@app.post("/price")
async def price(request: Request) -> StreamingResponse:
    records = parse_records(await request.body())
    spark: AsyncClient = request.app.state.spark
    stream = spark.batches.stream_outputs(SERVICE, records)
    try:
        await stream.open()  # creates the pipeline: a bad service is an error status, not a 200
    except SparkApiError as exc:
        raise HTTPException(502, f"Spark refused the batch: {exc.error_message or exc}") from None

    async def ndjson() -> AsyncIterator[bytes]:
        # A hang-up cancels this generator; leaving `async with` early cancels the pipeline.
        async with stream as results:
            async for result in results:
                yield b"".join(
                    orjson.dumps({"offset": offset, "output": output, "error": error}) + b"\n"
                    for offset, _, output, error in result.items()
                )

    return StreamingResponse(ndjson(), media_type="application/x-ndjson")


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
