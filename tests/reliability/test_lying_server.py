"""A server that misbehaves in ways the emulator never scripts: our own proxy between the client
and the emulator changes, drops, swallows or withholds answers. Each case asserts what the
stream promises: every record exactly once and in order, or a clear error that says why;
never a hang, never another record's output.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import attrs
import orjson
import pytest
from aiohttp import web

import cspark_async as sdk
from cspark_async import AsyncClient
from cspark_async.emulator import Emulator

from ._proxy import Exchange, FakeClock, Proxy, json_response, proxy, timeout

SERVICE = "t/n"


def tagged(record: dict[str, Any]) -> dict[str, Any]:
    return {"n": record["n"], "double": record["n"] * 2}


Rule = Callable[[Exchange], Any]


@asynccontextmanager
async def lying(
    rule: Rule, *, workers: int = 4, **client: Any
) -> AsyncIterator[tuple[Emulator, Proxy, AsyncClient]]:
    """An emulator, a proxy in front of it scripted by `rule`, and a client on the proxy."""
    client.setdefault("logger", False)
    client.setdefault("retry_interval", 0.001)
    async with (
        Emulator(workers=workers, services={SERVICE: tagged}) as emu,
        proxy(emu.base_url.rsplit("/", 1)[0], rule) as server,
        AsyncClient(server.base_url(), api_key="open", **client) as spark,
    ):
        yield emu, server, spark


def on_fake_clock(spark: AsyncClient, **policy: Any) -> tuple[AsyncClient, FakeClock]:
    clock = FakeClock()
    changed = attrs.evolve(spark.policy, clock=clock, sleep=clock.sleep, **policy)
    return spark.with_options(policy=changed), clock


async def new_pipeline(spark: AsyncClient) -> sdk.AsyncPipeline:
    batch = await spark.batches.create(SERVICE)
    return spark.batches.of(batch.data["id"])


async def collect(stream: sdk.ResultStream) -> list[int]:
    return [o["n"] async for r in stream for o in r.outputs if o is not None]


def records(count: int) -> list[dict[str, int]]:
    return [{"n": n} for n in range(count)]


def mangle_pull(change: Callable[[dict[str, Any]], None], *, every: bool = False) -> Rule:
    """Forward pulls, then `change` the first chunk result of each answer (or `every` one)."""

    async def rule(exchange: Exchange) -> web.StreamResponse | None:
        if exchange.kind != "pull":
            return None
        status, body = await exchange.forward_json()
        if status == 200 and body.get("data"):
            for result in body["data"] if every else body["data"][:1]:
                change(result)
        return json_response(body, status)

    return rule


# ---- malformed 200s: never another record's output, never a silent None --------------------


def short_errors(result: dict[str, Any]) -> None:
    result["errors"] = result["errors"][:-1]


def short_row(result: dict[str, Any]) -> None:
    result["outputs"][1] = result["outputs"][1][:-1]


def long_row(result: dict[str, Any]) -> None:
    result["outputs"][1] = [*result["outputs"][1], "extra"]


def header_not_names(result: dict[str, Any]) -> None:
    result["outputs"][0] = [1, *result["outputs"][0][1:]]


def one_output_missing(result: dict[str, Any]) -> None:
    result["outputs"] = result["outputs"][:-1]


@pytest.mark.parametrize(
    ("change", "rows", "message"),
    [
        pytest.param(short_errors, False, "errors for", id="errors-shorter-than-chunk"),
        pytest.param(short_row, True, "values in output row 0", id="row-shorter-than-header"),
        pytest.param(long_row, True, "values in output row 0", id="row-longer-than-header"),
        pytest.param(header_not_names, True, "header row that is not all names", id="bad-header"),
        pytest.param(one_output_missing, False, "outputs for", id="an-output-missing"),
    ],
)
async def test_a_result_that_does_not_line_up_is_a_stream_error(
    change: Callable[[dict[str, Any]], None], rows: bool, message: str
) -> None:
    async with lying(mangle_pull(change)) as (_emu, _server, spark):
        pipeline = await new_pipeline(spark)
        data: list[Any] = [["n"], *([n] for n in range(40))] if rows else records(40)
        with pytest.raises(sdk.StreamError, match=message) as info:
            await collect(pipeline.stream_outputs(data, chunk_size=10))
    assert info.value.chunk_id is not None
    assert info.value.outstanding  # names the records left without a result


async def test_an_output_with_no_error_is_a_per_record_failure_that_says_so() -> None:
    def blank(result: dict[str, Any]) -> None:
        result["outputs"][3] = None  # and errors[3] stays None

    async with lying(mangle_pull(blank, every=True)) as (_emu, _server, spark):
        pipeline = await new_pipeline(spark)
        results = [r async for r in pipeline.stream_outputs(records(40), chunk_size=10)]
    failed = [(o, r, out, err) for res in results for o, r, out, err in res.items() if out is None]
    assert len(failed) == 4  # one per chunk: the proxy blanked each answer's first result
    for _offset, _record, _output, error in failed:
        assert error is not None
        assert error["error"] == "NO_RESULT"
    assert sum(r.failed for r in results) == 4


# ---- lost answers, odd counters ---------------------------------------------------------------


def odd_counters(kind: str) -> Callable[[dict[str, Any]], None]:
    def change(status: dict[str, Any]) -> None:
        for key in ("chunks_available", "workers_in_use", "input_buffer_used_bytes"):
            if kind == "strings":
                status[key] = str(status.get(key, 0))
            elif kind == "negative":
                status[key] = -1
            elif kind == "missing":
                status.pop(key, None)
            elif kind == "garbage":
                status[key] = "n/a"

    return change


@pytest.mark.parametrize("counters", ["strings", "negative", "missing", "garbage"])
async def test_lost_pull_answers_with_odd_counters_still_deliver_every_record_once(
    counters: str,
) -> None:
    change = odd_counters(counters)
    rng = random.Random(counters)

    async def rule(exchange: Exchange) -> web.StreamResponse | None:
        if exchange.kind != "pull":
            return None
        status, body = await exchange.forward_json()
        if rng.random() < 0.3:
            exchange.drop()  # the server handed results over; the client never hears of them
        change(body["status"])
        return json_response(body, status)

    async with lying(rule, max_retries=8) as (_emu, _server, spark):
        spark, _clock = on_fake_clock(spark, stall_timeout=1e9)
        pipeline = await new_pipeline(spark)
        stream = pipeline.stream_outputs(records(600), chunk_size=10)
        with anyio.fail_after(60):
            got = await collect(stream)
    assert got == list(range(600))
    assert stream.state.chunks_retried > 0  # lost results were pushed again


async def test_a_swallowed_push_is_pushed_again() -> None:
    swallowed: set[str] = set()
    pushed: list[str] = []  # chunk ids, once per POST that carried them

    async def rule(exchange: Exchange) -> web.StreamResponse | None:
        if exchange.kind != "push":
            return None
        ids = [chunk["id"] for chunk in orjson.loads(exchange.body)["chunks"]]
        pushed.extend(ids)
        if not swallowed and any(i.endswith("-3") for i in ids):
            swallowed.update(ids)  # a 200 for chunks the server never saw
            return json_response({"batch_status": "in_progress", "record_submitted": 0})
        return None

    async with lying(rule) as (_emu, _server, spark):
        pipeline = await new_pipeline(spark)
        stream = pipeline.stream_outputs(records(100), chunk_size=10)
        got = await collect(stream)
    assert got == list(range(100))
    assert swallowed
    # Ten chunks, each pushed once, and those of the swallowed POST once more.
    assert len(set(pushed)) == 10
    assert sorted(pushed) == sorted([*set(pushed), *swallowed])


# ---- endless throttles, a server that stops answering: never a hang --------------------------


async def test_endless_throttles_end_in_a_stall_error_and_a_zero_retry_after_backs_off() -> None:
    async def rule(exchange: Exchange) -> web.StreamResponse | None:
        if exchange.kind == "push":
            return json_response(
                {"error": {"code": "RATE_LIMITED", "message": "slow down"}},
                429,
                **{"Retry-After": "0"},
            )
        return None

    async with lying(rule) as (_emu, server, spark):
        spark, clock = on_fake_clock(spark, stall_timeout=30.0)
        pipeline = await new_pipeline(spark)
        with anyio.fail_after(30), pytest.raises(sdk.StreamError, match="stalled") as info:
            await collect(pipeline.stream_outputs(records(50), chunk_size=10))
    message = str(info.value)
    assert "accept pushes" in message  # what it was waiting for
    assert "throttled" in message
    assert info.value.outstanding == ((0, 49),)
    # Retry-After: 0 is floored: a push every 0.1 s of (fake) time per pusher, not a tight loop.
    pushes = server.count("push")
    assert pushes <= (clock.now - 1000.0) / 0.1 * 8 + 8
    assert spark.policy.retry_after({"Retry-After": "0"}) == 0.1


async def test_a_server_that_stops_answering_ends_in_a_stall_error() -> None:
    hang = asyncio.Event()

    async def rule(exchange: Exchange) -> web.StreamResponse | None:
        if exchange.kind == "pull":
            await hang.wait()  # never set: the answer never comes
        return None

    async with lying(rule) as (_emu, _server, spark):
        spark, _clock = on_fake_clock(spark, stall_timeout=20.0)
        pipeline = await new_pipeline(spark)
        with anyio.fail_after(30), pytest.raises(sdk.StreamError, match="stalled") as info:
            await collect(pipeline.stream_outputs(records(30), chunk_size=10))
    assert "waiting for" in str(info.value)
    assert info.value.outstanding == ((0, 29),)


async def test_asyncio_timeout_on_a_dead_server_returns_promptly_and_says_why_it_could_not_cancel(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead = asyncio.Event()

    async def rule(exchange: Exchange) -> web.StreamResponse | None:
        if dead.is_set() or exchange.kind == "pull":
            dead.set()
            await asyncio.Event().wait()  # from the first pull on, nothing answers
        return None

    logger = logging.getLogger("test.dead-server")
    # The pull hangs longer than the caller waits; the cancel then meets a dead server too.
    async with lying(rule, timeout=2, max_retries=0, logger=logger) as (_emu, _server, spark):
        pipeline = await new_pipeline(spark)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with caplog.at_level(logging.WARNING, logger="test.dead-server"):
            with pytest.raises(asyncio.TimeoutError):  # TimeoutError itself on 3.11+
                async with timeout(1):
                    await collect(pipeline.stream_outputs(records(30), chunk_size=10))
            returned = loop.time() - started
            await spark.close()  # waits for the clean-up it was handed
    assert returned < 3  # about the 1 s asked for, not the 15 s clean-up limit
    assert any("could not cancel" in r.getMessage() for r in caplog.records)
    assert any("timed out" in r.getMessage() for r in caplog.records)


async def test_a_dead_server_costs_one_timeout_per_attempt_and_no_backoff() -> None:
    async def rule(exchange: Exchange) -> web.StreamResponse | None:
        if exchange.kind == "pull":
            await asyncio.Event().wait()  # never answers
        return None

    async with lying(rule, timeout=0.3, max_retries=2, retry_interval=60) as (_, server, spark):
        pipeline = await new_pipeline(spark)
        with (
            anyio.fail_after(5),  # no 60 s backoff after a timeout: it has waited enough
            pytest.raises(sdk.StreamError, match=r"could not be pulled after 3 attempt") as info,
        ):
            await collect(pipeline.stream_outputs(records(30), chunk_size=10))
    assert server.count("pull") == 3
    assert info.value.outstanding == ((0, 29),)


# ---- 404 confirmed, long 5xx, max_retries=0 ---------------------------------------------------


async def test_a_single_404_on_a_pull_is_confirmed_before_giving_up() -> None:
    fired = False

    async def rule(exchange: Exchange) -> web.StreamResponse | None:
        nonlocal fired
        if exchange.kind == "pull" and not fired:
            fired = True
            return json_response({"error": {"code": "NOT_FOUND", "message": "no such batch"}}, 404)
        return None

    async with lying(rule) as (_emu, server, spark):
        pipeline = await new_pipeline(spark)
        assert await collect(pipeline.stream_outputs(records(50), chunk_size=10)) == list(range(50))
    assert server.count("status") == 1  # the confirmation


async def test_a_batch_gone_for_good_is_reported_as_vanished() -> None:
    gone = False

    async def rule(exchange: Exchange) -> web.StreamResponse | None:
        nonlocal gone
        if exchange.kind == "pull" and server.count("pull") > 2:
            gone = True
        if gone and exchange.kind in ("pull", "status"):
            return json_response({"error": {"code": "NOT_FOUND", "message": "no such batch"}}, 404)
        return None

    async with lying(rule, workers=1) as (_emu, server, spark):
        pipeline = await new_pipeline(spark)
        with pytest.raises(sdk.StreamError, match="vanished"):
            await collect(pipeline.stream_outputs(records(500), chunk_size=10))


async def refuse_pushes(exchange: Exchange) -> web.StreamResponse | None:
    if exchange.kind == "push":
        return json_response({"error": {"code": "BOOM", "message": "down"}}, 503)
    return None


async def test_pushes_refused_with_5xx_for_long_name_the_record_range() -> None:
    async with lying(refuse_pushes) as (_emu, _server, spark):
        pipeline = await new_pipeline(spark)
        with pytest.raises(sdk.StreamError, match=r"\(records 0-9\) could not be pushed after 3"):
            await collect(pipeline.stream_outputs(records(10), chunk_size=10))


async def test_max_retries_zero_holds_for_streams() -> None:
    async with lying(refuse_pushes, max_retries=0) as (_emu, server, spark):
        pipeline = await new_pipeline(spark)
        with pytest.raises(sdk.StreamError, match="after 1 attempt"):
            await collect(pipeline.stream_outputs(records(10), chunk_size=10))
    assert server.count("push") == 1


async def test_logger_false_holds_for_streams(caplog: pytest.LogCaptureFixture) -> None:
    async def rule(exchange: Exchange) -> web.StreamResponse | None:
        if exchange.kind == "pull" and server.count("pull") % 2 == 0:
            await exchange.forward()
            exchange.drop()
        return None

    with caplog.at_level(logging.DEBUG):
        async with lying(rule, max_retries=8, logger=False) as (_emu, server, spark):
            pipeline = await new_pipeline(spark)
            assert await collect(pipeline.stream_outputs(records(200), chunk_size=10)) == list(
                range(200)
            )
    assert [r for r in caplog.records if r.name.startswith("cspark_async")] == []


# ---- create: never two batches ----------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_a_create_applied_then_failed_is_not_sent_again(status: int) -> None:
    async def rule(exchange: Exchange) -> web.StreamResponse | None:
        if exchange.kind == "create":
            await exchange.forward()  # applied...
            return json_response({"error": {"code": "GATEWAY", "message": "upstream"}}, status)
        return None

    async with lying(rule) as (emu, server, spark):
        with pytest.raises(sdk.SparkApiError) as info:
            await spark.batches.create(SERVICE)
        assert len(list(emu.engine.batches())) == 1
    assert info.value.status == status
    assert "not retried" in str(info.value)
    assert server.count("create") == 1


async def test_a_create_refused_with_503_is_retried() -> None:
    refused = 0

    async def rule(exchange: Exchange) -> web.StreamResponse | None:
        nonlocal refused
        if exchange.kind == "create" and refused < 2:
            refused += 1
            return json_response({"error": {"code": "BUSY", "message": "later"}}, 503)
        return None

    async with lying(rule) as (emu, server, spark):
        await spark.batches.create(SERVICE)
        assert len(list(emu.engine.batches())) == 1
    assert server.count("create") == 3


# ---- records the caller reuses ----------------------------------------------------------------


async def test_a_generator_that_reuses_one_dict_gets_each_rows_own_output() -> None:
    def reused() -> Any:
        row: dict[str, int] = {}
        for n in range(2000):
            row["n"] = n
            yield row

    async with lying(lambda _e: _none()) as (_emu, _server, spark):
        pipeline = await new_pipeline(spark)
        results = [r async for r in pipeline.stream_outputs(reused(), chunk_size=50)]
    outputs = [o["n"] for r in results for o in r.outputs]
    inputs = [rec["n"] for r in results for rec in r.inputs]
    assert outputs == list(range(2000))
    assert inputs == list(range(2000))


async def test_rows_from_a_generator_come_back_as_lists_of_their_own() -> None:
    def reused() -> Any:
        row = ["n"]
        yield row
        for n in range(300):
            row = [n] if n % 2 else row
            row[:] = [n]
            yield row

    async with lying(lambda _e: _none()) as (_emu, _server, spark):
        pipeline = await new_pipeline(spark)
        results = [r async for r in pipeline.stream_outputs(reused(), chunk_size=50)]
    inputs = [row for r in results for row in r.inputs]
    assert inputs == [[n] for n in range(300)]
    assert {type(row) for row in inputs} == {list}
    assert len({id(row) for row in inputs}) == 300  # each its own copy


async def _none() -> None:
    return None


# ---- found by review: each a defect of the first engine v2 draft -------------------------------


async def test_a_throttle_without_retry_after_is_paced_not_a_tight_loop() -> None:
    async def rule(exchange: Exchange) -> web.StreamResponse | None:
        if exchange.kind == "push":
            return json_response({"error": {"code": "RATE_LIMITED", "message": "no"}}, 429)
        return None

    async with lying(rule, retry_interval=0) as (_emu, server, spark):
        spark, clock = on_fake_clock(spark, stall_timeout=10.0)
        pipeline = await new_pipeline(spark)
        with pytest.raises(sdk.StreamError, match="stalled"):
            await collect(pipeline.stream_outputs(records(10), chunk_size=10))
    # retry_interval=0 and no Retry-After: still the 0.1 s floor between pushes.
    assert server.count("push") <= (clock.now - 1000.0) / 0.1 + 2


async def test_an_unreadable_pull_is_a_lost_answer_not_the_end() -> None:
    mangled = 0

    async def rule(exchange: Exchange) -> web.StreamResponse | None:
        nonlocal mangled
        if exchange.kind == "pull" and not mangled:
            mangled += 1
            await exchange.forward()  # the server hands the results over...
            return json_response({"data": "lost", "status": {}})  # ...the client can't read them
        return None

    async with lying(rule) as (_emu, _server, spark):
        pipeline = await new_pipeline(spark)
        got = await collect(pipeline.stream_outputs(records(100), chunk_size=10))
    assert got == list(range(100))
    assert mangled == 1


async def test_a_push_answered_by_a_page_that_is_not_json_ends_the_stream_at_once() -> None:
    async def rule(exchange: Exchange) -> web.StreamResponse | None:
        if exchange.kind == "push":  # a proxy's sign-in page, with a 200
            return web.Response(text="<html>sign in</html>", content_type="text/html")
        return None

    async with lying(rule) as (_emu, server, spark):
        pipeline = await new_pipeline(spark)
        with anyio.fail_after(10), pytest.raises(sdk.InvalidResponseError, match="not JSON"):
            await collect(pipeline.stream_outputs(records(10), chunk_size=10))
    assert server.count("push") == 1


async def test_the_owner_cancelling_mid_stream_is_a_stream_error() -> None:
    async with lying(lambda _e: _none(), workers=1) as (_emu, _server, spark):
        pipeline = await new_pipeline(spark)
        with pytest.raises(sdk.StreamError, match="cancelled") as info:
            async for result in pipeline.stream_outputs(records(500), chunk_size=10):
                if result.offset == 50:
                    await pipeline.cancel()
    assert not isinstance(info.value, sdk.SparkSdkError)
    assert info.value.records_submitted


async def test_a_mangled_result_error_carries_the_books() -> None:
    async with lying(mangle_pull(short_errors)) as (_emu, _server, spark):
        pipeline = await new_pipeline(spark)
        with pytest.raises(sdk.StreamError) as info:
            await collect(pipeline.stream_outputs(records(200), chunk_size=10))
    error = info.value
    assert error.records_submitted
    assert error.counters
    assert error.chunk_id is not None
    first, _last = error.outstanding[0]
    assert error.offset is not None
    assert first <= error.offset


async def test_open_cancelled_while_creating_returns_promptly_and_cancels_the_batch() -> None:
    patches = asyncio.Event()

    async def rule(exchange: Exchange) -> web.StreamResponse | None:
        if exchange.kind == "create":
            await asyncio.sleep(0.1)  # the create lands after the caller gave up
        if exchange.kind == "patch":
            patches.set()
        return None

    async with lying(rule) as (emu, _server, spark):
        loop = asyncio.get_running_loop()
        started = loop.time()
        with anyio.move_on_after(0.02):
            await spark.batches.stream_outputs(SERVICE, records(10)).open()
        assert loop.time() - started < 0.5  # the scope absorbed it, promptly
        await spark.close()  # waits for the hand-off: the late batch is cancelled
        assert patches.is_set()
        (batch,) = list(emu.engine.batches())
        assert batch.status == "cancelled"
