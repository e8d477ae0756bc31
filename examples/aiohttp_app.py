"""aiohttp.web: price uploaded records through a Spark service, streaming NDJSON results back.

    python examples/aiohttp_app.py    # or: python -m aiohttp.web examples.aiohttp_app:make_app
    curl --data-binary @records.jsonl http://127.0.0.1:8080/price

POST a JSON array or JSON Lines of records; each record gets an `{"offset", "output", "error"}`
line, in input order, as its chunk drains. Hanging up cancels the server pipeline. One
AsyncClient, opened in a cleanup context, serves the app: on Spark if CSPARK_BASE_URL is set
(with CSPARK_API_KEY etc.), else on an in-process emulator; CSPARK_SERVICE names the service.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import orjson
from aiohttp import web

from cspark_async import AsyncClient, SparkApiError
from cspark_async.emulator import Emulator

SERVICE = os.environ.get("CSPARK_SERVICE", "demo/term-life")
SPARK = web.AppKey("spark", AsyncClient)
log = logging.getLogger("examples.aiohttp_app")


async def spark_client(app: web.Application) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:  # closes the client, then stops the emulator
        if os.environ.get("CSPARK_BASE_URL"):
            spark = AsyncClient()  # base URL and credentials from the CSPARK_* variables
        else:
            emu = await stack.enter_async_context(Emulator(workers=8))
            log.warning("no CSPARK_BASE_URL: using an in-process emulator at %s", emu.base_url)
            spark = AsyncClient(emu.base_url, api_key="open")
        app[SPARK] = await stack.enter_async_context(spark)
        yield


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
        raise web.HTTPBadRequest(text=f"{where}invalid JSON ({exc})") from None
    if not records or not all(isinstance(record, dict) for record in records):
        raise web.HTTPBadRequest(text="expected a JSON array or JSON Lines of objects")
    return records


async def price(request: web.Request) -> web.StreamResponse:
    records = parse_records(await request.read())
    stream = request.app[SPARK].batches.stream_outputs(SERVICE, records)
    try:
        await stream.open()  # creates the pipeline: a refused batch is an error status, not a 200
    except SparkApiError as exc:
        raise web.HTTPBadGateway(
            text=f"Spark refused the batch: {exc.error_message or exc}"
        ) from None
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    # A hang-up makes write() raise; leaving `async with` early cancels the pipeline.
    async with stream as results:
        async for result in results:
            await response.write(
                b"".join(
                    orjson.dumps({"offset": offset, "output": output, "error": error}) + b"\n"
                    for offset, _, output, error in result.items()
                )
            )
    await response.write_eof()
    return response


def make_app(argv: list[str] | None = None) -> web.Application:
    app = web.Application(client_max_size=256 * 2**20)  # the whole upload is read (1 MiB default)
    app.cleanup_ctx.append(spark_client)
    app.router.add_post("/price", price)
    return app


if __name__ == "__main__":
    web.run_app(make_app(), host="127.0.0.1", port=8080)
