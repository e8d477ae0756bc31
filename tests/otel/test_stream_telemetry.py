"""The stream hooks the engine calls: the stream's span with its totals, and the metrics (the
engine's wiring is tested with the engine; here each hook's effect, with a pinned clock)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from opentelemetry.trace import SpanKind, StatusCode

from cspark_async import StreamError
from cspark_async._otel import StreamTelemetry, stream_telemetry
from cspark_async.emulator import Emulator, Faults

from .conftest import Telemetry


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_stream_reports_its_totals_on_its_span_and_its_metrics(telemetry: Telemetry) -> None:
    clock = Clock()
    hooks = stream_telemetry(None, clock=clock)  # started from a pipeline id: no service yet
    assert isinstance(hooks, StreamTelemetry)
    hooks.start()
    hooks.batch("b-1", service="demo/term-life")  # from the pipeline's info
    hooks.chunk_pushed("c1", 200)
    clock.now += 0.5
    hooks.chunk_pushed("c2", 100)
    hooks.throttled("input_buffer_full", 0.25)
    hooks.retried("503")
    hooks.repushed("c2")  # its answer was lost: pushed again, timed from the first push
    hooks.chunk_pushed("c2", 100)  # the re-push accepted: not counted twice
    clock.now += 1.0
    hooks.chunk_completed("c1", 200, failed=3)
    hooks.chunk_completed("c2", 100, failed=0)
    hooks.end("completed")

    (span,) = telemetry.spans("spark.batches.stream")
    assert span.kind is SpanKind.INTERNAL
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes or {}) == {
        "spark.service": "demo/term-life",
        "spark.batch.id": "b-1",
        "spark.batch.records": 300,
        "spark.batch.chunks": 2,
        "spark.batch.records.failed": 3,
        "spark.batch.retries": 1,
        "spark.batch.throttles": 1,
        "spark.batch.repushes": 1,
        "spark.batch.outcome": "completed",
    }
    assert [e.name for e in span.events] == ["spark.throttle", "spark.repush"]

    service = {"spark.service": "demo/term-life"}
    assert telemetry.metrics() == {
        "spark.batch.records.pushed": [(service, 300)],
        "spark.batch.records.completed": [(service, 300)],
        "spark.batch.records.failed": [(service, 3)],
        "spark.batch.throttles": [({**service, "spark.reason": "input_buffer_full"}, 1)],
        "spark.batch.retries": [({**service, "spark.reason": "503"}, 1)],
        "spark.batch.repushes": [(service, 1)],
        "spark.batch.chunks.in_flight": [(service, 0)],  # 2 pushed, 2 completed
        "spark.batch.chunk.duration": [(service, (2, 1.5 + 1.0))],
    }


def test_a_failed_stream_ends_its_span_in_error_and_empties_the_in_flight_gauge(
    telemetry: Telemetry,
) -> None:
    hooks = stream_telemetry(None, clock=Clock())
    hooks.start(batch_id="b-2")
    hooks.chunk_pushed("c1", 10)
    hooks.chunk_pushed("c2", 10)
    hooks.end("failed", StreamError("the batch failed"))
    hooks.end("failed")  # a second end is harmless
    (span,) = telemetry.spans("spark.batches.stream")
    assert span.status.status_code is StatusCode.ERROR
    attributes = dict(span.attributes or {})
    assert attributes["spark.batch.outcome"] == "failed"
    assert attributes["error.type"] == "StreamError"
    assert telemetry.metrics()["spark.batch.chunks.in_flight"] == [({}, 0)]


def test_without_opentelemetry_nothing_is_imported_and_every_hook_is_a_no_op() -> None:
    code = """
import sys
sys.modules["opentelemetry"] = None  # as if the otel extra were not installed
import asyncio
import cspark_async
from cspark_async import _otel
from cspark_async.emulator import Emulator

async def main():
    async with Emulator() as emu, emu.client() as spark:
        batch = await spark.batches.create("my-folder/my-service")
        assert batch.data["id"]
    hooks = _otel.stream_telemetry("s")
    hooks.start()
    hooks.chunk_pushed("c", 1)
    hooks.chunk_completed("c", 1, 0)
    hooks.end("completed")
    with hooks.activate():
        pass

asyncio.run(main())
assert not _otel.ENABLED
assert type(_otel.stream_telemetry("s")).__name__ == "_NoStream"
assert [m for m in sys.modules if m.startswith("opentelemetry") and sys.modules[m]] == []
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"


async def test_a_stream_under_the_sdk_yields_its_span_and_metrics(telemetry: Telemetry) -> None:
    def half_fail(record: dict[str, Any]) -> dict[str, Any]:
        if record["n"] % 2:
            raise ValueError("odd")
        return {"n": record["n"]}

    faults = Faults(seed=3, rate_limit=0.3, endpoints={"push"})
    async with (
        Emulator(services={"f/half": half_fail}, faults=faults) as emu,
        emu.client() as spark,
    ):
        records = [{"n": n} for n in range(100)]
        # Two chunks out at most: one chunk per POST, so that the 429s hit several pushes.
        stream = spark.batches.stream_outputs("f/half", records, chunk_size=10, max_in_flight=2)
        async for _ in stream:
            pass
        assert emu.faults.injected.get("rate_limit", 0) > 0
    (stream,) = telemetry.spans("spark.batches.stream")
    attributes = dict(stream.attributes or {})
    assert attributes["spark.service"] == "f/half"
    assert attributes["spark.batch.records"] == 100
    assert attributes["spark.batch.chunks"] == 10
    assert attributes["spark.batch.records.failed"] == 50
    assert attributes["spark.batch.throttles"] > 0
    assert attributes["spark.batch.outcome"] == "completed"
    assert stream.context is not None
    (create,) = telemetry.spans("spark.batches.create")
    assert create.parent is not None
    assert create.parent.span_id == stream.context.span_id  # the calls nest under the stream
    measured = telemetry.metrics()
    service = {"spark.service": "f/half"}
    assert measured["spark.batch.records.pushed"] == [(service, 100)]
    assert measured["spark.batch.records.completed"] == [(service, 100)]
    assert measured["spark.batch.records.failed"] == [(service, 50)]
    assert measured["spark.batch.chunks.in_flight"] == [(service, 0)]
    assert measured["spark.batch.chunk.duration"][0][1][0] == 10
