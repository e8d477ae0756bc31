"""The contenders, as each runs inside its own child process (see `_child.py`).

Each takes the emulator's base URL, the records (built before the clock starts) and its options,
and returns an `Outcome`: the outputs it collected (checked after the clock stops), an error if
it failed, and counters worth reporting. The clock covers creating the client, the batch, every
push and pull, and closing: what a user waits for.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine, Iterable
from itertools import repeat
from typing import Any

from attrs import define, field
from workload import HEADER, SERVICE

__all__ = ["CONTENDERS", "Outcome"]


@define
class Outcome:
    outputs: list[Any] | None = None  # collected outputs, when the contender keeps them
    count: int = 0  # records received (counted as they arrive when outputs are not kept)
    id_total: int | None = None  # sum of the id column, when computed on the fly
    error: str | None = None
    extra: dict[str, Any] = field(factory=dict)


def _split(url: str) -> tuple[str, str]:
    """`http://host:port/tenant` -> (`http://host:port`, `tenant`) for the official BaseUrl."""
    root, tenant = url.rsplit("/", 1)
    return root, tenant


def _describe(exc: BaseException) -> str:
    """One short line. The official SDK's str() holds the whole request, headers and API key
    included, so only its message and the server's error are kept."""
    text = getattr(exc, "message", None) or str(exc)
    response = getattr(getattr(exc, "cause", None), "response", None)
    body = getattr(response, "body", None) or getattr(response, "raw", None)
    if body:  # the emulator's JSON error carries the status the SDK may have lost (413)
        try:
            doc = json.loads(body)
            error = doc["error"]
            text = f"HTTP {doc['status']} {error['code']}: {error['message']}"
        except (ValueError, KeyError, TypeError):
            pass
    text = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return f"{type(exc).__name__}: {text}"[:300]


# ---- 1. cspark_async ---------------------------------------------------------------------------


def _run(main: Callable[[Outcome], Coroutine[Any, Any, None]], out: Outcome) -> Outcome:
    """`asyncio.run(main(out))`. The coroutine fills `out` in and returns None: on exit,
    asyncio.Runner formats a repr of a partial holding the main task (Python 3.11's signal
    handler restore), and a task's repr includes its result: a result holding 200k outputs
    cost a second of CPU, billed to the contender."""
    asyncio.run(main(out))
    return out


async def _ours(url: str, records: Iterable[Any], opts: dict[str, Any], out: Outcome) -> None:
    from cspark_async import AsyncClient

    stream_opts = {k: opts[k] for k in ("chunk_size", "max_in_flight", "ordered") if k in opts}
    meter = None
    if opts.get("stall"):
        from stall import StallMeter

        meter = StallMeter()
        meter.start()
    async with AsyncClient(url, api_key="bench") as spark:
        # `async with` is the README's deterministic cleanup point: the stream is shut down
        # before the client closes, even when the loop body raises.
        stream = spark.batches.stream_outputs(SERVICE, records, **stream_opts)
        try:
            async with stream:
                async for result in stream:
                    if out.outputs is not None:
                        out.outputs.extend(result.outputs)
                    else:  # streaming from a generator: keep nothing, but check every id
                        out.count += result.records
                        ids = sum(o["id"] for o in result.outputs if o is not None)
                        out.id_total = (out.id_total or 0) + ids
        except Exception as exc:
            out.error = _describe(exc)
        s = stream.state
        out.extra = {
            "chunks": s.chunks_pushed,
            "pulls": s.pulls,
            "empty_pulls": s.empty_pulls,
            "throttled": s.throttled,
            "chunks_retried": s.chunks_retried,
            "in_flight_limit": s.in_flight_limit,
            "requests_per_chunk": (s.pushes + s.pulls) / max(1, s.chunks_pushed),
        }
    if meter is not None:
        await meter.stop()
        out.extra.update(meter.report())


def ours(url: str, records: Iterable[Any], opts: dict[str, Any]) -> Outcome:
    """`spark.batches.stream_outputs(uri, records, ...)`: create, stream, close, one call."""
    out = Outcome(outputs=[] if opts.get("keep_outputs", True) else None)
    return _run(lambda o: _ours(url, records, opts, o), out)


# ---- 2. official cspark, sync Client, the documented workflow example ------------------------


def official_sync_seed(url: str, records: Iterable[Any], opts: dict[str, Any]) -> Outcome:
    """The official documentation's "Workflow Example" (`create_and_run`), line for line, with
    three changes, all stated in benchmarks/README.md: the dataset arrives as a list instead of
    `json.load`, the outputs stay in memory instead of `json.dump`, and the loop also runs
    while outputs are still available (verbatim, it stops once every record is *computed*,
    dropping what is still in the output buffer: at L = 0 that is every output). Its prints go
    to the child's /dev/null."""
    import cspark.sdk as Spark

    chunk_size = opts.get("chunk_size", 150)
    poll_s = opts.get("poll_s", 2.0)
    root, tenant = _split(url)
    out = Outcome()

    def create_and_run(batches: Any) -> None:
        def print_status(status: dict[str, Any], msg: str) -> None:
            a, b = status["records_available"], status["record_submitted"]
            c = status["records_completed"]
            print(f"{msg} :: {a} of {b} records submitted ({c} processed)")

        data = records  # the documented example: json.load(f) of path/to/inputs.json
        chunks = Spark.create_chunks(data, chunk_size=chunk_size)

        if len(chunks) == 0:
            print("no data to process")
            return

        results: list[Any] = []
        batch = batches.create(SERVICE)
        print("batch created", batch.data)

        if not isinstance(batch.data, dict):
            print("failed to create a batch pipeline")
            return

        pipeline = batches.of(batch.data["id"])
        try:
            submission = pipeline.push(chunks=chunks)
            print("assessed data", pipeline.stats)
            print("submitted data", submission.data)
            time.sleep(1)

            status = pipeline.get_status().data
            print_status(status, "first status check")

            # The one change to the loop: `or records_available > 0` (see the docstring).
            while (
                status["records_completed"] < status["record_submitted"]
                or status["records_available"] > 0
            ):
                status = pipeline.get_status().data
                print_status(status, "subsequent status check")

                if status["records_available"] > 0:
                    result = pipeline.pull()
                    print_status(result.data["status"], "data retrieval status")
                    for r in result.data["data"]:
                        results.extend(r["outputs"])
                    print(f"consumed {len(results)} outputs so far")

                time.sleep(poll_s)
        except Exception as e:
            print(e)
            out.error = _describe(e)  # the example only prints it; the benchmark records it
        finally:
            state = pipeline.dispose()
            print(state.data)
            print(f"consumed a total of {len(results)} outputs \nDone! 🎉")
            out.outputs = results

    spark = Spark.Client(base_url=Spark.BaseUrl(root, tenant), api_key="bench", logger=False)
    with spark:  # the documented `with spark.batches as b:` does not exist in cspark 0.3.x
        create_and_run(spark.batches)
    return out


# ---- 3. official cspark, AsyncClient, the obvious way -----------------------------------------


async def _official_async(url: str, records: Any, opts: dict[str, Any], out: Outcome) -> None:
    import cspark.sdk as Spark

    chunk_size = opts.get("chunk_size", 200)  # create_chunks' default
    poll_s = opts.get("poll_s", 0.1)
    root, tenant = _split(url)
    outputs: list[Any] = []
    out.outputs = outputs
    async with Spark.AsyncClient(
        base_url=Spark.BaseUrl(root, tenant), api_key="bench", logger=False
    ) as spark:
        batches = spark.batches
        chunks = Spark.create_chunks(records, chunk_size=chunk_size)
        batch = await batches.create(SERVICE)
        pipeline = batches.of(batch.data["id"])
        try:
            # Every chunk in its own push, all at once: what asyncio.gather is for.
            await asyncio.gather(*(pipeline.push(chunks=[chunk]) for chunk in chunks))
            while True:
                status = (await pipeline.get_status()).data
                if status["records_available"] > 0:
                    result = await pipeline.pull()
                    for r in result.data["data"]:
                        outputs.extend(r["outputs"])
                elif status["records_completed"] >= status["record_submitted"]:
                    break
                else:
                    await asyncio.sleep(poll_s)
        except Exception as exc:
            out.error = _describe(exc)
        finally:
            try:
                await pipeline.dispose()
            except Exception as exc:
                out.error = out.error or _describe(exc)


def official_async(url: str, records: Iterable[Any], opts: dict[str, Any]) -> Outcome:
    """Official `AsyncClient`: `create_chunks`, push every chunk with `asyncio.gather`, then poll
    `get_status` (every `poll_s` while nothing is ready) and `pull` until every record is back."""
    return _run(lambda o: _official_async(url, records, opts, o), Outcome())


# ---- 4. a hand-written aiohttp + orjson loop: the achievable floor ----------------------------


async def _hand_loop(url: str, records: Any, opts: dict[str, Any], out: Outcome) -> None:
    """The smallest honest loop with the guarantees the measurement cares about: every output
    returned, one dict per record, in input order. One session, pre-sized chunks, a bounded
    number of chunks out at once (as many as our default window), concurrent POSTs, one puller.
    No retries beyond waiting out a full input buffer: on loopback nothing else fails."""
    import aiohttp
    import orjson

    size = opts.get("chunk_size", 200)
    window = asyncio.Semaphore(opts.get("max_in_flight", 34))
    header, rows = records[0], records[1:]
    chunks = [rows[i : i + size] for i in range(0, len(rows), size)]
    outputs: list[Any] = []
    out.outputs = outputs
    tenant = url.rsplit("/", 1)[1]
    headers = {"x-synthetic-key": "bench", "x-tenant-name": tenant,
               "Content-Type": "application/json"}
    requests = 0
    async with aiohttp.ClientSession(headers=headers) as session:
        api = f"{url}/api/v4/batch"
        async with session.post(api, data=orjson.dumps({"service": SERVICE})) as resp:
            batch_id = orjson.loads(await resp.read())["id"]
        base = f"{api}/{batch_id}"

        async def push(seq: int, chunk: list[Any]) -> None:
            nonlocal requests
            data = {"inputs": [header, *chunk]}
            body = orjson.dumps({"chunks": [{"id": str(seq), "size": len(chunk), "data": data}]})
            while True:
                requests += 1
                async with session.post(f"{base}/chunks", data=body) as resp:
                    await resp.read()
                    if resp.status == 429:
                        await asyncio.sleep(0.01)
                        continue
                    if resp.status != 200:
                        raise RuntimeError(f"push answered {resp.status}")
                    return

        pushes: set[asyncio.Task[None]] = set()

        async def produce() -> None:
            for seq, chunk in enumerate(chunks):
                await window.acquire()
                task = asyncio.create_task(push(seq, chunk))
                pushes.add(task)
                task.add_done_callback(pushes.discard)

        ready: dict[int, list[dict[str, Any]]] = {}
        following = 0
        producer = asyncio.create_task(produce())
        try:
            while following < len(chunks):
                if producer.done() and producer.exception():
                    raise RuntimeError("the producer failed") from producer.exception()
                requests += 1
                async with session.get(f"{base}/chunkresults", params={"max": "100"}) as resp:
                    doc = orjson.loads(await resp.read())
                results = doc.get("data") or []
                for result in results:
                    names, *values = result["outputs"]
                    ready[int(result["id"])] = list(map(dict, map(zip, repeat(names), values)))
                while following in ready:
                    outputs.extend(ready.pop(following))
                    following += 1
                    window.release()
                if not results:
                    await asyncio.sleep(0.002)
            await producer
        finally:
            producer.cancel()
            for task in list(pushes):
                task.cancel()
        async with session.patch(base, data=orjson.dumps({"batch_status": "closed"})) as resp:
            await resp.read()
    out.extra = {"requests": requests, "chunks": len(chunks),
                 "requests_per_chunk": requests / max(1, len(chunks))}


def hand_loop(url: str, records: Iterable[Any], opts: dict[str, Any]) -> Outcome:
    """A hand-written aiohttp + orjson loop (see `_hand_loop`)."""
    return _run(lambda o: _hand_loop(url, records, opts, o), Outcome())


CONTENDERS = {
    "ours": ours,
    "official_sync_seed": official_sync_seed,
    "official_async_gather": official_async,
    "hand_loop": hand_loop,
}


def check(outputs: list[Any]) -> tuple[int, int]:
    """(records, sum of ids) in outputs of either shape: dicts (ours) or JSON-array rows (the
    official SDK keeps each chunk's header row; those are skipped)."""
    count = total = 0
    for item in outputs:
        if isinstance(item, dict):
            count += 1
            total += item["id"]
        elif item and item != HEADER:  # create_chunks' empty trailing chunk echoes `[]`
            count += 1
            total += item[0]
    return count, total
