"""The stream engine's view of an `AsyncPipeline`: single-attempt calls (the engine owns
retries), raw JSON (no model structuring on the hot path), and how to end the pipeline."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._engine import OnExit

if TYPE_CHECKING:
    from .._http import RawResponse
    from .._pipeline import AsyncPipeline

__all__ = ["PipelineTarget"]


class PipelineTarget:
    def __init__(self, pipeline: AsyncPipeline) -> None:
        self.pipeline = pipeline

    @property
    def batch_id(self) -> str:
        return self.pipeline.batch_id

    async def push(self, body: bytes) -> Mapping[str, Any]:
        self.pipeline._require_open("push to")
        raw, data = await self.pipeline._request("POST", "chunks", body=body, max_retries=0)
        return _object(raw, data, "a status object")

    async def pull(self, max_chunks: int) -> tuple[list[Mapping[str, Any]], Mapping[str, Any]]:
        raw, data = await self.pipeline._request(
            "GET", "chunkresults", params={"max": max_chunks}, max_retries=0
        )
        body = _object(raw, data, "{data, status}")
        results, status = body.get("data"), body.get("status")
        if results is None:
            results = []  # "if no chunks are available, the method returns the status"
        if not isinstance(results, list) or not all(isinstance(r, Mapping) for r in results):
            raise raw.invalid("'data' is not a list of chunk results")
        return results, status if isinstance(status, Mapping) else {}

    async def info(self) -> Mapping[str, Any]:
        raw, data = await self.pipeline._request("GET", max_retries=0)
        body = _object(raw, data, "a batch envelope")
        inner = body.get("data")
        return inner if isinstance(inner, Mapping) else {}

    async def end(self, how: OnExit) -> None:
        pipeline = self.pipeline
        if how == "cancel" and pipeline.state != "cancelled":
            await pipeline.cancel()
        elif how == "close" and pipeline.state == "open":
            await pipeline.dispose()


def _object(raw: RawResponse, data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise raw.invalid(f"expected {what}, got {type(data).__name__}")
    return data

