"""Bookkeeping for one stream, exposed live for progress bars."""

from __future__ import annotations

import time

from attrs import define, field

__all__ = ["StreamState"]


@define
class StreamState:
    """Counters of one `stream_outputs()` run; updated in place as it runs.

    `records_*` count input records; `chunks_*` count chunks. A record is *completed* once its
    chunk's result has been handed to the consumer; *failed* when its result carries an error.
    """

    records_read: int = 0
    chunks_read: int = 0
    chunks_pushed: int = 0  # pushes the server acknowledged (a lost answer is not counted)
    pushes: int = 0  # POSTs the server acknowledged (one may carry several chunks)
    records_pushed: int = 0
    chunks_completed: int = 0
    records_completed: int = 0
    records_failed: int = 0
    chunks_retried: int = 0  # pushes or re-pushes beyond the first attempt
    duplicates_dropped: int = 0  # results for a chunk already delivered (a retried push ran twice)
    bytes_out: int = 0  # request bytes pushed
    bytes_in: int = 0  # result bytes pulled
    in_flight: int = 0  # chunks pushed or being pushed, not yet handed to the consumer
    in_flight_limit: int = 0
    pulls: int = 0
    empty_pulls: int = 0
    throttled: int = 0  # 429s and full input buffers seen
    total_records: int | None = None  # when the caller knows it (len() of a sequence)
    done: bool = False
    started_at: float = field(factory=time.monotonic)
    finished_at: float | None = None

    @property
    def elapsed_s(self) -> float:
        end = self.finished_at if self.finished_at is not None else time.monotonic()
        return end - self.started_at

    @property
    def records_per_s(self) -> float:
        elapsed = self.elapsed_s
        return self.records_completed / elapsed if elapsed > 0 else 0.0
