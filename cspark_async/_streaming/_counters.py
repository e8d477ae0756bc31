"""Reading a server's status counters defensively: a counter that is missing, negative, not a
number or a numeric string is "unknown", never a crash and never a false zero."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import frozen

__all__ = ["Counters", "count"]


def count(value: Any) -> int | None:
    """A non-negative integer counter, or None when `value` is not usably one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


@frozen
class Counters:
    """The counters lost-result recovery looks at (None: unknown)."""

    chunks_available: int | None
    workers_in_use: int | None
    input_buffer_used_bytes: int | None

    @classmethod
    def read(cls, status: Mapping[str, Any]) -> Counters:
        return cls(
            count(status.get("chunks_available")),
            count(status.get("workers_in_use")),
            count(status.get("input_buffer_used_bytes")),
        )

    @property
    def known(self) -> bool:
        """Every counter was sent as a usable number."""
        return None not in (
            self.chunks_available,
            self.workers_in_use,
            self.input_buffer_used_bytes,
        )

    @property
    def idle(self) -> bool:
        """The server plainly says it holds nothing for us: nothing queued, running or ready."""
        return self.known and not (
            self.chunks_available or self.workers_in_use or self.input_buffer_used_bytes
        )
