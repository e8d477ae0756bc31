"""OpenTelemetry: a span per API call and per stream, and the stream metrics. Optional.

With `opentelemetry-api` installed (the `otel` extra), spans and metrics go to whatever
tracer and meter providers the application set up (none: the API's no-ops). Without it nothing
is imported and every helper here is a no-op, so the SDK pays nothing.

HTTP spans are not made here: `opentelemetry-instrumentation-aiohttp-client` makes one CLIENT
span per attempt, and each lands under the API call's INTERNAL span, so a retried call shows
as one `spark.batches.push` span over several `POST` spans.

Attribute names follow the semantic conventions where one exists (`http.request.method`,
`http.response.status_code`, `url.template`, `server.address`, `error.type`); the rest are in
a `spark.` namespace.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeAlias, TypeVar
from urllib.parse import urlsplit

from ._version import __version__

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter, Histogram, Meter, UpDownCounter
    from opentelemetry.trace import Span, Tracer

try:
    from opentelemetry import metrics as _metrics
    from opentelemetry import trace as _trace
except ImportError:  # the `otel` extra is not installed: everything below is a no-op
    _trace = None  # type: ignore[assignment]
    _metrics = None  # type: ignore[assignment]

__all__ = [
    "ENABLED",
    "SCOPE",
    "StreamTelemetry",
    "record_retry",
    "stream_telemetry",
    "traced",
]

ENABLED: Final = _trace is not None
"""Whether `opentelemetry-api` is importable (spans and metrics are recorded)."""

SCOPE: Final = "cspark_async"  # the instrumentation scope of every span and metric

R = TypeVar("R")

# Semantic-convention attribute names (HTTP, URL, server, error).
HTTP_METHOD: Final = "http.request.method"
HTTP_STATUS: Final = "http.response.status_code"
URL_TEMPLATE: Final = "url.template"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"
# Ours.
OPERATION: Final = "spark.operation"
SERVICE: Final = "spark.service"
BATCH_ID: Final = "spark.batch.id"
REQUEST_ID: Final = "spark.request_id"
RECORDS: Final = "spark.batch.records"
CHUNKS: Final = "spark.batch.chunks"
FAILED_RECORDS: Final = "spark.batch.records.failed"
RETRIES: Final = "spark.batch.retries"
THROTTLES: Final = "spark.batch.throttles"
REPUSHES: Final = "spark.batch.repushes"
OUTCOME: Final = "spark.batch.outcome"
REASON: Final = "spark.reason"

_tracer: Tracer | None = None
_instruments: _Instruments | None = None


def _get_tracer() -> Tracer:
    global _tracer
    if _tracer is None:
        _tracer = _trace.get_tracer(SCOPE, __version__)
    return _tracer


class _Instruments:
    """The stream metrics, created once (the API's proxies follow a provider set later)."""

    def __init__(self, meter: Meter) -> None:
        self.pushed: Counter = meter.create_counter(
            "spark.batch.records.pushed", "{record}", "Records accepted by a pipeline"
        )
        self.completed: Counter = meter.create_counter(
            "spark.batch.records.completed", "{record}", "Records whose results were pulled"
        )
        self.failed: Counter = meter.create_counter(
            "spark.batch.records.failed", "{record}", "Records the service answered with an error"
        )
        self.throttles: Counter = meter.create_counter(
            "spark.batch.throttles", "{throttle}", "Pushes refused for now (429, full buffer)"
        )
        self.retries: Counter = meter.create_counter(
            "spark.batch.retries", "{retry}", "Requests sent again after a failed attempt"
        )
        self.repushes: Counter = meter.create_counter(
            "spark.batch.repushes", "{chunk}", "Chunks pushed again after their answer was lost"
        )
        self.in_flight: UpDownCounter = meter.create_up_down_counter(
            "spark.batch.chunks.in_flight", "{chunk}", "Chunks pushed and not yet pulled"
        )
        self.round_trip: Histogram = meter.create_histogram(
            "spark.batch.chunk.duration", "s", "From a chunk's push to its results being pulled"
        )


def _get_instruments() -> _Instruments:
    global _instruments
    if _instruments is None:
        _instruments = _Instruments(_metrics.get_meter(SCOPE, __version__))
    return _instruments


# ---- one span per API call -------------------------------------------------------------------


async def traced(
    operation: str,
    call: Callable[[], Awaitable[R]],
    *,
    method: str,
    url_template: str,
    origin: str | None = None,
    batch_id: str | None = None,
    service: str | None = None,
) -> R:
    """Run `call()` (one API call, retries included) under an INTERNAL span named
    `spark.<operation>`, e.g. `spark.batches.create`. `url_template` is the path with
    placeholders (`/{tenant}/api/v4/batch/{batch_id}`); `origin` gives `server.*`.

    The span gets the final status and request id of the `ApiResponse` it returns, or the
    status and `error.type` of the error it raises (then re-raised unchanged).
    """
    if not ENABLED:
        return await call()
    attributes: dict[str, Any] = {
        OPERATION: operation,
        HTTP_METHOD: method,
        URL_TEMPLATE: url_template,
    }
    if origin is not None:
        url = urlsplit(origin)
        if url.hostname:
            attributes[SERVER_ADDRESS] = url.hostname
            attributes[SERVER_PORT] = url.port or (443 if url.scheme == "https" else 80)
    if batch_id is not None:
        attributes[BATCH_ID] = batch_id
    if service is not None:
        attributes[SERVICE] = service
    with _get_tracer().start_as_current_span(
        f"spark.{operation}",
        kind=_trace.SpanKind.INTERNAL,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            result = await call()
        except BaseException as exc:
            _record_error(span, exc)
            raise
        status = getattr(result, "status", None)
        if isinstance(status, int):
            span.set_attribute(HTTP_STATUS, status)
        request_id = getattr(result, "request_id", None)
        if isinstance(request_id, str):
            span.set_attribute(REQUEST_ID, request_id)
        data = getattr(result, "data", None)
        if batch_id is None and isinstance(data, Mapping) and isinstance(data.get("id"), str):
            span.set_attribute(BATCH_ID, data["id"])  # create: the id is only known now
        return result


def _record_error(span: Span, exc: BaseException) -> None:
    """Status ERROR with `error.type`: the HTTP status for an API error (as the HTTP
    conventions do), else the exception's class. Cancellation is not an error."""
    if isinstance(exc, (asyncio.CancelledError, GeneratorExit, KeyboardInterrupt)):
        span.set_attribute(ERROR_TYPE, "cancelled")
        return
    status = getattr(exc, "status", None)
    if isinstance(status, int) and status > 0:
        span.set_attribute(HTTP_STATUS, status)
        span.set_attribute(ERROR_TYPE, str(status))
    else:
        span.set_attribute(ERROR_TYPE, type(exc).__qualname__)
    request_id = getattr(exc, "request_id", None)
    if isinstance(request_id, str):
        span.set_attribute(REQUEST_ID, request_id)
    span.record_exception(exc)
    span.set_status(_trace.Status(_trace.StatusCode.ERROR, type(exc).__name__))


def record_retry(reason: str, *, attempt: int, delay_s: float, service: str | None = None) -> None:
    """A request is about to be sent again: an event on the current span (the API call's)
    and one on the retries counter. `reason` is low-cardinality: a status or an error class."""
    if not ENABLED:
        return
    span = _trace.get_current_span()
    span.add_event(
        "spark.retry", {REASON: reason, "spark.attempt": attempt, "spark.delay_s": delay_s}
    )
    _get_instruments().retries.add(1, _metric_attributes(service, reason=reason))


def _metric_attributes(service: str | None, reason: str | None = None) -> dict[str, str]:
    # Metrics carry the service, never the batch id: one time series per batch would not scale.
    attributes = {SERVICE: service} if service is not None else {}
    if reason is not None:
        attributes[REASON] = reason
    return attributes


# ---- one span per stream -------------------------------------------------------------------


class StreamTelemetry:
    """What one `stream_outputs()` reports: a `spark.batches.stream` span from `start()` to
    `end()` with the totals as attributes, and the stream metrics as it goes.

    The engine calls the hooks; each is cheap and none raises. `clock` is injectable so a
    test can pin chunk round-trip times.
    """

    __slots__ = (
        "_clock",
        "_counts",
        "_instruments",
        "_pushed_at",
        "_service",
        "_span",
    )

    def __init__(self, *, service: str | None, clock: Callable[[], float]) -> None:
        self._service = service
        self._clock = clock
        self._span: Span | None = None
        self._instruments = _get_instruments()
        self._pushed_at: dict[str, float] = {}  # chunk id -> first push; bounded by the window
        self._counts = dict.fromkeys(
            (RECORDS, CHUNKS, FAILED_RECORDS, RETRIES, THROTTLES, REPUSHES), 0
        )

    def start(self, *, batch_id: str | None = None) -> None:
        """The stream begins (its pipeline may not exist yet: see `batch()`)."""
        attributes: dict[str, Any] = {}
        if self._service is not None:
            attributes[SERVICE] = self._service
        if batch_id is not None:
            attributes[BATCH_ID] = batch_id
        self._span = _get_tracer().start_span(
            "spark.batches.stream", kind=_trace.SpanKind.INTERNAL, attributes=attributes
        )

    def activate(self) -> Any:
        """A context manager making the stream's span current, so the API calls made inside
        (in tasks started inside it) become its children."""
        return _trace.use_span(self._span, end_on_exit=False) if self._span else _NULL

    def batch(self, batch_id: str, service: str | None = None) -> None:
        """The pipeline the stream runs on is known (after its create, or its `get_info`,
        which also names the service of a stream started from a pipeline id)."""
        if service is not None and self._service is None:
            self._service = service
        if self._span is not None:
            self._span.set_attribute(BATCH_ID, batch_id)
            if self._service is not None:
                self._span.set_attribute(SERVICE, self._service)

    def chunk_pushed(self, chunk_id: str, records: int) -> None:
        """A push of chunk `chunk_id` was accepted. A re-push's acceptance counts nothing
        again (see `repushed`), and the chunk's round trip runs from its first push."""
        if chunk_id in self._pushed_at:
            return
        self._pushed_at[chunk_id] = self._clock()
        self._counts[RECORDS] += records
        self._counts[CHUNKS] += 1
        attributes = _metric_attributes(self._service)
        self._instruments.pushed.add(records, attributes)
        self._instruments.in_flight.add(1, attributes)

    def chunk_completed(self, chunk_id: str, records: int, failed: int) -> None:
        """Chunk `chunk_id`'s results were pulled: `failed` of its `records` are errors."""
        started = self._pushed_at.pop(chunk_id, None)
        self._counts[FAILED_RECORDS] += failed
        attributes = _metric_attributes(self._service)
        self._instruments.completed.add(records, attributes)
        if failed:
            self._instruments.failed.add(failed, attributes)
        if started is not None:
            self._instruments.in_flight.add(-1, attributes)
            self._instruments.round_trip.record(max(0.0, self._clock() - started), attributes)

    def retried(self, reason: str) -> None:
        """A request of this stream is sent again (`reason`: a status or an error class)."""
        self._counts[RETRIES] += 1
        self._instruments.retries.add(1, _metric_attributes(self._service, reason=reason))

    def throttled(self, reason: str, delay_s: float) -> None:
        """A push was refused for now (`reason`: 'rate_limit', 'input_buffer_full'...)."""
        self._counts[THROTTLES] += 1
        self._instruments.throttles.add(1, _metric_attributes(self._service, reason=reason))
        if self._span is not None:
            self._span.add_event("spark.throttle", {REASON: reason, "spark.delay_s": delay_s})

    def repushed(self, chunk_id: str) -> None:
        """Chunk `chunk_id` is pushed again because its first answer was lost."""
        self._counts[REPUSHES] += 1
        self._instruments.repushes.add(1, _metric_attributes(self._service))
        if self._span is not None:
            self._span.add_event("spark.repush", {"spark.chunk.id": chunk_id})

    def end(self, outcome: str, error: BaseException | None = None) -> None:
        """The stream is over: `outcome` is 'completed', 'cancelled', 'closed' or 'failed'.
        Chunks still in flight are taken off the gauge; the span ends with the totals."""
        attributes = _metric_attributes(self._service)
        for _ in self._pushed_at:
            self._instruments.in_flight.add(-1, attributes)
        self._pushed_at.clear()
        span, self._span = self._span, None
        if span is None:
            return
        span.set_attributes({**self._counts, OUTCOME: outcome})
        if error is not None:
            _record_error(span, error)
        span.end()


class _NoStream:
    """`StreamTelemetry` when OpenTelemetry is absent: every hook does nothing."""

    __slots__ = ()

    def start(self, *, batch_id: str | None = None) -> None:
        pass

    def activate(self) -> Any:
        return _NULL

    def batch(self, batch_id: str, service: str | None = None) -> None:
        pass

    def chunk_pushed(self, chunk_id: str, records: int) -> None:
        pass

    def chunk_completed(self, chunk_id: str, records: int, failed: int) -> None:
        pass

    def retried(self, reason: str) -> None:
        pass

    def throttled(self, reason: str, delay_s: float) -> None:
        pass

    def repushed(self, chunk_id: str) -> None:
        pass

    def end(self, outcome: str, error: BaseException | None = None) -> None:
        pass


class _Null:
    """A reusable do-nothing context manager."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


_NULL: Final = _Null()
NO_STREAM: Final = _NoStream()


Telemetry: TypeAlias = "StreamTelemetry | _NoStream"


def stream_telemetry(
    service: str | None, *, clock: Callable[[], float] = time.monotonic
) -> StreamTelemetry | _NoStream:
    """The hooks for one stream: real ones with OpenTelemetry, shared no-ops without."""
    if not ENABLED:
        return NO_STREAM
    return StreamTelemetry(service=service, clock=clock)
