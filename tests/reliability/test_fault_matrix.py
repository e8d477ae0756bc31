"""The fault matrix: 20,000 records per case through stream_outputs against a faulty emulator.

Every case is seeded. The outcome is one of two, and nothing else:
- every record's output is yielded exactly once, in order; or
- the stream raises a clear error after yielding only correct, non-duplicated results, and
  the server pipeline is left ended (cancelled, or ended by the server itself).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from attrs import field, frozen

from cspark_async import AsyncClient, SparkError, StreamError, StreamState
from cspark_async.emulator import Emulator, Faults

N = 20_000
ENDED = {"cancelled", "closed_by_timeout", "completed_by_timeout"}


def tagged(record: dict[str, Any]) -> dict[str, Any]:
    return {"n": record["n"]}


Action = Callable[[Emulator, Any, int], Awaitable[None]]


@frozen
class Case:
    name: str
    faults: Faults | None = None
    emulator: dict[str, Any] = field(factory=dict)
    client: dict[str, Any] = field(factory=dict)
    stream: dict[str, Any] = field(factory=dict)
    action: Action | None = None  # run by the consumer after each result
    shows: str | None = None  # a StreamState counter the fault must have moved
    fails_with: str | None = None  # expected error message fragment; None: must complete
    records: int = N


class IdleClock:
    """The emulator's clock in the idle-timeout case: the consumer's stall is a jump of it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def pause_past_idle_timeout(emu: Emulator, pipeline: Any, seen: int) -> None:
    if seen == 4000:
        # The consumer stalls for 31 s of the emulator's time (idle_timeout is 30 s) while
        # nothing polls; the reaper runs then, not on a wall-clock tick.
        clock = emu.engine.options.clock
        assert isinstance(clock, IdleClock)
        clock.now += 31
        emu.engine.expire_idle()


async def cancel_elsewhere(emu: Emulator, pipeline: Any, seen: int) -> None:
    if seen == 4000:
        emu.engine.patch(pipeline.batch_id, {"batch_status": "cancelled"})


async def restart_emulator(emu: Emulator, pipeline: Any, seen: int) -> None:
    if seen == 4000:
        await emu.restart()


def faults(**kwargs: Any) -> Faults:
    return Faults(seed=kwargs.pop("seed", 1234), **kwargs)


CASES = [
    Case(
        "429 storm with Retry-After",
        faults(rate_limit=0.3, retry_after=0.005, endpoints={"push", "pull"}),
        shows="throttled",
    ),
    # Small chunks: several travel in one POST, and at 5% a fault must still hit some pushes.
    Case(
        "5xx at 5%",
        faults(server_error=0.05),
        stream={"chunk_size": 10},
        shows="chunks_retried",
    ),
    Case("5xx at 20%", faults(server_error=0.2, seed=7), shows="chunks_retried"),
    Case("resets before the request is applied", faults(reset_before=0.1), shows="chunks_retried"),
    Case(
        "lost push answers (applied, then reset)",
        faults(reset_after=0.15, endpoints={"push"}),
        shows="chunks_retried",
    ),
    Case(
        "lost pull answers (applied, then reset)",
        faults(reset_after=0.1, endpoints={"pull"}),
        shows="chunks_retried",
    ),
    Case(
        "everything at once",
        faults(
            rate_limit=0.05,
            server_error=0.05,
            reset_before=0.03,
            reset_after=0.05,
            latency=0.02,
            latency_s=0.01,
            retry_after=0.005,
            seed=99,
        ),
    ),
    Case(
        "latency spikes beyond the client timeout",
        faults(latency=0.03, latency_s=0.5, endpoints={"push", "pull"}),
        client={"timeout": 0.2},
    ),
    Case(
        "input buffer full for long stretches",
        None,
        emulator={"input_buffer_bytes": 12_000, "workers": 2, "record_latency": 0.00005},
        stream={"max_in_flight": 16},
        shows="throttled",
    ),
    Case("output buffer tiny", None, emulator={"output_buffer_bytes": 2_000}),
    Case(
        "idle timeout mid-stream",
        None,
        emulator={"idle_timeout": 30, "clock": IdleClock()},
        action=pause_past_idle_timeout,
        fails_with="_by_timeout",
    ),
    Case("batch cancelled by someone else", None, action=cancel_elsewhere, fails_with="cancelled"),
    Case(
        "emulator restarted, all state lost", None, action=restart_emulator, fails_with="restarted"
    ),
]


async def run_case(case: Case) -> tuple[list[int], BaseException | None, str, StreamState]:
    emulator = {"workers": 8, "services": {"t/n": tagged}, **case.emulator}
    client = {
        "api_key": "k",
        "logger": False,
        # Streams follow the client's retry policy: the matrix's fault rates (up to 20% of
        # answers) need more than the default 2 retries per push and pull.
        "max_retries": 8,
        "retry_interval": 0.01,
        **case.client,
    }
    seen: list[int] = []
    error: BaseException | None = None
    async with Emulator(**emulator) as emu, AsyncClient(emu.base_url, **client) as spark:
        batch = await spark.batches.create("t/n")
        pipeline = spark.batches.of(batch.data["id"])
        emu.set_faults(case.faults)
        records = ({"n": n} for n in range(case.records))
        try:
            with anyio.fail_after(60):
                options = {"chunk_size": 100, **case.stream}
                stream = pipeline.stream_outputs(records, **options)
                async for result in stream:
                    assert [o["n"] for o in result.outputs] == [r["n"] for r in result.inputs]
                    seen.extend(o["n"] for o in result.outputs)
                    if case.action is not None:
                        await case.action(emu, pipeline, len(seen))
        except SparkError as exc:
            error = exc
        emu.set_faults(None)
        await spark.close()  # ends a broken-off stream now (its clean-up included)
        try:
            final = emu.engine.batch(pipeline.batch_id).status
        except Exception:  # forgotten by a restart
            final = "gone"
    return seen, error, final, stream.state


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_fault_matrix(case: Case) -> None:
    seen, error, final, state = await run_case(case)
    # Whatever happened, what was yielded is correct, in order and without duplicates.
    assert seen == list(range(len(seen)))
    if case.fails_with is None:
        assert error is None, f"{type(error).__name__}: {error}"
        assert len(seen) == case.records
        assert final in ("in_progress", "created")  # a finished stream leaves it to its owner
        if case.shows:
            assert getattr(state, case.shows) > 0, state
    else:
        assert isinstance(error, StreamError), repr(error)
        assert case.fails_with in str(error)
        assert 0 < len(seen) < case.records
        assert final in ENDED | {"gone"}


@pytest.mark.slow
async def test_two_hundred_thousand_records_through_mixed_faults() -> None:
    case = Case(
        "200k mixed",
        faults(
            rate_limit=0.03,
            server_error=0.05,
            reset_before=0.02,
            reset_after=0.03,
            retry_after=0.005,
            seed=2026,
        ),
        emulator={"workers": 16},
        stream={"chunk_size": 500},
        records=200_000,
    )
    seen, error, _, _ = await run_case(case)
    assert error is None, f"{type(error).__name__}: {error}"
    assert seen == list(range(200_000))
