"""`StreamOptions`: one stream's validated options. Retries, backoff, timeouts and logging are
not here: they come from the client's `RetryPolicy`, like every other call's."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from attrs import frozen

from .._exceptions import SparkSdkError
from ._adapter import OnExit
from ._chunker import Chunker
from ._state import StreamState

__all__ = ["DEFAULT_CHUNK_SIZE", "STALL_CAP_BYTES", "StreamOptions"]

DEFAULT_CHUNK_SIZE: Final = 200
# Bytes of JSON per chunk (by default) and per pull: decoding or building that much takes a
# few milliseconds, the longest the stream holds the event loop in one go.
STALL_CAP_BYTES: Final = 1 << 20


@frozen(kw_only=True)
class StreamOptions:
    """Validated options of one stream; `None` means "adapt to the pipeline" (or, for
    `stall_timeout`, "the client's policy")."""

    chunk_size: int | None = None
    max_in_flight: int | None = None
    max_chunk_bytes: int | None = None
    ordered: bool = True
    headers: Sequence[str] | None = None
    parameters: Mapping[str, Any] | None = None
    summary: Mapping[str, Any] | None = None
    on_exit: OnExit = "cancel"
    pull_max_chunks: int = 100
    stall_timeout: float | None = None
    progress: Callable[[StreamState], None] | None = None

    def __attrs_post_init__(self) -> None:
        for name in ("chunk_size", "max_in_flight", "max_chunk_bytes", "pull_max_chunks"):
            value = getattr(self, name)
            if value is None and name != "pull_max_chunks":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SparkSdkError(f"{name} must be a positive integer, got {value!r}")
        if self.on_exit not in ("cancel", "close"):
            raise SparkSdkError(f"on_exit must be 'cancel' or 'close', got {self.on_exit!r}")
        if not isinstance(self.ordered, bool):
            raise SparkSdkError(f"ordered must be True or False, got {self.ordered!r}")
        if self.progress is not None and not callable(self.progress):
            raise SparkSdkError("progress must be a callable taking the stream's state")
        stall = self.stall_timeout
        if stall is not None and (
            isinstance(stall, bool)
            or not isinstance(stall, (int, float))
            or not (math.isfinite(stall) and stall > 0)
        ):
            raise SparkSdkError(
                f"stall_timeout must be a positive number of seconds, got {stall!r}"
            )
        if isinstance(self.summary, Mapping) and self.summary.get("return_all_records") is False:
            raise SparkSdkError(
                "summary return_all_records=False asks the server to drop every record's "
                "output, which a stream exists to deliver: use push() and pull() for summaries only"
            )
        # Headers, parameters and summary are checked now, not when the first record is read.
        self.chunker(self.chunk_size or DEFAULT_CHUNK_SIZE, self.max_chunk_bytes or 2**31)

    def chunker(
        self,
        chunk_size: int,
        max_chunk_bytes: int,
        max_record_bytes: int | None = None,
        id_prefix: str | None = None,
    ) -> Chunker:
        """A chunker with these options' headers, parameters and summary."""
        return Chunker(
            chunk_size=chunk_size,
            max_chunk_bytes=max_chunk_bytes,
            max_record_bytes=max_record_bytes,
            id_prefix=id_prefix,
            headers=self.headers,
            parameters=self.parameters,
            summary=self.summary,
        )
