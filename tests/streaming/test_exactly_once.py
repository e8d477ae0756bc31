"""Exactly once under seeded faults, over many shapes of stream (hypothesis)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cspark_async import AsyncClient
from cspark_async.emulator import Emulator, Faults

from .conftest import records, tagged


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chunk_size=st.integers(1, 120),
    max_in_flight=st.integers(1, 12),
    ordered=st.booleans(),
    seed=st.integers(0, 2**16),
    count=st.integers(0, 1500),
)
async def test_every_record_once_whatever_the_faults(
    chunk_size: int, max_in_flight: int, ordered: bool, seed: int, count: int
) -> None:
    faults = Faults(
        seed=seed,
        rate_limit=0.05,
        server_error=0.05,
        reset_before=0.03,
        reset_after=0.05,
        latency=0.02,
        latency_s=0.01,
        retry_after=0.01,
    )
    async with (
        Emulator(workers=4, services={"t/tagged": tagged}, faults=faults) as emu,
        AsyncClient(
            emu.base_url, api_key="k", logger=False, max_retries=8, retry_interval=0.01
        ) as spark,
    ):
        emu.set_faults(None)  # create cleanly; the stream itself runs under faults
        batch = await spark.batches.create("t/tagged")
        emu.set_faults(faults)
        pipeline = spark.batches.of(batch.data["id"])
        stream = pipeline.stream_outputs(
            records(count), chunk_size=chunk_size, max_in_flight=max_in_flight, ordered=ordered
        )
        seen: list[Any] = []
        async for result in stream:
            assert [o["n"] for o in result.outputs] == [r["n"] for r in result.inputs]
            assert result.outputs[0]["n"] == result.offset
            seen.extend(o["n"] for o in result.outputs)
        if ordered:
            assert seen == list(range(count))
        else:
            assert sorted(seen) == list(range(count))
        assert stream.state.records_completed == count
