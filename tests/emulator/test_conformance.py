"""The official `cspark` SDK (PyPI), which nobody here wrote, runs the documented
workflow against the emulator unmodified. Its URL validator only accepts *.coherent.global, so
it is handed a `BaseUrl(url, tenant)` object, the escape hatch its own tests use."""

from __future__ import annotations

import time
from typing import Any

import pytest

from cspark_async.emulator import Emulator, ThreadedEmulator

cspark_sdk = pytest.importorskip("cspark.sdk")

ROWS = 1_000  # data rows, in the JSON-array form the official create_chunks expects


def dataset() -> list[list[Any]]:
    return [["age", "smoker", "cover", "term", "plan"]] + [
        [20 + i % 50, "yes" if i % 3 == 0 else "no", 100_000 + i, 10 + i % 20, "silver"]
        for i in range(ROWS)
    ]


def check_outputs(results: list[Any]) -> None:
    """Every row came back once, in the JSON-array form it went in, with a premium."""
    header = results[0]
    rows = [r for r in results if r != header]  # each chunk's outputs start with the header
    assert header == ["annual_premium", "monthly_premium", "risk_class"]
    assert len(rows) == ROWS
    assert all(row[0] > 0 and row[2] in ("low", "medium", "high") for row in rows)


def test_official_sync_client_runs_the_seed_workflow() -> None:
    with ThreadedEmulator(workers=8, record_latency=0.0005) as emu:
        spark = cspark_sdk.Client(
            base_url=cspark_sdk.BaseUrl(emu.url, emu.emulator.tenant),
            api_key="any-key",
            logger=False,
        )
        with spark:
            batches = spark.batches
            data = dataset()
            chunks = cspark_sdk.create_chunks(data, chunk_size=150)
            batch = batches.create("demo/term-life", min_runners=8, accuracy=0.95)
            assert batch.data["data"]["batch_status"] == "created"
            pipeline = batches.of(batch.data["id"])
            outputs: list[Any] = []
            try:
                submission = pipeline.push(chunks=chunks)
                assert submission.data["record_submitted"] == ROWS
                status = pipeline.get_status().data
                # The documented loop, with shorter sleeps.
                while status["records_completed"] < status["record_submitted"]:
                    status = pipeline.get_status().data
                    if status["records_available"] > 0:
                        result = pipeline.pull()
                        for r in result.data["data"]:
                            outputs.extend(r["outputs"])
                    time.sleep(0.05)
                # The seed stops once everything is *completed*; what is still buffered must
                # be pulled too, or it is lost.
                while (result := pipeline.pull()).data["data"]:
                    for r in result.data["data"]:
                        outputs.extend(r["outputs"])
            finally:
                state = pipeline.dispose()
            assert state.data["data"]["batch_status"] == "closed"
            check_outputs(outputs)
            info = pipeline.get_info().data["data"]
            assert info["batch_status"] == "completed"
            assert info["summary"]["records_completed"] == ROWS
            # The official SDK rounds accuracy 0.95 to 6 %.
            assert info["configuration"]["acceptable_error_percentage"] == 6
            described = batches.describe().data
            assert batch.data["id"] in [b["id"] for b in described["recent_batches"]]


async def test_official_async_client_runs_the_seed_workflow() -> None:
    async with Emulator(workers=8) as emu:
        spark = cspark_sdk.AsyncClient(
            base_url=cspark_sdk.BaseUrl(emu.url, emu.tenant), token="Bearer t0k", logger=False
        )
        async with spark:
            batches = spark.batches
            batch = await batches.create("my-folder/my-service")
            pipeline = batches.of(batch.data["id"])
            pushed = await pipeline.push(inputs=[{"value": 42}, {"value": 43}])
            assert pushed.data["record_submitted"] == 2
            outputs: list[Any] = []
            while len(outputs) < 2:
                result = await pipeline.pull(max_chunks=2)
                assert "records_available" in result.data["status"]
                for r in result.data["data"]:
                    outputs.extend(r["outputs"])
            assert outputs == [{"value": 42}, {"value": 43}]
            status = await pipeline.get_status()
            assert status.data["records_completed"] == 2
            info = await pipeline.get_info()
            assert info.data["data"]["summary"]["records_submitted"] == 2
            cancelled = await pipeline.cancel()
            assert cancelled.data["data"]["batch_status"] == "cancelled"


def test_official_client_sees_api_errors_as_spark_api_errors() -> None:
    with ThreadedEmulator(api_key="right") as emu:
        base = cspark_sdk.BaseUrl(emu.url, emu.emulator.tenant)
        with cspark_sdk.Client(base_url=base, api_key="wrong", logger=False) as spark:
            with pytest.raises(cspark_sdk.SparkApiError) as info:
                spark.batches.describe()
            assert info.value.status == 401
        with cspark_sdk.Client(base_url=base, api_key="right", logger=False) as spark:
            with pytest.raises(cspark_sdk.SparkApiError) as info:
                spark.batches.create("unknown/service")
            assert info.value.status == 404
            assert "SERVICE_NOT_FOUND" in str(info.value)
