"""`AsyncBatches`: the tenant-level verbs (`describe`, `create`) and `of(id)`."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import date, datetime
from types import TracebackType
from typing import Any, Final, TypeVar

import orjson

from ._config import BaseUrl, positive_number
from ._constants import API_VERSION, DEFAULT_CALL_PURPOSE, DEFAULT_SOURCE_SYSTEM
from ._exceptions import InvalidResponseError, SparkSdkError
from ._http import HttpClient
from ._json import BatchDescriptionJSON, BatchJSON
from ._models import Batch, BatchDescription
from ._otel import traced
from ._pipeline import AsyncPipeline
from ._response import ApiResponse
from ._streaming._adapter import PipelineAdapter
from ._streaming._checkpoint import CheckpointStore, checkpointer
from ._streaming._chunker import Records
from ._streaming._options import StreamOptions
from ._streaming._stream import ResultStream
from ._types import CreateOptions, Progress, StrList
from ._uri import UriParams

__all__ = ["AsyncBatches", "acceptable_error_percentage", "create_body"]

B = TypeVar("B", bound="AsyncBatches")

_TEMPLATE: Final = f"/{{tenant}}/{API_VERSION}/batch"  # `url.template` of the API-call spans


def acceptable_error_percentage(accuracy: float) -> int:
    """`accuracy` (0..1) as Spark's integer error percentage: 0.95 -> 5, 0 -> 100, 1 -> 0.

    Rounded before the ceiling, so float noise never adds a point (0.95 is not 6). A fraction
    of a point still rounds up: 0.999 allows 1 %.

    Raises:
        SparkSdkError: `accuracy` is not a number between 0 and 1.
    """
    if (
        isinstance(accuracy, bool)
        or not isinstance(accuracy, (int, float))
        or not (math.isfinite(accuracy) and 0 <= accuracy <= 1)
    ):
        raise SparkSdkError(f"accuracy must be a number between 0.0 and 1.0, got {accuracy!r}")
    return math.ceil(round((1 - accuracy) * 100, 9))


def _join(name: str, value: StrList) -> str | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    # Sequence, not any iterable: list(5) would be a TypeError, and a set has no order.
    if not isinstance(items, Sequence) or not all(isinstance(v, str) for v in items):
        raise SparkSdkError(f"{name} must be a string or a list of strings, got {value!r}")
    joined = ",".join(v.strip() for v in items if v.strip())
    return joined or None


def _count(name: str, value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SparkSdkError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def _timestamp(value: str | datetime | date | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise SparkSdkError(f"active_since must be a string or a datetime, got {value!r}")


def _text(name: str, value: str | None) -> str | None:
    if value is not None and not isinstance(value, str):
        raise SparkSdkError(f"{name} must be a string, got {value!r}")
    return value


def create_body(
    uri: str | UriParams,
    *,
    active_since: str | datetime | date | None = None,
    source_system: str | None = None,
    correlation_id: str | None = None,
    call_purpose: str | None = None,
    subservices: StrList = None,
    selected_outputs: StrList = None,
    unique_record_key: StrList = None,
    min_runners: int | None = None,
    max_runners: int | None = None,
    chunks_per_vm: int | None = None,
    runners_per_vm: int | None = None,
    max_input_size: float | None = None,
    max_output_size: float | None = None,
    accuracy: float | None = None,
    extras: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The `POST batch` body, as the documented create call sends it; keys whose value is None
    are dropped.

    Raises:
        SparkSdkError: the URI names no service, or an option is invalid.
    """
    params = UriParams.of(uri).validate()
    min_workers = _count("min_runners", min_runners)
    max_workers = _count("max_runners", max_runners)
    if min_workers and max_workers and min_workers > max_workers:
        raise SparkSdkError(f"min_runners ({min_workers}) exceeds max_runners ({max_workers})")
    body: dict[str, Any] = {
        "service": params.service_id or params.service_uri,
        "version_id": params.version_id,
        "version_by_timestamp": _timestamp(active_since),
        "subservice": _join("subservices", subservices),
        "output": _join("selected_outputs", selected_outputs),
        "call_purpose": _text("call_purpose", call_purpose) or DEFAULT_CALL_PURPOSE,
        "source_system": _text("source_system", source_system) or DEFAULT_SOURCE_SYSTEM,
        "correlation_id": _text("correlation_id", correlation_id),
        "unique_record_key": _join("unique_record_key", unique_record_key),
        "initial_workers": min_workers,
        "max_workers": max_workers,
        "chunks_per_request": _count("chunks_per_vm", chunks_per_vm),
        "runner_thread_count": _count("runners_per_vm", runners_per_vm),
        # Published clients spell these three ways (`max_input_size`, then `max_input_in_mb`
        # in cspark 0.2.5-0.2.6); this is the current releases' spelling, the one Spark's
        # own SDK settled on.
        "max_input_size_in_mb": positive_number("max_input_size", max_input_size, "megabytes"),
        "max_output_size_in_mb": positive_number("max_output_size", max_output_size, "megabytes"),
        "acceptable_error_percentage": (
            None if accuracy is None else acceptable_error_percentage(accuracy)
        ),
    }
    body = {k: v for k, v in body.items() if v is not None}
    if extras is not None and not isinstance(extras, Mapping):
        raise SparkSdkError(f"extras must be a dict of body fields, got {type(extras).__name__}")
    if extras:
        body.update(extras)  # last, so it can add or override any key
    return body


class AsyncBatches:
    """The Batches API: `describe()`, `create()` and `of(id)`. Get it as `spark.batches`.

    `async with spark.batches as b:` (the official documentation's workflow shape) closes the
    client on exit.
    """

    def __init__(
        self,
        *,
        http: HttpClient,
        base_url: BaseUrl,
        close: Callable[[], Awaitable[None]],
    ) -> None:
        self._http = http
        self._base_url = base_url
        self._logger = http.logger
        self._close = close

    async def describe(self) -> ApiResponse[BatchDescription, BatchDescriptionJSON]:
        """`GET batch/status`: batches in progress or finished in the last hour, and the
        tenant's buffers and workers."""
        url = self._base_url.api("batch", "status")

        async def call() -> ApiResponse[BatchDescription, BatchDescriptionJSON]:
            raw, data = await self._http.request_json("GET", url)
            return ApiResponse(raw, data, BatchDescription)

        return await traced(
            "batches.describe",
            call,
            method="GET",
            url_template=_TEMPLATE + "/status",
            origin=self._base_url.origin,
        )

    async def create(
        self,
        uri: str | UriParams,
        *,
        active_since: str | datetime | date | None = None,
        source_system: str | None = None,
        correlation_id: str | None = None,
        call_purpose: str | None = None,
        subservices: StrList = None,
        selected_outputs: StrList = None,
        unique_record_key: StrList = None,
        min_runners: int | None = None,
        max_runners: int | None = None,
        chunks_per_vm: int | None = None,
        runners_per_vm: int | None = None,
        max_input_size: float | None = None,
        max_output_size: float | None = None,
        accuracy: float | None = None,
        extras: Mapping[str, Any] | None = None,
    ) -> ApiResponse[Batch, BatchJSON]:
        """`POST batch`: create a pipeline for a service.

        Args:
            uri: `'folder/service[version]'`, `'service/{id}'`, `'version/{id}'`,
                `'folders/f/services/s'`, a service UUID, or a `UriParams`.
            active_since: transaction date that picks the service version.
            source_system, correlation_id, call_purpose: metadata.
            subservices, selected_outputs, unique_record_key: a string or a list (joined
                with commas).
            min_runners, max_runners, chunks_per_vm, runners_per_vm: experimental scaling
                (sent as initial_workers, max_workers, chunks_per_request,
                runner_thread_count).
            max_input_size, max_output_size: experimental buffer sizes in MB.
            accuracy: acceptable error rate 0.0-1.0, sent as `acceptable_error_percentage`.
            extras: raw body fields, merged last.

        Returns:
            The batch envelope; keep `.data['id']` to address the pipeline.

        Raises:
            SparkSdkError: the URI or an option is invalid (nothing is sent).
        """
        body = create_body(
            uri,
            active_since=active_since,
            source_system=source_system,
            correlation_id=correlation_id,
            call_purpose=call_purpose,
            subservices=subservices,
            selected_outputs=selected_outputs,
            unique_record_key=unique_record_key,
            min_runners=min_runners,
            max_runners=max_runners,
            chunks_per_vm=chunks_per_vm,
            runners_per_vm=runners_per_vm,
            max_input_size=max_input_size,
            max_output_size=max_output_size,
            accuracy=accuracy,
            extras=extras,
        )
        return await self._create(body)

    async def _create(self, body: Mapping[str, Any]) -> ApiResponse[Batch, BatchJSON]:
        async def call() -> ApiResponse[Batch, BatchJSON]:
            raw, data = await self._http.request_json(
                "POST", self._base_url.api("batch"), body=orjson.dumps(body)
            )
            return ApiResponse(raw, data, Batch)

        service = body.get("service")
        response = await traced(
            "batches.create",
            call,
            method="POST",
            url_template=_TEMPLATE,
            origin=self._base_url.origin,
            service=service if isinstance(service, str) else None,
        )
        data = response.data
        self._logger.info(
            "created batch pipeline %s for %s",
            data.get("id") if isinstance(data, dict) else "?",
            body.get("service"),
        )
        return response

    def stream_outputs(
        self,
        uri: str | UriParams,
        records: Records,
        *,
        create: CreateOptions | None = None,
        chunk_size: int | None = None,
        max_in_flight: int | None = None,
        ordered: bool = True,
        headers: Sequence[str] | None = None,
        parameters: Mapping[str, Any] | None = None,
        summary: Mapping[str, Any] | None = None,
        max_chunk_bytes: int | None = None,
        stall_timeout: float | None = None,
        progress: Progress | None = None,
        checkpoint: CheckpointStore | None = None,
        fingerprint: str | None = None,
    ) -> ResultStream:
        """Create a pipeline for `uri`, stream `records` through it, and close it: the one-call
        form of `AsyncPipeline.stream_outputs()` (same options). The pipeline is cancelled if
        the stream stops early or fails (kept open for a resume with `checkpoint=`).

        ```python
        async for result in spark.batches.stream_outputs("my-folder/my-service", records):
            ...
        ```

        Args:
            create: keyword arguments for `create()` (e.g. `{"max_runners": 50}`); typed
                as `CreateOptions`, so a type checker catches a misspelt option.
            checkpoint: a `CheckpointStore` (e.g. `FileCheckpoint(path)`) that makes the job
                resumable. A re-run with the same records, service and options continues
                where the last run's consumer stopped: it re-attaches to the batch while it
                is open (a fresh one once it is closed, cancelled or timed out), pushes only
                unfinished chunks, under the same ids, and never yields a committed result
                again. A result is committed when the next one is asked for or on
                `commit(meta)`. Once complete, the checkpoint says so (a re-run yields
                nothing); remove it with `await store.clear()`.
            fingerprint: with `checkpoint`, a string that identifies the input (a hash, a
                file's name and size): a checkpoint of another input is refused.

        Raises:
            SparkSdkError: an option or a create argument is invalid (now, nothing is sent).
            CheckpointError: the checkpoint is unreadable, belongs to another job, or names
                a batch the server no longer knows (when the stream opens; nothing is sent).
        """
        if create is not None and not isinstance(create, Mapping):
            raise SparkSdkError(
                f"create= must be a dict of create() keyword arguments, got {type(create).__name__}"
            )
        try:
            body = create_body(uri, **(create or {}))
        except TypeError as exc:  # an unknown create() keyword
            raise SparkSdkError(f"create= holds an option create() does not take: {exc}") from None
        options = StreamOptions(
            chunk_size=chunk_size,
            max_in_flight=max_in_flight,
            ordered=ordered,
            headers=headers,
            parameters=parameters,
            summary=summary,
            on_exit="cancel",
            max_chunk_bytes=max_chunk_bytes,
            stall_timeout=stall_timeout,
            progress=progress,
        )

        service = body.get("service")
        job = checkpointer(
            checkpoint,
            fingerprint,
            service=service if isinstance(service, str) else None,
            options=options,
            logger=self._http.logger,
        )

        async def open_target() -> PipelineAdapter:
            if job is not None:
                await job.load()
                reusable = await job.reusable_batch(self._batch_status)
                if reusable is not None:
                    return self.of(reusable).adapter()
            created = await self._create(body)
            batch_id = created.data.get("id") if isinstance(created.data, dict) else None
            if not isinstance(batch_id, str) or not batch_id:
                raise InvalidResponseError(
                    status=created.status,
                    method=created.method,
                    url=created.url,
                    request_id=created.request_id,
                    headers=created.headers,
                    error_message="create answered without a batch id",
                )
            return self.of(batch_id).adapter()

        return ResultStream(
            open_target,
            records,
            options,
            policy=self._http.policy,
            tracker=self._http,
            close_when_done=True,
            service=body.get("service"),
            checkpoint=job,
        )

    async def _batch_status(self, batch_id: str) -> str | None:
        return (await self.of(batch_id).get_status()).parsed.batch_status

    def of(self, batch_id: str) -> AsyncPipeline:
        """A handle on pipeline `batch_id`. No request is made and the id is not checked
        beyond being a non-empty string.

        Raises:
            SparkSdkError: `batch_id` is empty or not a string.
        """
        if not isinstance(batch_id, str) or not batch_id.strip():
            raise SparkSdkError(f"a batch pipeline id is required, got {batch_id!r}")
        return AsyncPipeline(batch_id.strip(), http=self._http, base_url=self._base_url)

    async def __aenter__(self: B) -> B:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close()
