"""`AsyncPipeline`: one batch pipeline, addressed by id, with its own client-side state.

Local state rules (the server is not asked): `push` needs an open pipeline; `pull` is refused
once cancelled (cancel discards outputs); `dispose` needs an open pipeline; `cancel` is allowed
after `dispose` (not after `cancel`). A refused call raises `SparkSdkError` and sends nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Final, TypeVar

import anyio
import orjson

from ._chunks import BatchChunk, ChunkData, count_records, new_chunk_id
from ._config import BaseUrl
from ._constants import API_VERSION, DEFAULT_PULL_MAX_CHUNKS
from ._exceptions import SparkError, SparkSdkError
from ._http import HttpClient, RawResponse
from ._json import BatchJSON, BatchStatusJSON, PullResultJSON
from ._ledger import ChunkLedger, DuplicatePolicy
from ._models import Batch, BatchStatus, PipelineState, PipelineStats, PullResult
from ._otel import traced
from ._response import ApiResponse
from ._serde import chunks_from_raw, encode_chunk
from ._streaming._adapter import OnExit, PipelineAdapter
from ._streaming._checkpoint import CheckpointStore, checkpointer
from ._streaming._chunker import Records
from ._streaming._options import StreamOptions
from ._streaming._stream import ResultStream
from ._types import Progress

__all__ = ["AsyncPipeline"]

T = TypeVar("T")
P = TypeVar("P", bound="AsyncPipeline")

_CLEANUP_TIMEOUT_S: Final = 30.0
_TEMPLATE: Final = f"/{{tenant}}/{API_VERSION}/batch/{{batch_id}}"  # the spans' url.template


class AsyncPipeline:
    """A client-side handle on one batch pipeline; `AsyncBatches.of(id)` makes one, no I/O.

    ```python
    async with spark.batches.of(batch_id) as pipeline:   # disposes on exit, cancels on error
        await pipeline.push(inputs=[{"value": 42}])
        result = await pipeline.pull()
    ```

    Every pipeline object keeps its own bookkeeping (`state`, `stats`, chunk ids); two objects
    for the same id do not share it. `stream_outputs()` sees the pipeline through a
    `PipelineAdapter`: single-attempt calls on this batch (the stream owns its retries) and
    how to end it.
    """

    def __init__(self, batch_id: str, *, http: HttpClient, base_url: BaseUrl) -> None:
        self._id = batch_id
        self._http = http
        self._base_url = base_url
        self._urls: dict[tuple[str, ...], str] = {}
        self._logger = http.logger
        self._state: PipelineState = "open"
        self._ledger = ChunkLedger(batch_id, self._logger)

    @property
    def batch_id(self) -> str:
        return self._id

    @property
    def state(self) -> PipelineState:
        """'open', 'closed' (after `dispose()`) or 'cancelled' (after `cancel()`); local only."""
        return self._state

    @property
    def is_disposed(self) -> bool:
        return self._state != "open"

    @property
    def stats(self) -> PipelineStats:
        """Chunk id -> records pushed, with `.chunks` and `.records` totals (a snapshot)."""
        return self._ledger.stats

    def __repr__(self) -> str:
        return f"<AsyncPipeline {self._id} state={self._state} chunks={len(self._ledger.stats)}>"

    # ---- verbs ---------------------------------------------------------------------------

    async def get_info(self) -> ApiResponse[Batch, BatchJSON]:
        """`GET batch/{id}`: the pipeline's details, summary and configuration."""
        return await self._call("get_info", "GET", Batch)

    async def get_status(self) -> ApiResponse[BatchStatus, BatchStatusJSON]:
        """`GET batch/{id}/status`: counters and buffer usage."""
        return await self._call("get_status", "GET", BatchStatus, "status")

    async def push(
        self,
        *,
        inputs: Sequence[Any] | None = None,
        data: ChunkData | None = None,
        chunks: Sequence[BatchChunk] | BatchChunk | None = None,
        raw: str | bytes | None = None,
        if_chunk_id_duplicated: DuplicatePolicy = "replace",
    ) -> ApiResponse[BatchStatus, BatchStatusJSON]:
        """`POST batch/{id}/chunks`: add input data. Give exactly one of:

        Args:
            inputs: records sent as one chunk (JSON-array form or a list of objects).
            data: a `ChunkData` sent as one chunk with a fresh id.
            chunks: `BatchChunk`s (e.g. from `create_chunks()`); blank ids get a fresh UUID.
            raw: a JSON body, `{"chunks": [...]}` or a bare array of chunks.
            if_chunk_id_duplicated: for an id this pipeline already pushed (or repeated in
                this push): 'replace' sends it under a fresh id, 'ignore' sends it as is,
                'throw' refuses the push.

        Returns:
            The pipeline's status after the push (`.data['record_submitted']`...).

        Raises:
            SparkSdkError: the pipeline is closed or cancelled, not exactly one data argument,
                no records, a duplicate under 'throw', or a record or option the stream would
                refuse too (a ragged row, mixed forms, NaN, a datetime...: the message names
                the chunk and the record); nothing is sent.
        """
        self._require_open("push to")
        given = [
            name
            for name, value in (
                ("inputs", inputs),
                ("data", data),
                ("chunks", chunks),
                ("raw", raw),
            )
            if value is not None
        ]
        if len(given) != 1:
            raise SparkSdkError(
                "push() takes exactly one of inputs=, data=, chunks= or raw=; got "
                + (", ".join(f"{g}=" for g in given) if given else "none")
            )
        batch: list[BatchChunk]
        if inputs is not None:
            if isinstance(inputs, (str, bytes)) or not isinstance(inputs, Sequence):
                kind = type(inputs).__name__
                raise SparkSdkError(f"inputs must be a list of records, got {kind}")
            batch = [_one_chunk(ChunkData(inputs=list(inputs)))]
        elif data is not None:
            if not isinstance(data, ChunkData) or not isinstance(data.inputs, list):
                raise SparkSdkError(f"data must be a ChunkData with a list of inputs, got {data!r}")
            batch = [_one_chunk(data)]
        elif chunks is not None:
            if isinstance(chunks, BatchChunk):
                batch = [chunks]
            elif isinstance(chunks, Sequence) and not isinstance(chunks, (str, bytes)):
                batch = list(chunks)  # items are checked by the ledger
            else:
                raise SparkSdkError(
                    f"chunks must be a BatchChunk or a list of them, got {type(chunks).__name__}"
                )
        else:
            assert raw is not None
            batch = chunks_from_raw(raw)
        if not batch:
            raise SparkSdkError(f"nothing to push to batch pipeline {self._id}: no chunks")
        return await self._push_chunks(batch, if_chunk_id_duplicated)

    async def pull(
        self, max_chunks: int = DEFAULT_PULL_MAX_CHUNKS
    ) -> ApiResponse[PullResult, PullResultJSON]:
        """`GET batch/{id}/chunkresults?max=N`: take up to `max_chunks` finished chunks from
        the output buffer (each is returned once), plus the status.

        Raises:
            SparkSdkError: `max_chunks` < 1, or the pipeline was cancelled.
        """
        if isinstance(max_chunks, bool) or not isinstance(max_chunks, int) or max_chunks < 1:
            raise SparkSdkError(f"max_chunks must be an integer >= 1, got {max_chunks!r}")
        return await self._pull(max_chunks)

    async def dispose(self) -> ApiResponse[Batch, BatchJSON]:
        """`PATCH batch/{id}` to `closed`: no more input; pending chunks still finish and can
        be pulled."""
        self._require_open("dispose")
        response = await self._patch("closed")
        self._state = "closed"
        self._logger.info("batch pipeline %s closed", self._id)
        return response

    async def cancel(self) -> ApiResponse[Batch, BatchJSON]:
        """`PATCH batch/{id}` to `cancelled`: stop now and discard both buffers. Allowed after
        `dispose()`."""
        if self._state == "cancelled":
            raise SparkSdkError(f"batch pipeline {self._id} is already cancelled")
        response = await self._patch("cancelled")
        self._state = "cancelled"
        self._logger.info("batch pipeline %s cancelled", self._id)
        return response

    def stream_outputs(
        self,
        records: Records,
        *,
        chunk_size: int | None = None,
        max_in_flight: int | None = None,
        ordered: bool = True,
        headers: Sequence[str] | None = None,
        parameters: Mapping[str, Any] | None = None,
        summary: Mapping[str, Any] | None = None,
        on_exit: OnExit = "cancel",
        max_chunk_bytes: int | None = None,
        stall_timeout: float | None = None,
        progress: Progress | None = None,
        checkpoint: CheckpointStore | None = None,
        fingerprint: str | None = None,
    ) -> ResultStream:
        """Stream `records` through this pipeline and yield each chunk's results as it drains.

        ```python
        async for result in pipeline.stream_outputs(records):
            for offset, record, output, error in result.items(): ...
        ```

        Records are read lazily from any iterable or async iterable: dicts, or rows after a
        header row (or with `headers=`). Chunks are pushed concurrently, pulled as soon as
        they finish, and yielded exactly once, in input order unless `ordered=False`.
        Memory stays proportional to `max_in_flight x chunk_size`. A result's `inputs` are
        the records as read: the caller's own objects from a list or tuple, copies (one level
        deep) from any other iterable, which may reuse one object for every record.

        Args:
            chunk_size: records per chunk at most; by default about 200, evened out over the
                pipeline's workers when `records` has a length.
            max_in_flight: chunks out at once (pushed, not yet yielded); by default twice the
                pipeline's workers plus two. A 429 or a full input buffer halves it for a
                while; accepted pushes grow it back.
            ordered: yield in input order (a bounded reorder window) or as results drain.
            headers: column names when every record is a row.
            parameters, summary: the chunks' shared inputs and summary options.
            on_exit: what happens to the server pipeline when the stream stops early or fails:
                'cancel' (discard what is pending) or 'close' (let it finish).
            max_chunk_bytes: a chunk's JSON size at most; by default 1 MiB or a quarter of
                the pipeline's input buffer, whichever is less, so that no chunk can overflow
                the buffer and none holds the event loop long (a larger record still goes,
                alone). Small chunks share a POST, and pulls are sized to about 1 MiB.
            stall_timeout: seconds without any result, while records are outstanding (or
                with every push throttled), before the stream fails with a `StreamError`
                saying what it waited for; by default the client's (600).
            progress: called with `state` after each chunk is handed over.
            checkpoint: a `CheckpointStore` (e.g. `FileCheckpoint(path)`) that makes the job
                resumable: see `AsyncBatches.stream_outputs()`. This form resumes on this
                pipeline (re-attached when it is the checkpoint's batch).
            fingerprint: with `checkpoint`, a string that identifies the input (a hash,
                a file's name and size): a checkpoint of another input is refused.

        Retries, backoff, timeouts and logging follow the client's policy (`max_retries=0`:
        a failed push or pull, or a lost result, ends the stream).

        Returns:
            A `ResultStream`: iterate it, or `async with` it for a deterministic cleanup point.

        Raises:
            SparkSdkError: an option is invalid or the pipeline is not open (now); the first
                chunk holds an invalid record (while iterating; nothing was sent).
            StreamError: while iterating: the server lost, failed or ended the batch, the
                stream stalled, or an invalid record came after others were sent.
        """
        self._require_open("stream through")
        options = StreamOptions(
            chunk_size=chunk_size,
            max_in_flight=max_in_flight,
            ordered=ordered,
            headers=headers,
            parameters=parameters,
            summary=summary,
            on_exit=on_exit,
            max_chunk_bytes=max_chunk_bytes,
            stall_timeout=stall_timeout,
            progress=progress,
        )
        job = checkpointer(
            checkpoint, fingerprint, service=None, options=options, logger=self._logger
        )
        return ResultStream(
            self.adapter(),
            records,
            options,
            policy=self._http.policy,
            tracker=self._http,
            checkpoint=job,
        )

    def adapter(self) -> PipelineAdapter:
        """This pipeline as the stream engine sees it (single-attempt calls, raw JSON)."""
        return PipelineAdapter(self._id, self._attempt, self._end)

    # ---- context manager -----------------------------------------------------------------

    async def __aenter__(self: P) -> P:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            if self._state == "open":
                await self.dispose()
            return
        if self._state == "cancelled":
            return
        # Best effort, shielded so a cancelled task still tells the server; never masks `exc`.
        with anyio.move_on_after(_CLEANUP_TIMEOUT_S, shield=True):
            try:
                await self.cancel()
            except SparkError as error:
                self._logger.warning(
                    "could not cancel batch pipeline %s after %s: %s",
                    self._id,
                    exc_type.__name__,
                    error,
                )

    # ---- the seam --------------------------------------------------------------------------

    async def _push_chunks(
        self, chunks: Sequence[BatchChunk], policy: DuplicatePolicy = "replace"
    ) -> ApiResponse[BatchStatus]:
        self._require_open("push to")
        prepared = self._ledger.prepare(chunks, policy)
        try:
            # Named as the caller gave them: `prepared` may carry fresh ids.
            body = b'{"chunks":[%b]}' % b",".join(
                encode_chunk(chunk, f"chunks[{i}] (id {given.id!r})")
                for i, (given, chunk) in enumerate(zip(chunks, prepared, strict=True))
            )
        except SparkSdkError:
            self._ledger.release(prepared)
            raise
        try:
            response = await self._call("push", "POST", BatchStatus, "chunks", body=body)
        except BaseException:
            self._ledger.release(prepared)
            raise
        self._ledger.commit(prepared)
        self._logger.info(
            "pushed %d records in %d chunks to batch pipeline %s",
            sum(c.size for c in prepared),
            len(prepared),
            self._id,
        )
        return response

    async def _pull(self, max_chunks: int) -> ApiResponse[PullResult]:
        if self._state == "cancelled":
            raise SparkSdkError(
                f"batch pipeline {self._id} is cancelled; its outputs were discarded"
            )
        return await self._call(
            "pull", "GET", PullResult, "chunkresults", params={"max": max_chunks}
        )

    # ---- plumbing --------------------------------------------------------------------------

    def _require_open(self, action: str) -> None:
        if self._state != "open":
            raise SparkSdkError(
                f"cannot {action} batch pipeline {self._id}: it is already {self._state}"
            )

    async def _attempt(
        self,
        method: str,
        *segments: str,
        body: bytes | None = None,
        params: dict[str, str | int] | None = None,
        decode: bool = True,
    ) -> tuple[RawResponse, Any]:
        if method == "POST":
            self._require_open("push to")
        elif self._state == "cancelled":
            raise SparkSdkError(f"batch pipeline {self._id} is cancelled")
        if not decode:  # an answer the caller does not read is not decoded
            url = self._url(segments)
            response = await self._http.request(
                method, url, body=body, params=params, max_retries=0
            )
            return response, None
        return await self._request(method, *segments, body=body, params=params, max_retries=0)

    def _url(self, segments: tuple[str, ...]) -> str:
        """`batch/{id}/{segments}`, built once per path (a stream asks for the same few)."""
        url = self._urls.get(segments)
        if url is None:
            url = self._urls[segments] = self._base_url.api("batch", self._id, *segments)
        return url

    async def _end(self, how: OnExit) -> None:
        if how == "cancel" and self._state != "cancelled":
            await self.cancel()
        elif how == "close" and self._state == "open":
            await self.dispose()

    async def _patch(self, status: str) -> ApiResponse[Batch]:
        verb = "dispose" if status == "closed" else "cancel"
        return await self._call(verb, "PATCH", Batch, body=orjson.dumps({"batch_status": status}))

    async def _request(
        self,
        method: str,
        *segments: str,
        body: bytes | None = None,
        params: dict[str, str | int] | None = None,
        max_retries: int | None = None,
    ) -> tuple[RawResponse, Any]:
        """One call on `batch/{id}/{segments}`: the raw response and its decoded JSON."""
        url = self._url(segments)
        return await self._http.request_json(
            method, url, body=body, params=params, max_retries=max_retries
        )

    async def _call(
        self,
        verb: str,
        method: str,
        model: type[T],
        *segments: str,
        body: bytes | None = None,
        params: dict[str, str | int] | None = None,
    ) -> ApiResponse[T]:
        async def call() -> ApiResponse[T]:
            raw, data = await self._request(method, *segments, body=body, params=params)
            return ApiResponse(raw, data, model)

        # One span per call (retries included); the aiohttp instrumentation's nest under it.
        return await traced(
            f"batches.{verb}",
            call,
            method=method,
            url_template="/".join((_TEMPLATE, *segments)),
            origin=self._base_url.origin,
            batch_id=self._id,
        )


def _one_chunk(data: ChunkData) -> BatchChunk:
    return BatchChunk(id=new_chunk_id(), data=data, size=count_records(data.inputs))
