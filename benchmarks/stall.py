"""Event-loop stalls, measured from inside the contender's loop: a ticker task asks to wake
every 1 ms and records how late it woke; a sampler thread notes what the loop's thread was
running, so that the worst stall can be attributed to code, and the collector's passes are
timed, so that the worst stall net of them (the SDK's own longest slice) is known too."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import sys
import threading
import time
from typing import Any

__all__ = ["StallMeter"]

_TICK_S = 0.001
_SAMPLE_S = 0.0005
# Frames of the event loop's own machinery: skipped when naming what ran.
_PLUMBING = ("asyncio/", "selectors.py", "threading.py", "/stall.py")


class StallMeter:
    """`start()` in the loop's thread, `await stop()` at the end, then `report()`."""

    def __init__(self) -> None:
        self._late: list[tuple[float, float]] = []  # (woke at, lateness s)
        self._samples: collections.deque[tuple[float, str]] = collections.deque(maxlen=400_000)
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._loop_thread = threading.get_ident()
        self._gc: list[tuple[float, float]] = []  # (start, end) of each collection
        self._cpu: dict[float, float] = {}  # the loop thread's CPU seconds in each tick
        self._gc_started = 0.0

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)
        self._task = asyncio.get_running_loop().create_task(self._tick())
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        assert self._task is not None
        assert self._thread is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._stop.set()
        self._thread.join()
        gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, _info: dict[str, Any]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._gc_started = now
        else:
            self._gc.append((self._gc_started, now))

    async def _tick(self) -> None:
        clock, cpu = time.perf_counter, time.thread_time
        while True:
            before, cpu_before = clock(), cpu()
            await asyncio.sleep(_TICK_S)
            now = clock()
            self._late.append((now, max(0.0, now - before - _TICK_S)))
            self._cpu[now] = cpu() - cpu_before

    def _sample(self) -> None:
        frames = sys._current_frames
        clock = time.perf_counter
        while not self._stop.wait(_SAMPLE_S):
            frame = frames().get(self._loop_thread)
            self._samples.append((clock(), _where(frame)))

    def report(self) -> dict[str, Any]:
        if not self._late:
            return {}
        lateness = sorted(late for _, late in self._late)
        p99 = lateness[min(len(lateness) - 1, int(len(lateness) * 0.99))]
        top = sorted(self._late, key=lambda item: item[1], reverse=True)[:5]
        causes = [self._cause(woke, late) for woke, late in top]
        # Each stall less the collector's time inside it: the SDK's own longest slice.
        net = [
            late - sum(max(0.0, min(e, at) - max(s, at - late)) for s, e in self._gc)
            for at, late in self._late
        ]
        return {
            "stall_worst_no_gc_ms": max(net, default=0.0) * 1000,
            "stall_gc_passes": len(self._gc),
            "stall_gc_longest_ms": max((e - s for s, e in self._gc), default=0.0) * 1000,
            "stall_worst_ms": top[0][1] * 1000,
            "stall_p99_ms": p99 * 1000,
            "stall_ticks": len(lateness),
            "stall_cause": causes[0],
            "stall_top": [
                f"{late * 1000:.1f} ms ({self._cpu[woke] * 1000:.1f} ms of CPU): {cause}"
                for (woke, late), cause in zip(top, causes, strict=True)
            ],
        }

    def _cause(self, woke: float, late: float) -> str:
        """What the loop's thread was seen running during a stall, most seen first."""
        began = woke - late - _TICK_S
        seen = collections.Counter(where for at, where in self._samples if began <= at <= woke)
        return "; ".join(f"{where} ({n})" for where, n in seen.most_common(3)) or "unsampled"


def _where(frame: Any) -> str:
    """The innermost two frames outside the event loop's machinery, `module:function`."""
    if frame is not None and frame.f_code.co_filename.endswith("selectors.py"):
        return "idle (waiting for I/O)"
    names: list[str] = []
    while frame is not None and len(names) < 2:
        path = frame.f_code.co_filename
        if not any(p in path for p in _PLUMBING):
            module = path.rsplit("/", 1)[-1].removesuffix(".py")
            names.append(f"{module}:{frame.f_code.co_name}")
        frame = frame.f_back
    return " < ".join(names) or "idle"
