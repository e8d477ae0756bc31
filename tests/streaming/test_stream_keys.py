"""A batch's unique record key reaches every stream result, failed records included; a summary
option that would drop every output is refused before anything is sent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cspark_async import SparkSdkError


async def test_results_carry_each_records_key_from_its_input(stack: Callable[..., Any]) -> None:
    async with stack() as (_emu, spark):
        batch = await spark.batches.create("t/tagged", unique_record_key="policy")
        pipeline = spark.batches.of(batch.data["id"])
        records = [{"policy": f"P{n:03}", "n": n, "fail": n == 3} for n in range(10)]
        results = [r async for r in pipeline.stream_outputs(records, chunk_size=4)]
        keys = [k for r in results for k in r.keys or []]
        assert keys == [f"P{n:03}" for n in range(10)]
        failed = [(k, e) for r in results for k, e in zip(r.keys or [], r.errors, strict=True) if e]
        assert [k for k, _ in failed] == ["P003"]  # a failed record still has its key


async def test_rows_and_composite_keys(stack: Callable[..., Any]) -> None:
    async with stack() as (_emu, spark):
        batch = await spark.batches.create("t/tagged", unique_record_key=["a", "b"])
        pipeline = spark.batches.of(batch.data["id"])
        rows = [["a", "b", "n"], *([f"a{n}", n * 10, n] for n in range(5))]
        results = [r async for r in pipeline.stream_outputs(rows, chunk_size=2)]
    assert [k for r in results for k in r.keys or []] == [(f"a{n}", n * 10) for n in range(5)]


async def test_no_key_means_none(stack: Callable[..., Any]) -> None:
    async with stack() as (_emu, spark):
        results = [r async for r in spark.batches.stream_outputs("t/tagged", [{"n": 1}])]
    assert results[0].keys is None


async def test_a_summary_that_drops_every_output_is_refused(stack: Callable[..., Any]) -> None:
    async with stack() as (emu, spark):
        with pytest.raises(SparkSdkError, match="return_all_records"):
            spark.batches.stream_outputs(
                "t/tagged", [{"n": 1}], summary={"return_all_records": False}
            )
        assert list(emu.engine.batches()) == []
