"""One measurement in a fresh process: `python benchmarks/_child.py SPEC.json RESULT.json`.

A process per run keeps peak RSS and CPU time the contender's own: nothing left over from an
earlier contender, no emulator in the same process. The records are built before the clock
starts (a list, or a lazy generator for the memory scenario); the outputs are checked after it
stops.
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from contenders import CONTENDERS, check
from floor import measure_floor
from workload import dataset, id_sum, rows, wide_rows


def _rss_mib() -> float:
    # ru_maxrss is KiB on Linux (bytes on macOS; the benchmark targets Linux).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(spec: dict[str, Any]) -> dict[str, Any]:
    if spec["contender"] == "floor":
        return {"ok": True, **measure_floor(spec["n"], spec["options"].get("chunk_size", 200))}
    n = spec["n"]
    fn = CONTENDERS[spec["contender"]]
    source = spec.get("source")
    if source == "generator":
        records: Any = rows(n)
    elif source == "wide":
        records = list(wide_rows(n))
    else:
        records = dataset(n)
    # Import the contender's libraries now: import time is not what a long-lived program pays.
    if spec["contender"] == "ours":
        import cspark_async  # noqa: F401
    elif spec["contender"] == "hand_loop":
        import aiohttp  # noqa: F401
        import orjson  # noqa: F401
    else:
        import cspark.sdk  # noqa: F401
    # The records were just built: collect once before the clock, as a long-running program's
    # data would long have been, so that no pass promoting the benchmark's own rows (a full
    # one over 50,000 of them takes 25-30 ms here) is billed to the contender.
    gc.collect()
    gc_timer = _GcTimer()
    rss_before = _rss_mib()
    profiler = _profiler(spec.get("profile"))
    wall0, cpu0 = time.perf_counter(), time.process_time()
    gc.callbacks.append(gc_timer)
    try:
        outcome = fn(spec["url"], records, spec["options"])
    finally:
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        gc.callbacks.remove(gc_timer)
        if profiler is not None:
            profiler.stop()
    rss_peak = _rss_mib()
    total: int | None
    if outcome.outputs is not None:
        count, total = check(outcome.outputs)
    else:
        count, total = outcome.count, outcome.id_total
    complete = count == n and (total is None or total == id_sum(n))
    error = outcome.error
    if error is None and not complete:
        error = f"incomplete: {count} of {n} records came back" + (
            "" if count != n else " (ids do not add up: duplicates or losses)"
        )
    if profiler is not None:
        profiler.save()
    return {
        "ok": error is None,
        "error": error,
        "wall_s": wall,
        "cpu_s": cpu,
        "records": n,
        "records_out": count,
        "rss_baseline_mib": rss_before,
        "rss_peak_mib": rss_peak,
        "gc_s": gc_timer.total,
        "gc_full_s": gc_timer.oldest,
        "gc_s_per_100k": gc_timer.total * 100_000 / n,
        **outcome.extra,
    }


class _GcTimer:
    """A `gc.callbacks` hook: seconds spent collecting, all generations and the oldest."""

    def __init__(self) -> None:
        self.total = self.oldest = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        spent = time.perf_counter() - self._started
        self.total += spent
        if info.get("generation") == 2:
            self.oldest += spent


class _Profiler:
    """pyinstrument when installed (the bench extra), else cProfile; text report to `path`."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            from pyinstrument import Profiler

            self._pi: Any = Profiler(interval=0.0005)
            self._pi.start()
            self._cp: Any = None
        except ImportError:
            import cProfile

            self._pi = None
            self._cp = cProfile.Profile()
            self._cp.enable()

    def stop(self) -> None:
        if self._pi is not None:
            self._pi.stop()
        else:
            self._cp.disable()

    def save(self) -> None:
        if self._pi is not None:
            text = self._pi.output_text(unicode=False, color=False, show_all=False)
            Path(self.path).write_text(text)
            return
        import io
        import pstats

        buf = io.StringIO()
        pstats.Stats(self._cp, stream=buf).sort_stats("cumulative").print_stats(60)
        Path(self.path).write_text(buf.getvalue())


def _profiler(path: str | None) -> _Profiler | None:
    return _Profiler(path) if path else None


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    try:
        result = run(spec)
    except Exception as exc:
        result = {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}"[:500],
            "traceback": traceback.format_exc()[-3000:],
        }
    Path(sys.argv[2]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
