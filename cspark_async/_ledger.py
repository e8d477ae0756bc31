"""Per-pipeline chunk bookkeeping: ids, duplicate policy and stats. Pure, no I/O.

Where the official SDK goes wrong, this does not: the ledger belongs to one pipeline (theirs is
shared by every pipeline), a blank id is replaced by a fresh UUID before sending (theirs sends
it blank), `'replace'` sends a renamed copy and never mutates the caller's chunk nor lowers the
stats, `'ignore'` sends the duplicate as it is (a warning is logged), and `'throw'` refuses the
whole push before anything is sent.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Final, Literal

import attrs

from ._chunks import BatchChunk, ChunkData, count_records, new_chunk_id
from ._exceptions import SparkSdkError
from ._models import PipelineStats

__all__ = ["DUPLICATE_POLICIES", "ChunkLedger", "DuplicatePolicy"]

DuplicatePolicy = Literal["replace", "ignore", "throw"]
DUPLICATE_POLICIES: Final = ("replace", "ignore", "throw")


class ChunkLedger:
    """Chunk ids a pipeline has pushed (with their record counts) and ids in flight."""

    def __init__(self, batch_id: str, logger: logging.Logger) -> None:
        self._batch_id = batch_id
        self._logger = logger
        self._sizes: dict[str, int] = {}
        self._pending: Counter[str] = Counter()

    @property
    def stats(self) -> PipelineStats:
        return PipelineStats(self._sizes)

    def _known(self, chunk_id: str) -> bool:
        return chunk_id in self._sizes or self._pending[chunk_id] > 0

    def prepare(self, chunks: Sequence[BatchChunk], policy: DuplicatePolicy) -> list[BatchChunk]:
        """The chunks to send, with ids and sizes settled; their ids are reserved until
        `commit()` or `release()`.

        Raises:
            SparkSdkError: an unknown policy, a chunk that is not a `BatchChunk` or holds no
                records, or a duplicate id under `'throw'`. Nothing is reserved then.
        """
        if policy not in DUPLICATE_POLICIES:
            raise SparkSdkError(
                f"if_chunk_id_duplicated must be one of {', '.join(DUPLICATE_POLICIES)}, "
                f"got {policy!r}"
            )
        prepared: list[BatchChunk] = []
        here: set[str] = set()
        for i, chunk in enumerate(chunks):
            if not isinstance(chunk, BatchChunk):
                raise SparkSdkError(f"chunks[{i}] must be a BatchChunk, got {type(chunk).__name__}")
            if not isinstance(chunk.data, ChunkData) or not isinstance(chunk.data.inputs, list):
                raise SparkSdkError(f"chunks[{i}].data must be a ChunkData with a list of inputs")
            records = count_records(chunk.data.inputs)
            if records < 1:
                raise SparkSdkError(f"chunks[{i}] (id {chunk.id!r}) holds no records")
            size = chunk.size
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                size = records
            chunk_id = chunk.id if isinstance(chunk.id, str) else ""
            if not chunk_id.strip():
                chunk_id = new_chunk_id()
            elif self._known(chunk_id) or chunk_id in here:
                if policy == "throw":
                    raise SparkSdkError(
                        f"chunk id {chunk_id!r} is already used in batch pipeline "
                        f"{self._batch_id}; nothing was pushed"
                    )
                if policy == "replace":
                    fresh = new_chunk_id()
                    self._logger.info(
                        "chunk id %r is duplicated in batch pipeline %s; sent as %r",
                        chunk_id,
                        self._batch_id,
                        fresh,
                    )
                    chunk_id = fresh
                else:
                    self._logger.warning(
                        "chunk id %r is duplicated in batch pipeline %s; sent anyway "
                        "(outputs will share the id)",
                        chunk_id,
                        self._batch_id,
                    )
            here.add(chunk_id)
            if chunk_id != chunk.id or size != chunk.size:
                # A copy: the caller's chunk is never touched.
                chunk = attrs.evolve(chunk, id=chunk_id, size=size)
            prepared.append(chunk)
        for chunk in prepared:
            self._pending[chunk.id] += 1
        return prepared

    def commit(self, chunks: Sequence[BatchChunk]) -> None:
        """The server accepted `chunks`: count them in the stats."""
        for chunk in chunks:
            self._unreserve(chunk.id)
            self._sizes[chunk.id] = self._sizes.get(chunk.id, 0) + chunk.size

    def release(self, chunks: Sequence[BatchChunk]) -> None:
        """The push failed: free the reserved ids."""
        for chunk in chunks:
            self._unreserve(chunk.id)

    def _unreserve(self, chunk_id: str) -> None:
        self._pending[chunk_id] -= 1
        if self._pending[chunk_id] <= 0:
            del self._pending[chunk_id]
