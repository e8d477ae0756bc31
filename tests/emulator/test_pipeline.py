"""Pipeline semantics: workers, buffers, lifecycle, errors, aggregation, idle timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from cspark_async.emulator import echo

from .conftest import Api, chunk, values


class FakeClock:
    """The emulator's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now



class Gate:
    """An async service whose records wait until the test opens the gate."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.running = 0
        self.peak = 0

    async def __call__(self, record: dict[str, Any]) -> dict[str, Any]:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await self.opened.wait()
        finally:
            self.running -= 1
        return {"doubled": record["value"] * 2}


async def test_workers_bound_concurrency_and_counters_are_exact(
    make_api: Callable[..., Any],
) -> None:
    gate = Gate()
    async with make_api(workers=3, services={"t/gate": gate}) as api:
        batch_id = await api.create("t/gate")
        await api.push(batch_id, *(chunk(f"c{i}", values(i, 1)) for i in range(10)))
        status = await api.wait_for(batch_id, lambda s: s["workers_in_use"] == 3)
        assert status["pipeline_status"] == "processing"
        assert status["batch_status"] == "in_progress"
        assert status["chunks_completed"] == 0
        assert status["record_submitted"] == 10
        # 7 chunks still queued: their bytes are in the input buffer.
        assert status["input_buffer_used_bytes"] > 0
        assert (
            status["input_buffer_used_bytes"] + status["input_buffer_remaining_bytes"] == 70_000_000
        )
        gate.opened.set()
        results = await api.drain(batch_id, 10)
        assert gate.peak == 3
        assert sorted(r["outputs"][0]["doubled"] for r in results) == [2 * i for i in range(10)]
        status = await api.status(batch_id)
        assert status["workers_in_use"] == 0
        assert status["input_buffer_used_bytes"] == 0
        assert (status["chunks_completed"], status["records_completed"]) == (10, 10)
        assert (status["chunks_available"], status["records_available"]) == (0, 0)
        assert status["pipeline_status"] == "idle"


async def test_create_max_workers_lowers_the_pool(make_api: Callable[..., Any]) -> None:
    gate = Gate()
    async with make_api(workers=8, services={"t/gate": gate}) as api:
        batch_id = await api.create("t/gate", max_workers=2)
        await api.push(batch_id, *(chunk(f"c{i}", values(i, 1)) for i in range(6)))
        await api.wait_for(batch_id, lambda s: s["workers_in_use"] == 2)
        await anyio.sleep(0.05)
        assert gate.peak == 2
        gate.opened.set()
        await api.drain(batch_id, 6)


async def test_full_input_buffer_rejects_the_push_whole_with_429(
    make_api: Callable[..., Any],
) -> None:
    gate = Gate()
    async with make_api(workers=1, input_buffer_bytes=2_000, services={"t/gate": gate}) as api:
        batch_id = await api.create("t/gate")
        await api.push(batch_id, chunk("first", values(0, 1)))  # taken by the only worker
        await api.wait_for(batch_id, lambda s: s["workers_in_use"] == 1)
        big = [chunk(f"q{i}", values(0, 40)) for i in range(5)]  # ~550 bytes each
        fits = big[:2]
        await api.push(batch_id, *fits)
        before = await api.status(batch_id)
        async with api.session.post(
            f"{api.root}/{batch_id}/chunks", json={"chunks": big[2:]}
        ) as resp:
            assert resp.status == 429
            assert int(resp.headers["Retry-After"]) >= 1
            assert float(resp.headers["x-retry-after"]) > 0
            body = await resp.json()
        assert body["error"]["code"] == "INPUT_BUFFER_FULL"
        assert "input buffer full" in body["error"]["message"]
        after = await api.status(batch_id)
        assert after["chunks_submitted"] == before["chunks_submitted"] == 3
        assert after["input_buffer_used_bytes"] == before["input_buffer_used_bytes"]
        gate.opened.set()
        await api.drain(batch_id, 3)
        # Once drained, the same push fits.
        await api.push(batch_id, *big[2:])
        await api.drain(batch_id, 3)


async def test_a_push_larger_than_the_whole_buffer_is_413(make_api: Callable[..., Any]) -> None:
    async with make_api(input_buffer_bytes=500) as api:
        batch_id = await api.create()
        status, body = await api.call(
            "POST", f"/{batch_id}/chunks", json={"chunks": [chunk("a", values(0, 50))]}
        )
        assert status == 413
        assert body["error"]["code"] == "CHUNKS_TOO_LARGE"
        assert "500" in body["error"]["message"]


async def test_full_output_buffer_pauses_processing_until_pulled(
    make_api: Callable[..., Any],
) -> None:
    # Each result is ~110 bytes: the buffer holds 3, so the 4th and later wait for a pull.
    async with make_api(workers=2, output_buffer_bytes=350) as api:
        batch_id = await api.create()
        await api.push(batch_id, *(chunk(f"c{i}", values(i, 1)) for i in range(6)))
        paused = await api.wait_for(batch_id, lambda s: s["pipeline_status"] == "paused")
        assert 2 <= paused["chunks_completed"] == paused["chunks_available"] <= 4
        assert paused["output_buffer_used_bytes"] <= 350
        await anyio.sleep(0.05)
        still = await api.status(batch_id)
        # Nothing moves while nobody pulls; the 2 workers hold their finished results.
        assert still["chunks_completed"] == paused["chunks_completed"]
        assert still["workers_in_use"] == 2
        assert still["output_buffer_remaining_bytes"] == 350 - still["output_buffer_used_bytes"]
        results = await api.drain(batch_id, 6)
        assert sorted(r["id"] for r in results) == [f"c{i}" for i in range(6)]


async def test_a_result_bigger_than_the_output_buffer_still_flows(
    make_api: Callable[..., Any],
) -> None:
    async with make_api(workers=1, output_buffer_bytes=10) as api:
        batch_id = await api.create()
        await api.push(batch_id, chunk("a", values(0, 5)), chunk("b", values(5, 5)))
        results = await api.drain(batch_id, 2)
        assert [len(r["outputs"]) for r in results] == [5, 5]


async def test_close_then_complete_results_stay_pullable(api: Api) -> None:
    batch_id = await api.create()
    await api.push(batch_id, chunk("a", values(0, 3)))
    closed = await api.ok("PATCH", f"/{batch_id}", json={"batch_status": "closed"})
    assert closed["data"]["batch_status"] == "closed"
    assert closed["meta"] == closed["data"]
    status = await api.wait_for(batch_id, lambda s: s["batch_status"] == "completed")
    assert status["pipeline_status"] == "closed"
    (result,) = await api.drain(batch_id, 1)
    assert result["outputs"] == values(0, 3)
    status, body = await api.call("POST", f"/{batch_id}/chunks", json={"chunks": []})
    assert status == 409
    assert body["error"]["code"] == "BATCH_NOT_OPEN"
    assert "completed" in body["error"]["message"]
    again = await api.ok("PATCH", f"/{batch_id}", json={"batch_status": "closed"})
    assert again["data"]["batch_status"] == "completed"  # a retried close is not an error


async def test_close_an_unused_batch_completes_at_once(api: Api) -> None:
    batch_id = await api.create()
    closed = await api.ok("PATCH", f"/{batch_id}", json={"batch_status": "closed"})
    assert closed["data"]["batch_status"] == "closed"
    assert (await api.status(batch_id))["batch_status"] == "completed"


async def test_cancel_discards_buffers_and_stops_workers(make_api: Callable[..., Any]) -> None:
    gate = Gate()
    async with make_api(workers=2, services={"t/gate": gate}) as api:
        batch_id = await api.create("t/gate")
        await api.push(batch_id, *(chunk(f"c{i}", values(i, 1)) for i in range(5)))
        await api.wait_for(batch_id, lambda s: s["workers_in_use"] == 2)
        cancelled = await api.ok("PATCH", f"/{batch_id}", json={"batch_status": "cancelled"})
        assert cancelled["data"]["batch_status"] == "cancelled"
        status = await api.status(batch_id)
        assert status["input_buffer_used_bytes"] == 0
        assert status["workers_in_use"] == 0
        assert status["pipeline_status"] == "closed"
        gate.opened.set()
        await anyio.sleep(0.02)
        pulled = await api.pull(batch_id)
        assert pulled["data"] == []
        assert pulled["status"]["chunks_completed"] == 0
        status_code, body = await api.call("POST", f"/{batch_id}/chunks", json={"chunks": []})
        assert status_code == 409
        assert (await api.ok("PATCH", f"/{batch_id}", json={"batch_status": "cancelled"}))["data"][
            "batch_status"
        ] == "cancelled"
        status_code, body = await api.call("PATCH", f"/{batch_id}", json={"batch_status": "closed"})
        assert status_code == 409
        assert body["error"]["code"] == "BATCH_STATE_CONFLICT"


async def test_cancel_after_close_is_allowed(api: Api) -> None:
    batch_id = await api.create()
    await api.ok("PATCH", f"/{batch_id}", json={"batch_status": "closed"})
    cancelled = await api.ok("PATCH", f"/{batch_id}", json={"batch_status": "cancelled"})
    assert cancelled["data"]["batch_status"] == "cancelled"


async def test_patch_rejects_other_statuses(api: Api) -> None:
    batch_id = await api.create()
    status, body = await api.call("PATCH", f"/{batch_id}", json={"batch_status": "completed"})
    assert status == 400
    assert "'closed' or 'cancelled'" in body["error"]["message"]


def flaky(record: dict[str, Any]) -> dict[str, Any]:
    if record["value"] % 4 == 0:
        raise ValueError(f"value {record['value']} is divisible by 4")
    return {"value": record["value"]}


@pytest.mark.parametrize(("allowed", "final"), [(0, "failed"), (25, "completed")])
async def test_record_errors_and_acceptable_error_percentage(
    make_api: Callable[..., Any], allowed: int, final: str
) -> None:
    async with make_api(services={"t/flaky": flaky}) as api:
        batch_id = await api.create("t/flaky", acceptable_error_percentage=allowed)
        await api.push(batch_id, chunk("a", values(0, 8)))  # 0 and 4 fail: 25 %
        (result,) = await api.drain(batch_id, 1)
        assert result["outputs"][0] is None
        assert result["outputs"][1] == {"value": 1}
        assert result["errors"][0] == {
            "error_type": "ValueError",
            "message": "value 0 is divisible by 4",
        }
        assert [e is None for e in result["errors"]] == [False, True, True, True] * 2
        await api.ok("PATCH", f"/{batch_id}", json={"batch_status": "closed"})
        status = await api.wait_for(batch_id, lambda s: s["batch_status"] != "closed")
        assert status["batch_status"] == final
        info = await api.ok("GET", f"/{batch_id}")
        assert info["data"]["summary"]["records_failed"] == 2


async def test_a_service_returning_a_non_object_is_a_record_error(
    make_api: Callable[..., Any],
) -> None:
    async with make_api(services={"t/bad": lambda record: [1]}) as api:
        batch_id = await api.create("t/bad")
        await api.push(batch_id, chunk("a", values(0, 1)))
        (result,) = await api.drain(batch_id, 1)
        assert result["errors"][0]["error_type"] == "TypeError"


async def test_aggregation_and_ignore_error(make_api: Callable[..., Any]) -> None:
    aggregation = [
        {"output_name": "value", "operator": op} for op in ("SUM", "AVG", "MIN", "MAX", "COUNT")
    ]
    async with make_api(services={"t/flaky": flaky, "t/echo": echo}) as api:
        ok = await api.create("t/echo")
        await api.push(ok, chunk("a", values(1, 4), summary={"aggregation": aggregation}))
        (result,) = await api.drain(ok, 1)
        assert [e["value"] for e in result["summary_output"][0]] == [10, 2.5, 1, 4, 4]
        assert result["summary_output"][0][0] == {
            "output_name": "value",
            "operator": "SUM",
            "value": 10,
        }

        bad = await api.create("t/flaky")
        await api.push(
            bad,
            chunk("skip", values(1, 4), summary={"ignore_error": True, "aggregation": aggregation}),
            chunk(
                "strict", values(1, 4), summary={"ignore_error": False, "aggregation": aggregation}
            ),
        )
        results = {r["id"]: r for r in await api.drain(bad, 2)}
        assert [e["value"] for e in results["skip"]["summary_output"][0]] == [6, 2, 1, 3, 3]
        assert [e["value"] for e in results["strict"]["summary_output"][0]] == [None] * 5
        info = await api.ok("GET", f"/{bad}")
        assert info["data"]["summary"]["chunks_failed"] == 1


async def test_idle_timeout_closes_pending_and_completes_finished(
    make_api: Callable[..., Any],
) -> None:
    gate = Gate()
    clock = FakeClock()
    services = {"t/gate": gate, "t/echo": echo}
    async with make_api(idle_timeout=30, services=services, clock=clock) as api:
        pending = await api.create("t/gate")
        await api.push(pending, chunk("a", values(0, 1)), chunk("b", values(1, 1)))
        done = await api.create("t/echo")
        await api.push(done, chunk("a", values(0, 1)))
        await api.wait_for(done, lambda s: s["chunks_available"] == 1)
        engine = api.emulator.engine
        clock.now += 29
        engine.expire_idle()
        assert engine.batch(pending).status == "in_progress"  # not yet
        clock.now += 2  # nobody called for 31 s: both idle out
        engine.expire_idle()
        assert engine.batch(pending).status == "closed_by_timeout"
        assert engine.batch(done).status == "completed_by_timeout"
        pending_status = await api.status(pending)
        assert pending_status["input_buffer_used_bytes"] == 0
        assert pending_status["workers_in_use"] == 0
        (result,) = (await api.pull(done))["data"]  # finished work stays pullable
        assert result["outputs"] == values(0, 1)
        code, _ = await api.call("POST", f"/{pending}/chunks", json={"chunks": []})
        assert code == 409


async def test_activity_keeps_a_batch_alive(make_api: Callable[..., Any]) -> None:
    clock = FakeClock()
    async with make_api(idle_timeout=30, clock=clock) as api:
        batch_id = await api.create()
        for _ in range(6):
            clock.now += 20  # 120 s in all, but never 30 s without a request
            api.emulator.engine.expire_idle()
            await api.status(batch_id)
        assert (await api.status(batch_id))["batch_status"] == "created"


async def test_pipelines_do_not_share_state(api: Api) -> None:
    one, two = await api.create(), await api.create()
    await api.push(one, chunk("same-id", values(0, 2)))
    await api.push(two, chunk("same-id", values(10, 3)))
    (r1,) = await api.drain(one, 1)
    (r2,) = await api.drain(two, 1)
    assert r1["outputs"] == values(0, 2)
    assert r2["outputs"] == values(10, 3)
    await api.ok("PATCH", f"/{one}", json={"batch_status": "cancelled"})
    assert (await api.status(two))["batch_status"] == "in_progress"


async def test_latency_bound_batch_runs_workers_in_parallel(make_api: Callable[..., Any]) -> None:
    # 8 chunks x 10 records x 10 ms on 4 workers: ~0.2 s of makespan, 0.8 s if serial.
    async with make_api(workers=4, record_latency=0.01) as api:
        batch_id = await api.create()
        await api.push(batch_id, *(chunk(f"c{i}", values(i * 10, 10)) for i in range(8)))
        await api.drain(batch_id, 8)
        info = await api.ok("GET", f"/{batch_id}")
        summary = info["data"]["summary"]
        assert summary["compute_time_ms"] >= 800  # 80 records x 10 ms of simulated compute
        assert summary["batch_time_ms"] < summary["compute_time_ms"]  # ran in parallel


async def test_an_output_json_cannot_carry_is_that_records_error(
    make_api: Callable[..., Any],
) -> None:
    def sets(record: dict[str, Any]) -> dict[str, Any]:
        return {"tags": {1, 2}} if record["value"] == 1 else {"ok": record["value"]}

    async with make_api(services={"t/sets": sets}) as api:
        batch_id = await api.create("t/sets")
        await api.push(batch_id, chunk("a", values(0, 3)))
        (result,) = await api.drain(batch_id, 1)
        assert result["outputs"] == [{"ok": 0}, None, {"ok": 2}]
        assert "output is not JSON" in result["errors"][1]["message"]
        await api.ok("PATCH", f"/{batch_id}", json={"batch_status": "closed"})
        status = await api.wait_for(batch_id, lambda s: s["batch_status"] != "closed")
        assert status["chunks_completed"] == 1
