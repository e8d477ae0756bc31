"""Release results in input order; pure."""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["ReorderBuffer"]

T = TypeVar("T")


class ReorderBuffer(Generic[T]):
    """Holds results that arrive early until every earlier sequence number has arrived.

    Its size is bounded by the stream's in-flight window: a slot is only freed once a result
    leaves this buffer, so at most `max_in_flight` results can wait here.
    """

    def __init__(self, first: int = 0) -> None:
        self._next = first
        self._waiting: dict[int, T] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, seq: int, item: T) -> list[T]:
        """Store one result; return every result now releasable, in order."""
        if seq < self._next or seq in self._waiting:
            raise ValueError(f"sequence number {seq} was already added")
        self._waiting[seq] = item
        released = []
        while self._next in self._waiting:
            released.append(self._waiting.pop(self._next))
            self._next += 1
        return released
