"""`PipelineAdapter`: the stream's one view of a batch pipeline. Single-attempt calls (the
stream owns retries, so throttles are shared and lost answers reasoned about), raw JSON (no
model structuring on the hot path), and how to end the pipeline.

`AsyncPipeline` builds one from its own request function; nothing here imports it, so the
dependency runs one way: `_pipeline` -> `_streaming`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, Protocol

from .._http import RawResponse

__all__ = ["OnExit", "PipelineAdapter", "Requester"]

OnExit = Literal["cancel", "close"]


class Requester(Protocol):
    """One attempt of a call on `batch/{id}/{segments}`: the raw response and decoded JSON
    (None with `decode=False`)."""

    def __call__(
        self,
        method: str,
        *segments: str,
        body: bytes | None = None,
        params: dict[str, str | int] | None = None,
        decode: bool = True,
    ) -> Awaitable[tuple[RawResponse, Any]]: ...


class PipelineAdapter:
    """What the stream engine needs from one batch pipeline, and nothing else."""

    def __init__(
        self,
        batch_id: str,
        request: Requester,
        end: Callable[[OnExit], Awaitable[None]],
    ) -> None:
        self.batch_id = batch_id
        self._request = request
        self._end = end

    async def push(self, body: bytes) -> None:
        """`POST chunks`; the answer (a status object) is not needed by the stream, so it is
        not decoded (only checked to be one: a proxy's page is still an error)."""
        raw, _ = await self._request("POST", "chunks", body=body, decode=False)
        if raw.body[:1] != b"{":
            raw.json()  # not a status object: a page from a proxy is an error, as ever

    async def pull(self, max_chunks: int) -> tuple[list[Mapping[str, Any]], Mapping[str, Any], int]:
        """`GET chunkresults`: (chunk results, status counters as sent, the body's size)."""
        raw, data = await self._request("GET", "chunkresults", params={"max": max_chunks})
        body = _object(raw, data, "{data, status}")
        results, status = body.get("data"), body.get("status")
        if results is None:
            results = []  # "if no chunks are available, the method returns the status"
        if not isinstance(results, list) or not all(isinstance(r, Mapping) for r in results):
            raise raw.invalid("'data' is not a list of chunk results")
        return results, status if isinstance(status, Mapping) else {}, len(raw.body)

    async def info(self) -> Mapping[str, Any]:
        """`GET batch/{id}`: the `data` object (configuration, summary)."""
        raw, data = await self._request("GET")
        inner = _object(raw, data, "a batch envelope").get("data")
        return inner if isinstance(inner, Mapping) else {}

    async def status(self) -> Mapping[str, Any]:
        """`GET batch/{id}/status`: the counters."""
        raw, data = await self._request("GET", "status")
        return _object(raw, data, "a status object")

    async def end(self, how: OnExit) -> None:
        """Cancel or close the pipeline (with the client's usual retries)."""
        await self._end(how)


def _object(raw: RawResponse, data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise raw.invalid(f"expected {what}, got {type(data).__name__}")
    return data
