"""The OpenTelemetry SDK with in-memory exporters, installed once as the global providers (the
API lets a process set them only once); each test sees only its own spans and metrics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    InMemoryMetricReader,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

_EXPORTER = InMemorySpanExporter()
# Delta temporality: each collection holds what happened since the previous one.
_READER = InMemoryMetricReader(
    preferred_temporality={
        Counter: AggregationTemporality.DELTA,
        UpDownCounter: AggregationTemporality.DELTA,
        Histogram: AggregationTemporality.DELTA,
    }
)


class _WhileRecording(SimpleSpanProcessor):
    """Exports only while a test holds the `telemetry` fixture: the provider stays set for the
    rest of the session, and other tests' spans should cost nothing and pile up nowhere."""

    recording = False

    def on_end(self, span: ReadableSpan) -> None:
        if self.recording:
            super().on_end(span)


_PROCESSOR = _WhileRecording(_EXPORTER)
_provider = TracerProvider()
_provider.add_span_processor(_PROCESSOR)
trace.set_tracer_provider(_provider)
metrics.set_meter_provider(MeterProvider(metric_readers=[_READER]))


class Telemetry:
    """What the SDK recorded during one test."""

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        found = list(_EXPORTER.get_finished_spans())
        return [s for s in found if name is None or s.name == name]

    def metrics(self) -> dict[str, list[tuple[dict[str, Any], Any]]]:
        """Metric name -> [(attributes, value)]: a sum, or a histogram's (count, sum)."""
        data = _READER.get_metrics_data()
        out: dict[str, list[tuple[dict[str, Any], Any]]] = {}
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        value = (
                            (point.count, point.sum) if hasattr(point, "count") else point.value
                        )
                        out.setdefault(metric.name, []).append((dict(point.attributes), value))
        return out


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    _EXPORTER.clear()
    _READER.get_metrics_data()  # drop what earlier tests left
    _PROCESSOR.recording = True
    try:
        yield Telemetry()
    finally:
        _PROCESSOR.recording = False
        _EXPORTER.clear()
