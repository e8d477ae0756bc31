"""Compression on a bandwidth-limited link: records/s of `stream_outputs()` with and without
gzip, through a proxy that carries 10 or 100 Mbit/s each way with a 5 ms one-way delay.

```bash
.venv/bin/python benchmarks/compression.py            # 3 repetitions: about 2 minutes
.venv/bin/python benchmarks/compression.py --quick    # small sizes, 1 repetition: seconds
```

Three configurations, each against its own emulator process (`workers=16`, no compute time,
so the link is the bottleneck):

- `none`: nothing compressed (an emulator started with `--no-compression`);
- `answers`: the emulator gzips its answers, as Spark's docs say Spark does when asked (the
  client's aiohttp asks by default); pushes go as they are (`AsyncClient()` default);
- `both`: answers gzipped and pushes too (`AsyncClient(compress="gzip")`).

A full run writes `results/compression.json` and the table in README.md between the
`compression` markers; `--quick` writes only to `--out`, if given.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from _emulator import EmulatorProcess, _readline  # noqa: E402
from workload import SERVICE, id_sum, rows  # noqa: E402

from cspark_async import AsyncClient, __version__  # noqa: E402

CONFIGS: dict[str, tuple[bool, str | None]] = {  # name -> (emulator gzips answers, client)
    "none": (False, None),
    "answers": (True, None),
    "both": (True, "gzip"),
}
LINKS = {10: 50_000, 100: 200_000}  # Mbit/s -> records (each run moves a few MB each way)
QUICK_LINKS = {100: 5_000}
LATENCY_MS = 5.0


class Proxy:
    """benchmarks/_throttle.py as a child process; `bytes` once stopped: (up, down)."""

    def __init__(self, target: str, mbit: float) -> None:
        self.cmd = [
            sys.executable,
            str(HERE / "_throttle.py"),
            "--target",
            target,
            "--mbit",
            str(mbit),
            "--latency-ms",
            str(LATENCY_MS),
        ]
        self.address = ""
        self.bytes = (0, 0)

    def __enter__(self) -> Proxy:
        self._proc = subprocess.Popen(
            self.cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self._proc.stdout is not None
        self.address = _readline(self._proc.stdout, 20.0).strip()
        if not self.address:
            self._proc.kill()
            self._proc.wait()
            raise RuntimeError("the throttling proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        proc = self._proc
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        match = re.search(r"up (\d+) down (\d+)", out or "")
        if match:
            self.bytes = (int(match[1]), int(match[2]))


async def stream_once(base_url: str, n: int, compress: str | None) -> float:
    """Seconds to create a batch, stream `n` records through it and close it."""
    records = list(rows(n))
    count = total = 0
    started = time.perf_counter()
    async with AsyncClient(base_url, api_key="open", compress=compress) as spark:  # type: ignore[arg-type]
        async for result in spark.batches.stream_outputs(SERVICE, records):
            for out in result.outputs:
                count += 1
                total += out["id"] if out is not None else 0
    elapsed = time.perf_counter() - started
    if count != n or total != id_sum(n):
        raise RuntimeError(f"{count} of {n} records came back (id sum {total})")
    return elapsed


def measure(links: dict[int, int], repeat: int) -> list[dict[str, Any]]:
    rows_out: list[dict[str, Any]] = []
    emulators = {
        name: EmulatorProcess(workers=16, latency_ms=0, compress_responses=answers)
        for name, (answers, _) in CONFIGS.items()
    }
    try:
        for emu in emulators.values():
            emu.start()
        for mbit, n in links.items():
            runs: dict[str, list[tuple[float, tuple[int, int]]]] = {c: [] for c in CONFIGS}
            for _ in range(repeat):  # interleaved, so a noisy moment hits every config alike
                for name, (_, compress) in CONFIGS.items():
                    emu = emulators[name]
                    emu.reset()
                    host = emu.root.removeprefix("http://")
                    with Proxy(host, mbit) as proxy:
                        tenant = emu.url.rsplit("/", 1)[1]
                        seconds = asyncio.run(
                            stream_once(f"http://{proxy.address}/{tenant}", n, compress)
                        )
                    runs[name].append((seconds, proxy.bytes))
                    print(f"{mbit:>4} Mbit/s {name:<8} {n / seconds:>9,.0f} records/s", flush=True)
            for name, measured in runs.items():
                seconds = statistics.median(s for s, _ in measured)
                up, down = measured[0][1]
                rows_out.append(
                    {
                        "mbit": mbit,
                        "config": name,
                        "records": n,
                        "seconds": round(seconds, 3),
                        "records_per_s": round(n / seconds),
                        "min_max_s": [
                            round(min(s for s, _ in measured), 3),
                            round(max(s for s, _ in measured), 3),
                        ],
                        "bytes_up": up,
                        "bytes_down": down,
                    }
                )
    finally:
        for emu in emulators.values():
            emu.stop()
    return rows_out


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| link | configuration | records | records/s (median) | min-max s | MB up | MB down |"
        " speed-up |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for mbit in sorted({r["mbit"] for r in results}):
        base = next(r for r in results if r["mbit"] == mbit and r["config"] == "none")
        for r in (r for r in results if r["mbit"] == mbit):
            lo, hi = r["min_max_s"]
            lines.append(
                f"| {mbit} Mbit/s | `{r['config']}` | {r['records']:,} | {r['records_per_s']:,} "
                f"| {lo:.2f}-{hi:.2f} | {r['bytes_up'] / 1e6:.2f} | {r['bytes_down'] / 1e6:.2f} "
                f"| {r['records_per_s'] / base['records_per_s']:.2f}x |"
            )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description="compression on a bandwidth-limited link")
    p.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", type=Path, help="write compression.json here")
    args = p.parse_args()
    links = QUICK_LINKS if args.quick else LINKS
    started = time.monotonic()
    results = measure(links, 1 if args.quick else args.repeat)
    meta = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "mode": "quick" if args.quick else "full",
        "repeat": 1 if args.quick else args.repeat,
        "latency_ms": LATENCY_MS,
        "seconds": round(time.monotonic() - started),
        "python": platform.python_version(),
        "cspark_async": __version__,
    }
    document = {"meta": meta, "results": results}
    out = args.out or (None if args.quick else HERE / "results")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "compression.json").write_text(json.dumps(document, indent=2) + "\n")
    rendered = table(results)
    print(rendered)
    if not args.quick and args.out is None:
        readme = HERE / "README.md"
        text = readme.read_text()
        begin, end = "<!-- compression:begin", "<!-- compression:end -->"
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            tail = rest.split(end, 1)[1]
            note = (
                f"{begin} (generated by benchmarks/compression.py) -->\n"
                f"Run: {meta['when']}, {meta['repeat']} repetition(s), {meta['seconds']} s; "
                f"Python {meta['python']} on {platform.machine()}.\n\n{rendered}\n"
            )
            readme.write_text(head + note + end + tail)


if __name__ == "__main__":
    main()
